//! A deterministic placeholder picture for a prompt: a gradient and a few
//! shapes whose colours and places come from the prompt's SHA-256, at the
//! size the real provider draws (so a progressive answer's first frame has
//! the final size). Same prompt and size, same PNG bytes; a preview is the
//! same picture with fewer of its shapes.

use sha2::{Digest, Sha256};

/// The shapes the finished picture has (a preview has fewer).
pub const SHAPES: usize = 4;

/// The picture for `prompt` at `size`, with `shapes` of its shapes.
pub fn draw_png(prompt: &str, (w, h): (u32, u32), shapes: usize) -> Vec<u8> {
    let seed = Sha256::digest(prompt.as_bytes());
    let c1 = [seed[0], seed[1], seed[2]];
    let c2 = [seed[3], seed[4], seed[5]];
    let circles: Vec<(i64, i64, i64, [u8; 3])> = (0..shapes.min(SHAPES))
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
    fn same_prompt_same_picture_and_a_preview_has_fewer_shapes() {
        let a = draw_png("a red fox", (64, 36), SHAPES);
        assert_eq!(a, draw_png("a red fox", (64, 36), SHAPES));
        assert_ne!(a, draw_png("a blue fox", (64, 36), SHAPES));
        assert_ne!(a, draw_png("a red fox", (64, 36), 1));
        assert_eq!(&a[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(a));
        let info = decoder.read_info().unwrap();
        assert_eq!((info.info().width, info.info().height), (64, 36));
    }
}
