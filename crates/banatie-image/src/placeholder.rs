//! Placeholders of a cached image (`banatie_core::variant::Placeholder`):
//! `lqip`, a blurred WebP of 24 pixels on its long side (a few hundred
//! bytes, at most 1 KB: `MAX_LQIP_BYTES`), and `thumbhash`, the image's
//! ThumbHash (Evan Wallace's `thumbhash` crate, from a copy of at most 100
//! pixels a side, as it requires) as JSON with a `data:` URL of the decoded
//! hash as a PNG. Neither carries the XMP packet (it alone would be larger
//! than the placeholder); the answer's `X-AI-Generated` header marks them.

use banatie_core::variant::Placeholder;
use base64::Engine;

use super::{decode, encode, resize, Derived, Failure};

/// The long side of an LQIP, in pixels.
pub const LQIP_SIDE: u32 = 24;
/// An LQIP is at most this many bytes.
pub const MAX_LQIP_BYTES: usize = 1024;
/// ThumbHash's own limit on the image it hashes.
const THUMBHASH_SIDE: u32 = 100;

/// `(w, h)` within `side` × `side`, keeping the aspect ratio (never up).
fn within(source: (u32, u32), side: u32) -> (u32, u32) {
    let (w, h) = source;
    let long = w.max(h);
    if long <= side {
        return (w, h);
    }
    let scale = |x: u32| ((x as u64 * side as u64 + long as u64 / 2) / long as u64).max(1) as u32;
    (scale(w), scale(h))
}

/// RGBA, whatever was decoded.
fn rgba(image: decode::Pixels) -> Vec<u8> {
    if image.alpha {
        return image.data;
    }
    image.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect()
}

/// A 3×3 box blur (edges clamped), every channel.
fn blur(px: &[u8], w: u32, h: u32) -> Vec<u8> {
    let (w, h) = (w as i64, h as i64);
    let at =
        |x: i64, y: i64, c: usize| px[((y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) * 4) as usize + c] as u32;
    let mut out = Vec::with_capacity(px.len());
    for y in 0..h {
        for x in 0..w {
            for c in 0..4 {
                let sum: u32 = (-1..=1)
                    .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                    .map(|(dx, dy)| at(x + dx, y + dy, c))
                    .sum();
                out.push(((sum + 4) / 9) as u8);
            }
        }
    }
    out
}

pub fn placeholder(source: &[u8], kind: Placeholder, max_source_pixels: u64) -> Result<Derived, Failure> {
    let decoded = decode::decode(source, max_source_pixels)?;
    let (from, alpha) = ((decoded.width, decoded.height), decoded.alpha);
    let side = match kind {
        Placeholder::Lqip => LQIP_SIDE,
        Placeholder::ThumbHash => THUMBHASH_SIDE,
    };
    let (w, h) = within(from, side);
    let small = resize(rgba(decoded), from, (w, h), true)?;
    let bytes = match kind {
        Placeholder::Lqip => {
            let blurred = blur(&small, w, h);
            let px: Vec<u8> = match alpha {
                true => blurred,
                false => blurred.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
            };
            let bytes = encode::webp(&px, w, h, alpha, 40, None)?;
            if bytes.len() > MAX_LQIP_BYTES {
                return Err(Failure::Encoder(format!("lqip of {} bytes", bytes.len())));
            }
            bytes
        }
        Placeholder::ThumbHash => {
            let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, &small);
            let (tw, th, decoded) = thumbhash::thumb_hash_to_rgba(&hash)
                .map_err(|()| Failure::Encoder("thumbhash does not decode".into()))?;
            let png = encode::png(&decoded, tw as u32, th as u32, true, None)?;
            let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            format!(
                "{{\"thumbhash\":\"{}\",\"data_url\":\"data:image/png;base64,{}\",\"width\":{w},\"height\":{h}}}",
                b64(&hash),
                b64(&png)
            )
            .into_bytes()
        }
    };
    Ok(Derived { bytes, width: w, height: h, peak_memory: super::linear_memory() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Vec<u8> {
        let px: Vec<u8> =
            (0..w * h).flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, 90]).collect();
        encode::png(&px, w, h, false, None).unwrap()
    }

    #[test]
    fn an_lqip_is_a_small_webp_of_24_pixels_on_its_long_side() {
        let d = placeholder(&gradient(1024, 576), Placeholder::Lqip, 1 << 24).unwrap();
        assert_eq!((d.width, d.height), (24, 14));
        assert!(d.bytes.len() <= MAX_LQIP_BYTES, "{}", d.bytes.len());
        assert_eq!(&d.bytes[8..12], b"WEBP");
    }

    #[test]
    fn a_thumbhash_round_trips_and_carries_its_picture() {
        let d = placeholder(&gradient(1024, 512), Placeholder::ThumbHash, 1 << 24).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&d.bytes).unwrap();
        let hash =
            base64::engine::general_purpose::STANDARD.decode(json["thumbhash"].as_str().unwrap()).unwrap();
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
        assert!((ratio - 2.0).abs() < 0.3, "{ratio}");
        assert!(json["data_url"].as_str().unwrap().starts_with("data:image/png;base64,"));
        assert_eq!((json["width"].as_u64(), json["height"].as_u64()), (Some(100), Some(50)));
    }
}
