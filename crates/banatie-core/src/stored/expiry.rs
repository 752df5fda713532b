//! Rows that only matter within their hour, and how they go once it is
//! over. A per-client counter (`clientmiss:`, `clientderive:`) counts one
//! hour; a failed generation's marks (its failure record and its lease left
//! expired in place, `core::decide::single_flight`) serve the requests of the
//! moment. KV stores have no expiry that every runtime honours (Spin's have
//! none), so each such row is noted, when it is first written, in its
//! hour's list (`expiry:{hour}:{n}`, counted by `expiryseq:{hour}`); the
//! first note of an hour removes the lists of the [`LOOKBACK_HOURS`] hours
//! before it, and their rows, at most [`MAX_SWEPT_ROWS`] at a time (the rest
//! go with the next hour's sweep). `api::kv::expiry` carries it out.

use crate::decide::single_flight::{Failure, Lease};

/// How many past hours the first note of an hour looks at.
pub const LOOKBACK_HOURS: u64 = 24;
/// The most rows one sweep removes (one request pays for it, once an hour).
pub const MAX_SWEPT_ROWS: usize = 10_000;

/// A row to remove once its hour is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiring {
    /// A per-client hourly counter (removed with its `down` key, if any).
    Counter(String),
    /// A failed generation's marks, removed only while they are still the
    /// ones `owner` left: its lease, expired in place, and its failure.
    Failure { owner: u32, lease: String, failure: String },
}

impl Expiring {
    /// `c\n{key}` or `f\n{owner}\n{lease}\n{failure}` (keys hold no newline).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Expiring::Counter(key) => format!("c\n{key}").into_bytes(),
            Expiring::Failure { owner, lease, failure } => {
                format!("f\n{owner}\n{lease}\n{failure}").into_bytes()
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Expiring> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split('\n');
        match (fields.next()?, fields.next()?, fields.next(), fields.next(), fields.next()) {
            ("c", key, None, None, None) => Some(Expiring::Counter(key.to_string())),
            ("f", owner, Some(lease), Some(failure), None) => Some(Expiring::Failure {
                owner: owner.parse().ok()?,
                lease: lease.to_string(),
                failure: failure.to_string(),
            }),
            _ => None,
        }
    }
}

/// Whether a failure's lease still holds what its owner left: the owner's
/// lease, expired in place (anything else is someone's since).
pub fn is_left_lease(value: &[u8], owner: u32) -> bool {
    Lease::decode(value) == Some(Lease { owner, expires_at_s: 0 })
}

/// Whether a failure record is still the one `owner` left.
pub fn is_left_failure(value: &[u8], owner: u32) -> bool {
    Failure::decode(value).is_some_and(|f| f.owner == owner)
}

/// The hours whose lists the first note of `hour` sweeps, newest first.
pub fn hours_to_sweep(hour: u64) -> impl Iterator<Item = u64> {
    (1..=LOOKBACK_HOURS.min(hour)).map(move |back| hour - back)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn rows_round_trip() {
        for row in [
            Expiring::Counter("clientmiss:2001:db8::/64:490896".into()),
            Expiring::Failure { owner: 7, lease: "lease:p:h".into(), failure: "failed:p:h".into() },
        ] {
            assert_eq!(Expiring::decode(&row.encode()), Some(row));
        }
        assert_eq!(Expiring::decode(b"x\nkey"), None);
        assert_eq!(Expiring::decode(b"f\nnot-a-number\na\nb"), None);
        assert_eq!(Expiring::decode(b"c\na\nb"), None);
    }

    #[test]
    fn only_what_the_failed_owner_left_is_removed() {
        assert!(is_left_lease(&Lease { owner: 7, expires_at_s: 0 }.encode(), 7));
        assert!(!is_left_lease(&Lease { owner: 8, expires_at_s: 0 }.encode(), 7), "another's failure");
        assert!(!is_left_lease(&Lease::new(7, 1000, 60).encode(), 7), "a live lease");
        let f = Failure::new(7, 0, &Error::Provider("x".into())).encode();
        assert!(is_left_failure(&f, 7));
        assert!(!is_left_failure(&f, 8));
        assert!(!is_left_failure(b"junk", 7));
    }

    #[test]
    fn a_sweep_looks_back_a_day() {
        assert_eq!(hours_to_sweep(100).collect::<Vec<_>>(), (76..100).rev().collect::<Vec<_>>());
        assert_eq!(hours_to_sweep(2).collect::<Vec<_>>(), vec![1, 0]);
    }
}
