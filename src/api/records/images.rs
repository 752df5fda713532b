//! Removing a cached image, as the purge route and the live pipeline both
//! need it: an original (its entry first, then hits, object, image index
//! and variants), the variants logged under an original (waiting for one
//! being derived, under its lease), and a variant stored from an original
//! that a purge or regenerate removed meanwhile ([`take_back_variant`]).
//! The entry always goes before its object, so no entry points at nothing;
//! the stats move with the rows.

use crate::api::context::Context;
use crate::api::kv::counters::bump;
use crate::api::kv::slot::Slot;
use crate::core::decide::single_flight::{self, Seen};
use crate::core::ports::{Env, KeyValue, ObjectStore};
use crate::core::stored::entry::Entry;
use crate::core::stored::keys;
use crate::core::stored::stats::Counter;
use crate::core::Error;

/// How long removing variants waits for one being derived.
const MAX_DERIVATION_WAIT_MS: u64 = 30_000;

/// Under the original's lease: its entry (read again: a regenerate may
/// have replaced it, another purge removed it), hits, object and variants.
pub async fn remove_original<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    slot: &Slot,
) -> Result<Option<()>, Error> {
    // The raw value, so that an entry that cannot be decoded is removed too.
    let Some(raw) = ctx.kv.get(&slot.entry_key)? else { return Ok(None) };
    ctx.kv.delete(&slot.entry_key)?;
    if let Err(e) = ctx.kv.delete_counter(&slot.hits_key()) {
        crate::diag!("hit counter not removed: {e}");
    }
    bump(&ctx.kv, project, Counter::Entries, -1);
    match Entry::decode(&raw) {
        Ok(entry) => {
            bump(&ctx.kv, project, Counter::Bytes, -(entry.size as i64));
            if let Err(e) = ctx.kv.delete(&keys::image_index(project, &entry.image_id)) {
                crate::diag!("purged entry's image index not removed: {e}");
            }
            if let Err(e) = ctx.store.delete(&entry.object_key).await {
                crate::diag!("purged entry's object {} not deleted: {e}", entry.object_key);
            }
        }
        Err(e) => crate::diag!("purged an unreadable entry {}: {e}", slot.entry_key),
    }
    purge_variants(ctx, project, &slot.hash, None).await;
    Ok(Some(()))
}

/// Remove every variant logged under the original `hash`, entries first,
/// then their objects — except those made from `keep` (an original just
/// stored in place of the one they were made from: a regenerate removes
/// the old variants and keeps the new). The log's counter is never reset (a
/// derivation may be logging while this runs); a mark says how far purges
/// have gone, and a variant that could not be removed, or was kept, stays
/// in the log.
pub async fn purge_variants<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    hash: &str,
    keep: Option<&str>,
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
        Err(e) => return crate::diag!("variants of {hash} not purged: {e}"),
    };
    let mut upto = done;
    let mut all_gone = true;
    for n in done + 1..=count {
        let log = keys::variant_log(project, hash, n);
        match purge_one(ctx, project, hash, &log, keep).await {
            Ok(Purged::Gone) => {
                let _ = kv.delete(&log);
                if all_gone {
                    upto = n;
                }
            }
            Ok(Purged::Kept) => all_gone = false,
            Err(e) => {
                crate::diag!("variant {log} not purged (the next purge tries again): {e}");
                all_gone = false;
            }
        }
    }
    if upto > done {
        if let Err(e) = kv.set(&mark, upto.to_string().as_bytes()) {
            crate::diag!("purge mark of {hash} not recorded: {e}");
        }
    }
}

enum Purged {
    Gone,
    Kept,
}

async fn purge_one<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    hash: &str,
    log: &str,
    keep: Option<&str>,
) -> Result<Purged, Error> {
    let kv = &ctx.kv;
    let Some(suffix) = kv.get(log)? else { return Ok(Purged::Gone) };
    let variant_hash = keys::variant_hash(hash, &String::from_utf8_lossy(&suffix));
    let key = keys::entry(project, &variant_hash);
    if kv.get(&key)?.is_none() {
        return Ok(Purged::Gone);
    }
    // A derivation of it under way stores, then looks at the original, under
    // its lease: wait for it, then read again (it may have taken it back).
    let lease_key = keys::lease(project, &variant_hash);
    let started = ctx.env.monotonic_ms();
    let mut round = 0;
    while matches!(single_flight::observe(ctx.env.now_ms(), kv.get(&lease_key)?), Seen::Held(_)) {
        if ctx.env.monotonic_ms().saturating_sub(started) > MAX_DERIVATION_WAIT_MS {
            return Err(Error::Busy { retry_after: 1 });
        }
        ctx.env.sleep(single_flight::backoff_ms(round)).await;
        round += 1;
    }
    let Some(raw) = kv.get(&key)? else { return Ok(Purged::Gone) };
    let entry = Entry::decode(&raw).ok();
    if keep.is_some() && entry.as_ref().and_then(|e| e.variant_of.as_deref()) == keep {
        return Ok(Purged::Kept);
    }
    remove_variant(ctx, project, &variant_hash, entry.as_ref()).await?;
    Ok(Purged::Gone)
}

/// A variant's entry, hits and object, and its counters.
async fn remove_variant<K: KeyValue, S: ObjectStore, P, E>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    variant_hash: &str,
    entry: Option<&Entry>,
) -> Result<(), Error> {
    let kv = &ctx.kv;
    kv.delete(&keys::entry(project, variant_hash))?;
    let _ = kv.delete_counter(&keys::hits(project, variant_hash));
    bump(kv, project, Counter::Variants, -1);
    if let Some(entry) = entry {
        bump(kv, project, Counter::VariantBytes, -(entry.size as i64));
        ctx.store.delete(&entry.object_key).await?;
    }
    Ok(())
}

/// A variant this request just stored, under its lease, from `original`:
/// if that original is no longer the one cached (a purge removed it, or a
/// regenerate replaced it, while this derived), the variant is taken back —
/// the purge may have walked the variant log before this stored. `Ok(true)`
/// when it was.
pub async fn take_back_variant<K: KeyValue, S: ObjectStore, P, E>(
    ctx: &Context<K, S, P, E>,
    original: &Slot,
    variant: &Slot,
    made: &Entry,
) -> Result<bool, Error> {
    if original.lookup(&ctx.kv)?.is_some_and(|o| made.made_from(&o)) {
        return Ok(false);
    }
    remove_variant(ctx, &variant.project, &variant.hash, Some(made)).await?;
    Ok(true)
}
