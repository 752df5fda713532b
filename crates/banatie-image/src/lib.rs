//! A derived variant's pixels: decode the original (PNG or JPEG),
//! resize it with Lanczos3 (never up), encode it as AVIF, WebP, JPEG or PNG.
//! Pure computation over bytes, untimed (the caller times it with its own
//! clock); what to derive is decided in `banatie_core::variant`, when and
//! where it is stored in the component's `api::live::obtain`.
//!
//! Memory is bounded before anything is decoded: the original's header gives
//! its size, and one over `max_source_pixels` is refused. The decoder's own
//! allocation limit is set from the same figure.

use banatie_core::variant::geometry;
use banatie_core::variant::{Format, Shape};
use fast_image_resize as fr;

mod decode;
mod encode;
pub mod frame;
mod placeholder;
mod xmp;

pub use placeholder::{placeholder, LQIP_SIDE, MAX_LQIP_BYTES};

/// Largest variant (width × height): 8 MP, a 2048-wide image at 1:2. With the
/// width ladder this bounds an encoder's memory whatever the original's shape.
pub const MAX_OUTPUT_PIXELS: u64 = 1 << 23;
/// Lossy WebP's limit on a side (VP8's 14-bit sizes).
const WEBP_MAX_SIDE: u32 = 16383;
/// What an AVIF encoding may take of the instance's memory (banatie-host
/// gives an instance 512 MiB; the decoded original, its bytes and the
/// resized pixels need the rest). See [`avif_memory`].
pub const AVIF_MEMORY_BUDGET: u64 = 352 << 20;

/// rav1e's peak memory for a `pixels`-pixel image at `quality`, an upper
/// bound measured on noise (incompressible, so the most symbols per pixel:
/// what a hostile provider would send), natively with 64-bit pointers, at
/// speed 9, at the variant's own size (resized noise is smoother): 80–85
/// B/px up to q80, 128–133 at q90, 133 at q95, 391–416 at q100 (quantizer
/// 0, near-lossless: 3 MB for 768² noise). rav1e's buffers grow by
/// doubling, so a figure jumps between sizes; these have margin for that.
/// The budget so allows 3.3 MP (2048×1600) up to q80, 1536² at q90, 876²
/// at q100. A second plane for alpha adds half again (1280² at q80). Checked by
/// tests/avif_memory.rs; docs/variants.md has the table.
pub fn avif_memory(pixels: u64, quality: u8, alpha: bool) -> u64 {
    let per_pixel = match quality {
        0..=80 => 112,
        81..=90 => 144,
        91..=95 => 224,
        _ => 480,
    };
    let bytes = pixels * per_pixel;
    if alpha {
        bytes + bytes / 2
    } else {
        bytes
    }
}

/// What to derive.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// Target width (`None`: the original's); never above the original's.
    pub width: Option<u32>,
    /// Height, fit and gravity (`banatie_core::variant::geometry`).
    pub shape: Shape,
    pub format: Format,
    /// The lossy encoder's quality, 1–100 (ignored for PNG).
    pub quality: Option<u8>,
    /// Largest original (width × height) this will decode.
    pub max_source_pixels: u64,
    /// rav1e's speed for AVIF (1–10).
    pub avif_speed: u8,
    /// An XMP packet to embed (`banatie_core::variant::marking::xmp`), in every format.
    pub xmp: Option<&'a str>,
}

/// A derived image.
#[derive(Debug)]
pub struct Derived {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The WebAssembly instance's linear memory when done (its peak: a
    /// linear memory never shrinks); `None` natively.
    pub peak_memory: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The original cannot be a source (too large, not decodable); the
    /// message is safe to show.
    Refused(String),
    /// An encoder failed on a decoded image: a bug or a limit of ours.
    Encoder(String),
}

pub fn derive(source: &[u8], spec: &Spec<'_>) -> Result<Derived, Failure> {
    let decoded = decode::decode(source, spec.max_source_pixels)?;
    let (sw, sh) = (decoded.width, decoded.height);
    let shape = spec.shape;
    let plan = geometry::plan((sw, sh), spec.width, shape.height, shape.fit, shape.gravity);
    let (w, h) = plan.canvas;
    if w as u64 * h as u64 > MAX_OUTPUT_PIXELS {
        return Err(Failure::Refused(format!(
            "the variant would have {w}×{h} pixels, more than {MAX_OUTPUT_PIXELS}; ask for a smaller w"
        )));
    }
    if spec.format == Format::Webp && w.max(h) > WEBP_MAX_SIDE {
        return Err(Failure::Refused(format!("WebP is limited to {WEBP_MAX_SIDE} pixels a side")));
    }
    // Pad lays the image on white where the format has no alpha, else on
    // transparency (so a padded PNG, WebP or AVIF has alpha).
    let padded = plan.canvas != plan.resized;
    let alpha = (decoded.alpha || padded) && spec.format != Format::Jpeg;
    let quality = spec.quality.unwrap_or(80).clamp(1, 100);
    if spec.format == Format::Avif && avif_memory(w as u64 * h as u64, quality, alpha) > AVIF_MEMORY_BUDGET {
        return Err(Failure::Refused(format!(
            "an AVIF of {w}×{h} pixels at q={quality} needs more memory than a derivation may take; \
             ask for a smaller w or a lower q"
        )));
    }
    let pixels = pixels(decoded, alpha);
    let pixels = crop(pixels, (sw, sh), plan.crop, alpha);
    let (cw, ch) = (plan.crop.2, plan.crop.3);
    let pixels = resize(pixels, (cw, ch), plan.resized, alpha)?;
    let pixels = pad(pixels, plan.resized, plan.canvas, plan.offset, alpha);
    let bytes = match spec.format {
        Format::Jpeg => encode::jpeg(&pixels, w, h, quality, spec.xmp),
        Format::Webp => encode::webp(&pixels, w, h, alpha, quality, spec.xmp),
        Format::Avif => encode::avif(&pixels, w, h, alpha, quality, spec.avif_speed, spec.xmp),
        Format::Png => encode::png(&pixels, w, h, alpha, spec.xmp),
    }?;
    Ok(Derived { bytes, width: w, height: h, peak_memory: linear_memory() })
}

/// RGBA when `alpha`, else RGB; a transparent original that is to lose its
/// alpha (JPEG) is laid on white rather than showing what its transparent
/// pixels happen to hold.
fn pixels(image: decode::Pixels, alpha: bool) -> Vec<u8> {
    if image.alpha == alpha {
        return image.data;
    }
    if alpha {
        return image.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    }
    image
        .data
        .chunks_exact(4)
        .flat_map(|p| {
            let a = p[3] as u32;
            let over = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
            [over(p[0]), over(p[1]), over(p[2])]
        })
        .collect()
}

/// The rows and columns of `crop` (x, y, w, h) of an image of `size`.
fn crop(pixels: Vec<u8>, size: (u32, u32), crop: (u32, u32, u32, u32), alpha: bool) -> Vec<u8> {
    let (x, y, w, h) = crop;
    if (x, y, w, h) == (0, 0, size.0, size.1) {
        return pixels;
    }
    let px = if alpha { 4 } else { 3 };
    let stride = size.0 as usize * px;
    let mut out = Vec::with_capacity(w as usize * h as usize * px);
    for row in y as usize..(y + h) as usize {
        let start = row * stride + x as usize * px;
        out.extend_from_slice(&pixels[start..start + w as usize * px]);
    }
    out
}

/// The image of `size` at `offset` on a `canvas`: transparent with alpha,
/// else white.
fn pad(pixels: Vec<u8>, size: (u32, u32), canvas: (u32, u32), offset: (u32, u32), alpha: bool) -> Vec<u8> {
    if size == canvas {
        return pixels;
    }
    let px = if alpha { 4 } else { 3 };
    let background: &[u8] = if alpha { &[0, 0, 0, 0] } else { &[255, 255, 255] };
    let mut out = background.repeat(canvas.0 as usize * canvas.1 as usize);
    let (row_bytes, stride) = (size.0 as usize * px, canvas.0 as usize * px);
    for row in 0..size.1 as usize {
        let at = (row + offset.1 as usize) * stride + offset.0 as usize * px;
        out[at..at + row_bytes].copy_from_slice(&pixels[row * row_bytes..(row + 1) * row_bytes]);
    }
    out
}

fn resize(pixels: Vec<u8>, from: (u32, u32), to: (u32, u32), alpha: bool) -> Result<Vec<u8>, Failure> {
    if from == to {
        return Ok(pixels);
    }
    if alpha {
        resize_typed::<fr::pixels::U8x4>(&pixels, from, to)
    } else {
        resize_typed::<fr::pixels::U8x3>(&pixels, from, to)
    }
}

/// Lanczos3 (a 3-lobe windowed sinc): sharp without ringing at these
/// ratios; with alpha, colour is filtered premultiplied. Typed, so that only
/// these two pixel types' kernels are compiled in (the dynamic
/// `Resizer::resize` brings every type's: +0.7 MB of wasm).
fn resize_typed<P: fr::PixelTrait>(
    pixels: &[u8],
    from: (u32, u32),
    to: (u32, u32),
) -> Result<Vec<u8>, Failure> {
    let broken = |e: String| Failure::Encoder(format!("resize: {e}"));
    let source = fr::images::TypedImageRef::<P>::from_buffer(from.0, from.1, pixels)
        .map_err(|e| broken(e.to_string()))?;
    let mut out = vec![0u8; to.0 as usize * to.1 as usize * P::size()];
    let mut target =
        fr::images::TypedImage::<P>::from_buffer(to.0, to.1, &mut out).map_err(|e| broken(e.to_string()))?;
    let options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new().resize_typed(&source, &mut target, &options).map_err(|e| broken(e.to_string()))?;
    Ok(out)
}

#[cfg(target_arch = "wasm32")]
fn linear_memory() -> Option<u64> {
    Some(core::arch::wasm32::memory_size(0) as u64 * 65536)
}

#[cfg(not(target_arch = "wasm32"))]
fn linear_memory() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageEncoder, ImageReader};
    use std::io::Cursor;

    fn color(alpha: bool) -> image::ExtendedColorType {
        if alpha {
            image::ExtendedColorType::Rgba8
        } else {
            image::ExtendedColorType::Rgb8
        }
    }

    /// A 1024×512 PNG with a gradient, and alpha when asked.
    fn original(alpha: bool) -> Vec<u8> {
        let (w, h) = (1024u32, 512u32);
        let mut out = Vec::new();
        let px: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                let mut p = vec![(x / 4) as u8, (y / 2) as u8, ((x + y) / 6) as u8];
                if alpha {
                    p.push(if x < 512 { 0 } else { 255 });
                }
                p
            })
            .collect();
        image::codecs::png::PngEncoder::new(&mut out).write_image(&px, w, h, color(alpha)).unwrap();
        out
    }

    fn spec(width: Option<u32>, format: Format) -> Spec<'static> {
        Spec {
            width,
            shape: Default::default(),
            format,
            quality: Some(70),
            max_source_pixels: 1 << 24,
            avif_speed: banatie_core::variant::DEFAULT_AVIF_SPEED,
            xmp: None,
        }
    }

    fn decoded(bytes: &[u8]) -> (image::ImageFormat, DynamicImage) {
        let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().unwrap();
        (reader.format().unwrap(), reader.decode().unwrap())
    }

    #[test]
    fn each_format_decodes_to_the_asked_width_and_the_original_aspect_ratio() {
        let source = original(false);
        for (format, expected) in [
            (Format::Jpeg, image::ImageFormat::Jpeg),
            (Format::Webp, image::ImageFormat::WebP),
            (Format::Png, image::ImageFormat::Png),
        ] {
            let d = derive(&source, &spec(Some(256), format)).unwrap();
            assert_eq!((d.width, d.height), (256, 128), "{format:?}");
            let (found, image) = decoded(&d.bytes);
            assert_eq!((found, image.width(), image.height()), (expected, 256, 128), "{format:?}");
            assert!(d.bytes.len() < source.len(), "{format:?}: {} vs {}", d.bytes.len(), source.len());
        }
    }

    #[test]
    fn every_format_carries_the_xmp_packet_once_and_still_decodes() {
        let source = original(false);
        let packet = banatie_core::variant::marking::xmp(&banatie_core::variant::marking::Provenance {
            provider: "gemini",
            model: "m",
            image_id: "v",
            original_id: "o",
        });
        for format in [Format::Jpeg, Format::Webp, Format::Png, Format::Avif] {
            let mut s = spec(Some(64), format);
            s.xmp = Some(&packet);
            let bytes = derive(&source, &s).unwrap().bytes;
            let found = bytes.windows(packet.len()).filter(|w| *w == packet.as_bytes()).count();
            assert_eq!(found, 1, "{format:?}");
            if format != Format::Avif {
                assert_eq!(decoded(&bytes).1.width(), 64, "{format:?}");
            }
        }
    }

    #[test]
    fn height_and_fit_give_the_planned_sizes_and_pad_is_transparent_or_white() {
        use banatie_core::variant::geometry::{Fit, Gravity};
        let source = original(false); // 1024×512, dark on the left, bright on the right
        let shaped = |h: u32, fit: Fit, gravity: Gravity, format: Format| {
            let mut s = spec(Some(256), format);
            s.shape = Shape { height: Some(h), fit, gravity };
            decoded(&derive(&source, &s).unwrap().bytes).1
        };
        let contain = shaped(256, Fit::Contain, Gravity::Center, Format::Png);
        assert_eq!((contain.width(), contain.height()), (256, 128));
        let left = shaped(256, Fit::Cover, Gravity::Left, Format::Png).into_rgb8();
        let right = shaped(256, Fit::Cover, Gravity::Right, Format::Png).into_rgb8();
        assert_eq!(left.dimensions(), (256, 256));
        assert!(left.get_pixel(250, 128).0[0] < right.get_pixel(5, 128).0[0], "left keeps the dark half");
        let pad = shaped(256, Fit::Pad, Gravity::Center, Format::Png).into_rgba8();
        assert_eq!(pad.dimensions(), (256, 256));
        assert_eq!((pad.get_pixel(128, 10).0[3], pad.get_pixel(128, 128).0[3]), (0, 255));
        let white = shaped(256, Fit::Pad, Gravity::Center, Format::Jpeg).into_rgb8();
        assert!(white.get_pixel(128, 10).0.iter().all(|&c| c > 240), "{:?}", white.get_pixel(128, 10));
    }

    #[test]
    fn avif_is_an_avif_file_of_the_asked_size() {
        let d = derive(&original(false), &spec(Some(64), Format::Avif)).unwrap();
        assert_eq!((d.width, d.height), (64, 32));
        // ISO-BMFF: a `ftyp` box whose major brand is `avif`.
        assert_eq!(&d.bytes[4..12], b"ftypavif");
    }

    #[test]
    fn resizing_keeps_the_picture() {
        // The gradient's left edge is dark and its right edge is bright.
        let d = derive(&original(false), &spec(Some(128), Format::Png)).unwrap();
        let image = decoded(&d.bytes).1.into_rgb8();
        assert!(image.get_pixel(2, 32).0[0] < 20, "{:?}", image.get_pixel(2, 32));
        assert!(image.get_pixel(125, 32).0[0] > 235, "{:?}", image.get_pixel(125, 32));
    }

    #[test]
    fn never_upscales() {
        let d = derive(&original(false), &spec(Some(2048), Format::Png)).unwrap();
        assert_eq!((d.width, d.height), (1024, 512));
    }

    #[test]
    fn alpha_is_kept_where_the_format_has_it_and_laid_on_white_for_jpeg() {
        let source = original(true);
        let png = decoded(&derive(&source, &spec(Some(256), Format::Png)).unwrap().bytes).1.into_rgba8();
        assert_eq!(png.get_pixel(10, 10).0[3], 0);
        assert_eq!(png.get_pixel(250, 10).0[3], 255);
        let jpeg = decoded(&derive(&source, &spec(Some(256), Format::Jpeg)).unwrap().bytes).1.into_rgb8();
        assert!(jpeg.get_pixel(10, 10).0.iter().all(|&c| c > 240), "{:?}", jpeg.get_pixel(10, 10));
    }

    #[test]
    fn an_original_over_the_pixel_limit_is_refused_before_decoding() {
        let mut s = spec(Some(256), Format::Jpeg);
        s.max_source_pixels = 1024 * 512 - 1;
        match derive(&original(false), &s) {
            Err(Failure::Refused(m)) => assert!(m.contains("max_source_pixels"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn jpeg_and_grey_originals_are_sources_too_and_webp_ones_are_refused() {
        let rgb = decoded(&original(false)).1;
        let mut jpeg = Vec::new();
        rgb.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        let mut webp = Vec::new();
        rgb.write_to(&mut Cursor::new(&mut webp), image::ImageFormat::WebP).unwrap();
        let mut grey = Vec::new();
        DynamicImage::ImageLuma8(rgb.to_luma8())
            .write_to(&mut Cursor::new(&mut grey), image::ImageFormat::Png)
            .unwrap();
        match derive(&webp, &spec(Some(128), Format::Png)) {
            Err(Failure::Refused(m)) => assert!(m.contains("not PNG or JPEG"), "{m}"),
            other => panic!("{other:?}"),
        }
        for (name, source) in [("jpeg", jpeg), ("grey png", grey)] {
            let d =
                derive(&source, &spec(Some(128), Format::Png)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let image = decoded(&d.bytes).1.into_rgb8();
            assert_eq!(image.dimensions(), (128, 64), "{name}");
            let (left, right) = (image.get_pixel(2, 32).0[0], image.get_pixel(125, 32).0[0]);
            assert!(right > left + 50, "{name}: the gradient is lost: {left} .. {right}");
        }
    }

    #[test]
    fn slivers_and_single_pixels_encode_in_every_format() {
        for (w, h) in [(1u32, 1u32), (4000, 1), (1, 3000), (3, 2)] {
            let px: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
            let mut source = Vec::new();
            image::codecs::png::PngEncoder::new(&mut source).write_image(&px, w, h, color(false)).unwrap();
            for format in [Format::Avif, Format::Webp, Format::Jpeg, Format::Png] {
                let d = derive(&source, &spec(Some(64), format))
                    .unwrap_or_else(|e| panic!("{w}x{h} {format:?}: {e:?}"));
                assert_eq!(d.width, w.min(64), "{w}x{h} {format:?}");
                assert!(d.height >= 1 && !d.bytes.is_empty());
            }
        }
    }

    #[test]
    fn a_variant_over_the_output_limit_is_refused_before_encoding() {
        let (w, h) = (64u32, 200_000u32);
        let px = vec![128u8; (w * h * 3) as usize];
        let mut source = Vec::new();
        image::codecs::png::PngEncoder::new(&mut source).write_image(&px, w, h, color(false)).unwrap();
        match derive(&source, &spec(Some(64), Format::Avif)) {
            Err(Failure::Refused(m)) => assert!(m.contains("64×200000"), "{m}"),
            other => panic!("{other:?}"),
        }
        let d = derive(&source, &spec(Some(32), Format::Png)).unwrap();
        assert_eq!((d.width, d.height), (32, 100_000));
    }

    #[test]
    fn an_avif_over_the_memory_budget_is_refused_before_encoding() {
        let (w, h) = (1024u32, 1024u32);
        let px: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let mut source = Vec::new();
        image::codecs::png::PngEncoder::new(&mut source).write_image(&px, w, h, color(false)).unwrap();
        let mut s = spec(None, Format::Avif);
        s.quality = Some(100);
        match derive(&source, &s) {
            Err(Failure::Refused(m)) => assert!(m.contains("1024×1024 pixels at q=100"), "{m}"),
            other => panic!("{other:?}"),
        }
        // What the budget allows, from the estimate.
        assert!(avif_memory(2048 * 1600, 80, false) <= AVIF_MEMORY_BUDGET);
        assert!(avif_memory(2048 * 2048, 80, false) > AVIF_MEMORY_BUDGET);
        assert!(avif_memory(1536 * 1536, 90, false) <= AVIF_MEMORY_BUDGET);
        assert!(avif_memory(1280 * 1280, 80, true) <= AVIF_MEMORY_BUDGET);
        assert!(avif_memory(876 * 876, 100, false) <= AVIF_MEMORY_BUDGET);
        assert!(avif_memory(1024 * 1024, 100, false) > AVIF_MEMORY_BUDGET);
    }

    #[test]
    fn bytes_that_are_no_image_are_refused() {
        match derive(b"certainly not an image", &spec(Some(256), Format::Jpeg)) {
            Err(Failure::Refused(m)) => assert!(m.contains("cannot be decoded"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
