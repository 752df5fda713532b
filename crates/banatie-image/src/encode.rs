//! A variant's bytes from its 8-bit RGB or RGBA pixels: JPEG, lossy WebP,
//! PNG, and AVIF (10-bit, planes made here).

use super::Failure;

/// XMP in JPEG: an APP1 segment that starts with this namespace (XMP
/// Specification Part 3, §1.1.3).
const JPEG_XMP_NAMESPACE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

fn encoder_failed(format: &str) -> impl Fn(String) -> Failure + '_ {
    move |e| Failure::Encoder(format!("{format}: {e}"))
}

pub fn jpeg(rgb: &[u8], w: u32, h: u32, quality: u8, xmp: Option<&str>) -> Result<Vec<u8>, Failure> {
    let too_big = || Failure::Refused("JPEG is limited to 65535 pixels a side".into());
    let (w, h) = (u16::try_from(w).map_err(|_| too_big())?, u16::try_from(h).map_err(|_| too_big())?);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    if let Some(xmp) = xmp {
        let segment = [JPEG_XMP_NAMESPACE, xmp.as_bytes()].concat();
        encoder.add_app_segment(1, segment).map_err(|e| encoder_failed("jpeg")(e.to_string()))?;
    }
    encoder
        .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| Failure::Encoder(format!("jpeg: {e}")))?;
    Ok(out)
}

/// WebP, lossy (VP8, with a lossless alpha plane when there is alpha).
/// `vaam-image-webp` is the only pure-Rust lossy WebP encoder under a
/// permissive licence (zenwebp, the other, is AGPL-3.0); see docs/variants.md.
pub fn webp(
    px: &[u8],
    w: u32,
    h: u32,
    alpha: bool,
    quality: u8,
    xmp: Option<&str>,
) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    let mut encoder = webp::WebPEncoder::new(&mut out);
    if let Some(xmp) = xmp {
        // An extended file (VP8X, its XMP flag set) with an `XMP ` chunk.
        encoder.set_xmp_metadata(xmp.as_bytes().to_vec());
    }
    let mut params = webp::EncoderParams::default();
    params.use_lossy = true;
    params.lossy_quality = quality;
    encoder.set_params(params);
    let color = if alpha { webp::ColorType::Rgba8 } else { webp::ColorType::Rgb8 };
    encoder.encode(px, w, h, color).map_err(|e| Failure::Encoder(format!("webp: {e}")))?;
    Ok(out)
}

pub fn png(px: &[u8], w: u32, h: u32, alpha: bool, xmp: Option<&str>) -> Result<Vec<u8>, Failure> {
    let broken = |e: png::EncodingError| Failure::Encoder(format!("png: {e}"));
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    if let Some(xmp) = xmp {
        // An uncompressed iTXt chunk of this keyword (XMP Specification Part 3, §1.1.5).
        encoder.add_itxt_chunk("XML:com.adobe.xmp".into(), xmp.into()).map_err(broken)?;
    }
    encoder.set_color(if alpha { png::ColorType::Rgba } else { png::ColorType::Rgb });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().map_err(broken)?.write_image_data(px).map_err(broken)?;
    Ok(out)
}

/// AVIF through rav1e, 10-bit 4:4:4 YCbCr (BT.601, full range), as ravif
/// encodes 8-bit input by default. The planes are made here and handed to
/// ravif's 10-bit entry point, so only rav1e's 16-bit pixel code is compiled
/// in (ravif's RGB entry points bring the 8-bit one too: ~0.4 MB of wasm).
pub fn avif(
    px: &[u8],
    w: u32,
    h: u32,
    alpha: bool,
    quality: u8,
    speed: u8,
    xmp: Option<&str>,
) -> Result<Vec<u8>, Failure> {
    let encoder = ravif::Encoder::new()
        .with_quality(quality as f32)
        .with_alpha_quality(quality as f32)
        .with_speed(speed.clamp(1, 10))
        .with_num_threads(Some(1));
    let channels = if alpha { 4 } else { 3 };
    let planes = px.chunks_exact(channels).map(|p| ycbcr_10_bit(p[0], p[1], p[2]));
    let opaque = !alpha || px.chunks_exact(4).all(|p| p[3] == 255);
    let alpha_plane = (!opaque).then(|| px.chunks_exact(4).map(|p| ten_bits(p[3])));
    let file = encoder
        .encode_raw_planes_10_bit(
            w as usize,
            h as usize,
            planes,
            alpha_plane,
            ravif::PixelRange::Full,
            ravif::MatrixCoefficients::BT601,
        )
        .map(|e| e.avif_file)
        .map_err(|e| Failure::Encoder(format!("avif: {e}")))?;
    match xmp {
        Some(xmp) => super::xmp::avif_with_xmp(&file, xmp.as_bytes()).map_err(encoder_failed("avif xmp")),
        None => Ok(file),
    }
}

/// 8 → 10 bits, 255 → 1023.
fn ten_bits(x: u8) -> u16 {
    (u16::from(x) << 2) | (u16::from(x) >> 6)
}

/// Full-range BT.601 Y′CbCr at 10 bits (ITU-R BT.601 luma weights).
fn ycbcr_10_bit(r: u8, g: u8, b: u8) -> [u16; 3] {
    const KR: f32 = 0.299;
    const KB: f32 = 0.114;
    const SCALE: f32 = 1023.0 / 255.0;
    let (r, g, b) = (r as f32 * SCALE, g as f32 * SCALE, b as f32 * SCALE);
    let y = KR * r + (1.0 - KR - KB) * g + KB * b;
    let cb = (b - y) * 0.5 / (1.0 - KB) + 512.0;
    let cr = (r - y) * 0.5 / (1.0 - KR) + 512.0;
    [y, cb, cr].map(|v| v.round().clamp(0.0, 1023.0) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ycbcr_is_full_range_bt601() {
        assert_eq!(ycbcr_10_bit(0, 0, 0), [0, 512, 512]);
        assert_eq!(ycbcr_10_bit(255, 255, 255), [1023, 512, 512]);
        // Pure red: Y = 0.299, Cr at its top.
        assert_eq!(ycbcr_10_bit(255, 0, 0), [306, 339, 1023]);
        assert_eq!(ten_bits(255), 1023);
    }
}
