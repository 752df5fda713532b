//! Answering from the cache, as `core::http::headers::choose` decides: 304 when
//! the client's copy is current, the headers alone for HEAD, otherwise the
//! object streamed from S3.

use crate::api::context::{Context, Incoming};
use crate::api::kv::counters::bump;
use crate::api::kv::slot::Slot;
use crate::api::reply::{Body, Reply};
use crate::core::http::headers::{self, Cached};
use crate::core::ports::{Env, KeyValue, ObjectStore};
use crate::core::stored::entries;
use crate::core::stored::entry::Entry;
use crate::core::stored::keys;
use crate::core::stored::stats::{self, Counter};
use crate::core::Error;

/// `Ok(None)` when the entry's object is gone (the caller regenerates).
/// `coalesced`: this request waited for another's generation.
pub async fn answer<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    slot: &Slot,
    entry: &Entry,
    incoming: &Incoming,
    coalesced: bool,
) -> Result<Option<Reply<S::Body>>, Error> {
    let mut reply = match headers::choose(incoming.if_none_match.as_deref(), &entry.etag, incoming.head) {
        Cached::NotModified => {
            count_hit(&ctx.kv, slot, ctx.env.now_unix())?;
            Reply::empty(304, headers::not_modified(entry))
        }
        Cached::HeadersOnly => {
            // Read, not counted: a HEAD is no hit.
            let hits = ctx.kv.counter(&slot.hits_key())?.unwrap_or(0);
            Reply::empty(200, headers::hit(entry, hits))
        }
        Cached::Object => {
            let Some(object) = ctx.store.get(&entry.object_key).await? else {
                crate::diag!("object {} is missing; regenerating", entry.object_key);
                return Ok(None);
            };
            if object.size != entry.size {
                return Err(Error::Storage(format!(
                    "object {} has {} bytes, entry says {}",
                    entry.object_key, object.size, entry.size
                )));
            }
            let hits = count_hit(&ctx.kv, slot, ctx.env.now_unix())?;
            Reply { status: 200, headers: headers::hit(entry, hits), body: Body::Stream(object.body) }
        }
    };
    if coalesced {
        reply.headers.push(headers::coalesced());
    }
    Ok(Some(reply))
}

/// The cached image's bytes, for the last part of a progressive answer
/// (a request that waited, or found it made just before it would have
/// waited), counted as the plain answer counts it. `Ok(None)` when its
/// object is gone.
pub async fn bytes<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    slot: &Slot,
    entry: &Entry,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(bytes) = ctx.store.get_bytes(&entry.object_key, entry.size as usize).await? else {
        crate::diag!("object {} is missing; regenerating", entry.object_key);
        return Ok(None);
    };
    if bytes.len() as u64 != entry.size {
        return Err(Error::Storage(format!(
            "object {} has {} bytes, entry says {}",
            entry.object_key,
            bytes.len(),
            entry.size
        )));
    }
    count_hit(&ctx.kv, slot, ctx.env.now_unix())?;
    Ok(Some(bytes))
}

/// A hit, in one store call where it can be (what each counter guarantees
/// is `core::stored::stats::hits_step`):
/// - the entry's counter, exact: one atomic increment per hit, and its value
///   is the answer's `X-Cache-Hit-Count`;
/// - the project's `hits`, moved only at the steps `hits_step` names;
/// - the minute of this access (`core::stored::entries`; a variant's hit is an
///   access to its original), written only when it is a new minute (the
///   one read, prefetched with the entry, says which).
fn count_hit(kv: &impl KeyValue, slot: &Slot, now: u64) -> Result<i64, Error> {
    // Read before the count: still among the prefetched reads (`api::kv::prefetch`).
    let minute = entries::minute(now).to_string();
    let seen = keys::seen(&slot.project, slot.image_hash());
    let new_minute = kv.get(&seen).ok().flatten().as_deref() != Some(minute.as_bytes());
    let hits = kv.count_up(&slot.hits_key())?;
    if let Some(step) = stats::hits_step(hits) {
        bump(kv, &slot.project, Counter::Hits, step);
    }
    if new_minute {
        if let Err(e) = kv.set(&seen, minute.as_bytes()) {
            crate::diag!("last access not recorded: {e}");
        }
    }
    Ok(hits)
}
