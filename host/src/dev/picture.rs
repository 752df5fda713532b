//! A deterministic placeholder picture for a prompt: a gradient and a few
//! shapes whose colours and places come from the prompt's SHA-256. Same
//! prompt and ratio, same PNG bytes.

use sha2::{Digest, Sha256};

const LONG_SIDE: u32 = 1024;

/// Pixel size for an aspect ratio like "16:9", long side 1024 (Gemini's
/// size for 1:1), so that derived variants (`w=`) have something to shrink.
pub fn size_for(ratio: &str) -> (u32, u32) {
    let (w, h) = ratio
        .split_once(':')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|(w, h)| *w > 0 && *h > 0)
        .unwrap_or((1, 1));
    if w >= h {
        (LONG_SIDE, (LONG_SIDE * h / w).max(1))
    } else {
        ((LONG_SIDE * w / h).max(1), LONG_SIDE)
    }
}

pub fn draw_png(prompt: &str, ratio: &str) -> Vec<u8> {
    let seed = Sha256::digest(prompt.as_bytes());
    let (w, h) = size_for(ratio);
    let c1 = [seed[0], seed[1], seed[2]];
    let c2 = [seed[3], seed[4], seed[5]];
    let circles: Vec<(i64, i64, i64, [u8; 3])> = (0..4)
        .map(|i| {
            let b = &seed[6 + i * 6..12 + i * 6];
            let r = 12 + (b[2] as i64 * w.min(h) as i64 / 700);
            (b[0] as i64 * w as i64 / 255, b[1] as i64 * h as i64 / 255, r, [b[3], b[4], b[5]])
        })
        .collect();
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let t = (x + y) as f32 / (w + h) as f32;
            let mut px = [0u8; 3];
            for i in 0..3 {
                px[i] = (c1[i] as f32 * (1.0 - t) + c2[i] as f32 * t) as u8;
            }
            for (cx, cy, r, color) in &circles {
                if (x - cx).pow(2) + (y - cy).pow(2) <= r * r {
                    px = *color;
                }
            }
            pixels.extend_from_slice(&px);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("in-memory PNG header");
        writer.write_image_data(&pixels).expect("in-memory PNG data");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_prompt_same_picture_and_ratio_sets_the_size() {
        let a = draw_png("a red fox", "16:9");
        assert_eq!(a, draw_png("a red fox", "16:9"));
        assert_ne!(a, draw_png("a blue fox", "16:9"));
        assert_eq!(&a[1..4], b"PNG");
        assert_eq!(size_for("16:9"), (1024, 576));
        assert_eq!(size_for("9:16"), (576, 1024));
    }
}
