//! Single-flight, carried out: take the lease or wait for its owner, over the
//! state machine in `core::single_flight`. Concurrent identical misses, on
//! one host or many sharing a KV store, cause one provider call.

use super::cached;
use super::live::{lookup, Env, Incoming, Ports, Slot};
use super::respond::Reply;
use crate::core::entry::Entry;
use crate::core::ports::{Clock, KeyValue, ObjectStore};
use crate::core::single_flight::{self, decide, Decision, Lease};
use crate::core::Error;

pub enum Joined<B> {
    /// This request holds the lease and must generate.
    Owner(Held),
    /// Another request generated it; here is the cached answer.
    Served(Reply<B>),
}

/// A lease this request holds.
pub struct Held {
    key: String,
    owner: String,
    bytes: Vec<u8>,
}

/// Become the owner of the generation for `slot`, or wait for the owner and
/// answer from the cache. `stale` is an entry whose object vanished: it does
/// not count as an answer.
pub async fn join<K: KeyValue, S: ObjectStore, P, C: Clock>(
    ports: &Ports<'_, K, S, P, C>,
    env: &Env,
    slot: &Slot,
    incoming: &Incoming<'_>,
    stale: Option<&Entry>,
) -> Result<Joined<S::Body>, Error> {
    let key = single_flight::lease_key(&slot.project, &slot.hash);
    let owner = (env.new_id)();
    let started = ports.clock.now_ms();
    let mut waited_on: Option<String> = None;
    let mut attempt = 0;
    loop {
        let now = ports.clock.now_ms();
        let current = ports.kv.get(&key)?;
        match decide(now, current.as_deref().and_then(Lease::decode).as_ref(), waited_on.as_deref()) {
            Decision::Acquire => {
                let mine =
                    single_flight::generating(&owner, now, ports.config.generation_lease_seconds).encode();
                if !ports.kv.compare_and_swap(&key, current.as_deref(), &mine)? {
                    continue; // someone else took it first: wait for them
                }
                let held = Held { key, owner, bytes: mine };
                // Someone may have finished between our lookup and our lease.
                if let Some(reply) = fresh_answer(ports, slot, incoming, stale).await? {
                    release(ports.kv, &held);
                    return Ok(Joined::Served(reply));
                }
                return Ok(Joined::Owner(held));
            }
            Decision::Wait { owner: theirs } => {
                if now.saturating_sub(started) >= ports.config.coalesce_wait_seconds * 1000 {
                    let retry_after =
                        single_flight::give_up_retry_after(ports.config.generation_lease_seconds);
                    return Err(Error::Busy { retry_after });
                }
                waited_on = Some(theirs);
                ports.clock.sleep(single_flight::backoff_ms(attempt)).await;
                attempt += 1;
                if let Some(reply) = fresh_answer(ports, slot, incoming, stale).await? {
                    return Ok(Joined::Served(reply));
                }
            }
            Decision::Fail(error) => return Err(error),
        }
    }
}

/// The cached answer, if an entry other than `stale` is there now.
async fn fresh_answer<K: KeyValue, S: ObjectStore, P, C>(
    ports: &Ports<'_, K, S, P, C>,
    slot: &Slot,
    incoming: &Incoming<'_>,
    stale: Option<&Entry>,
) -> Result<Option<Reply<S::Body>>, Error> {
    match lookup(ports.kv, slot)? {
        Some(entry) if stale.is_none_or(|s| s.image_id != entry.image_id) => {
            cached::answer(ports, slot, &entry, incoming, true).await
        }
        _ => Ok(None),
    }
}

/// Drop the lease after success, if it is still ours.
pub fn release(kv: &impl KeyValue, held: &Held) {
    let still_ours = matches!(kv.get(&held.key), Ok(Some(v)) if v == held.bytes);
    if still_ours {
        if let Err(e) = kv.delete(&held.key) {
            eprintln!("banatie-live: lease not released (it will expire): {e}");
        }
    }
}

/// Leave the failure for the requests that waited on us.
pub fn fail(kv: &impl KeyValue, held: &Held, now_ms: u64, error: &Error) {
    let failed = single_flight::failed(&held.owner, now_ms, error).encode();
    if let Err(e) = kv.compare_and_swap(&held.key, Some(&held.bytes), &failed) {
        eprintln!("banatie-live: failed lease not recorded (it will expire): {e}");
    }
}
