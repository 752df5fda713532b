//! The live endpoint, `GET|HEAD /api/v1/live/generate`, as a linear pipeline:
//!
//! validate → cache key → KV lookup →
//!   HIT:  304 | HEAD headers | S3 GET → count the hit → stream the object
//!   MISS: single-flight lease (or wait and answer from the cache) →
//!         budget → provider → S3 PUT → KV entry → count → answer with the bytes
//!
//! The caller is already authenticated (`api::dispatch`, from the route table).
//! Generic over the `core::ports` traits so the whole flow runs natively in
//! tests with in-memory fakes. The order on MISS is the invariant: an entry is
//! written only after its object is stored, so no entry points at nothing.

use super::allowance::Reservation;
use super::cached;
use super::context::{Context, Incoming};
use super::counters::bump;
use super::flight::{self, Joined};
use super::reply::{Body, Reply};
use super::reserve::Unit;
use super::scopes;
use super::slot::Slot;
use crate::core::cache_key;
use crate::core::entry::{Entry, ENTRY_VERSION};
use crate::core::headers;
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider};
use crate::core::project::Project;
use crate::core::provider::GeneratedImage;
use crate::core::request::{self, GenerationRequest, RawQuery};
use crate::core::stats::Counter;
use crate::core::{budget, scope, Error};

/// `project` is the caller `auth` found for `query`; `now` is the request's
/// wall-clock second (one reading, so budget spend and refund agree).
pub async fn get<K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    query: &RawQuery,
    incoming: &Incoming<'_>,
    now: u64,
) -> Result<Reply<S::Body>, Error> {
    let request = request::validate(query, ctx.config.max_prompt_length)?;
    let scope = match (&incoming.public_scope, &request.scope) {
        (Some(found), _) => Some(found.clone()),
        (None, Some(slug)) => Some(scopes::ensure(&ctx.kv, project, slug, now)?),
        (None, None) => None,
    };
    let slot = Slot::new(&ctx.config, &project.id, &request);
    let allowance = Reservation::new(&ctx.kv, incoming.client.as_ref(), now);
    let scope_unit = Unit::new(&ctx.kv, scope.as_ref().map(|s| scope::generations_key(&project.id, &s.slug)));
    let finish = |mut reply: Reply<S::Body>| {
        reply.headers.extend(allowance.headers());
        if let Some(s) = &scope {
            reply.headers.push(headers::scope(&s.slug));
        }
        reply
    };
    let existing = slot.lookup(&ctx.kv)?;
    match &existing {
        Some(_) if incoming.regenerate => {}
        Some(entry) => {
            if let Some(reply) = cached::answer(ctx, &slot, entry, incoming, false).await? {
                return Ok(finish(reply));
            }
            // The object vanished behind the entry: regenerate and replace it.
        }
        None if incoming.head => return Err(Error::NotCached),
        None => {}
    }
    let give_back = || {
        allowance.refund();
        scope_unit.refund();
    };
    let may_take = || {
        refuse_if_budget_spent(&ctx.kv, project, now)?;
        scope_unit.take(|used| scope.as_ref().map_or(Ok(()), |s| s.check_new_generation(used - 1)))?;
        allowance.take().inspect_err(|_| scope_unit.refund())
    };
    let held = match flight::join(ctx, &slot, incoming, existing.as_ref(), may_take).await {
        Ok(Joined::Owner(held)) => held,
        Ok(Joined::Served(reply)) => {
            give_back();
            return Ok(finish(reply));
        }
        Err(e) => {
            give_back();
            return Err(e);
        }
    };
    match produce(ctx, project, &slot, &request, existing.as_ref(), now).await {
        Ok((entry, bytes)) => {
            flight::succeed(&ctx.kv, &held);
            if let Some(old) = existing.as_ref().filter(|_| incoming.regenerate) {
                if let Err(e) = ctx.store.delete(&old.object_key).await {
                    eprintln!("banatie-live: replaced object {} not deleted: {e}", old.object_key);
                }
            }
            Ok(finish(Reply { status: 200, headers: headers::miss(&entry), body: Body::Bytes(bytes) }))
        }
        Err(e) => {
            give_back();
            flight::fail(&ctx.kv, &held, ctx.env.now_ms(), &e);
            Err(e)
        }
    }
}

/// The lease holder's work: budget → provider → S3 PUT → KV entry.
async fn produce<K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    slot: &Slot,
    request: &GenerationRequest,
    replaced: Option<&Entry>,
    now: u64,
) -> Result<(Entry, Vec<u8>), Error> {
    spend_budget(&ctx.kv, project, now)?;
    let enhanced = enhance(ctx, request).await;
    let asked = match &enhanced {
        Some(Ok(better)) => GenerationRequest { prompt: better.clone(), ..request.clone() },
        _ => request.clone(),
    };
    let image = generate(ctx, project, &asked, now).await?;
    let mut entry = new_entry(ctx, slot, request, &image, now);
    match enhanced {
        Some(Ok(better)) => {
            entry.enhanced_prompt = Some(better);
            entry.enhancement = Some("applied".into());
        }
        Some(Err(())) => entry.enhancement = Some("failed".into()),
        None => {}
    }
    ctx.store.put(&entry.object_key, &entry.content_type, image.bytes.clone()).await?;
    record(&ctx.kv, slot, &entry, replaced);
    Ok((entry, image.bytes))
}

/// With `enhance=true`: the provider's richer prompt, or `Err` when the text
/// model failed (logged; the original prompt is used and the answer says so
/// in `X-Prompt-Enhancement: failed`). Runs inside the single-flight, so once
/// per cache key.
async fn enhance<K, S, P: Provider, E>(
    ctx: &Context<K, S, P, E>,
    request: &GenerationRequest,
) -> Option<Result<String, ()>> {
    if !request.enhance {
        return None;
    }
    Some(ctx.provider.enhance(&request.prompt).await.map_err(|e| {
        eprintln!("banatie-live: prompt enhancement failed, using the prompt as given: {e}");
    }))
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
async fn generate<K: KeyValue, S, P: Provider, E>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    request: &GenerationRequest,
    now: u64,
) -> Result<GeneratedImage, Error> {
    let result = ctx.provider.generate(request).await;
    if result.is_err() {
        if let Err(e) = ctx.kv.increment(&budget::counter_key(&project.id, now), -1) {
            eprintln!("banatie-live: budget refund failed: {e}");
        }
    }
    result
}

fn new_entry<K, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    slot: &Slot,
    request: &GenerationRequest,
    image: &GeneratedImage,
    now: u64,
) -> Entry {
    let config = &ctx.config;
    let image_id = ctx.env.new_id();
    Entry {
        v: ENTRY_VERSION,
        object_key: cache_key::object_key(&slot.project, &slot.hash, &image_id, &image.content_type),
        image_id,
        generation_id: ctx.env.new_id(),
        content_type: image.content_type.clone(),
        size: image.bytes.len() as u64,
        etag: headers::etag_for(&image.bytes),
        created_at: now,
        prompt: request.prompt.clone(),
        aspect_ratio: request.aspect_ratio.clone(),
        provider: config.provider.name().to_string(),
        model: config.provider.model().to_string(),
        scope: request.scope.clone(),
        enhanced_prompt: None,
        enhancement: None,
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
    super::entries::log(kv, slot, entry);
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "enhance_tests.rs"]
mod enhance_tests;
