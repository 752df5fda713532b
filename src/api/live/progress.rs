//! A progressive MISS, carried out: when a request that asked for one
//! (`progressive=1`, or its scope's or project's `progressive_misses`) is
//! about to wait for an image to be made, its answer begins at once —
//! `200 multipart/x-mixed-replace` (`core::http::multipart`) with a waiting
//! frame at the final image's exact size (`banatie_image::frame`) — then
//! the provider's previews as they stream in (in the variant's size and
//! format when a variant was asked), then the image itself, or, when making
//! it failed, the error frame. A HIT, a 304, a HEAD and a client that takes
//! no images never begin one (`live::get` decides; `obtain` calls
//! [`Progress::begin`] only where it would wait).
//!
//! Nothing here waits for the client (`core::ports::Respond`): previews
//! it cannot take at once are dropped, and the image is stored before its
//! part is written, so a slow or departed client never holds up the image
//! that other waiters and the cache need.

use std::cell::Cell;

use crate::api::reply::Reply;
use crate::core::config::Config;
use crate::core::http::headers::{self, Header};
use crate::core::http::multipart;
use crate::core::ports::Respond;
use crate::core::provider::GeneratedImage;
use crate::core::variant::{geometry, Format, Variant};
use crate::core::Error;

pub struct Progress<'r> {
    respond: &'r dyn Respond,
    /// The request asked for a progressive answer, and may have one.
    asked: bool,
    boundary: String,
    /// The final image's size in pixels.
    size: (u32, u32),
    /// The variant asked for (previews are made into it).
    variant: Option<Variant>,
    max_source_pixels: u64,
    avif_speed: u8,
    begun: Cell<bool>,
}

impl<'r> Progress<'r> {
    /// A request that answers plainly, whatever happens.
    pub fn off(respond: &'r dyn Respond) -> Progress<'r> {
        Progress {
            respond,
            asked: false,
            boundary: String::new(),
            size: (0, 0),
            variant: None,
            max_source_pixels: 0,
            avif_speed: 0,
            begun: Cell::new(false),
        }
    }

    /// A request that asked for a progressive answer. `original`: the size
    /// the provider's image will have.
    pub fn new(
        respond: &'r dyn Respond,
        config: &Config,
        original: (u32, u32),
        variant: Option<&Variant>,
        random: [u8; 16],
    ) -> Progress<'r> {
        let size = match variant {
            None => original,
            Some(v) => geometry::plan(original, v.width, v.shape.height, v.shape.fit, v.shape.gravity).canvas,
        };
        Progress {
            respond,
            asked: variant.is_none_or(|v| v.placeholder.is_none()),
            boundary: multipart::boundary(random),
            size,
            variant: variant.copied(),
            max_source_pixels: config.max_source_pixels,
            avif_speed: config.avif_speed,
            begun: Cell::new(false),
        }
    }

    /// This request will wait for its image: if it asked for a progressive
    /// answer, the answer begins now (once), with `more` headers (the
    /// gate's, read only then), and its first part, the waiting frame.
    pub fn begin(&self, more: impl FnOnce() -> Vec<Header>) {
        if !self.asked || self.begun.replace(true) {
            return;
        }
        let more = more();
        let frame = banatie_image::frame::waiting(self.size.0, self.size.1).unwrap_or_default();
        let mut head = headers::progressive(&self.boundary);
        head.extend(more);
        self.respond.begin(200, head);
        let mut first = multipart::opening(&self.boundary, "image/png");
        first.extend(multipart::part(&self.boundary, &frame));
        self.respond.chunk(first, false);
    }

    pub fn begun(&self) -> bool {
        self.begun.get()
    }

    /// A preview of the original from the provider: made into the variant
    /// asked for (a preview that cannot be is skipped), and sent if the
    /// client can take it now.
    pub fn preview(&self, image: GeneratedImage) {
        if !self.begun() {
            return;
        }
        let bytes = match &self.variant {
            None => image.bytes,
            Some(wanted) => {
                let from = Format::from_content_type(&image.content_type).unwrap_or(Format::Png);
                let spec = banatie_image::Spec {
                    width: wanted.width,
                    shape: wanted.shape,
                    format: wanted.output_format(from),
                    quality: wanted.quality,
                    max_source_pixels: self.max_source_pixels,
                    avif_speed: self.avif_speed,
                    xmp: None,
                };
                match banatie_image::derive(&image.bytes, &spec) {
                    Ok(derived) => derived.bytes,
                    Err(e) => return crate::diag!("a preview not derived: {e:?}"),
                }
            }
        };
        self.respond.chunk(multipart::part(&self.boundary, &bytes), true);
    }

    /// The image: the last part, and the answer is complete.
    pub fn finish<B>(&self, image: &[u8]) -> Reply<B> {
        self.respond.chunk(multipart::last(&self.boundary, image), false);
        Reply::sent()
    }

    /// Making the image failed after the answer began (its status line went
    /// out as 200): the last part is the error frame, which says the status
    /// and code; the JSON error, which no header can carry now, is logged.
    pub fn fail<B>(&self, error: &Error) -> Reply<B> {
        crate::diag!(
            "progressive MISS failed after its first part: {} {}{}",
            error.status(),
            error.code(),
            error.log_detail().map(|d| format!(": {d}")).unwrap_or_default()
        );
        let frame = banatie_image::frame::error(self.size.0, self.size.1, error.status(), error.code());
        self.finish(&frame.unwrap_or_default())
    }
}
