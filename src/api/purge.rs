//! `DELETE /api/v1/live/generate?...` (X-API-Key): remove one entry and its
//! object, and every variant derived from it (any `w`/`format` in the URL
//! names the same image). The entry goes first, so no entry ever points at a deleted object;
//! the next GET for the same parameters is a MISS.

use super::context::Context;
use super::counters::bump;
use super::reply::Reply;
use super::slot::Slot;
use crate::core::entry::Entry;
use crate::core::headers;
use crate::core::keys;
use crate::core::ports::{KeyValue, ObjectStore};
use crate::core::project::Project;
use crate::core::request::{self, RawQuery};
use crate::core::stats::Counter;
use crate::core::variant;
use crate::core::Error;

/// `project` is the key's owner (the route table admits no signed URL here).
pub async fn delete<K: KeyValue, S: ObjectStore, P, E>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    query: &RawQuery,
) -> Result<Reply<S::Body>, Error> {
    let request = request::validate(query, ctx.config.max_prompt_length)?;
    // Judged as a GET would judge them, though any variant names the same image.
    variant::parse(&query.pairs, &ctx.config.variant_widths, &ctx.config.variant_qualities)?;
    let slot = Slot::new(&ctx.config, &project.id, &request);
    // The raw value, so that an entry that cannot be decoded is removed too.
    let raw = ctx.kv.get(&slot.entry_key)?.ok_or(Error::NotFound("no cached image for these parameters"))?;
    ctx.kv.delete(&slot.entry_key)?;
    if let Err(e) = ctx.kv.delete_counter(&slot.hits_key()) {
        eprintln!("banatie-live: hit counter not removed: {e}");
    }
    bump(&ctx.kv, &project.id, Counter::Entries, -1);
    match Entry::decode(&raw) {
        Ok(entry) => {
            bump(&ctx.kv, &project.id, Counter::Bytes, -(entry.size as i64));
            if let Err(e) = ctx.store.delete(&entry.object_key).await {
                eprintln!("banatie-live: purged entry's object {} not deleted: {e}", entry.object_key);
            }
        }
        Err(e) => eprintln!("banatie-live: purged an unreadable entry {}: {e}", slot.entry_key),
    }
    purge_variants(ctx, &project.id, &slot.hash).await;
    Ok(Reply::empty(204, headers::deleted()))
}

/// Purge: remove every variant logged under the original `hash`, entries
/// first, then their objects. The log's counter is never reset (a
/// derivation may be logging while this runs); a mark says how far purges
/// have gone, and a variant that could not be removed stays in the log.
async fn purge_variants<K: KeyValue, S: ObjectStore, P, E>(
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
