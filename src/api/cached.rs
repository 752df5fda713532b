//! Answering from the cache, as `core::headers::choose` decides: 304 when
//! the client's copy is current, the headers alone for HEAD, otherwise the
//! object streamed from S3.

use super::context::{Context, Incoming};
use super::counters::bump;
use super::reply::{Body, Reply};
use super::slot::Slot;
use crate::core::entries;
use crate::core::entry::Entry;
use crate::core::headers::{self, Cached};
use crate::core::keys;
use crate::core::ports::{Env, KeyValue, ObjectStore};
use crate::core::stats::Counter;
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

/// A hit: the entry's counter (its value is the answer's header), the
/// project's counter, and the minute of this access (`core::entries`; a
/// variant's hit is an access to its original).
fn count_hit(kv: &impl KeyValue, slot: &Slot, now: u64) -> Result<i64, Error> {
    let hits = kv.increment(&slot.hits_key(), 1)?;
    bump(kv, &slot.project, Counter::Hits, 1);
    let minute = entries::minute(now).to_string();
    if let Err(e) = kv.set(&keys::seen(&slot.project, slot.image_hash()), minute.as_bytes()) {
        crate::diag!("last access not recorded: {e}");
    }
    Ok(hits)
}
