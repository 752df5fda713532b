//! `DELETE /api/v1/live/generate?...` (X-API-Key): remove one entry and its
//! object, and every variant derived from it (any `w`/`format` in the URL
//! names the same image). The entry goes first, so no entry ever points at a deleted object;
//! the next GET for the same parameters is a MISS.

use super::context::Context;
use super::counters::bump;
use super::derived;
use super::reply::Reply;
use super::slot::Slot;
use crate::core::entry::Entry;
use crate::core::headers;
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
    variant::parse(&query.pairs, &ctx.config.variant_widths)?;
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
    derived::purge_all(ctx, &project.id, &slot.hash).await;
    Ok(Reply::empty(204, headers::deleted()))
}
