//! A live URL's variant parameters (`w`, `h`, `fit`, `gravity`, `dpr`,
//! `format`, `q`), validated and snapped to the configured ladders, so an
//! image has a bounded number of variants; `format=auto` decided from
//! `Accept` (`http::accept`); the ladders' variables checked.

use super::format::Format;
use super::geometry::{Fit, Gravity};
use super::placeholder::Placeholder;
use super::spec::{Shape, Variant};
use crate::http::error::short;
use crate::Error;

/// The variant parameters (never part of the original's cache key).
pub const VARIANT_PARAMS: [&str; 7] = ["w", "h", "fit", "gravity", "dpr", "format", "q"];
/// Widths a variant snaps up to (`variant_widths`).
pub const DEFAULT_WIDTHS: [u32; 9] = [64, 128, 256, 384, 512, 768, 1024, 1536, 2048];
/// Largest original (width × height) a variant is derived from
/// (`max_source_pixels`): 16 MP, 64 MiB as RGBA.
pub const DEFAULT_MAX_SOURCE_PIXELS: u64 = 1 << 24;
/// rav1e's speed for AVIF variants (1 slowest … 10 fastest), unless
/// `avif_speed` says otherwise: 9 takes half of 8's time for the same bytes
/// (±1%); 10 takes another ~40% off for ~25% more bytes (docs/benchmarks.md,
/// "Derivations").
pub const DEFAULT_AVIF_SPEED: u8 = 9;
/// The largest `w` a URL may ask for (it snaps down to the ladder's top).
pub const MAX_WIDTH_PARAM: u32 = 65_535;

/// `format=` as given: a format, `auto` (decided by `Accept`), or a
/// placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Auto,
    Exactly(Format),
    Placeholder(Placeholder),
}

/// What the URL asks for, validated; widths, heights and qualities already
/// snapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub width: Option<u32>,
    pub shape: Shape,
    pub format: Option<Wanted>,
    pub quality: Option<u8>,
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The variant parameters among `pairs`; `None` when there are none (the
/// original is asked for). `ladder` is ascending and not empty; `qualities`
/// are the `q` values served (ascending; empty: only each format's default).
pub fn parse(pairs: &[(String, String)], ladder: &[u32], qualities: &[u8]) -> Result<Option<Asked>, Error> {
    let bad = |m: String| Err(Error::BadRequest(m));
    // `dpr` multiplies `w` and `h` before they snap: `w=384&dpr=2` is the
    // 768 variant, so it adds no variants of its own.
    let dpr = match value(pairs, "dpr") {
        None => 1,
        Some("1") => 1,
        Some("2") => 2,
        Some("3") => 3,
        Some(_) => return bad("parameter 'dpr' must be 1, 2 or 3".into()),
    };
    let side = |name: &str| -> Result<Option<u32>, Error> {
        match value(pairs, name) {
            None => Ok(None),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_WIDTH_PARAM).contains(&n) && !v.starts_with('+') => {
                    Ok(Some(snap(n.saturating_mul(dpr), ladder)))
                }
                _ => Err(Error::BadRequest(format!(
                    "parameter '{name}' must be a size in pixels from 1 to {MAX_WIDTH_PARAM}"
                ))),
            },
        }
    };
    let (width, height) = (side("w")?, side("h")?);
    let fit = match value(pairs, "fit") {
        None => None,
        Some(f) => match Fit::parse(f) {
            Some(fit) => Some(fit),
            None => return bad("parameter 'fit' must be cover, contain, pad or scale-down".into()),
        },
    };
    let gravity = match value(pairs, "gravity") {
        None => None,
        Some(g) => match Gravity::ALL.into_iter().find(|x| x.name() == g) {
            Some(gravity) => Some(gravity),
            None => return bad("parameter 'gravity' must be center, top, bottom, left or right".into()),
        },
    };
    if height.is_none() && (fit.is_some() || gravity.is_some()) {
        return bad("parameters 'fit' and 'gravity' need 'h'".into());
    }
    if matches!(fit, Some(Fit::Cover | Fit::Pad)) && width.is_none() {
        return bad("fit=cover and fit=pad need both 'w' and 'h'".into());
    }
    if gravity.is_some() && !matches!(fit, Some(Fit::Cover | Fit::Pad)) {
        return bad("parameter 'gravity' applies to fit=cover or fit=pad".into());
    }
    if value(pairs, "dpr").is_some() && width.is_none() && height.is_none() {
        return bad("parameter 'dpr' multiplies 'w' and 'h': give one of them".into());
    }
    let shape = Shape { height, fit: fit.unwrap_or_default(), gravity: gravity.unwrap_or_default() };
    let format = match value(pairs, "format") {
        None => None,
        Some("auto") => Some(Wanted::Auto),
        Some(f) => match Format::ALL.into_iter().find(|x| x.name() == f) {
            Some(x) => Some(Wanted::Exactly(x)),
            None => match Placeholder::ALL.into_iter().find(|p| p.name() == f) {
                Some(p) => Some(Wanted::Placeholder(p)),
                None => {
                    return bad(format!(
                        "parameter 'format' must be auto, avif, webp, jpeg, png, lqip or thumbhash, not '{}'",
                        short(f)
                    ))
                }
            },
        },
    };
    if let Some(Wanted::Placeholder(p)) = format {
        if ["w", "h", "fit", "gravity", "dpr", "q"].iter().any(|n| value(pairs, n).is_some()) {
            return bad(format!(
                "parameters 'w', 'h', 'fit', 'gravity', 'dpr' and 'q' do not apply to format={}",
                p.name()
            ));
        }
        return Ok(Some(Asked { width: None, shape: Shape::default(), format, quality: None }));
    }
    let quality = match value(pairs, "q") {
        None => None,
        Some(q) => match q.parse::<u8>() {
            Ok(n) if (1..=100).contains(&n) && !q.starts_with('+') => Some(snap_quality(n, qualities)),
            _ => return bad("parameter 'q' must be a quality from 1 to 100".into()),
        },
    };
    if quality.is_some()
        && !matches!(
            format,
            Some(Wanted::Auto) | Some(Wanted::Exactly(Format::Avif | Format::Webp | Format::Jpeg))
        )
    {
        return bad("parameter 'q' applies to a lossy format: give format=avif, webp, jpeg or auto".into());
    }
    if width.is_none() && height.is_none() && format.is_none() {
        return Ok(None);
    }
    let quality = quality.flatten();
    // Without `w`, the original's width, but never wider than the ladder: no
    // variant is larger than the ladder allows.
    let width = width.or(ladder.last().copied());
    Ok(Some(Asked { width, shape, format, quality }))
}

/// `q` snaps up to the smallest of `qualities` at or above it (above them
/// all, the highest), as `w` snaps to the ladder, so an image has as many
/// variants per format and width as `qualities` has values; with none
/// configured, `None`: the format's default is used, whatever `q` said.
pub fn snap_quality(q: u8, qualities: &[u8]) -> Option<u8> {
    qualities.iter().copied().find(|&allowed| allowed >= q).or(qualities.last().copied())
}

/// `variant_qualities`: ascending, distinct qualities from 1 to 100, at most 10.
pub fn parse_qualities(text: &str) -> Result<Vec<u8>, String> {
    let qualities: Vec<u8> = text
        .split(',')
        .map(|q| q.trim().parse::<u8>().ok().filter(|n| (1..=100).contains(n)))
        .collect::<Option<_>>()
        .ok_or("a comma-separated list of qualities from 1 to 100")?;
    if qualities.len() > 10 || qualities.windows(2).any(|p| p[0] >= p[1]) {
        return Err("ascending, distinct qualities, at most 10".into());
    }
    Ok(qualities)
}

/// The smallest ladder width at or above `w`; above the ladder, its top.
pub fn snap(w: u32, ladder: &[u32]) -> u32 {
    ladder.iter().copied().find(|&rung| rung >= w).unwrap_or_else(|| ladder.last().copied().unwrap_or(w))
}

/// `variant_widths`: ascending, distinct widths from 1 to 16384.
pub fn parse_ladder(text: &str) -> Result<Vec<u32>, String> {
    let widths: Vec<u32> = text
        .split(',')
        .map(|w| w.trim().parse::<u32>().ok().filter(|n| (1..=16384).contains(n)))
        .collect::<Option<_>>()
        .ok_or("a comma-separated list of widths from 1 to 16384")?;
    if widths.is_empty() || widths.len() > 32 || widths.windows(2).any(|p| p[0] >= p[1]) {
        return Err("ascending, distinct widths, at most 32".into());
    }
    Ok(widths)
}

impl Asked {
    /// The parameters that ask for this again (a signed URL's), widths and
    /// qualities snapped.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(w) = self.width {
            out.push(("w".to_string(), w.to_string()));
        }
        if let Some(h) = self.shape.height {
            out.push(("h".to_string(), h.to_string()));
            if self.shape.fit != Fit::Contain {
                out.push(("fit".to_string(), self.shape.fit.name().to_string()));
            }
            if self.shape.gravity != Gravity::Center {
                out.push(("gravity".to_string(), self.shape.gravity.name().to_string()));
            }
        }
        match self.format {
            Some(Wanted::Auto) => out.push(("format".to_string(), "auto".to_string())),
            Some(Wanted::Exactly(f)) => out.push(("format".to_string(), f.name().to_string())),
            Some(Wanted::Placeholder(p)) => out.push(("format".to_string(), p.name().to_string())),
            None => {}
        }
        if let Some(q) = self.quality {
            out.push(("q".to_string(), q.to_string()));
        }
        out
    }

    /// Decide `format=auto` from `Accept` (`core::http::accept`), and the quality.
    pub fn resolve(&self, accept: Option<&str>) -> Variant {
        let (format, negotiated) = match self.format {
            None => (None, false),
            Some(Wanted::Exactly(f)) => (Some(f), false),
            Some(Wanted::Auto) => (Some(crate::http::accept::negotiate(accept.unwrap_or(""))), true),
            Some(Wanted::Placeholder(p)) => {
                let placeholder = Some(p);
                let shape = Shape::default();
                return Variant {
                    width: None,
                    shape,
                    format: None,
                    quality: None,
                    negotiated: false,
                    placeholder,
                };
            }
        };
        let quality = format.and_then(|f| f.default_quality().map(|d| self.quality.unwrap_or(d)));
        Variant { width: self.width, shape: self.shape, format, quality, negotiated, placeholder: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn asked(q: &[(&str, &str)]) -> Result<Option<Asked>, Error> {
        parse(&pairs(q), &DEFAULT_WIDTHS, &[10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    }

    fn bad(q: &[(&str, &str)]) -> String {
        match asked(q) {
            Err(Error::BadRequest(m)) => m,
            other => panic!("{q:?} gave {other:?}"),
        }
    }

    #[test]
    fn no_variant_parameter_asks_for_the_original() {
        assert_eq!(asked(&[("prompt", "x")]), Ok(None));
    }

    #[test]
    fn widths_snap_up_to_the_ladder_and_stop_at_its_top() {
        let w = |n: &str| asked(&[("w", n)]).unwrap().unwrap().width.unwrap();
        assert_eq!(w("1"), 64);
        assert_eq!(w("64"), 64);
        assert_eq!(w("65"), 128);
        assert_eq!(w("300"), 384);
        assert_eq!(w("2048"), 2048);
        assert_eq!(w("9000"), 2048);
        assert_eq!(snap(10, &[100, 200]), 100);
    }

    #[test]
    fn bad_values_are_400s_that_name_the_parameter() {
        assert!(bad(&[("w", "0")]).contains("'w'"));
        assert!(bad(&[("w", "-5")]).contains("'w'"));
        assert!(bad(&[("w", "+5")]).contains("'w'"));
        assert!(bad(&[("w", "256px")]).contains("'w'"));
        assert!(bad(&[("w", "99999999999")]).contains("'w'"));
        assert!(bad(&[("format", "gif")]).contains("'format'"));
        assert!(bad(&[("format", "AVIF")]).contains("'format'"));
        assert!(bad(&[("format", "jpeg"), ("q", "0")]).contains("'q'"));
        assert!(bad(&[("format", "jpeg"), ("q", "101")]).contains("'q'"));
        assert!(bad(&[("format", "png"), ("q", "80")]).contains("lossy"));
        assert!(bad(&[("w", "256"), ("q", "80")]).contains("lossy"));
        assert!(bad(&[("q", "80")]).contains("lossy"));
    }

    #[test]
    fn quality_defaults_per_format_and_is_part_of_the_suffix() {
        let v = |q: &[(&str, &str)]| asked(q).unwrap().unwrap().resolve(None);
        assert_eq!(v(&[("w", "200"), ("format", "webp")]).suffix(), "w256.webp.q80");
        assert_eq!(v(&[("w", "200"), ("format", "webp"), ("q", "80")]).suffix(), "w256.webp.q80");
        assert_eq!(v(&[("w", "200"), ("format", "avif"), ("q", "45")]).suffix(), "w256.avif.q50");
        assert_eq!(v(&[("w", "200"), ("format", "avif"), ("q", "1")]).suffix(), "w256.avif.q10");
        assert_eq!(v(&[("w", "200"), ("format", "jpeg"), ("q", "100")]).suffix(), "w256.jpeg.q100");
        assert_eq!(v(&[("w", "512")]).suffix(), "w512");
        assert_eq!(v(&[("format", "png")]).suffix(), "w2048.png", "no wider than the ladder");
        assert_eq!(v(&[("format", "jpeg")]).suffix(), "w2048.jpeg.q80");
    }

    #[test]
    fn by_default_q_gives_way_to_the_formats_default() {
        let v =
            |q: &str| parse(&pairs(&[("format", "webp"), ("q", q)]), &DEFAULT_WIDTHS, &[]).unwrap().unwrap();
        assert_eq!(v("35").resolve(None).suffix(), "w2048.webp.q80");
        assert_eq!(v("100").resolve(None).suffix(), "w2048.webp.q80");
        assert_eq!(snap_quality(55, &[50, 75]), Some(75));
        assert_eq!(snap_quality(90, &[50, 75]), Some(75), "above them all: the highest");
        assert_eq!(parse_qualities("50, 75"), Ok(vec![50, 75]));
        assert_eq!(parse_qualities(""), Err("a comma-separated list of qualities from 1 to 100".into()));
        assert!(parse_qualities("75,50").is_err());
        assert!(parse_qualities("0").is_err());
    }

    #[test]
    fn auto_reads_accept_with_q_values_and_says_so() {
        let auto = asked(&[("w", "256"), ("format", "auto")]).unwrap().unwrap();
        let chosen = |accept: &str| auto.resolve(Some(accept)).format.unwrap();
        assert_eq!(chosen("image/avif,image/webp,*/*"), Format::Avif);
        assert_eq!(chosen("image/webp,*/*"), Format::Webp);
        assert_eq!(auto.resolve(None).format, Some(Format::Jpeg));
        assert!(auto.resolve(None).negotiated);
        let v = auto.resolve(Some("image/avif"));
        assert_eq!((v.suffix(), v.quality), ("w256.avif.q60".to_string(), Some(60)));
        let fixed = asked(&[("format", "webp")]).unwrap().unwrap().resolve(Some("image/avif"));
        assert!(!fixed.negotiated);
        assert_eq!(fixed.format, Some(Format::Webp));
    }

    #[test]
    fn the_ladder_variable_is_checked() {
        assert_eq!(parse_ladder("100, 200,400"), Ok(vec![100, 200, 400]));
        assert!(parse_ladder("").is_err());
        assert!(parse_ladder("200,100").is_err());
        assert!(parse_ladder("100,100").is_err());
        assert!(parse_ladder("0").is_err());
        assert!(parse_ladder("100,x").is_err());
        assert!(parse_ladder("20000").is_err());
    }

    #[test]
    fn derived_sizes_follow_the_aspect_ratio_and_never_upscale() {
        let size =
            |source, w| crate::variant::geometry::plan(source, w, None, Fit::Contain, Gravity::Center).canvas;
        assert_eq!(size((1024, 1024), Some(256)), (256, 256));
        assert_eq!(size((1344, 768), Some(768)), (768, 439));
        assert_eq!(size((1024, 1024), Some(2048)), (1024, 1024));
        assert_eq!(size((1024, 1024), None), (1024, 1024));
        assert_eq!(size((4000, 1), Some(64)), (64, 1));
    }

    #[test]
    fn variant_names_hang_off_the_original() {
        let v = asked(&[("w", "256"), ("format", "webp")]).unwrap().unwrap().resolve(None);
        assert_eq!(v.suffix(), "w256.webp.q80");
        assert_eq!(v.output_format(Format::Png), Format::Webp);
        let w = asked(&[("w", "256")]).unwrap().unwrap().resolve(None);
        assert_eq!(w.output_format(Format::Png), Format::Png);
        assert_eq!(Format::from_content_type("image/avif"), Some(Format::Avif));
        assert_eq!(Format::from_content_type("image/gif"), None);
    }

    #[test]
    fn placeholders_take_no_width_or_quality_and_have_their_own_suffix() {
        for (name, p) in [("lqip", Placeholder::Lqip), ("thumbhash", Placeholder::ThumbHash)] {
            let a = asked(&[("format", name)]).unwrap().unwrap();
            let format = Some(Wanted::Placeholder(p));
            assert_eq!(a, Asked { width: None, shape: Shape::default(), format, quality: None });
            assert_eq!(a.pairs(), pairs(&[("format", name)]));
            let v = a.resolve(Some("image/avif"));
            assert_eq!((v.placeholder, v.format, v.width, v.negotiated), (Some(p), None, None, false));
            assert_eq!(v.suffix(), name);
            assert!(bad(&[("format", name), ("w", "64")]).contains("do not apply"));
            assert!(bad(&[("format", name), ("q", "50")]).contains("do not apply"));
        }
        assert!(bad(&[("format", "blurhash")]).contains("lqip or thumbhash"));
    }

    #[test]
    fn height_fit_gravity_and_dpr_snap_and_spell_their_own_suffix() {
        let v = |q: &[(&str, &str)]| asked(q).unwrap().unwrap().resolve(None);
        let cover =
            v(&[("w", "300"), ("h", "200"), ("fit", "cover"), ("gravity", "top"), ("format", "webp")]);
        assert_eq!(cover.suffix(), "w384.h256.cover.top.webp.q80");
        assert_eq!(v(&[("w", "256"), ("h", "256")]).suffix(), "w256.h256", "contain is the default");
        assert_eq!(v(&[("w", "256"), ("h", "256"), ("fit", "scale-down")]).suffix(), "w256.h256");
        assert_eq!(v(&[("w", "384"), ("dpr", "2")]).suffix(), "w768", "dpr is folded into w");
        assert_eq!(v(&[("w", "384"), ("h", "100"), ("dpr", "3")]).suffix(), "w1536.h384");
        assert_eq!(v(&[("h", "128")]).suffix(), "w2048.h128", "a height alone, in the ladder's widest box");
        let a = asked(&[("w", "300"), ("h", "200"), ("fit", "pad"), ("gravity", "left")]).unwrap().unwrap();
        assert_eq!(a.pairs(), pairs(&[("w", "384"), ("h", "256"), ("fit", "pad"), ("gravity", "left")]));
        assert_eq!(v(&[("w", "256")]).suffix(), "w256", "old variants keep their keys");
    }

    #[test]
    fn geometry_parameters_are_refused_where_they_mean_nothing() {
        assert!(bad(&[("w", "256"), ("fit", "cover")]).contains("need 'h'"));
        assert!(bad(&[("h", "256"), ("fit", "cover")]).contains("need both"));
        assert!(bad(&[("w", "256"), ("h", "256"), ("gravity", "top")]).contains("applies to fit=cover"));
        assert!(bad(&[("w", "256"), ("h", "256"), ("fit", "fill")]).contains("cover, contain, pad"));
        assert!(bad(&[("w", "256"), ("h", "256"), ("fit", "cover"), ("gravity", "north")])
            .contains("center, top"));
        assert!(bad(&[("dpr", "2")]).contains("give one"));
        assert!(bad(&[("w", "256"), ("dpr", "1.5")]).contains("1, 2 or 3"));
        assert!(bad(&[("h", "0")]).contains("'h' must be"));
    }
}
