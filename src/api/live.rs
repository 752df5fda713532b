//! The live endpoint, `GET|HEAD /api/v1/live/generate`, as a linear pipeline:
//!
//! decode → authenticate (key or signature) → validate → cache key → KV lookup →
//!   HIT:  304 | HEAD headers | S3 GET → count the hit → stream the object
//!   MISS: single-flight lease (or wait and answer from the cache) →
//!         budget → provider → S3 PUT → KV entry → count → answer with the bytes
//!
//! Generic over the `core::ports` traits so the whole flow runs natively in
//! tests with in-memory fakes. The order on MISS is the invariant: an entry is
//! written only after its object is stored, so no entry points at nothing.

use super::counters::bump;
use super::flight::{self, Joined};
use super::respond::{Body, Reply};
use super::{auth, cached};
use crate::core::cache_key;
use crate::core::config::Config;
use crate::core::entry::{Entry, ENTRY_VERSION};
use crate::core::headers;
use crate::core::ports::{Clock, KeyValue, ObjectStore, Provider};
use crate::core::project::Project;
use crate::core::provider::GeneratedImage;
use crate::core::request::{self, GenerationRequest};
use crate::core::stats::Counter;
use crate::core::{budget, Error};

pub const PATH: &str = "/api/v1/live/generate";

/// Everything the pipeline talks to.
pub struct Ports<'a, K, S, P, C> {
    pub config: &'a Config,
    pub kv: &'a K,
    pub store: &'a S,
    pub provider: &'a P,
    pub clock: &'a C,
}

/// Clock reading at the start, the id source and randomness, injected.
pub struct Env {
    pub now: u64,
    pub new_id: fn() -> String,
    pub random: fn() -> u32,
}

/// What the client sent that the pipeline looks at.
pub struct Incoming<'a> {
    pub query: &'a str,
    pub api_key: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub head: bool,
}

/// Where one request's entry lives.
pub struct Slot {
    pub project: String,
    pub hash: String,
    pub entry_key: String,
}

impl Slot {
    pub fn hits_key(&self) -> String {
        cache_key::hits_key(&self.project, &self.hash)
    }
}

pub async fn get<K: KeyValue, S: ObjectStore, P: Provider, C: Clock>(
    ports: &Ports<'_, K, S, P, C>,
    env: &Env,
    incoming: &Incoming<'_>,
) -> Result<Reply<S::Body>, Error> {
    let raw = request::parse_query(incoming.query)?;
    let project = auth::caller(ports.kv, PATH, &raw, incoming.api_key, env.now)?;
    let request = request::validate(&raw, ports.config.max_prompt_length)?;
    let slot = slot_for(ports.config, &project.id, &request);
    let existing = lookup(ports.kv, &slot)?;
    match &existing {
        Some(entry) => {
            if let Some(reply) = cached::answer(ports, &slot, entry, incoming, false).await? {
                return Ok(reply);
            }
            // The object vanished behind the entry: regenerate and replace it.
        }
        None if incoming.head => return Err(Error::NotCached),
        None => {}
    }
    let may_take = || refuse_if_budget_spent(ports.kv, &project, env.now);
    let held = match flight::join(ports, env, &slot, incoming, existing.as_ref(), may_take).await? {
        Joined::Served(reply) => return Ok(reply),
        Joined::Owner(held) => held,
    };
    match produce(ports, env, &project, &slot, &request, existing.as_ref()).await {
        Ok((entry, bytes)) => {
            flight::succeed(ports.kv, &held);
            Ok(Reply { status: 200, headers: headers::miss(&entry), body: Body::Bytes(bytes) })
        }
        Err(e) => {
            flight::fail(ports.kv, &held, ports.clock.now_ms(), &e);
            Err(e)
        }
    }
}

pub fn slot_for(config: &Config, project: &str, request: &GenerationRequest) -> Slot {
    let hash = cache_key::hash(request, config.provider.name(), config.provider.model());
    let entry_key = cache_key::entry_key(project, &hash);
    Slot { project: project.to_string(), hash, entry_key }
}

/// The entry for `slot`. One that cannot be decoded (corrupt, or of a version
/// this build does not know) is a miss: it is regenerated and replaced, never
/// a URL broken for good.
pub fn lookup(kv: &impl KeyValue, slot: &Slot) -> Result<Option<Entry>, Error> {
    let Some(bytes) = kv.get(&slot.entry_key)? else {
        return Ok(None);
    };
    match Entry::decode(&bytes) {
        Ok(entry) => Ok(Some(entry)),
        Err(e) => {
            eprintln!("banatie-live: {}: {e}; treated as a miss", slot.entry_key);
            Ok(None)
        }
    }
}

/// The lease holder's work: budget → provider → S3 PUT → KV entry.
async fn produce<K: KeyValue, S: ObjectStore, P: Provider, C>(
    ports: &Ports<'_, K, S, P, C>,
    env: &Env,
    project: &Project,
    slot: &Slot,
    request: &GenerationRequest,
    replaced: Option<&Entry>,
) -> Result<(Entry, Vec<u8>), Error> {
    spend_budget(ports.kv, project, env.now)?;
    let image = generate(ports, project, env, request).await?;
    let entry = new_entry(ports.config, env, slot, request, &image);
    ports.store.put(&entry.object_key, &entry.content_type, image.bytes.clone()).await?;
    record(ports.kv, slot, &entry, replaced);
    Ok((entry, image.bytes))
}

/// A MISS whose budget is already spent is refused before it takes a lease,
/// so a stream of refused prompts writes nothing (adding 0 reads atomically).
/// Requests that find a generation under way wait for it instead.
fn refuse_if_budget_spent(kv: &impl KeyValue, project: &Project, now: u64) -> Result<(), Error> {
    let count = kv.increment(&budget::counter_key(&project.id, now), 0)?;
    budget::check_before_spending(count, project.generations_per_hour, now)
}

/// Take one generation from this hour's budget (atomic increment, so
/// concurrent misses cannot overshoot). The first spend of an hour removes
/// the counters of the hours before.
fn spend_budget(kv: &impl KeyValue, project: &Project, now: u64) -> Result<(), Error> {
    let count = kv.increment(&budget::counter_key(&project.id, now), 1)?;
    if count == 1 {
        for stale in budget::stale_counter_keys(&project.id, now) {
            if let Err(e) = kv.delete(&stale) {
                eprintln!("banatie-live: old budget counter {stale} not removed: {e}");
            }
        }
    }
    budget::decide(count, project.generations_per_hour, now)
}

/// Call the provider; a failed call gives its budget unit back.
async fn generate<K: KeyValue, S, P: Provider, C>(
    ports: &Ports<'_, K, S, P, C>,
    project: &Project,
    env: &Env,
    request: &GenerationRequest,
) -> Result<GeneratedImage, Error> {
    let result = ports.provider.generate(request).await;
    if result.is_err() {
        if let Err(e) = ports.kv.increment(&budget::counter_key(&project.id, env.now), -1) {
            eprintln!("banatie-live: budget refund failed: {e}");
        }
    }
    result
}

fn new_entry(
    config: &Config,
    env: &Env,
    slot: &Slot,
    request: &GenerationRequest,
    image: &GeneratedImage,
) -> Entry {
    let image_id = (env.new_id)();
    Entry {
        v: ENTRY_VERSION,
        object_key: cache_key::object_key(&slot.project, &slot.hash, &image_id, &image.content_type),
        image_id,
        generation_id: (env.new_id)(),
        content_type: image.content_type.clone(),
        size: image.bytes.len() as u64,
        etag: headers::etag_for(&image.bytes),
        created_at: env.now,
        prompt: request.prompt.clone(),
        aspect_ratio: request.aspect_ratio.clone(),
        provider: config.provider.name().to_string(),
        model: config.provider.model().to_string(),
    }
}

/// Write the entry and count the generation. The object is already stored,
/// so a KV failure here loses nothing the client needs: the image is still
/// served and the next request regenerates (logged, not an error).
fn record(kv: &impl KeyValue, slot: &Slot, entry: &Entry, replaced: Option<&Entry>) {
    bump(kv, &slot.project, Counter::Misses, 1);
    bump(kv, &slot.project, Counter::Generations, 1);
    if let Err(e) = kv.set(&slot.entry_key, &entry.encode()) {
        eprintln!("banatie-live: entry not recorded, image served anyway: {e}");
        return;
    }
    let old_size = replaced.map_or(0, |old| old.size as i64);
    bump(kv, &slot.project, Counter::Entries, if replaced.is_some() { 0 } else { 1 });
    bump(kv, &slot.project, Counter::Bytes, entry.size as i64 - old_size);
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
