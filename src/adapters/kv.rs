//! `wasi:keyvalue` store + atomics → [`KeyValue`]. On Spin it opens the
//! `default` store, the same one Spin's own key-value API uses.
//!
//! wasmCloud's `wasi:keyvalue@0.2.0-draft` (1.x and 2) has an unsigned
//! `increment` and no compare-and-swap. Counters stay exact there: a counter
//! that goes down keeps its decrements in a second counter (`KEY/down`) and
//! reads as the difference, so no read-then-write and no assumption about how
//! the backend encodes a counter (NATS, Redis and the in-memory store all
//! differ). CAS is read, compare, write: the single-flight lease is
//! best-effort there, not exclusive (see docs/deploy.md).

use super::bindings::keyvalue::{atomics, store};
use crate::core::ports::KeyValue;
use crate::core::timing::{Kind, Timings};
use crate::core::Error;

#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
pub const STORE: &str = "default";
/// wasmCloud 1.x links one store per component; its Redis provider ignores names.
#[cfg(feature = "wasmcloud")]
pub const STORE: &str = "";
/// wasmCloud 2: the bucket (NATS JetStream) or key prefix (Redis) to use;
/// NATS bucket names are `[a-zA-Z0-9_-]+`.
#[cfg(feature = "wasmcloud2")]
pub const STORE: &str = "banatie";

/// The key as the platform's store accepts it. wasmCloud 2's cluster store is
/// NATS JetStream, whose keys are `[-/_=.a-zA-Z0-9]+`: our `:` separators
/// become `.` there (no key of ours has a `.`, so nothing collides).
#[cfg(feature = "wasmcloud2")]
fn platform_key(key: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Owned(key.replace(':', "."))
}
#[cfg(not(feature = "wasmcloud2"))]
fn platform_key(key: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(key)
}

pub struct Kv<'t> {
    bucket: store::Bucket,
    timings: &'t Timings,
}

fn kv_error(op: &str, e: store::Error) -> Error {
    let detail = match e {
        store::Error::NoSuchStore => "no such store".to_string(),
        store::Error::AccessDenied => "access denied".to_string(),
        store::Error::Other(m) => m,
    };
    Error::KeyValue(format!("kv {op}: {detail}"))
}

impl<'t> Kv<'t> {
    pub fn open(timings: &'t Timings) -> Result<Kv<'t>, Error> {
        let bucket = timings.measure(Kind::Kv, || store::open(STORE)).map_err(|e| kv_error("open", e))?;
        Ok(Kv { bucket, timings })
    }

    fn timed<T>(&self, op: &str, f: impl FnOnce() -> Result<T, store::Error>) -> Result<T, Error> {
        self.timings.measure(Kind::Kv, f).map_err(|e| kv_error(op, e))
    }
}

impl KeyValue for Kv<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.timed("get", || self.bucket.get(&platform_key(key)))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.timed("set", || self.bucket.set(&platform_key(key), value))
    }

    fn delete(&self, key: &str) -> Result<(), Error> {
        self.timed("delete", || self.bucket.delete(&platform_key(key)))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.timed("increment", || increment(&self.bucket, &platform_key(key), delta))
    }

    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error> {
        self.timed("cas", || compare_and_swap(&self.bucket, &platform_key(key), expected, new))
    }
}

#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
fn increment(bucket: &store::Bucket, key: &str, delta: i64) -> Result<i64, store::Error> {
    atomics::increment(bucket, key, delta)
}

/// `current` then `swap`, never a swap without reading: Spin's SQLite store
/// swaps conditionally on the value `current` read (an upsert when none was).
#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
fn compare_and_swap(
    bucket: &store::Bucket,
    key: &str,
    expected: &[u8],
    new: &[u8],
) -> Result<bool, store::Error> {
    let cas = atomics::Cas::new(bucket, key)?;
    if cas.current()?.as_deref() != Some(expected) {
        return Ok(false);
    }
    match atomics::swap(cas, new) {
        Ok(()) => Ok(true),
        Err(atomics::CasError::CasFailed(_)) => Ok(false),
        Err(atomics::CasError::StoreError(e)) => Err(e),
    }
}

/// Ups in `key`, downs in `key/down` (created on the first decrement); the
/// value is the difference. Each part is one atomic increment.
#[cfg(any(feature = "wasmcloud", feature = "wasmcloud2"))]
fn increment(bucket: &store::Bucket, key: &str, delta: i64) -> Result<i64, store::Error> {
    let down_key = format!("{key}/down");
    let (up, down) = if delta >= 0 {
        let up = atomics::increment(bucket, key, delta as u64)?;
        let down = if bucket.exists(&down_key)? { atomics::increment(bucket, &down_key, 0)? } else { 0 };
        (up, down)
    } else {
        let down = atomics::increment(bucket, &down_key, delta.unsigned_abs())?;
        (atomics::increment(bucket, key, 0)?, down)
    };
    Ok(up as i64 - down as i64)
}

#[cfg(any(feature = "wasmcloud", feature = "wasmcloud2"))]
fn compare_and_swap(
    bucket: &store::Bucket,
    key: &str,
    expected: &[u8],
    new: &[u8],
) -> Result<bool, store::Error> {
    // No compare-and-swap in this draft: read, compare, write (not atomic).
    if bucket.get(key)?.as_deref() != Some(expected) {
        return Ok(false);
    }
    bucket.set(key, new)?;
    Ok(true)
}
