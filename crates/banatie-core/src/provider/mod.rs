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
pub fn build_request(config: &ProviderConfig, request: &GenerationRequest) -> HttpRequestSpec {
    match config {
        ProviderConfig::Gemini { api_key, base_url, model } => {
            gemini::build_request(base_url, model, api_key.expose(), request)
        }
        ProviderConfig::OpenAi { api_key, base_url, model } => {
            openai::build_request(base_url, model, api_key.expose(), request)
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
/// image checked against `max_image_bytes`.
pub fn outcome(
    config: &ProviderConfig,
    sent: Sent,
    timeout_ms: u64,
    max_image_bytes: usize,
) -> Result<GeneratedImage, Error> {
    match sent {
        Sent::Answered(answer) => {
            parse_response(config, &answer).and_then(|image| check_size(image, max_image_bytes))
        }
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

    #[test]
    fn an_answer_is_parsed_and_its_image_bounded() {
        let body = br#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"iVBORw=="}}]}}]}"#;
        let answer = || HttpAnswer { status: 200, retry_after: None, body: body.to_vec() };
        let image = outcome(&gemini(), Sent::Answered(answer()), 1000, 4).unwrap();
        assert_eq!((image.content_type.as_str(), image.bytes.len()), ("image/png", 4));
        let e = outcome(&gemini(), Sent::Answered(answer()), 1000, 3).unwrap_err();
        assert_eq!(e.status(), 502);
    }
}
