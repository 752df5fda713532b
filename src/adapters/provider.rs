//! The configured provider as a [`Provider`]: core builds and parses the wire
//! format, this sends it, bounded by `provider_timeout_ms` (a timeout is a
//! 503 with Retry-After, like a provider that says it is busy).

use std::time::Instant;

use futures::future::{select, Either};

use super::{clock, http};
use crate::core::config::ProviderConfig;
use crate::core::ports::Provider;
use crate::core::provider::{self, GeneratedImage, DEFAULT_RETRY_AFTER};
use crate::core::request::GenerationRequest;
use crate::core::timing::{Kind, Timings};
use crate::core::Error;

pub struct ConfiguredProvider<'a> {
    pub config: &'a ProviderConfig,
    pub timeout_ms: u64,
    pub max_image_bytes: usize,
    pub timings: &'a Timings,
}

impl Provider for ConfiguredProvider<'_> {
    async fn generate(&self, request: &GenerationRequest) -> Result<GeneratedImage, Error> {
        let spec = provider::build_request(self.config, request);
        let start = Instant::now();
        let send = std::pin::pin!(http::send_capped(spec, provider::answer_limit(self.max_image_bytes)));
        let timeout = std::pin::pin!(clock::sleep(self.timeout_ms));
        let outcome = select(send, timeout).await;
        self.timings.add(Kind::Provider, start.elapsed().as_micros() as u64);
        match outcome {
            Either::Left((Ok(answer), _)) => provider::parse_response(self.config, &answer)
                .and_then(|image| provider::check_size(image, self.max_image_bytes)),
            Either::Left((Err(e), _)) => {
                Err(Error::Provider(format!("{} unreachable: {e}", self.config.name())))
            }
            Either::Right(_) => Err(Error::ProviderBusy {
                retry_after: DEFAULT_RETRY_AFTER,
                detail: format!("{} did not answer within {} ms", self.config.name(), self.timeout_ms),
            }),
        }
    }
}
