//! A live request parsed and planned once, before it is authenticated (a
//! signed URL is its own credential): its generation parameters, the
//! variant it asks for, and — unless its references name aliases, which
//! take a read — the cache key of its original. From these follow the keys
//! a HIT reads first ([`Prepared::first_reads`], prefetched with the
//! project's record) and then what `live::get` runs. Errors are kept, not
//! raised: each is answered where the pipeline reaches it, after
//! authentication, in the order it always was (validation, references,
//! variant, scope, model).

use crate::api::kv::slot::Slot;
use crate::api::records::aliases;
use crate::core::config::Config;
use crate::core::http::request::{self, GenerationRequest, RawQuery};
use crate::core::ports::KeyValue;
use crate::core::stored::keys;
use crate::core::variant::{self, Variant};
use crate::core::Error;

pub struct Prepared {
    request: Result<GenerationRequest, Error>,
    /// The variant asked for, resolved against `Accept` (`format=auto`).
    wanted: Result<Option<Variant>, Error>,
    /// The original's hash, when it is known before any read.
    hash: Option<String>,
    /// `progressive=1` (never part of the image).
    progressive: Result<bool, Error>,
}

/// Parse and plan `query` (with `accept`, the request's `Accept` values).
pub fn prepare(config: &Config, query: &RawQuery, accept: &str) -> Prepared {
    let request = request::validate(query, config.max_prompt_length);
    let asked = variant::parse(&query.pairs, &config.variant_widths, &config.variant_qualities);
    let wanted = asked.map(|asked| asked.map(|a| a.resolve(Some(accept))));
    let hash = match &request {
        Ok(request) if request.refs.is_empty() => Slot::hash(config, request).ok(),
        _ => None,
    };
    let progressive = request::progressive(&query.pairs);
    Prepared { request, wanted, hash, progressive }
}

impl Prepared {
    /// The keys a HIT of this request reads first, after its project's
    /// record: the scope it names, the original's entry, the variant's, and
    /// the original's last access. Nothing where the request cannot be
    /// planned without reading (references by alias) or is not valid.
    pub fn first_reads(&self, project: &str) -> Vec<String> {
        let (Ok(request), Some(hash)) = (&self.request, &self.hash) else { return Vec::new() };
        let original = Slot::of(project, hash);
        let mut reads = Vec::with_capacity(4);
        if let Some(slug) = &request.scope {
            reads.push(keys::scope(project, slug));
        }
        reads.push(original.entry_key.clone());
        if let Ok(Some(wanted)) = &self.wanted {
            reads.push(original.variant(wanted).entry_key);
        }
        reads.push(keys::seen(project, original.image_hash()));
        reads
    }

    /// The request, valid, its references resolved to image ids (one read
    /// when they name aliases), the variant it asks for, and how it wants
    /// a MISS answered.
    pub fn checked(self, kv: &impl KeyValue, project: &str) -> Result<Checked, Error> {
        let mut request = self.request?;
        request.refs = aliases::resolve(kv, project, &request.refs)?;
        let wanted = self.wanted?;
        let progressive = self.progressive?;
        Ok(Checked { request, wanted, hash: self.hash, progressive })
    }
}

/// A prepared request that passed its checks.
pub struct Checked {
    pub request: GenerationRequest,
    pub wanted: Option<Variant>,
    hash: Option<String>,
    /// The URL asks for a progressive answer to a MISS.
    pub progressive: bool,
}

impl Checked {
    /// Where the original lives: keyed by the model the request names
    /// (checked here, when it was not while preparing).
    pub fn original(&self, config: &Config, project: &str) -> Result<Slot, Error> {
        match &self.hash {
            Some(hash) => Ok(Slot::of(project, hash)),
            None => Slot::new(config, project, &self.request),
        }
    }
}
