//! `DELETE /api/v1/live/generate?...` (X-API-Key): remove one entry and its
//! object. The entry goes first, so no entry ever points at a deleted object;
//! the next GET for the same parameters is a MISS.

use super::auth;
use super::counters::bump;
use super::live::{slot_for, Ports};
use super::respond::{Body, Reply};
use crate::core::entry::Entry;
use crate::core::ports::{KeyValue, ObjectStore};
use crate::core::request;
use crate::core::stats::Counter;
use crate::core::Error;

pub async fn delete<K: KeyValue, S: ObjectStore, P, C>(
    ports: &Ports<'_, K, S, P, C>,
    query: &str,
    api_key: Option<&str>,
) -> Result<Reply<S::Body>, Error> {
    let (raw, request) = request::parse(query, ports.config.max_prompt_length)?;
    if raw.signed.is_some() {
        return Err(Error::Forbidden("signed URLs cannot purge; use X-API-Key"));
    }
    let project = auth::project_by_key(ports.kv, api_key)?;
    let slot = slot_for(ports.config, &project.id, &request);
    // The raw value, so that an entry that cannot be decoded is removed too.
    let raw =
        ports.kv.get(&slot.entry_key)?.ok_or(Error::NotFound("no cached image for these parameters"))?;
    ports.kv.delete(&slot.entry_key)?;
    if let Err(e) = ports.kv.delete(&slot.hits_key()) {
        eprintln!("banatie-live: hit counter not removed: {e}");
    }
    bump(ports.kv, &project.id, Counter::Entries, -1);
    match Entry::decode(&raw) {
        Ok(entry) => {
            bump(ports.kv, &project.id, Counter::Bytes, -(entry.size as i64));
            if let Err(e) = ports.store.delete(&entry.object_key).await {
                eprintln!("banatie-live: purged entry's object {} not deleted: {e}", entry.object_key);
            }
        }
        Err(e) => eprintln!("banatie-live: purged an unreadable entry {}: {e}", slot.entry_key),
    }
    Ok(Reply { status: 204, headers: vec![("cache-control", "no-store".into())], body: Body::Empty })
}
