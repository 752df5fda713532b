//! What comes back from a provider, before anything is stored: the image
//! it sent, how a call ended ([`Sent`]), and the checks an image passes
//! (its size, and its type by its bytes). Shared by every wire format.

use std::fmt;

use crate::http::outbound::HttpAnswer;
use crate::Error;

/// An image as the provider returned it.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedImage {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for GeneratedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GeneratedImage({}, {} bytes)", self.content_type, self.bytes.len())
    }
}

/// Retry-After we suggest when a provider rate-limits without saying how long.
pub const DEFAULT_RETRY_AFTER: u64 = 30;

/// How much of a provider's answer is read for an image of at most
/// `max_image_bytes`: the image comes base64-encoded (4 bytes per 3) inside
/// JSON, with room for the rest of the document.
pub fn answer_limit(max_image_bytes: usize) -> usize {
    max_image_bytes / 3 * 4 + 4 + 64 * 1024
}

/// An image over the limit is the provider's failure (502), never stored.
pub fn check_size(image: GeneratedImage, max_image_bytes: usize) -> Result<GeneratedImage, Error> {
    if image.bytes.len() > max_image_bytes {
        return Err(Error::Provider(format!(
            "image of {} bytes is over max_image_bytes ({max_image_bytes})",
            image.bytes.len()
        )));
    }
    Ok(image)
}

/// The raster types an image from a provider may be, by its magic bytes:
/// PNG, JPEG and WebP — what Gemini and OpenAI's image models produce, and
/// what `banatie-image` decodes to derive variants. Nothing else is stored:
/// not SVG or HTML (active content, served from our origin), and not GIF,
/// AVIF, BMP or TIFF (no provider we speak to sends them, and no variant
/// could be derived from them).
pub fn raster_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// A stated media type as compared with the magic's: lowercase, without
/// parameters, `image/jpg` (and `image/pjpeg`) as `image/jpeg`.
fn normalised(content_type: &str) -> String {
    let bare = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match bare.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".into(),
        _ => bare,
    }
}

/// The image's bytes must be one of the [`raster_type`]s, and the type the
/// provider stated; otherwise it is the provider's failure (502), never
/// stored. What is stored and served is the type the magic says.
pub fn check_type(image: GeneratedImage) -> Result<GeneratedImage, Error> {
    let stated = normalised(&image.content_type);
    let Some(found) = raster_type(&image.bytes) else {
        return Err(Error::Provider(format!(
            "the provider's image (stated {stated:.64}) is not PNG, JPEG or WebP by its bytes"
        )));
    };
    if stated != found {
        return Err(Error::Provider(format!("the provider stated {stated:.64} but sent {found}")));
    }
    Ok(GeneratedImage { content_type: found.to_string(), bytes: image.bytes })
}

/// How a provider call ended, as the sender saw it.
#[derive(Debug)]
pub enum Sent {
    Answered(HttpAnswer),
    /// No answer: connection refused, reset, DNS, or an answer larger than
    /// [`answer_limit`] (the sender's words).
    Unreachable(String),
    /// No answer within `provider_timeout_ms`.
    TimedOut,
}
