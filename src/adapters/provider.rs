//! The configured provider as a [`Provider`]: `core::provider` builds the
//! request and decides what the outcome means; this sends it, racing
//! `provider_timeout_ms`.

use futures::future::{select, Either};

use super::{env, http};
use crate::core::config::{Config, ProviderConfig};
use crate::core::http::request::GenerationRequest;
use crate::core::http::timing::{Kind, Timings};
use crate::core::ports::Provider;
use crate::core::provider::moderation::{self, Moderation, Verdict};
use crate::core::provider::{self, enhance, GeneratedImage, HttpRequestSpec, Sent};
use crate::core::Error;

pub struct ConfiguredProvider<'t> {
    config: crate::core::config::ProviderConfig,
    text_model: String,
    timeout_ms: u64,
    max_image_bytes: usize,
    partial_images: u8,
    safety: crate::core::provider::moderation::Safety,
    timings: &'t Timings,
}

impl<'t> ConfiguredProvider<'t> {
    pub fn new(config: &Config, timings: &'t Timings) -> ConfiguredProvider<'t> {
        ConfiguredProvider {
            config: config.provider.clone(),
            text_model: config.text_model.clone(),
            timeout_ms: config.provider_timeout_ms,
            max_image_bytes: config.max_image_bytes,
            partial_images: config.openai_partial_images,
            safety: config.provider_safety,
            timings,
        }
    }
}

impl ConfiguredProvider<'_> {
    /// Send, reading at most `limit` bytes of the answer, racing
    /// `provider_timeout_ms`; `core::provider` says what the outcome means.
    async fn send_within(&self, spec: HttpRequestSpec, limit: usize) -> Sent {
        self.send_timed(spec, limit, self.timeout_ms).await
    }

    async fn send_timed(&self, spec: HttpRequestSpec, limit: usize, timeout_ms: u64) -> Sent {
        let send = std::pin::pin!(http::send_capped(spec, limit));
        let timeout = std::pin::pin!(env::sleep(timeout_ms));
        match self.timings.measure_async(Kind::Provider, select(send, timeout)).await {
            Either::Left((Ok(answer), _)) => Sent::Answered(answer),
            Either::Left((Err(e), _)) => Sent::Unreachable(e),
            Either::Right(_) => Sent::TimedOut,
        }
    }
}

impl ConfiguredProvider<'_> {
    /// A streamed generation (`core::provider::Streaming`): previews handed
    /// on as they arrive, the whole answer within `provider_timeout_ms`.
    async fn streamed(
        &self,
        model: &ProviderConfig,
        spec: HttpRequestSpec,
        preview: &dyn Fn(GeneratedImage),
    ) -> Result<GeneratedImage, Error> {
        let (max_image_bytes, partial_images) = (self.max_image_bytes, self.partial_images);
        let read = async {
            use futures::TryStreamExt;
            let response = match http::send_streaming(spec).await {
                Ok(response) => response,
                Err(e) => {
                    return provider::outcome(model, Sent::Unreachable(e), self.timeout_ms, max_image_bytes)
                }
            };
            if response.status() != 200 {
                let sent = match http::read_capped(response, provider::answer_limit(max_image_bytes)).await {
                    Ok(answer) => Sent::Answered(answer),
                    Err(e) => Sent::Unreachable(e),
                };
                return provider::outcome(model, sent, self.timeout_ms, max_image_bytes);
            }
            let mut streaming = provider::Streaming::new(partial_images, max_image_bytes);
            let mut chunks = response.take_body_stream();
            while let Some(chunk) = chunks.try_next().await.map_err(|e| Error::Provider(format!("{e:?}")))? {
                streaming.feed(&chunk, preview)?;
            }
            streaming.finish()
        };
        let read = std::pin::pin!(read);
        let timeout = std::pin::pin!(env::sleep(self.timeout_ms));
        match self.timings.measure_async(Kind::Provider, select(read, timeout)).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(_) => provider::outcome(model, Sent::TimedOut, self.timeout_ms, max_image_bytes),
        }
    }
}

impl Provider for ConfiguredProvider<'_> {
    async fn generate(
        &self,
        model: &ProviderConfig,
        request: &GenerationRequest,
        inputs: &[GeneratedImage],
        previews: Option<&dyn Fn(GeneratedImage)>,
    ) -> Result<GeneratedImage, Error> {
        if let Some(preview) = previews {
            if let Some(spec) = provider::build_streaming_request(model, request, inputs, self.partial_images)
            {
                let spec = provider::with_safety(model, spec, self.safety);
                return self.streamed(model, spec, preview).await;
            }
        }
        let spec = provider::with_safety(model, provider::build_request(model, request, inputs), self.safety);
        let sent = self.send_within(spec, provider::answer_limit(self.max_image_bytes)).await;
        provider::outcome(model, sent, self.timeout_ms, self.max_image_bytes)
    }

    async fn moderate(
        &self,
        moderation: &Moderation,
        prompt: &str,
        images: &[GeneratedImage],
    ) -> Result<Verdict, Error> {
        let spec = moderation::build_request(moderation, prompt, images);
        moderation::outcome(self.send_timed(spec, moderation::ANSWER_LIMIT, moderation.timeout_ms).await)
    }

    async fn enhance(&self, prompt: &str) -> Result<String, Error> {
        let spec = enhance::build_request(&self.config, &self.text_model, prompt);
        enhance::outcome(&self.config, self.send_within(spec, enhance::answer_limit()).await)
    }
}
