//! Provider wire formats as pure functions: build the HTTP request, parse the
//! HTTP answer. Sending is `adapters::provider`'s job.

pub mod gemini;
pub mod openai;

use std::fmt;

use super::config::ProviderConfig;
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

/// A fully built outbound request. `Debug` shows header names only: some
/// values are credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequestSpec {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequestSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "{} {} headers={names:?} body={}B", self.method, self.url, self.body.len())
    }
}

/// What came back, as far as the parsers care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// `Retry-After` in seconds, if the provider sent one.
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
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
