//! The configured provider as a [`Provider`]: `core::provider` builds the
//! request and decides what the outcome means; this sends it, racing
//! `provider_timeout_ms`.

use futures::future::{select, Either};

use super::{env, http};
use crate::core::config::{Config, ProviderConfig};
use crate::core::http::request::GenerationRequest;
use crate::core::http::timing::{Kind, Timings};
use crate::core::ports::Provider;
use crate::core::provider::{self, enhance, GeneratedImage, HttpRequestSpec, Sent};
use crate::core::Error;

pub struct ConfiguredProvider<'t> {
    config: crate::core::config::ProviderConfig,
    text_model: String,
    timeout_ms: u64,
    max_image_bytes: usize,
    timings: &'t Timings,
}

impl<'t> ConfiguredProvider<'t> {
    pub fn new(config: &Config, timings: &'t Timings) -> ConfiguredProvider<'t> {
        ConfiguredProvider {
            config: config.provider.clone(),
            text_model: config.text_model.clone(),
            timeout_ms: config.provider_timeout_ms,
            max_image_bytes: config.max_image_bytes,
            timings,
        }
    }
}

impl ConfiguredProvider<'_> {
    /// Send, reading at most `limit` bytes of the answer, racing
    /// `provider_timeout_ms`; `core::provider` says what the outcome means.
    async fn send_within(&self, spec: HttpRequestSpec, limit: usize) -> Sent {
        let send = std::pin::pin!(http::send_capped(spec, limit));
        let timeout = std::pin::pin!(env::sleep(self.timeout_ms));
        match self.timings.measure_async(Kind::Provider, select(send, timeout)).await {
            Either::Left((Ok(answer), _)) => Sent::Answered(answer),
            Either::Left((Err(e), _)) => Sent::Unreachable(e),
            Either::Right(_) => Sent::TimedOut,
        }
    }
}

impl Provider for ConfiguredProvider<'_> {
    async fn generate(
        &self,
        model: &ProviderConfig,
        request: &GenerationRequest,
        inputs: &[GeneratedImage],
    ) -> Result<GeneratedImage, Error> {
        let spec = provider::build_request(model, request, inputs);
        let sent = self.send_within(spec, provider::answer_limit(self.max_image_bytes)).await;
        provider::outcome(model, sent, self.timeout_ms, self.max_image_bytes)
    }

    async fn enhance(&self, prompt: &str) -> Result<String, Error> {
        let spec = enhance::build_request(&self.config, &self.text_model, prompt);
        enhance::outcome(&self.config, self.send_within(spec, enhance::answer_limit()).await)
    }
}
