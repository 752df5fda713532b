//! Answering from the cache: 304 when the client's copy is current, the
//! headers alone for HEAD, otherwise the object streamed from S3.

use super::counters::bump;
use super::live::{Incoming, Ports, Slot};
use super::respond::{Body, Reply};
use crate::core::entry::Entry;
use crate::core::headers;
use crate::core::ports::{KeyValue, ObjectStore};
use crate::core::stats::Counter;
use crate::core::Error;

/// `Ok(None)` when the entry's object is gone (the caller regenerates).
pub async fn answer<K: KeyValue, S: ObjectStore, P, C>(
    ports: &Ports<'_, K, S, P, C>,
    slot: &Slot,
    entry: &Entry,
    incoming: &Incoming<'_>,
    coalesced: bool,
) -> Result<Option<Reply<S::Body>>, Error> {
    let mut reply = if incoming.if_none_match.is_some_and(|h| headers::if_none_match(h, &entry.etag)) {
        count_hit(ports.kv, slot)?;
        Reply { status: 304, headers: headers::not_modified(entry), body: Body::Empty }
    } else if incoming.head {
        // Adding 0 reads the counter atomically without counting a HEAD as a hit.
        let hits = ports.kv.increment(&slot.hits_key(), 0)?;
        Reply { status: 200, headers: headers::hit(entry, hits), body: Body::Empty }
    } else {
        let Some(object) = ports.store.get(&entry.object_key).await? else {
            eprintln!("banatie-live: object {} is missing; regenerating", entry.object_key);
            return Ok(None);
        };
        if object.size != entry.size {
            return Err(Error::Storage(format!(
                "object {} has {} bytes, entry says {}",
                entry.object_key, object.size, entry.size
            )));
        }
        let hits = count_hit(ports.kv, slot)?;
        Reply { status: 200, headers: headers::hit(entry, hits), body: Body::Stream(object.body) }
    };
    if coalesced {
        reply.headers.push(("x-cache-coalesced", "true".into()));
    }
    Ok(Some(reply))
}

fn count_hit(kv: &impl KeyValue, slot: &Slot) -> Result<i64, Error> {
    let hits = kv.increment(&slot.hits_key(), 1)?;
    bump(kv, &slot.project, Counter::Hits, 1);
    Ok(hits)
}
