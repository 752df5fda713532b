//! Single-flight for concurrent identical misses, across instances and hosts.
//!
//! The first request takes a lease in KV (owner + expiry) and generates; the
//! others wait, polling the entry with backoff, and answer from the cache. A
//! lease whose owner died expires and is taken over. When the owner fails it
//! records the failure under `failed:{project}:{hash}`, naming itself, so the
//! requests that were waiting on *that* owner get the same error; a request
//! that did not wait on it tries again (errors are never cached).
//!
//! # Which primitive makes the lease exclusive, on each runtime
//! (`core::stored::platform` has the facts, with their sources.)
//!
//! **Spin 3.x/4.x (SQLite, Redis) and banatie-host: a compare-and-swap from a
//! value that *exists*.** The stores differ everywhere else:
//! - Spin's SQLite store (`crates/key-value-spin/src/store.rs`, `swap`) turns a
//!   CAS whose expected value is absent into `INSERT … ON CONFLICT DO UPDATE`:
//!   an upsert that always succeeds, so two racing "absent → mine" both win.
//!   A CAS from an existing value is `UPDATE … WHERE value = old`: exclusive.
//! - Spin's Redis store (`crates/key-value-redis/src/store.rs`) does `WATCH` +
//!   `GET` in `current`, `MULTI`/`SET`/`EXEC` in `swap`: exclusive, but its
//!   closing `UNWATCH key` is refused by Redis (UNWATCH takes no argument), so
//!   a swap reports `cas-failed` although its SET was applied.
//!
//! So there the lease is never taken from *absent*: an absent lease is first
//! created with `increment(key, 0)`, the one create-if-absent that both
//! stores do atomically and that never overwrites (a counter 0: eight zero
//! bytes on SQLite, `"0"` on Redis). That is why a lease is exactly eight
//! bytes: `increment(key, 0)` on an eight-byte value rewrites it unchanged
//! on SQLite (where any other length makes Spin panic). The lease is then
//! taken by a CAS from the value just read, and a swap reported as failed is
//! checked by reading the key back: the value holds a random owner id, so
//! finding our own bytes means our SET was applied.
//!
//! **wasmCloud 1.x and 2 (Redis, NATS JetStream, a directory, memory): a
//! settled claim.** Their `wasi:keyvalue` draft has no CAS, and no increment
//! that is atomic on every backend either (on NATS the first increment of a
//! key never written is a plain `put`, so two can both read 1; the directory
//! store reads then writes), so a ticket counter would not do. What every
//! backend has is a read that sees every write completed before it, and the
//! component has a monotonic clock. Fischer's protocol (Lamport, "A Fast
//! Mutual Exclusion Algorithm", 1987, §1) builds exclusion on exactly that:
//! read the lease; if it is free, write our own lease; then wait
//! `settle` (`lease_settle_ms`) and read again: our own bytes mean ours.
//! The claim counts only if our read and our write both fit in `settle`,
//! measured from before the read to after the write returned: a claimant
//! held up between its read and its write (a pause, a slow store) finds out
//! (the component logs it) and claims again. What it cannot undo is its late
//! write: if that landed after another claimant had already won, the winner's
//! lease is overwritten and the late claimant's next claim (over its own
//! bytes) wins too, so two generate. Exclusion is exact while reads and
//! writes take less than `settle`; past that, the cost is one more provider
//! call (and one more object), never a wrong answer. `lease_settle_ms` is
//! that margin: raise it where the store is slow.
//!
//! Why it is exclusive: say A and B both own, A's write landing first. A's
//! read-back, `settle` after its write, still saw A's bytes, so B wrote
//! later than that, and B's read came less than `settle` before B's write,
//! so after A's write: it saw A's live lease (or A's release: then A's turn
//! was over), not a free one — B never wrote. The one assumption is that
//! reads are not stale: true of Redis, of NATS at the stream's leader, of a
//! directory and of memory; a replicated JetStream bucket read through a
//! lagging follower needs its lag below `settle`. Cost: `settle` once per
//! generation or derivation on wasmCloud (a claim that loses waits anyway).
//!
//! This module is the state machine only: `observe` reads a stored lease,
//! `decide(now, seen, …)` says what to do, `claim_settled` judges a claim;
//! `api::live::flight` does it.

use serde::{Deserialize, Serialize};

use crate::http::error::SharedFailure;
use crate::stored::platform::Exclusion;
use crate::Error;

/// How long a failure stays readable for the waiters of its owner.
pub const FAILURE_MEMORY_MS: u64 = 10_000;
pub const DEFAULT_LEASE_SECONDS: u64 = 120;
pub const DEFAULT_COALESCE_WAIT_SECONDS: u64 = 60;
/// How long a claim settles on stores without CAS (`lease_settle_ms`).
pub const DEFAULT_SETTLE_MS: u64 = 100;

/// A held lease: 8 bytes, the owner's random id then the expiry in unix
/// seconds, both u32 little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: u32,
    pub expires_at_s: u32,
}

impl Lease {
    /// A lease for `owner` from `now_ms`, rounded up to the next second.
    pub fn new(owner: u32, now_ms: u64, lease_seconds: u64) -> Lease {
        let expires_ms = now_ms + lease_seconds * 1000;
        Lease { owner, expires_at_s: expires_ms.div_ceil(1000).min(u32::MAX as u64) as u32 }
    }

    pub fn encode(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&self.owner.to_le_bytes());
        out[4..].copy_from_slice(&self.expires_at_s.to_le_bytes());
        out
    }

    /// `None` for anything that is not a lease (a counter 0, an old format).
    pub fn decode(bytes: &[u8]) -> Option<Lease> {
        let bytes: [u8; 8] = bytes.try_into().ok()?;
        let owner = u32::from_le_bytes(bytes[..4].try_into().ok()?);
        let expires_at_s = u32::from_le_bytes(bytes[4..].try_into().ok()?);
        (owner != 0).then_some(Lease { owner, expires_at_s })
    }

    fn live_at(&self, now_ms: u64) -> bool {
        u64::from(self.expires_at_s) * 1000 > now_ms
    }
}

/// A random owner id for a lease from 32 random bits (never 0, which reads
/// as "no owner").
pub fn owner_id(random: u32) -> u32 {
    random.max(1)
}

/// What the lease key holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// No value at all: create it before anything else (`increment(key, 0)`).
    Absent,
    /// A value nobody holds (a counter 0, an expired or unreadable lease):
    /// take it by CAS from exactly these bytes.
    Free(Vec<u8>),
    /// A live lease.
    Held(Lease),
    /// Nothing readable yet: an empty value is a file the directory store
    /// is writing (it truncates, then writes). Look again shortly.
    Unsettled,
}

pub fn observe(now_ms: u64, value: Option<Vec<u8>>) -> Seen {
    match value {
        None => Seen::Absent,
        Some(bytes) if bytes.is_empty() => Seen::Unsettled,
        Some(bytes) => match Lease::decode(&bytes) {
            Some(lease) if lease.live_at(now_ms) => Seen::Held(lease),
            _ => Seen::Free(bytes),
        },
    }
}

/// The failure an owner leaves for the requests that waited on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub owner: u32,
    pub until_ms: u64,
    pub error: SharedFailure,
}

impl Failure {
    pub fn new(owner: u32, now_ms: u64, error: &Error) -> Failure {
        Failure { owner, until_ms: now_ms + FAILURE_MEMORY_MS, error: error.share() }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a failure serialises")
    }

    /// An unreadable record is no failure (it is replaced or deleted later).
    pub fn decode(bytes: &[u8]) -> Option<Failure> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Whether the failure record must be read before deciding: only when we
/// waited on an owner that no longer holds the lease.
pub fn must_check_failure(seen: &Seen, waited_on: Option<u32>) -> bool {
    match (seen, waited_on) {
        (_, None) => false,
        (Seen::Held(lease), Some(theirs)) => lease.owner != theirs,
        (Seen::Unsettled, _) => false,
        (_, Some(_)) => true,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// CAS stores: the lease key does not exist: create it
    /// (`increment(key, 0)`), then look again.
    Create,
    /// CAS stores: nobody holds it: CAS from these bytes to a lease of ours.
    Acquire(Vec<u8>),
    /// Stores without CAS: nobody holds it: claim it and let it settle.
    Claim,
    /// `owner` is generating (0: someone is writing the key): wait for it.
    Wait { owner: u32 },
    /// The owner we waited on failed: answer with its error.
    Fail(Error),
}

/// What to do about the lease as `seen`, for the request whose owner id is
/// `me`, on a store whose exclusion primitive is `exclusion`.
pub fn decide(
    now_ms: u64,
    seen: Seen,
    me: u32,
    exclusion: Exclusion,
    waited_on: Option<u32>,
    failure: Option<&Failure>,
) -> Decision {
    if let (Some(theirs), Some(f)) = (waited_on, failure) {
        if f.owner == theirs && f.until_ms > now_ms {
            return Decision::Fail(Error::Shared(f.error.clone()));
        }
    }
    match (seen, exclusion) {
        (Seen::Absent, Exclusion::CompareAndSwap) => Decision::Create,
        (Seen::Free(bytes), Exclusion::CompareAndSwap) => Decision::Acquire(bytes),
        (Seen::Absent | Seen::Free(_), Exclusion::SettledClaim) => Decision::Claim,
        // Our own claim, left by a write that came too late to count: claim again.
        (Seen::Held(lease), Exclusion::SettledClaim) if lease.owner == me => Decision::Claim,
        (Seen::Held(lease), _) => Decision::Wait { owner: lease.owner },
        (Seen::Unsettled, _) => Decision::Wait { owner: 0 },
    }
}

/// How a settled claim ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// Ours: written in time, and still ours after settling; `true` when it
    /// was taken over from a lease that was there (expired or failed).
    Won(bool),
    /// Someone else's claim came after ours: wait for them.
    Lost,
    /// Our read and write took `settle` or longer: the claim does not count
    /// (whatever it overwrote may be a lease that was already won).
    TooSlow,
}

/// Judge a claim: `write_ms` from before the read that found the lease free
/// to after our write returned, what the read `settle` later found, and
/// whether what we claimed over was a lease (`over`) or nothing.
pub fn claim_settled(
    write_ms: u64,
    settle_ms: u64,
    mine: &[u8],
    read_back: Option<&[u8]>,
    over: bool,
) -> Claimed {
    if write_ms >= settle_ms {
        Claimed::TooSlow
    } else if read_back == Some(mine) {
        Claimed::Won(over)
    } else {
        Claimed::Lost
    }
}

/// Poll interval after `attempt` waits: 25 ms doubling to at most 400 ms.
pub fn backoff_ms(attempt: u32) -> u64 {
    (25u64 << attempt.min(4)).min(400)
}

/// Retry-After for a waiter that gave up.
pub fn give_up_retry_after(lease_seconds: u64) -> u64 {
    lease_seconds.clamp(1, 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_eight_bytes_owner_then_expiry() {
        let l = Lease::new(0x0102_0304, 1_700_000_000_001, 120);
        assert_eq!(l.expires_at_s, 1_700_000_121, "rounded up to the next second");
        assert_eq!(l.encode(), [4, 3, 2, 1, 121, 241, 83, 101]);
        assert_eq!(Lease::decode(&l.encode()), Some(l));
    }

    #[test]
    fn counters_and_old_formats_are_free_not_leases() {
        let now = 5_000;
        assert_eq!(observe(now, None), Seen::Absent);
        // `increment(key, 0)` on Spin's SQLite store: eight zero bytes.
        assert_eq!(observe(now, Some(vec![0; 8])), Seen::Free(vec![0; 8]));
        // ... and on Spin's Redis store: the text "0".
        assert_eq!(observe(now, Some(b"0".to_vec())), Seen::Free(b"0".to_vec()));
        let old = br#"{"state":"generating","owner":"a","expires_at_ms":9}"#.to_vec();
        assert_eq!(observe(now, Some(old.clone())), Seen::Free(old));
    }

    #[test]
    fn live_leases_are_held_and_expired_ones_free() {
        let l = Lease::new(7, 1000, 2);
        assert_eq!(observe(2999, Some(l.encode().to_vec())), Seen::Held(l));
        assert_eq!(observe(3000, Some(l.encode().to_vec())), Seen::Free(l.encode().to_vec()));
    }

    const CAS: Exclusion = Exclusion::CompareAndSwap;
    const SETTLE: Exclusion = Exclusion::SettledClaim;

    #[test]
    fn absent_is_created_never_swapped() {
        assert_eq!(decide(0, Seen::Absent, 1, CAS, None, None), Decision::Create);
        assert_eq!(decide(0, Seen::Free(vec![0; 8]), 1, CAS, None, None), Decision::Acquire(vec![0; 8]));
        let held = Lease::new(9, 0, 60);
        assert_eq!(decide(0, Seen::Held(held), 1, CAS, None, None), Decision::Wait { owner: 9 });
    }

    #[test]
    fn without_cas_a_free_lease_is_claimed_and_a_held_one_waited_for() {
        assert_eq!(decide(0, Seen::Absent, 1, SETTLE, None, None), Decision::Claim);
        assert_eq!(decide(0, Seen::Free(b"0".to_vec()), 1, SETTLE, None, None), Decision::Claim);
        let theirs = Lease::new(9, 0, 60);
        assert_eq!(decide(0, Seen::Held(theirs), 1, SETTLE, None, None), Decision::Wait { owner: 9 });
        // Our own bytes, left by a claim that was too slow to count: claim again.
        assert_eq!(decide(0, Seen::Held(theirs), 9, SETTLE, None, None), Decision::Claim);
        assert_eq!(decide(0, Seen::Held(theirs), 9, CAS, None, None), Decision::Wait { owner: 9 });
        // A file being written (the directory store): look again.
        assert_eq!(observe(0, Some(Vec::new())), Seen::Unsettled);
        assert_eq!(decide(0, Seen::Unsettled, 1, SETTLE, None, None), Decision::Wait { owner: 0 });
    }

    #[test]
    fn a_claim_counts_only_when_written_in_time_and_still_ours() {
        let mine = Lease::new(7, 0, 60).encode();
        let theirs = Lease::new(8, 0, 60).encode();
        assert_eq!(claim_settled(3, 100, &mine, Some(&mine), false), Claimed::Won(false));
        assert_eq!(claim_settled(3, 100, &mine, Some(&mine), true), Claimed::Won(true));
        assert_eq!(claim_settled(3, 100, &mine, Some(&theirs), false), Claimed::Lost);
        assert_eq!(
            claim_settled(3, 100, &mine, None, false),
            Claimed::Lost,
            "released meanwhile: look again"
        );
        assert_eq!(claim_settled(100, 100, &mine, Some(&mine), false), Claimed::TooSlow);
    }

    #[test]
    fn a_failure_reaches_only_the_owners_waiters() {
        let f = Failure::new(7, 1000, &Error::PromptRefused("SAFETY".into()));
        match decide(1001, Seen::Free(vec![0; 8]), 1, CAS, Some(7), Some(&f)) {
            Decision::Fail(e) => assert_eq!((e.status(), e.code()), (422, "prompt_refused")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(1001, Seen::Absent, 1, CAS, None, Some(&f)),
            Decision::Create,
            "newcomers try again"
        );
        assert!(matches!(decide(1001, Seen::Absent, 1, CAS, Some(8), Some(&f)), Decision::Create));
        assert_eq!(
            decide(1000 + FAILURE_MEMORY_MS, Seen::Absent, 1, CAS, Some(7), Some(&f)),
            Decision::Create
        );
    }

    #[test]
    fn the_failure_is_read_only_when_the_awaited_owner_is_gone() {
        let theirs = Lease::new(7, 0, 60);
        assert!(!must_check_failure(&Seen::Held(theirs), Some(7)));
        assert!(must_check_failure(&Seen::Held(Lease::new(8, 0, 60)), Some(7)));
        assert!(must_check_failure(&Seen::Absent, Some(7)));
        assert!(!must_check_failure(&Seen::Absent, None));
    }

    #[test]
    fn failures_encode_as_json() {
        let f = Failure::new(7, 5, &Error::Provider("x".into()));
        assert_eq!(Failure::decode(&f.encode()), Some(f));
        assert_eq!(Failure::decode(b"junk"), None);
    }

    #[test]
    fn owner_ids_are_never_zero() {
        assert_eq!(owner_id(0), 1);
        assert_eq!(owner_id(42), 42);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!((0..7).map(backoff_ms).collect::<Vec<_>>(), vec![25, 50, 100, 200, 400, 400, 400]);
    }
}
