//! The original's pixels, as 8-bit RGB or RGBA: PNG (what Gemini and
//! OpenAI answer as we ask them) and JPEG (what they may answer otherwise).
//! WebP originals are not decoded: no provider here answers WebP unasked,
//! and its decoder would cost ~120 KB of the component's 2.5 MB. The header
//! is read first and an image of more than `max_pixels` is refused before
//! anything is allocated for it.

use std::io::Cursor;

use super::Failure;

pub struct Pixels {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// RGBA when true, RGB otherwise.
    pub alpha: bool,
}

fn undecodable(e: impl std::fmt::Display) -> Failure {
    Failure::Refused(format!("the original cannot be decoded ({e})"))
}

fn check(width: u32, height: u32, max_pixels: u64) -> Result<(), Failure> {
    let pixels = width as u64 * height as u64;
    if pixels > max_pixels {
        return Err(Failure::Refused(format!(
            "the original has {pixels} pixels, more than max_source_pixels ({max_pixels})"
        )));
    }
    if pixels == 0 {
        return Err(undecodable("no pixels"));
    }
    Ok(())
}

pub fn decode(source: &[u8], max_pixels: u64) -> Result<Pixels, Failure> {
    match source {
        [0x89, b'P', b'N', b'G', ..] => png(source, max_pixels),
        [0xFF, 0xD8, 0xFF, ..] => jpeg(source, max_pixels),
        _ => Err(undecodable("not PNG or JPEG")),
    }
}

fn png(source: &[u8], max_pixels: u64) -> Result<Pixels, Failure> {
    // The decoder's own allocation limit, from the same figure (16-bit RGBA).
    let limits = png::Limits { bytes: (max_pixels as usize).saturating_mul(8).saturating_add(1 << 20) };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(source), limits);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(undecodable)?;
    let (width, height) = (reader.info().width, reader.info().height);
    check(width, height, max_pixels)?;
    let size = reader.output_buffer_size().ok_or_else(|| undecodable("too large"))?;
    let mut data = vec![0; size];
    let frame = reader.next_frame(&mut data).map_err(undecodable)?;
    data.truncate(frame.buffer_size());
    let (data, alpha) = match frame.color_type {
        png::ColorType::Rgb => (data, false),
        png::ColorType::Rgba => (data, true),
        png::ColorType::Grayscale => (data.iter().flat_map(|&g| [g, g, g]).collect(), false),
        png::ColorType::GrayscaleAlpha => {
            (data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(), true)
        }
        png::ColorType::Indexed => return Err(undecodable("palette not expanded")),
    };
    Ok(Pixels { data, width, height, alpha })
}

fn jpeg(source: &[u8], max_pixels: u64) -> Result<Pixels, Failure> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let side = max_pixels.min(u16::MAX as u64) as usize;
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(side)
        .set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(source), options);
    decoder.decode_headers().map_err(|e| undecodable(format!("{e:?}")))?;
    let (w, h) = decoder.dimensions().ok_or_else(|| undecodable("no size"))?;
    check(w as u32, h as u32, max_pixels)?;
    let data = decoder.decode().map_err(|e| undecodable(format!("{e:?}")))?;
    Ok(Pixels { data, width: w as u32, height: h as u32, alpha: false })
}
