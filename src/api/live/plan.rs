//! What one live request asks for ([`Plan`]), and the image it got
//! ([`Got`]): what `api::live` plans, `api::live::obtain` obtains and the answer
//! is made of.

use crate::api::kv::slot::Slot;
use crate::core::http::headers::Header;
use crate::core::http::request::GenerationRequest;
use crate::core::stored::entry::Entry;
use crate::core::stored::project::Project;
use crate::core::variant::Variant;

/// What one live request asks for.
pub struct Plan<'a> {
    pub project: &'a Project,
    pub request: &'a GenerationRequest,
    pub original: Slot,
    /// The variant asked for, and where it lives.
    pub variant: Option<(Slot, Variant)>,
    pub now: u64,
}

/// The image obtained, and how.
pub struct Got {
    pub entry: Entry,
    pub how: How,
}

pub enum How {
    /// In the cache when this request looked.
    Cached,
    /// Made by another request while this one waited.
    Coalesced,
    /// Made by this request: its bytes, and a derivation's `Server-Timing`.
    Made { bytes: Vec<u8>, timing: Option<Header> },
}

impl Got {
    pub fn cached(entry: Entry, coalesced: bool) -> Got {
        Got { entry, how: if coalesced { How::Coalesced } else { How::Cached } }
    }
}
