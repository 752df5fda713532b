//! Taking, holding and releasing a lease key, on any store: by
//! compare-and-swap where the store has one, by a settled claim where it
//! has not (`core::decide::single_flight` says why each is exclusive; the store's
//! kind is `KeyValue::flavour`). `api::live::flight` builds single-flight on it;
//! [`once`] runs a small job once under it.

use crate::api::context::Context;
use crate::core::decide::single_flight::{self, decide, Claimed, Decision, Lease, Seen};
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::platform::Exclusion;
use crate::core::Error;

/// A lease this request holds. Dropped, it is released (if it is still
/// ours): an early return or a panic never leaves it held; [`Held::expire`]
/// leaves it expired in place instead (a failed owner's mark).
pub struct Held<'c, K: KeyValue, E: Env> {
    kv: &'c K,
    env: &'c E,
    pub key: String,
    pub owner: u32,
    bytes: [u8; 8],
    /// Taken from a value that was there (an expired or failed lease), not
    /// from nothing: whoever held it before may have left a failure.
    pub taken_over: bool,
    /// Unix seconds until which nobody else can take it.
    expires_at_s: u32,
    /// Released or expired already.
    settled: bool,
}

impl<K: KeyValue, E: Env> Held<'_, K, E> {
    /// Whether it is still live now (nobody else can have taken it).
    pub fn live(&self) -> bool {
        self.live_at(self.env.now_unix())
    }

    fn live_at(&self, now_s: u64) -> bool {
        now_s < u64::from(self.expires_at_s)
    }

    /// Whether it is still ours: surely, while it has not expired (nobody
    /// can have taken it), else only after reading it back.
    fn still_ours(&self) -> bool {
        self.live() || matches!(self.kv.get(&self.key), Ok(Some(v)) if v == self.bytes)
    }

    /// Drop the lease if it is still ours.
    pub fn release(mut self) {
        self.settled = true;
        self.delete();
    }

    fn delete(&self) {
        if self.still_ours() {
            if let Err(e) = self.kv.delete(&self.key) {
                crate::diag!("lease {} not released (it will expire): {e}", self.key);
            }
        }
    }

    /// Leave the lease expired in place (a failed owner's mark, which its
    /// waiters read as "look at the failure" and newcomers take over), if it
    /// is still ours.
    pub fn expire(mut self) {
        self.settled = true;
        if self.still_ours() {
            let expired = Lease { owner: self.owner, expires_at_s: 0 }.encode();
            if let Err(e) = self.kv.set(&self.key, &expired) {
                crate::diag!("lease {} not marked failed (it will expire): {e}", self.key);
            }
        }
    }
}

impl<K: KeyValue, E: Env> Drop for Held<'_, K, E> {
    fn drop(&mut self) {
        if !self.settled {
            self.delete();
        }
    }
}

/// One try at the lease `key`, after `decision` (from `core::decide::single_flight::decide`)
/// found it free: `Create` makes the key exist, `Acquire` swaps, `Claim`
/// claims and settles. `Ok(None)`: not ours (look again). `round` counts
/// the tries so far (a claim that was too slow backs off by it). A lease
/// whose holder dies is free again after `lifetime_s`.
pub async fn attempt<'c, K: KeyValue, S, P, E: Env>(
    ctx: &'c Context<K, S, P, E>,
    key: &str,
    owner: u32,
    lifetime_s: u64,
    decision: Decision,
    round: u32,
) -> Result<Option<Held<'c, K, E>>, Error> {
    let lease = Lease::new(owner, ctx.env.now_ms(), lifetime_s);
    let mine = lease.encode();
    // Over someone's lease (expired, or failed: maybe with a failure left),
    // not over nothing or the counter 0 that stands for nothing on Spin.
    let mut taken_over = matches!(&decision, Decision::Acquire(current) if Lease::decode(current).is_some());
    let taken = match decision {
        Decision::Create => {
            // Creates a counter 0 if the key is still absent, changes
            // nothing otherwise. On Redis it fails when someone has just
            // stored a lease there: either way, look again.
            let _ = ctx.kv.create_counter(key);
            false
        }
        Decision::Acquire(current) => swap(&ctx.kv, key, &current, &mine)?,
        Decision::Claim => match claim(ctx, key, owner, &mine).await? {
            Claimed::Won(over) => {
                taken_over = over;
                true
            }
            Claimed::Lost => false,
            Claimed::TooSlow => {
                crate::diag!("lease {key}: a claim took lease_settle_ms or longer; it does not count");
                ctx.env.sleep(single_flight::backoff_ms(round)).await;
                false
            }
        },
        Decision::Wait { .. } | Decision::Fail(_) => false,
    };
    Ok(taken.then(|| Held {
        kv: &ctx.kv,
        env: &ctx.env,
        key: key.to_string(),
        owner,
        bytes: mine,
        taken_over,
        expires_at_s: lease.expires_at_s,
        settled: false,
    }))
}

/// CAS from `current` to `mine`. A swap reported as failed may still have
/// been applied (Spin's Redis store): the key holding our bytes settles it.
fn swap(kv: &impl KeyValue, key: &str, current: &[u8], mine: &[u8]) -> Result<bool, Error> {
    if kv.compare_and_swap(key, current, mine)? {
        return Ok(true);
    }
    Ok(kv.get(key)?.as_deref() == Some(mine))
}

/// A settled claim (stores without CAS): read the lease and, if it is free
/// (or our own leftover), write ours; from before the read to after the
/// write must fit in `lease_settle_ms`; then wait that long and read it back.
async fn claim<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    key: &str,
    owner: u32,
    mine: &[u8],
) -> Result<Claimed, Error> {
    let settle = ctx.config.lease_settle_ms;
    let started = ctx.env.monotonic_ms();
    let now = ctx.env.now_ms();
    let seen = single_flight::observe(now, ctx.kv.get(key)?);
    let over = matches!(&seen, Seen::Free(bytes) if Lease::decode(bytes).is_some());
    if decide(now, seen, owner, Exclusion::SettledClaim, None, None) != Decision::Claim {
        return Ok(Claimed::Lost);
    }
    ctx.kv.set(key, mine)?;
    let written = ctx.env.monotonic_ms().saturating_sub(started);
    let read_back = if written < settle {
        ctx.env.sleep(settle).await;
        ctx.kv.get(key)?
    } else {
        None
    };
    Ok(single_flight::claim_settled(written, settle, mine, read_back.as_deref(), over))
}

/// How long [`once`] waits for a lease someone else holds.
const MAX_WAIT_MS: u64 = 5_000;
/// How long a lease of [`once`] lives if its holder dies.
const CRITICAL_SECTION_S: u64 = 10;

/// Take the lease `key` (for `lifetime_s`), waiting up to `max_wait_ms`
/// while someone else holds it; then 503 busy.
pub async fn hold<'c, K: KeyValue, S, P, E: Env>(
    ctx: &'c Context<K, S, P, E>,
    key: &str,
    lifetime_s: u64,
    max_wait_ms: u64,
) -> Result<Held<'c, K, E>, Error> {
    let never_done = || Ok(None::<std::convert::Infallible>);
    match hold_unless(ctx, key, lifetime_s, max_wait_ms, never_done).await? {
        Ok(held) => Ok(held),
        Err(never) => match never {},
    }
}

/// [`hold`], unless `done` finds it not needed (asked before each try):
/// then what `done` found.
async fn hold_unless<'c, K: KeyValue, S, P, E: Env, D>(
    ctx: &'c Context<K, S, P, E>,
    key: &str,
    lifetime_s: u64,
    max_wait_ms: u64,
    done: impl Fn() -> Result<Option<D>, Error>,
) -> Result<Result<Held<'c, K, E>, D>, Error> {
    let owner = single_flight::owner_id(ctx.env.random_u32());
    let exclusion = ctx.kv.flavour().exclusion();
    let started = ctx.env.monotonic_ms();
    let mut round = 0;
    loop {
        if let Some(found) = done()? {
            return Ok(Err(found));
        }
        if ctx.env.monotonic_ms().saturating_sub(started) > max_wait_ms {
            return Err(Error::Busy { retry_after: 1 });
        }
        let now = ctx.env.now_ms();
        let seen = single_flight::observe(now, ctx.kv.get(key)?);
        match decide(now, seen, owner, exclusion, None, None) {
            Decision::Wait { .. } => ctx.env.sleep(single_flight::backoff_ms(round)).await,
            decision => {
                if let Some(held) = attempt(ctx, key, owner, lifetime_s, decision, round).await? {
                    return Ok(Ok(held));
                }
            }
        }
        round += 1;
    }
}

/// Make `done` true, once, even when many requests ask at the same moment:
/// while it is not, one request (the holder of the lease `key`) runs `work`
/// and the others wait for `done` (a single-flight for a small job:
/// creating a counter, adding a slug to an index). Waits up to five
/// seconds for another holder, then answers 503 busy.
pub async fn once<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    key: &str,
    done: impl Fn() -> Result<bool, Error>,
    work: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    let is_done = || Ok(done()?.then_some(()));
    let Ok(held) = hold_unless(ctx, key, CRITICAL_SECTION_S, MAX_WAIT_MS, is_done).await? else {
        return Ok(());
    };
    let result = if done()? { Ok(()) } else { work() };
    held.release();
    result
}
