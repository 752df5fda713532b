//! Single-flight for concurrent identical misses, across instances and hosts.
//!
//! The first request takes a lease in KV with compare-and-swap (owner id +
//! expiry) and generates; the others wait, polling the entry with backoff, and
//! answer from the cache. A lease whose owner died expires and is taken over.
//! When the owner fails it leaves a failed lease naming itself, so the requests
//! that were waiting on *that* owner get the same error; a request that did not
//! wait on it ignores the failure and tries again (errors are never cached).
//!
//! This module is the state machine only: `decide(now, lease, waited_on)` says
//! what to do; `api::flight` does it.

use serde::{Deserialize, Serialize};

use super::error::SharedFailure;
use super::Error;

/// How long a failure stays readable for the waiters of its owner.
pub const FAILURE_MEMORY_MS: u64 = 10_000;
pub const DEFAULT_LEASE_SECONDS: u64 = 120;
pub const DEFAULT_COALESCE_WAIT_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lease {
    Generating { owner: String, expires_at_ms: u64 },
    Failed { owner: String, until_ms: u64, error: SharedFailure },
}

impl Lease {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a lease serialises")
    }

    /// An unreadable lease is treated as absent (and will be replaced).
    pub fn decode(bytes: &[u8]) -> Option<Lease> {
        serde_json::from_slice(bytes).ok()
    }
}

pub fn lease_key(project: &str, hash: &str) -> String {
    format!("lease:{project}:{hash}")
}

pub fn generating(owner: &str, now_ms: u64, lease_seconds: u64) -> Lease {
    Lease::Generating { owner: owner.to_string(), expires_at_ms: now_ms + lease_seconds * 1000 }
}

pub fn failed(owner: &str, now_ms: u64, error: &Error) -> Lease {
    Lease::Failed { owner: owner.to_string(), until_ms: now_ms + FAILURE_MEMORY_MS, error: error.share() }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody is generating: try to take the lease (CAS from the current value).
    Acquire,
    /// `owner` is generating: wait for it.
    Wait { owner: String },
    /// The owner we waited on failed: answer with its error.
    Fail(Error),
}

pub fn decide(now_ms: u64, lease: Option<&Lease>, waited_on: Option<&str>) -> Decision {
    match lease {
        None => Decision::Acquire,
        Some(Lease::Generating { owner, expires_at_ms }) if *expires_at_ms > now_ms => {
            Decision::Wait { owner: owner.clone() }
        }
        Some(Lease::Generating { .. }) => Decision::Acquire,
        Some(Lease::Failed { owner, until_ms, error }) => {
            if *until_ms > now_ms && waited_on == Some(owner.as_str()) {
                Decision::Fail(Error::Shared(error.clone()))
            } else {
                Decision::Acquire
            }
        }
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
    fn free_or_expired_leases_are_taken() {
        assert_eq!(decide(0, None, None), Decision::Acquire);
        let held = generating("a", 1000, 2);
        assert_eq!(decide(2999, Some(&held), None), Decision::Wait { owner: "a".into() });
        assert_eq!(decide(3000, Some(&held), None), Decision::Acquire, "a dead owner's lease expires");
    }

    #[test]
    fn a_failure_reaches_only_the_owners_waiters() {
        let f = failed("a", 1000, &Error::PromptRefused("SAFETY".into()));
        match decide(1001, Some(&f), Some("a")) {
            Decision::Fail(e) => assert_eq!((e.status(), e.code()), (422, "prompt_refused")),
            other => panic!("{other:?}"),
        }
        assert_eq!(decide(1001, Some(&f), None), Decision::Acquire, "newcomers try again");
        assert_eq!(decide(1001, Some(&f), Some("b")), Decision::Acquire);
        assert_eq!(decide(1000 + FAILURE_MEMORY_MS, Some(&f), Some("a")), Decision::Acquire);
    }

    #[test]
    fn leases_encode_as_tagged_json() {
        let l = generating("a", 5, 1);
        assert_eq!(
            String::from_utf8(l.encode()).unwrap(),
            r#"{"state":"generating","owner":"a","expires_at_ms":1005}"#
        );
        assert_eq!(Lease::decode(&l.encode()), Some(l));
        assert_eq!(Lease::decode(b"junk"), None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!((0..7).map(backoff_ms).collect::<Vec<_>>(), vec![25, 50, 100, 200, 400, 400, 400]);
    }
}
