//! The frames of a progressive answer that are drawn from nothing, at the
//! final image's exact size so the page does not reflow when the image
//! replaces them: the waiting frame (a calm, neutral vertical gradient) and
//! the error frame (the status and the error's code, drawn in a 5×7 pixel
//! font). Both are palette PNGs whose rows repeat, so they stay small: the
//! waiting frame is at most 2 KB up to 2048×2048 (four tones up to
//! 1536×1536, two beyond), the error frame a little more for its text.
//! Browsers show bitmap parts of a `multipart/x-mixed-replace` image, not
//! SVG ones (seen in Chromium: an SVG part leaves the `<img>` broken), so the
//! error picture of `core::http::error_image` is redrawn here as pixels.

use crate::Failure;

/// The waiting frame's tones, top to bottom (light, cool greys).
const WAITING: [[u8; 3]; 4] =
    [[0xef, 0xf1, 0xf4], [0xea, 0xed, 0xf1], [0xe5, 0xe9, 0xee], [0xe0, 0xe5, 0xeb]];
/// The error frame's background and ink.
const ERROR: [[u8; 3]; 2] = [[0xf4, 0xe8, 0xe8], [0x8a, 0x2b, 0x2b]];
/// Past this many pixels the waiting frame has two tones (one bit each).
const FOUR_TONES_UP_TO: u64 = 1536 * 1536;

/// A frame of `width`×`height` in a calm neutral gradient.
pub fn waiting(width: u32, height: u32) -> Result<Vec<u8>, Failure> {
    let tones: &[[u8; 3]] =
        if u64::from(width) * u64::from(height) <= FOUR_TONES_UP_TO { &WAITING } else { &WAITING[1..3] };
    let bands = tones.len() as u32;
    let rows = (0..height).map(|y| Row::Plain((y * bands / height.max(1)) as u8));
    paletted(width, height, tones, rows)
}

/// A frame of `width`×`height` that says `status` and `code` (`prompt_refused`
/// is drawn as `422 PROMPT REFUSED`), as large as fits.
pub fn error(width: u32, height: u32, status: u16, code: &str) -> Result<Vec<u8>, Failure> {
    let text: String = format!("{status} {code}").to_ascii_uppercase().replace('_', " ");
    let glyphs: Vec<[u8; 7]> = text.chars().map(glyph).collect();
    // Each glyph is 5 dots and a space wide, 7 dots high.
    let fits = |scale: u32| glyphs.len() as u32 * 6 * scale <= width && 7 * scale <= height;
    let scale = (1..=(height / 40).max(1)).rev().find(|s| fits(*s)).unwrap_or(1);
    let shown = glyphs.len().min((width / (6 * scale)) as usize);
    let text_w = shown as u32 * 6 * scale;
    let (left, top) = (width.saturating_sub(text_w) / 2, height.saturating_sub(7 * scale) / 2);
    let rows = (0..height).map(|y| {
        let dot_row = y.checked_sub(top).map(|d| d / scale).filter(|r| *r < 7);
        match dot_row {
            None => Row::Plain(0),
            Some(r) => Row::Ink(
                (0..width)
                    .map(|x| {
                        let Some(dx) = x.checked_sub(left).filter(|d| *d < text_w) else { return 0 };
                        let (g, column) = ((dx / scale / 6) as usize, dx / scale % 6);
                        u8::from(column < 5 && glyphs[g][r as usize] & (0x10 >> column) != 0)
                    })
                    .collect(),
            ),
        }
    });
    paletted(width, height, &ERROR, rows)
}

/// A row of palette indices: one index across, or one per pixel.
enum Row {
    Plain(u8),
    Ink(Vec<u8>),
}

/// A PNG of `tones` (at most 4: 1 or 2 bits a pixel), filterless so that
/// equal rows compress to almost nothing.
fn paletted(
    width: u32,
    height: u32,
    tones: &[[u8; 3]],
    rows: impl Iterator<Item = Row>,
) -> Result<Vec<u8>, Failure> {
    let bits: u8 = if tones.len() <= 2 { 1 } else { 2 };
    let per_byte = 8 / u32::from(bits);
    let row_bytes = width.div_ceil(per_byte) as usize;
    let mut data = Vec::with_capacity(row_bytes * height as usize);
    for row in rows {
        let index = |x: u32| match &row {
            Row::Plain(i) => *i,
            Row::Ink(px) => px[x as usize],
        };
        for byte in 0..row_bytes as u32 {
            let mut packed = 0u8;
            for k in 0..per_byte {
                let x = byte * per_byte + k;
                let i = if x < width { index(x) } else { 0 };
                packed |= i << (8 - bits * (k as u8 + 1));
            }
            data.push(packed);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(if bits == 1 { png::BitDepth::One } else { png::BitDepth::Two });
    encoder.set_palette(tones.concat());
    encoder.set_filter(png::Filter::NoFilter);
    encoder.set_deflate_compression(png::DeflateCompression::Level(9));
    let encoded = encoder.write_header().and_then(|mut w| w.write_image_data(&data));
    encoded.map_err(|e| Failure::Encoder(format!("frame: {e}")))?;
    Ok(out)
}

/// A character in a 5×7 dot font (rows top to bottom, bit 4 the leftmost
/// dot): digits, capitals, `-`; anything else is a space.
fn glyph(c: char) -> [u8; 7] {
    const DIGITS: [[u8; 7]; 10] = [
        [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
    ];
    const LETTERS: [[u8; 7]; 26] = [
        [0x0e, 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11],
        [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
        [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
        [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
        [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
        [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f],
        [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
        [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
        [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
        [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
        [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d],
        [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
        [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
        [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
        [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a],
        [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
        [0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04],
        [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
    ];
    match c {
        '0'..='9' => DIGITS[c as usize - '0' as usize],
        'A'..='Z' => LETTERS[c as usize - 'A' as usize],
        '-' => [0, 0, 0, 0x1f, 0, 0, 0],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let image = image::load_from_memory(png).unwrap().to_rgb8();
        (image.width(), image.height(), image.into_raw())
    }

    #[test]
    fn the_waiting_frame_has_the_exact_size_and_stays_under_2_kb() {
        let sizes =
            [(1024, 1024), (1344, 768), (768, 1344), (1536, 672), (1536, 1024), (1024, 1536), (2048, 2048)];
        for (w, h) in sizes.into_iter().chain([(1, 1), (17, 3), (64, 40)]) {
            let png = waiting(w, h).unwrap();
            assert!(png.len() <= 2048, "{w}x{h}: {} bytes", png.len());
            let (dw, dh, rgb) = decoded(&png);
            assert_eq!((dw, dh), (w, h));
            // Calm: light greys only, no pixel far from the first.
            assert!(rgb.chunks(3).all(|p| p.iter().all(|c| (0xd8..=0xf8).contains(c))), "{w}x{h}");
        }
    }

    #[test]
    fn the_error_frame_draws_its_status_and_code_at_the_exact_size() {
        for (w, h) in [(1024, 1024), (1344, 768), (64, 32), (3, 2)] {
            let png = error(w, h, 422, "prompt_refused").unwrap();
            let (dw, dh, rgb) = decoded(&png);
            assert_eq!((dw, dh), (w, h));
            let ink = rgb.chunks(3).filter(|p| p[0] == ERROR[1][0]).count();
            assert!(ink > 0 || w < 6, "{w}x{h}: the text is drawn");
            assert!(png.len() <= 4096, "{w}x{h}: {} bytes", png.len());
        }
        // The same status drawn the same; another differs.
        assert_eq!(
            error(640, 360, 422, "prompt_refused").unwrap(),
            error(640, 360, 422, "prompt_refused").unwrap()
        );
        assert_ne!(
            error(640, 360, 502, "provider_error").unwrap(),
            error(640, 360, 422, "prompt_refused").unwrap()
        );
    }
}
