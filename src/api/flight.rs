//! Single-flight, carried out: take the lease (`api::lease`) or wait for its
//! owner, over the state machine in `core::single_flight` (which says why
//! the lease is exclusive on each runtime). Concurrent identical misses, on
//! one host or many sharing a KV store, cause one provider call.

use super::context::Context;
use super::lease;
use super::slot::Slot;
use crate::core::entry::Entry;
use crate::core::keys;
use crate::core::ports::{Env, KeyValue};
use crate::core::single_flight::{self, decide, Decision, Failure};
use crate::core::Error;

/// Rounds of create/acquire/claim that may find the key changed under them
/// before the request gives up as busy (each round is a few KV operations;
/// a claim also waits `lease_settle_ms`).
const MAX_CONTENDED_ROUNDS: u32 = 64;

pub enum Joined<T> {
    /// This request holds the lease and must generate.
    Owner(Held),
    /// Another request generated it; here is the cached answer.
    Served(T),
}

/// A generation's lease this request holds, and where its failure would go.
pub struct Held {
    lease: lease::Held,
    failure_key: String,
}

/// Become the owner of the generation for `slot`, or wait for the owner and
/// answer from the cache with `answer` (`Ok(None)`: the entry does not do,
/// e.g. its object vanished). `stale` is an entry whose object vanished: it
/// does not count as an answer. `may_take` is asked before this request would
/// take the lease (never while it waits on another's).
pub async fn join<K: KeyValue, S, P, E: Env, T>(
    ctx: &Context<K, S, P, E>,
    slot: &Slot,
    stale: Option<&Entry>,
    may_take: impl Fn() -> Result<(), Error>,
    answer: impl AsyncFn(&Entry) -> Result<Option<T>, Error>,
) -> Result<Joined<T>, Error> {
    let key = keys::lease(&slot.project, &slot.hash);
    let failure_key = keys::failure(&slot.project, &slot.hash);
    let owner = single_flight::owner_id(ctx.env.random_u32());
    let exclusion = ctx.kv.flavour().exclusion();
    let started = ctx.env.now_ms();
    let busy = || Error::Busy {
        retry_after: single_flight::give_up_retry_after(ctx.config.generation_lease_seconds),
    };
    let mut waited_on: Option<u32> = None;
    let mut attempt = 0;
    let mut contended = 0;
    loop {
        let now = ctx.env.now_ms();
        let seen = single_flight::observe(now, ctx.kv.get(&key)?);
        let failure = if single_flight::must_check_failure(&seen, waited_on) {
            ctx.kv.get(&failure_key)?.as_deref().and_then(Failure::decode)
        } else {
            None
        };
        match decide(now, seen, owner, exclusion, waited_on, failure.as_ref()) {
            Decision::Wait { owner: theirs } => {
                if now.saturating_sub(started) >= ctx.config.coalesce_wait_seconds * 1000 {
                    return Err(busy());
                }
                waited_on = Some(theirs);
                ctx.env.sleep(single_flight::backoff_ms(attempt)).await;
                attempt += 1;
                if let Some(reply) = fresh_answer(&ctx.kv, slot, stale, &answer).await? {
                    return Ok(Joined::Served(reply));
                }
            }
            Decision::Fail(error) => return Err(error),
            free => {
                may_take()?;
                contended += 1;
                if contended > MAX_CONTENDED_ROUNDS {
                    return Err(busy());
                }
                let lifetime = ctx.config.generation_lease_seconds;
                let Some(lease) = lease::attempt(ctx, &key, owner, lifetime, free, contended).await? else {
                    continue; // someone else took it first: wait for them
                };
                let held = Held { lease, failure_key };
                // Someone may have finished between our lookup and our lease.
                return match fresh_answer(&ctx.kv, slot, stale, &answer).await {
                    Ok(None) => Ok(Joined::Owner(held)),
                    Ok(Some(reply)) => {
                        release(&ctx.kv, &held);
                        Ok(Joined::Served(reply))
                    }
                    Err(e) => {
                        // Not left to expire: the waiters would wait for nothing.
                        release(&ctx.kv, &held);
                        Err(e)
                    }
                };
            }
        }
    }
}

/// The cached answer, if an entry other than `stale` is there now.
async fn fresh_answer<T>(
    kv: &impl KeyValue,
    slot: &Slot,
    stale: Option<&Entry>,
    answer: &impl AsyncFn(&Entry) -> Result<Option<T>, Error>,
) -> Result<Option<T>, Error> {
    match slot.lookup(kv)? {
        Some(entry) if stale.is_none_or(|s| s.image_id != entry.image_id) => answer(&entry).await,
        _ => Ok(None),
    }
}

/// Drop the lease if it is still ours.
pub fn release(kv: &impl KeyValue, held: &Held) {
    lease::release(kv, &held.lease)
}

/// After a success: release, and forget any failure an earlier owner left
/// (it no longer applies).
pub fn succeed(kv: &impl KeyValue, held: &Held) {
    release(kv, held);
    // Looked up first: deleting a key that is not there writes a delete
    // marker on NATS JetStream, one more row per prompt.
    if let Err(e) = kv.get(&held.failure_key).and_then(|f| f.map_or(Ok(()), |_| kv.delete(&held.failure_key)))
    {
        eprintln!("banatie-live: old failure record not removed: {e}");
    }
}

/// Leave the failure for the requests that waited on us, then release.
pub fn fail(kv: &impl KeyValue, held: &Held, now_ms: u64, error: &Error) {
    let failure = Failure::new(held.lease.owner, now_ms, error).encode();
    if let Err(e) = kv.set(&held.failure_key, &failure) {
        eprintln!("banatie-live: failure not recorded for the waiters: {e}");
    }
    release(kv, held);
}
