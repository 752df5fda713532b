//! Where one request's entry lives, and reading it.

use crate::core::config::Config;
use crate::core::decide::cache_key;
use crate::core::http::request::GenerationRequest;
use crate::core::ports::KeyValue;
use crate::core::stored::entry::Entry;
use crate::core::stored::keys;
use crate::core::variant::Variant;
use crate::core::Error;

pub struct Slot {
    pub project: String,
    pub hash: String,
    pub entry_key: String,
    /// A variant's slot: the original's hash (the image a hit is an access to).
    pub original_hash: Option<String>,
}

impl Slot {
    /// The original's slot: keyed by the model the request names (checked:
    /// `Config::model_for`), whatever model ends up making it.
    pub fn new(config: &Config, project: &str, request: &GenerationRequest) -> Result<Slot, Error> {
        Ok(Slot::of(project, &Slot::hash(config, request)?))
    }

    /// The cache key of an original (`core::decide::cache_key`), by the model the
    /// request names.
    pub fn hash(config: &Config, request: &GenerationRequest) -> Result<String, Error> {
        let model = config.model_for(request)?;
        Ok(cache_key::hash(request, model.kind, model.provider.model()))
    }

    /// The original's slot whose cache key is `hash`.
    pub fn of(project: &str, hash: &str) -> Slot {
        let entry_key = keys::entry(project, hash);
        Slot { project: project.to_string(), hash: hash.to_string(), entry_key, original_hash: None }
    }

    /// Where the original's variant lives (`core::variant`).
    pub fn variant(&self, wanted: &Variant) -> Slot {
        let hash = keys::variant_hash(&self.hash, &wanted.suffix());
        let entry_key = keys::entry(&self.project, &hash);
        Slot { project: self.project.clone(), hash, entry_key, original_hash: Some(self.hash.clone()) }
    }

    /// The image this slot's entry is (for a variant: its original).
    pub fn image_hash(&self) -> &str {
        self.original_hash.as_deref().unwrap_or(&self.hash)
    }

    pub fn hits_key(&self) -> String {
        keys::hits(&self.project, &self.hash)
    }

    /// The entry. One that cannot be decoded (corrupt, or of a version this
    /// build does not know) is a miss: it is regenerated and replaced, never
    /// a URL broken for good.
    pub fn lookup(&self, kv: &impl KeyValue) -> Result<Option<Entry>, Error> {
        let Some(bytes) = kv.get(&self.entry_key)? else {
            return Ok(None);
        };
        match Entry::decode(&bytes) {
            Ok(entry) => Ok(Some(entry)),
            Err(e) => {
                crate::diag!("{}: {e}; treated as a miss", self.entry_key);
                Ok(None)
            }
        }
    }
}
