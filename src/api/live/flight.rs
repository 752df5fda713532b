//! Single-flight, carried out: take the lease (`api::kv::lease`) or wait for its
//! owner, over the state machine in `core::decide::single_flight` (which says why
//! the lease is exclusive on each runtime). Concurrent identical misses, on
//! one host or many sharing a KV store, cause one provider call (for a
//! variant, one derivation).

use crate::api::context::Context;
use crate::api::kv::expiry;
use crate::api::kv::lease;
use crate::api::kv::slot::Slot;
use crate::core::decide::single_flight::{self, decide, Decision, Failure, Seen};
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::entry::Entry;
use crate::core::stored::expiry::Expiring;
use crate::core::stored::keys;
use crate::core::Error;

/// Rounds of create/acquire/claim that may find the key changed under them
/// before the request gives up as busy (each round is a few KV operations;
/// a claim also waits `lease_settle_ms`).
const MAX_CONTENDED_ROUNDS: u32 = 64;

pub enum Joined<'c, K: KeyValue, E: Env, R> {
    /// This request holds the lease and must make the image; `R` is what it
    /// reserved before it took it.
    Owner(Lease<'c, K, E>, R),
    /// Another request made it (while this one waited, or just before it
    /// took the lease): its entry.
    Ready(Box<Entry>),
}

/// The lease on making an image (a generation or a derivation) that this
/// request holds, and where its failure would go. It is settled once, by
/// [`Lease::succeed`] or [`Lease::fail`]; dropped unsettled (an early return,
/// a panic), it is released and its waiters look again.
pub struct Lease<'c, K: KeyValue, E: Env> {
    held: lease::Held<'c, K, E>,
    kv: &'c K,
    env: &'c E,
    failure_key: String,
}

impl<K: KeyValue, E: Env> Lease<'_, K, E> {
    /// Whether nobody else can have taken the lease by now (it has not
    /// expired): the slot holds what this request read under it.
    pub fn exclusive(&self) -> bool {
        self.held.live()
    }

    /// After a success: release, and forget the failure an earlier owner left
    /// (it no longer applies). A failed owner leaves its lease expired in
    /// place (`fail`), so only a lease taken over can have one.
    pub fn succeed(self) {
        let taken_over = self.held.taken_over;
        self.held.release();
        if taken_over {
            if let Err(e) = self.kv.delete(&self.failure_key) {
                crate::diag!("old failure record not removed: {e}");
            }
        }
    }

    /// Leave the failure for the requests that waited on us, and our lease
    /// expired in place: its waiters read the failure, newcomers take it over
    /// (and remove the failure when they succeed). Both are noted for removal
    /// once the hour is over (`api::kv::expiry`), if nobody has replaced them.
    pub fn fail(self, error: &Error) {
        let now_ms = self.env.now_ms();
        let failure = Failure::new(self.held.owner, now_ms, error).encode();
        if let Err(e) = self.kv.set(&self.failure_key, &failure) {
            crate::diag!("failure not recorded for the waiters: {e}");
        }
        let row = Expiring::Failure {
            owner: self.held.owner,
            lease: self.held.key.clone(),
            failure: self.failure_key.clone(),
        };
        self.held.expire();
        expiry::note(self.kv, &row, now_ms / 1000);
    }
}

/// Become the owner of the making of `slot`'s image, or wait for the owner
/// and have its entry. `stale` is the entry this request replaces (its
/// object vanished, it is being regenerated, or it is a variant of an earlier
/// original): it does not count as made.
/// `reserve` is asked before this request would take the lease (never while
/// it waits on another's), until it succeeds; what it reserved is kept
/// across rounds, and dropped (given back) unless this request becomes the
/// owner.
pub async fn join<'c, K: KeyValue, S, P, E: Env, R>(
    ctx: &'c Context<K, S, P, E>,
    slot: &Slot,
    stale: Option<&Entry>,
    mut reserve: impl FnMut() -> Result<R, Error>,
) -> Result<Joined<'c, K, E, R>, Error> {
    let key = keys::lease(&slot.project, &slot.hash);
    let failure_key = keys::failure(&slot.project, &slot.hash);
    let owner = single_flight::owner_id(ctx.env.random_u32());
    let exclusion = ctx.kv.flavour().exclusion();
    let started = ctx.env.now_ms();
    let busy = || Error::Busy {
        retry_after: single_flight::give_up_retry_after(ctx.config.generation_lease_seconds),
    };
    let mut waited_on: Option<u32> = None;
    let mut reserved: Option<R> = None;
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
                if let Some(entry) = fresh(&ctx.kv, slot, stale)? {
                    return Ok(Joined::Ready(Box::new(entry)));
                }
            }
            Decision::Fail(error) => return Err(error),
            free => {
                let mine = match reserved.take() {
                    Some(mine) => mine,
                    None => match reserve() {
                        Ok(mine) => mine,
                        Err(refused) => {
                            // Someone may have taken the lease (and spent the
                            // last unit) since we looked: then wait for them.
                            let seen = single_flight::observe(ctx.env.now_ms(), ctx.kv.get(&key)?);
                            if matches!(seen, Seen::Held(_)) {
                                continue;
                            }
                            return Err(refused);
                        }
                    },
                };
                contended += 1;
                if contended > MAX_CONTENDED_ROUNDS {
                    return Err(busy());
                }
                let lifetime = ctx.config.generation_lease_seconds;
                let Some(held) = lease::attempt(ctx, &key, owner, lifetime, free, contended).await? else {
                    reserved = Some(mine);
                    continue; // someone else took it first: wait for them
                };
                let lease = Lease { held, kv: &ctx.kv, env: &ctx.env, failure_key };
                // Someone may have finished between our lookup and our lease
                // (seen under load: a whole generation fits in that gap). Then,
                // or when the lookup fails, the lease is released as it is
                // dropped (not left to expire: its waiters would wait for
                // nothing), and what was reserved is given back.
                return match fresh(&ctx.kv, slot, stale) {
                    Ok(None) => Ok(Joined::Owner(lease, mine)),
                    Ok(Some(entry)) => Ok(Joined::Ready(Box::new(entry))),
                    Err(e) => Err(e),
                };
            }
        }
    }
}

/// The entry, if one other than `stale` is there now.
fn fresh(kv: &impl KeyValue, slot: &Slot, stale: Option<&Entry>) -> Result<Option<Entry>, Error> {
    Ok(slot.lookup(kv)?.filter(|entry| stale.is_none_or(|s| s.image_id != entry.image_id)))
}
