//! Provider wire formats as pure functions: build the HTTP request, read what
//! came back (an answer, no answer, or no answer in time). Sending is
//! `adapters::provider`'s job; every decision about the outcome is here.

pub mod answer;
pub mod enhance;
pub mod gemini;
pub mod moderation;
pub mod openai;
pub mod sse;

pub use self::answer::{
    answer_limit, check_size, check_type, raster_type, GeneratedImage, Sent, DEFAULT_RETRY_AFTER,
};
use crate::config::ProviderConfig;
pub use crate::http::outbound::{HttpAnswer, HttpRequestSpec};
use crate::http::request::GenerationRequest;
use crate::Error;

/// `spec` (a generation `build_request` or `build_streaming_request` made
/// for `config`) with the provider's own safety setting (`provider_safety`):
/// Gemini's `safetySettings`, OpenAI's `moderation`. A multipart body (an
/// OpenAI edit, `ref=`) is sent as it is: the edits endpoint takes no
/// `moderation`.
pub fn with_safety(
    config: &ProviderConfig,
    mut spec: HttpRequestSpec,
    safety: moderation::Safety,
) -> HttpRequestSpec {
    let field = match config {
        ProviderConfig::Gemini { .. } => moderation::gemini_safety(safety).map(|v| ("safetySettings", v)),
        ProviderConfig::OpenAi { .. } => {
            moderation::openai_safety(safety).map(|v| ("moderation", serde_json::json!(v)))
        }
    };
    let Some((name, value)) = field else { return spec };
    let json = spec.headers.iter().any(|(n, v)| n == "content-type" && v == "application/json");
    if let (true, Ok(serde_json::Value::Object(mut body))) = (json, serde_json::from_slice(&spec.body)) {
        body.insert(name.into(), value);
        spec.body = serde_json::to_vec(&body).expect("JSON value serialises");
    }
    spec
}

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

/// The streaming form of [`build_request`] (previews as Server-Sent
/// Events, `partial_images` of them), where the provider has one: OpenAI's
/// generations. `None`: ask with [`build_request`]; no previews come.
pub fn build_streaming_request(
    config: &ProviderConfig,
    request: &GenerationRequest,
    inputs: &[GeneratedImage],
    partial_images: u8,
) -> Option<HttpRequestSpec> {
    match config {
        ProviderConfig::OpenAi { api_key, base_url, model } if inputs.is_empty() => {
            Some(openai::build_streaming_request(base_url, model, api_key.expose(), request, partial_images))
        }
        _ => None,
    }
}

/// A streamed generation's answer (OpenAI's Server-Sent Events) being
/// read: previews handed on as they arrive, the image kept. Bounded: at
/// most `partial_images + 1` images' worth of events are read (each event
/// at most [`answer_limit`]), and no event may be larger.
pub struct Streaming {
    reader: sse::Reader,
    image: Option<GeneratedImage>,
    read: usize,
    limit: usize,
    max_image_bytes: usize,
}

impl Streaming {
    pub fn new(partial_images: u8, max_image_bytes: usize) -> Streaming {
        let per_event = answer_limit(max_image_bytes);
        Streaming {
            reader: sse::Reader::new(per_event),
            image: None,
            read: 0,
            limit: per_event * (usize::from(partial_images.clamp(1, 3)) + 1),
            max_image_bytes,
        }
    }

    /// More of the answer. Each preview (checked as the image will be: a
    /// bad one is skipped) goes to `preview`; an `error` event, or more
    /// than the bound, is the provider's failure.
    pub fn feed(&mut self, bytes: &[u8], preview: &dyn Fn(GeneratedImage)) -> Result<(), Error> {
        self.read += bytes.len();
        if self.read > self.limit {
            return Err(Error::Provider(format!("openai streamed more than {} bytes", self.limit)));
        }
        let events = self.reader.feed(bytes).map_err(|e| Error::Provider(format!("openai streamed {e}")))?;
        for event in events {
            match openai::streamed(&event)? {
                Some(openai::Streamed::Partial(image)) => {
                    if let Ok(image) = check_size(image, self.max_image_bytes).and_then(check_type) {
                        preview(image);
                    }
                }
                Some(openai::Streamed::Completed(image)) => self.image = Some(image),
                None => {}
            }
        }
        Ok(())
    }

    /// The answer ended: its image, checked as an unstreamed one is.
    pub fn finish(self) -> Result<GeneratedImage, Error> {
        let image =
            self.image.ok_or_else(|| Error::Provider("openai's stream ended without an image".into()))?;
        check_size(image, self.max_image_bytes).and_then(check_type)
    }
}

/// The size in pixels the provider's image for `aspect_ratio` will have
/// (what a progressive answer's first frame is drawn at).
pub fn pixels_for(config: &ProviderConfig, aspect_ratio: &str) -> (u32, u32) {
    match config {
        ProviderConfig::Gemini { .. } => gemini::pixels_for(aspect_ratio),
        ProviderConfig::OpenAi { .. } => openai::pixels_for(aspect_ratio),
    }
}

/// The configured provider's answer, read.
pub fn parse_response(config: &ProviderConfig, answer: &HttpAnswer) -> Result<GeneratedImage, Error> {
    match config {
        ProviderConfig::Gemini { .. } => gemini::parse_response(answer),
        ProviderConfig::OpenAi { .. } => openai::parse_response(answer),
    }
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
