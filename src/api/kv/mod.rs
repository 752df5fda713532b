//! The key-value helpers the pipeline and the routes share: leases, where
//! an entry lives, counters, reservations, expiring rows, prefetched reads.
//! Below `records` and `live`; they use nothing above them.

pub mod allowance;
pub mod counters;
pub mod expiry;
pub mod lease;
pub mod prefetch;
pub mod reserve;
pub mod slot;
