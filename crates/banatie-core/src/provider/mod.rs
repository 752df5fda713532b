//! Provider wire formats as pure functions: build the HTTP request, read what
//! came back (an answer, no answer, or no answer in time). Sending is
//! `adapters::provider`'s job; every decision about the outcome is here.

pub mod enhance;
pub mod gemini;
pub mod openai;

use std::fmt;

use super::config::ProviderConfig;
pub use super::http::{HttpAnswer, HttpRequestSpec};
use super::request::GenerationRequest;
use super::Error;

/// The outbound request for the configured provider.
pub fn build_request(
    config: &ProviderConfig,
    request: &GenerationRequest,
    inputs: &[GeneratedImage],
) -> HttpRequestSpec {
    match config {
        ProviderConfig::Gemini { api_key, base_url, model } => {
            gemini::build_request(base_url, model, api_key.expose(), request, inputs)
        }
        ProviderConfig::OpenAi { api_key, base_url, model } => {
            openai::build_request(base_url, model, api_key.expose(), request, inputs)
        }
    }
}

/// The configured provider's answer, read.
pub fn parse_response(config: &ProviderConfig, answer: &HttpAnswer) -> Result<GeneratedImage, Error> {
    match config {
        ProviderConfig::Gemini { .. } => gemini::parse_response(answer),
        ProviderConfig::OpenAi { .. } => openai::parse_response(answer),
    }
}

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

/// The image, or what the client is told: an unreachable provider is a 502;
/// one that did not answer in time a 503 with Retry-After, like a provider
/// that says it is busy; an answer is read by the provider's parser and its
/// image checked against `max_image_bytes` and by its bytes ([`check_type`]).
pub fn outcome(
    config: &ProviderConfig,
    sent: Sent,
    timeout_ms: u64,
    max_image_bytes: usize,
) -> Result<GeneratedImage, Error> {
    match sent {
        Sent::Answered(answer) => parse_response(config, &answer)
            .and_then(|image| check_size(image, max_image_bytes))
            .and_then(check_type),
        Sent::Unreachable(e) => Err(Error::Provider(format!("{} unreachable: {e}", config.name()))),
        Sent::TimedOut => Err(Error::ProviderBusy {
            retry_after: DEFAULT_RETRY_AFTER,
            detail: format!("{} did not answer within {timeout_ms} ms", config.name()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn gemini() -> ProviderConfig {
        ProviderConfig::Gemini { api_key: Secret("k".into()), base_url: "http://g".into(), model: "m".into() }
    }

    #[test]
    fn no_answer_is_502_and_no_answer_in_time_is_503_with_retry_after() {
        let e = outcome(&gemini(), Sent::Unreachable("connection refused".into()), 1000, 10).unwrap_err();
        assert_eq!((e.status(), e.code()), (502, "provider_error"));
        assert!(e.log_detail().unwrap().contains("gemini unreachable: connection refused"));
        let e = outcome(&gemini(), Sent::TimedOut, 1500, 10).unwrap_err();
        assert_eq!(e.status(), 503);
        assert_eq!(e.retry_after(), Some(DEFAULT_RETRY_AFTER));
        assert!(e.log_detail().unwrap().contains("within 1500 ms"));
    }

    /// A Gemini answer whose one part is `mime` with `bytes`.
    fn gemini_answer(mime: &str, bytes: &[u8]) -> Sent {
        use base64::{engine::general_purpose::STANDARD, Engine};
        let part = serde_json::json!({"inlineData": {"mimeType": mime, "data": STANDARD.encode(bytes)}});
        let body = serde_json::json!({"candidates": [{"content": {"parts": [part]}}]});
        Sent::Answered(HttpAnswer {
            status: 200,
            retry_after: None,
            body: serde_json::to_vec(&body).unwrap(),
        })
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn an_answer_is_parsed_and_its_image_bounded() {
        let image = outcome(&gemini(), gemini_answer("image/png", PNG), 1000, 16).unwrap();
        assert_eq!((image.content_type.as_str(), image.bytes.len()), ("image/png", 16));
        let e = outcome(&gemini(), gemini_answer("image/png", PNG), 1000, 15).unwrap_err();
        assert_eq!(e.status(), 502);
    }

    #[test]
    fn only_png_jpeg_and_webp_by_their_bytes_are_images() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10];
        let webp = b"RIFF\x10\0\0\0WEBPVP8 ";
        assert_eq!(
            outcome(&gemini(), gemini_answer("image/jpg", &jpeg), 1, 99).unwrap().content_type,
            "image/jpeg"
        );
        assert_eq!(
            outcome(&gemini(), gemini_answer("image/webp", webp), 1, 99).unwrap().content_type,
            "image/webp"
        );
        assert_eq!(
            outcome(&gemini(), gemini_answer("image/png; x=1", PNG), 1, 99).unwrap().content_type,
            "image/png"
        );
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        for (mime, bytes) in [
            ("image/svg+xml", &svg[..]),
            ("image/png", b"<html><script>alert(1)</script></html>"),
            ("image/png", &jpeg),
            ("image/gif", b"GIF89a\x01\0\x01\0"),
        ] {
            let e = outcome(&gemini(), gemini_answer(mime, bytes), 1, 999).unwrap_err();
            assert_eq!((e.status(), e.code()), (502, "provider_error"), "{mime}");
        }
    }
}
