//! The configured provider as a [`Provider`]: core builds and parses the wire
//! format, this sends it.

use crate::core::config::ProviderConfig;
use crate::core::ports::Provider;
use crate::core::provider::{gemini, GeneratedImage};
use crate::core::request::GenerationRequest;
use crate::core::Error;

use super::http;

pub struct ConfiguredProvider<'a>(pub &'a ProviderConfig);

impl Provider for ConfiguredProvider<'_> {
    async fn generate(&self, request: &GenerationRequest) -> Result<GeneratedImage, Error> {
        match self.0 {
            ProviderConfig::Gemini {
                api_key,
                base_url,
                model,
            } => {
                let spec = gemini::build_request(base_url, model, api_key.expose(), request);
                let answer = http::send_buffered(spec)
                    .await
                    .map_err(|e| Error::Provider(format!("gemini unreachable: {e}")))?;
                gemini::parse_response(&answer)
            }
        }
    }
}
