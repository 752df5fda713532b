//! Derived variants (`w`, `format`, `q`; decisions in `core::variant`):
//!
//! original's entry → variant's entry (made from this original) →
//!   HIT:  served like any cached image (`api::cached`), `X-Variant-Of`
//!   MISS: the original's bytes (from S3, or generated now through
//!         `live::original`, single-flight as always) → the variant's own
//!         single-flight lease → decode, resize, encode (`banatie-image`) →
//!         S3 PUT → KV entry → answer with the bytes
//!
//! A variant's entry names the original's image id; after the original is
//! replaced (regenerated) the variant is derived again from the new one.
//! Deriving takes no generation budget and no client allowance: it costs
//! this component's CPU once per variant, and the widths snap to a ladder so
//! an image has a bounded number of variants.

use super::cached;
use super::context::{Context, Incoming};
use super::counters::{self, bump};
use super::flight::{self, Joined};
use super::live::{self, Gate, Got};
use super::reply::{Body, Reply};
use super::slot::{Slot, Stored};
use crate::core::entry::{Entry, ENTRY_VERSION};
use crate::core::headers;
use crate::core::keys;
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider};
use crate::core::project::Project;
use crate::core::request::GenerationRequest;
use crate::core::stats::Counter;
use crate::core::variant::{Format, Variant};
use crate::core::Error;

/// `original` is the original's slot; the variant's is derived from it.
#[allow(clippy::too_many_arguments)]
pub async fn get<K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    original: &Slot,
    request: &GenerationRequest,
    wanted: &Variant,
    incoming: &Incoming<'_>,
    gate: &Gate<'_, K>,
    now: u64,
) -> Result<Reply<S::Body>, Error> {
    let slot = &original.variant(wanted);
    if !incoming.regenerate {
        if let Some(source) = original.lookup(&ctx.kv)? {
            if let Some(entry) = slot.lookup(&ctx.kv)?.filter(|e| made_from(e, &source)) {
                if let Some(reply) = cached::answer(ctx, slot, &entry, incoming, false).await? {
                    return Ok(reply);
                }
            }
        }
    }
    if incoming.head {
        return Err(Error::NotCached);
    }
    let max = ctx.config.max_image_bytes;
    let read = async |entry: &Entry, _coalesced| {
        Ok(ctx.store.get_bytes(&entry.object_key, max).await?.map(|bytes| (entry.clone(), bytes)))
    };
    let (source, bytes) =
        match live::original(ctx, project, original, request, incoming, gate, now, read).await? {
            Got::Cached(found) => found,
            Got::Generated(entry, bytes) => (*entry, bytes),
        };
    // Derived meanwhile (by the request that made the original, say)?
    let existing = slot.lookup(&ctx.kv)?;
    if let Some(entry) = existing.as_ref().filter(|e| made_from(e, &source)) {
        if let Some(reply) = cached::answer(ctx, slot, entry, incoming, false).await? {
            return Ok(reply);
        }
    }
    // What is left is stale: made from an earlier original, or its object vanished.
    let stale = existing;
    let ready = async |entry: &Entry| match made_from(entry, &source) {
        true => cached::answer(ctx, slot, entry, incoming, true).await,
        false => Ok(None),
    };
    let held = match flight::join(ctx, slot, stale.as_ref(), || Ok(()), ready).await? {
        Joined::Served(reply) => return Ok(reply),
        Joined::Owner(held) => held,
    };
    // Read again under the lease: the original may have been replaced while
    // this request waited (then its bytes are not the original any more), and
    // the entry this derivation replaces is the one there now.
    let now_there = original.lookup(&ctx.kv).and_then(|o| Ok((o, slot.lookup(&ctx.kv)?)));
    let replaced = match now_there {
        Ok((Some(current), replaced)) if current.image_id == source.image_id => replaced,
        Ok(_) => {
            flight::release(&ctx.kv, &held);
            return Err(Error::Busy { retry_after: 1 });
        }
        Err(e) => {
            flight::release(&ctx.kv, &held);
            return Err(e);
        }
    };
    match derive(ctx, slot, &source, &bytes, wanted, replaced.as_ref(), now).await {
        Ok(Derived::Lost(winner)) => {
            flight::succeed(&ctx.kv, &held);
            cached::answer(ctx, slot, &winner, incoming, true).await?.ok_or(Error::Busy { retry_after: 1 })
        }
        Ok(Derived::Fresh(entry, bytes, timing)) => {
            flight::succeed(&ctx.kv, &held);
            let mut headers = headers::miss(&entry);
            headers.push(timing);
            Ok(Reply { status: 200, headers, body: Body::Bytes(bytes) })
        }
        Err(e) => {
            flight::fail(&ctx.kv, &held, ctx.env.now_ms(), &e);
            Err(e)
        }
    }
}

fn made_from(variant: &Entry, original: &Entry) -> bool {
    variant.variant_of.as_deref() == Some(original.image_id.as_str())
}

/// What the lease holder made.
enum Derived {
    Fresh(Box<Entry>, Vec<u8>, headers::Header),
    /// Derived, but another request's entry was stored first (ours is deleted).
    Lost(Box<Entry>),
}

/// The lease holder's work: decode, resize, encode → S3 PUT → KV entry.
async fn derive<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    slot: &Slot,
    source: &Entry,
    bytes: &[u8],
    wanted: &Variant,
    replaced: Option<&Entry>,
    now: u64,
) -> Result<Derived, Error> {
    let from = Format::from_content_type(&source.content_type)
        .ok_or_else(|| Error::VariantUnavailable(format!("the original is {}", source.content_type)))?;
    let spec = banatie_image::Spec {
        width: wanted.width,
        format: wanted.output_format(from),
        quality: wanted.quality,
        max_source_pixels: ctx.config.max_source_pixels,
    };
    let derived = banatie_image::derive(bytes, &spec).map_err(|e| match e {
        banatie_image::Failure::Refused(why) => Error::VariantUnavailable(why),
        banatie_image::Failure::Encoder(detail) => {
            Error::Internal(format!("variant {}: {detail}", slot.hash))
        }
    })?;
    let image_id = ctx.env.new_id();
    let content_type = spec.format.content_type().to_string();
    let entry = Entry {
        v: ENTRY_VERSION,
        object_key: keys::object(&slot.project, slot.image_hash(), &image_id, &content_type),
        image_id,
        generation_id: source.generation_id.clone(),
        content_type,
        size: derived.bytes.len() as u64,
        etag: headers::etag_for(&derived.bytes),
        created_at: now,
        variant_of: Some(source.image_id.clone()),
        variant: Some(wanted.suffix()),
        width: Some(derived.width),
        height: Some(derived.height),
        ..source.clone()
    };
    ctx.store.put(&entry.object_key, &entry.content_type, derived.bytes.clone()).await?;
    if let Some(winner) = record(ctx, slot, &entry, replaced).await {
        if let Err(e) = ctx.store.delete(&entry.object_key).await {
            eprintln!("banatie-live: object {} of a lost race not deleted: {e}", entry.object_key);
        }
        return Ok(Derived::Lost(winner));
    }
    let timing = headers::derivation(derived.micros, derived.peak_memory);
    Ok(Derived::Fresh(Box::new(entry), derived.bytes, timing))
}

/// Write the variant's entry, count it, and log it under its original (so a
/// purge finds it); `Some(winner)` when another request's entry was there
/// first (nothing written or counted). The object is stored already: a KV
/// failure here only means the next request derives again (logged).
async fn record<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    slot: &Slot,
    entry: &Entry,
    replaced: Option<&Entry>,
) -> Option<Box<Entry>> {
    let kv = &ctx.kv;
    match slot.store(kv, entry, replaced, (Counter::Variants, Counter::VariantBytes)) {
        Ok(Stored::Lost(winner)) => return Some(winner),
        Err(e) => eprintln!("banatie-live: variant entry not recorded, served anyway: {e}"),
        Ok(Stored::Written(Some(old))) => {
            if let Err(e) = ctx.store.delete(&old.object_key).await {
                eprintln!("banatie-live: replaced variant object {} not deleted: {e}", old.object_key);
            }
        }
        Ok(Stored::Written(None)) => {
            let seq = keys::variant_seq(&slot.project, slot.image_hash());
            match counters::ensure(ctx, &seq).await {
                Ok(()) => log(kv, slot, entry),
                Err(e) => eprintln!("banatie-live: variant not logged (a purge will miss it): {e}"),
            }
        }
    }
    bump(kv, &slot.project, Counter::Misses, 1);
    None
}

fn log(kv: &impl KeyValue, slot: &Slot, entry: &Entry) {
    let original = slot.image_hash();
    let logged = kv.increment(&keys::variant_seq(&slot.project, original), 1).and_then(|n| {
        let suffix = entry.variant.as_deref().unwrap_or_default();
        kv.set(&keys::variant_log(&slot.project, original, n), suffix.as_bytes())
    });
    if let Err(e) = logged {
        eprintln!("banatie-live: variant not logged under its original (a purge will miss it): {e}");
    }
}

/// Purge: remove every variant logged under the original `hash`, entries
/// first, then their objects. The log's counter is never reset (a
/// derivation may be logging while this runs); a mark says how far purges
/// have gone, and a variant that could not be removed stays in the log.
pub async fn purge_all<K: KeyValue, S: ObjectStore, P, E>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    hash: &str,
) {
    let kv = &ctx.kv;
    let mark = keys::variant_purged(project, hash);
    let read = kv.counter(&keys::variant_seq(project, hash)).and_then(|count| {
        let count = count.unwrap_or(0);
        let done = kv.get(&mark)?.and_then(|v| String::from_utf8(v).ok()?.parse::<i64>().ok()).unwrap_or(0);
        Ok((count, done))
    });
    let (count, done) = match read {
        Ok(found) => found,
        Err(e) => return eprintln!("banatie-live: variants of {hash} not purged: {e}"),
    };
    let mut upto = done;
    let mut all_gone = true;
    for n in done + 1..=count {
        let log = keys::variant_log(project, hash, n);
        match purge_one(ctx, project, hash, &log).await {
            Ok(()) => {
                let _ = kv.delete(&log);
                if all_gone {
                    upto = n;
                }
            }
            Err(e) => {
                eprintln!("banatie-live: variant {log} not purged (the next purge tries again): {e}");
                all_gone = false;
            }
        }
    }
    if upto > done {
        if let Err(e) = kv.set(&mark, upto.to_string().as_bytes()) {
            eprintln!("banatie-live: purge mark of {hash} not recorded: {e}");
        }
    }
}

async fn purge_one<K: KeyValue, S: ObjectStore, P, E>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    hash: &str,
    log: &str,
) -> Result<(), Error> {
    let kv = &ctx.kv;
    let Some(suffix) = kv.get(log)? else { return Ok(()) };
    let variant_hash = keys::variant_hash(hash, &String::from_utf8_lossy(&suffix));
    let key = keys::entry(project, &variant_hash);
    let Some(raw) = kv.get(&key)? else { return Ok(()) };
    kv.delete(&key)?;
    let _ = kv.delete_counter(&keys::hits(project, &variant_hash));
    bump(kv, project, Counter::Variants, -1);
    if let Ok(entry) = Entry::decode(&raw) {
        bump(kv, project, Counter::VariantBytes, -(entry.size as i64));
        ctx.store.delete(&entry.object_key).await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "derived_tests.rs"]
mod tests;
