//! `wasi:keyvalue` store + atomics → [`KeyValue`]. On Spin it opens the
//! `default` store, the same one Spin's own key-value API uses.
//!
//! wasmCloud's `wasi:keyvalue@0.2.0-draft` has an unsigned `increment` and no
//! compare-and-swap: there, negative deltas and CAS are read-then-write, so
//! counters that go down and the single-flight lease are best-effort, not
//! atomic (see docs/deploy.md).

use std::time::Instant;

use super::bindings::keyvalue::{atomics, store};
use crate::core::ports::KeyValue;
use crate::core::timing::{Kind, Timings};
use crate::core::Error;

#[cfg(not(feature = "wasmcloud"))]
pub const STORE: &str = "default";
/// wasmCloud links one store per component; its Redis provider ignores names.
#[cfg(feature = "wasmcloud")]
pub const STORE: &str = "";

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
        let start = Instant::now();
        let bucket = store::open(STORE).map_err(|e| kv_error("open", e));
        timings.add(Kind::Kv, start.elapsed().as_micros() as u64);
        Ok(Kv { bucket: bucket?, timings })
    }

    fn timed<T>(&self, op: &str, f: impl FnOnce() -> Result<T, store::Error>) -> Result<T, Error> {
        let start = Instant::now();
        let result = f().map_err(|e| kv_error(op, e));
        self.timings.add(Kind::Kv, start.elapsed().as_micros() as u64);
        result
    }
}

impl KeyValue for Kv<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.timed("get", || self.bucket.get(key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.timed("set", || self.bucket.set(key, value))
    }

    fn delete(&self, key: &str) -> Result<(), Error> {
        self.timed("delete", || self.bucket.delete(key))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.timed("increment", || increment(&self.bucket, key, delta))
    }

    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, Error> {
        self.timed("cas", || compare_and_swap(&self.bucket, key, expected, new))
    }
}

#[cfg(not(feature = "wasmcloud"))]
fn increment(bucket: &store::Bucket, key: &str, delta: i64) -> Result<i64, store::Error> {
    atomics::increment(bucket, key, delta)
}

#[cfg(not(feature = "wasmcloud"))]
fn compare_and_swap(
    bucket: &store::Bucket,
    key: &str,
    expected: Option<&[u8]>,
    new: &[u8],
) -> Result<bool, store::Error> {
    let cas = atomics::Cas::new(bucket, key)?;
    if cas.current()?.as_deref() != expected {
        return Ok(false);
    }
    match atomics::swap(cas, new) {
        Ok(()) => Ok(true),
        Err(atomics::CasError::CasFailed(_)) => Ok(false),
        Err(atomics::CasError::StoreError(e)) => Err(e),
    }
}

#[cfg(feature = "wasmcloud")]
fn increment(bucket: &store::Bucket, key: &str, delta: i64) -> Result<i64, store::Error> {
    if let Ok(up) = u64::try_from(delta) {
        return atomics::increment(bucket, key, up).map(|v| v as i64);
    }
    // No signed increment in this draft: read, subtract, write (not atomic).
    let current = bucket
        .get(key)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let next = current + delta;
    bucket.set(key, next.to_string().as_bytes())?;
    Ok(next)
}

#[cfg(feature = "wasmcloud")]
fn compare_and_swap(
    bucket: &store::Bucket,
    key: &str,
    expected: Option<&[u8]>,
    new: &[u8],
) -> Result<bool, store::Error> {
    // No compare-and-swap in this draft: read, compare, write (not atomic).
    if bucket.get(key)?.as_deref() != expected {
        return Ok(false);
    }
    bucket.set(key, new)?;
    Ok(true)
}
