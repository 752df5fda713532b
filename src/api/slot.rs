//! Where one request's entry lives, and reading it.

use super::counters::bump;
use crate::core::cache_key;
use crate::core::config::Config;
use crate::core::entry::Entry;
use crate::core::keys;
use crate::core::ports::KeyValue;
use crate::core::request::GenerationRequest;
use crate::core::stats::Counter;
use crate::core::variant::Variant;
use crate::core::Error;

/// What [`Slot::store`] did.
pub enum Stored {
    /// Written, in place of this entry (none: a new one).
    Written(Option<Box<Entry>>),
    /// Another request's entry was there; this one was not written.
    Lost(Box<Entry>),
}

pub struct Slot {
    pub project: String,
    pub hash: String,
    pub entry_key: String,
    /// A variant's slot: the original's hash (the image a hit is an access to).
    pub original_hash: Option<String>,
}

impl Slot {
    pub fn new(config: &Config, project: &str, request: &GenerationRequest) -> Slot {
        let hash = cache_key::hash(request, config.provider.name(), config.provider.model());
        let entry_key = keys::entry(project, &hash);
        Slot { project: project.to_string(), hash, entry_key, original_hash: None }
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

    /// Write `entry` here, in place of `replaced` (or of nothing), and move
    /// the project's counters for it: `count` by one unless it replaces an
    /// entry, `bytes` by the size difference. `Err` (nothing counted) when
    /// the entry could not be written.
    ///
    /// An entry found here that is not `replaced` was stored by another
    /// request meanwhile (a lease that expired under a slow generation, or a
    /// claim on a store without CAS that was not exclusive after all): it
    /// stays, and this one is not written ([`Stored::Lost`]; the caller
    /// deletes its object). So the counters count entries, not generations.
    pub fn store(
        &self,
        kv: &impl KeyValue,
        entry: &Entry,
        replaced: Option<&Entry>,
        (count, bytes): (Counter, Counter),
    ) -> Result<Stored, Error> {
        let there = self.lookup(kv)?;
        let replaced = match (there, replaced) {
            (Some(now), Some(old)) if now.image_id == old.image_id => Some(now),
            (Some(now), _) => return Ok(Stored::Lost(Box::new(now))),
            // Gone meanwhile (purged): counted as gone already.
            (None, _) => None,
        };
        if !kv.flavour().first_increment_is_atomic() {
            // Before anyone can hit it: its first increments would race.
            kv.create_counter(&self.hits_key())?;
        }
        kv.set(&self.entry_key, &entry.encode())?;
        let old_size = replaced.as_ref().map_or(0, |old| old.size as i64);
        bump(kv, &self.project, count, if replaced.is_some() { 0 } else { 1 });
        bump(kv, &self.project, bytes, entry.size as i64 - old_size);
        Ok(Stored::Written(replaced.map(Box::new)))
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
                eprintln!("banatie-live: {}: {e}; treated as a miss", self.entry_key);
                Ok(None)
            }
        }
    }
}
