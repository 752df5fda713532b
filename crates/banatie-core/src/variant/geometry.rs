//! A variant's geometry: how `w`, `h`, `fit` and `gravity` turn an
//! original of one size into a variant of another, as image CDNs read them
//! (Cloudflare's `fit`, imgproxy's resizing types), with one rule of ours:
//! an image is never enlarged.
//!
//! - no `h`: `w` wide, the height following the aspect ratio;
//! - `fit=contain` (the default with `h`; `scale-down` is the same here, as
//!   nothing is enlarged): the whole image within `w`×`h`;
//! - `fit=cover`: the box filled, the overflow cropped at `gravity`
//!   (`center` by default, or `top`, `bottom`, `left`, `right`); an original
//!   smaller than the box is cropped to the box's aspect ratio, not enlarged;
//! - `fit=pad`: the whole image within the box, on a canvas of exactly
//!   `w`×`h` (transparent where the format has alpha, else white), placed at
//!   `gravity`.
//!
//! Pure arithmetic: `banatie_image` crops, resizes and pads by the [`Plan`].

/// `fit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    #[default]
    Contain,
    Cover,
    Pad,
}

impl Fit {
    pub fn parse(value: &str) -> Option<Fit> {
        match value {
            "contain" | "scale-down" => Some(Fit::Contain),
            "cover" => Some(Fit::Cover),
            "pad" => Some(Fit::Pad),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fit::Contain => "contain",
            Fit::Cover => "cover",
            Fit::Pad => "pad",
        }
    }
}

/// `gravity=`: where `cover` crops from and `pad` places the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gravity {
    #[default]
    Center,
    Top,
    Bottom,
    Left,
    Right,
}

impl Gravity {
    pub const ALL: [Gravity; 5] =
        [Gravity::Center, Gravity::Top, Gravity::Bottom, Gravity::Left, Gravity::Right];

    pub fn name(self) -> &'static str {
        match self {
            Gravity::Center => "center",
            Gravity::Top => "top",
            Gravity::Bottom => "bottom",
            Gravity::Left => "left",
            Gravity::Right => "right",
        }
    }

    /// Where a span of `inner` sits in `outer` along one axis (`vertical`).
    fn offset(self, outer: u32, inner: u32, vertical: bool) -> u32 {
        let room = outer.saturating_sub(inner);
        match (self, vertical) {
            (Gravity::Top, true) | (Gravity::Left, false) => 0,
            (Gravity::Bottom, true) | (Gravity::Right, false) => room,
            _ => room / 2,
        }
    }
}

/// What to do to the original's pixels, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The part of the original that is kept: x, y, width, height.
    pub crop: (u32, u32, u32, u32),
    /// The size that part is resized to.
    pub resized: (u32, u32),
    /// The variant's size (the resized image on it at `offset`; equal to
    /// `resized` except for `pad`).
    pub canvas: (u32, u32),
    pub offset: (u32, u32),
}

fn scaled(x: u32, num: u64, den: u64) -> u32 {
    ((x as u64 * num + den / 2) / den).max(1) as u32
}

/// The plan for an original of `source` pixels. `width`: the box's width
/// (`None`: the original's); `height`: the box's height (`None`: no box,
/// the height follows).
pub fn plan(source: (u32, u32), width: Option<u32>, height: Option<u32>, fit: Fit, gravity: Gravity) -> Plan {
    let (sw, sh) = (source.0.max(1), source.1.max(1));
    let whole = (0, 0, sw, sh);
    let bw = width.unwrap_or(sw).max(1);
    let Some(bh) = height.map(|h| h.max(1)) else {
        let size = if bw >= sw { (sw, sh) } else { (bw, scaled(sh, bw as u64, sw as u64)) };
        return Plan { crop: whole, resized: size, canvas: size, offset: (0, 0) };
    };
    // Contain: the larger of the two ratios source/box decides, never below 1.
    let contained = if (sw as u64) * (bh as u64) >= (sh as u64) * (bw as u64) {
        if bw >= sw {
            (sw, sh)
        } else {
            (bw, scaled(sh, bw as u64, sw as u64))
        }
    } else if bh >= sh {
        (sw, sh)
    } else {
        (scaled(sw, bh as u64, sh as u64), bh)
    };
    match fit {
        Fit::Contain => Plan { crop: whole, resized: contained, canvas: contained, offset: (0, 0) },
        Fit::Pad => {
            let canvas = (bw, bh);
            let offset = (gravity.offset(bw, contained.0, false), gravity.offset(bh, contained.1, true));
            Plan { crop: whole, resized: contained, canvas, offset }
        }
        Fit::Cover => {
            // The largest part of the original with the box's aspect ratio.
            let (cw, ch) = if (sw as u64) * (bh as u64) >= (sh as u64) * (bw as u64) {
                (scaled(bw, sh as u64, bh as u64).min(sw), sh)
            } else {
                (sw, scaled(bh, sw as u64, bw as u64).min(sh))
            };
            let crop = (gravity.offset(sw, cw, false), gravity.offset(sh, ch, true), cw, ch);
            // Then down to the box, never up (and never past it by rounding).
            let resized = if bw >= cw { (cw, ch.min(bh)) } else { (bw, bh.min(ch)) };
            Plan { crop, resized, canvas: resized, offset: (0, 0) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_height_the_width_decides_and_nothing_is_enlarged() {
        assert_eq!(plan((1024, 512), Some(256), None, Fit::Contain, Gravity::Center).canvas, (256, 128));
        assert_eq!(plan((1024, 512), Some(2048), None, Fit::Cover, Gravity::Center).canvas, (1024, 512));
        assert_eq!(plan((1024, 512), None, None, Fit::Contain, Gravity::Center).canvas, (1024, 512));
    }

    #[test]
    fn contain_fits_the_whole_image_in_the_box() {
        let p = plan((1024, 512), Some(256), Some(256), Fit::Contain, Gravity::Center);
        assert_eq!((p.crop, p.resized, p.canvas), ((0, 0, 1024, 512), (256, 128), (256, 128)));
        assert_eq!(plan((512, 1024), Some(256), Some(256), Fit::Contain, Gravity::Center).canvas, (128, 256));
        assert_eq!(plan((100, 50), Some(256), Some(256), Fit::Contain, Gravity::Center).canvas, (100, 50));
        // Only a height: the box's width is the original's.
        assert_eq!(plan((1024, 512), None, Some(128), Fit::Contain, Gravity::Center).canvas, (256, 128));
    }

    #[test]
    fn cover_fills_the_box_and_crops_at_the_gravity() {
        let p = plan((1024, 512), Some(256), Some(256), Fit::Cover, Gravity::Center);
        assert_eq!((p.crop, p.canvas), ((256, 0, 512, 512), (256, 256)));
        assert_eq!(plan((1024, 512), Some(256), Some(256), Fit::Cover, Gravity::Left).crop, (0, 0, 512, 512));
        assert_eq!(
            plan((1024, 512), Some(256), Some(256), Fit::Cover, Gravity::Right).crop,
            (512, 0, 512, 512)
        );
        let tall = plan((512, 1024), Some(256), Some(128), Fit::Cover, Gravity::Top);
        assert_eq!((tall.crop, tall.canvas), ((0, 0, 512, 256), (256, 128)));
        // Smaller than the box: cropped to its aspect ratio, not enlarged.
        let small = plan((100, 100), Some(400), Some(200), Fit::Cover, Gravity::Center);
        assert_eq!((small.crop, small.canvas), ((0, 25, 100, 50), (100, 50)));
    }

    #[test]
    fn pad_places_the_contained_image_on_the_whole_box() {
        let p = plan((1024, 512), Some(256), Some(256), Fit::Pad, Gravity::Center);
        assert_eq!((p.resized, p.canvas, p.offset), ((256, 128), (256, 256), (0, 64)));
        assert_eq!(plan((1024, 512), Some(256), Some(256), Fit::Pad, Gravity::Top).offset, (0, 0));
        assert_eq!(plan((1024, 512), Some(256), Some(256), Fit::Pad, Gravity::Bottom).offset, (0, 128));
    }

    #[test]
    fn no_plan_is_ever_larger_than_its_box() {
        for source in [(1000, 1030), (1030, 1000), (1, 3000), (3000, 1), (64, 1024), (999, 1001)] {
            for (bw, bh) in [(64, 1024), (1024, 64), (256, 256), (2048, 128)] {
                for fit in [Fit::Contain, Fit::Cover, Fit::Pad] {
                    let p = plan(source, Some(bw), Some(bh), fit, Gravity::Center);
                    assert!(p.canvas.0 <= bw && p.canvas.1 <= bh, "{source:?} in {bw}×{bh} {fit:?}: {p:?}");
                    assert!(p.crop.0 + p.crop.2 <= source.0 && p.crop.1 + p.crop.3 <= source.1, "{p:?}");
                }
            }
        }
    }

    #[test]
    fn slivers_never_reach_zero() {
        let p = plan((4000, 1), Some(64), Some(64), Fit::Cover, Gravity::Center);
        assert!(p.crop.2 >= 1 && p.crop.3 >= 1 && p.canvas.0 >= 1 && p.canvas.1 >= 1, "{p:?}");
        let p = plan((1, 3000), Some(64), Some(64), Fit::Pad, Gravity::Center);
        assert_eq!(p.canvas, (64, 64));
    }
}
