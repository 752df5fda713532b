//! `wasi:keyvalue` store + atomics → [`KeyValue`]. On Spin it opens the
//! `default` store, the same one Spin's own key-value API uses.
//!
//! Everything this adapter does differently per build is a fact from
//! `core::stored::platform` applied here: the key's spelling, counters read with
//! `get` and decoded, and on wasmCloud (`wasi:keyvalue@0.2.0-draft`: an
//! unsigned `increment`, no compare-and-swap) a counter that goes down kept
//! as two keys (its increments and `…down`), and increments that lost a race
//! on NATS tried again.

use std::cell::Cell;

use super::bindings::keyvalue::{atomics, store};
use crate::core::http::timing::{Kind, Timings};
use crate::core::ports::KeyValue;
use crate::core::stored::keys;
use crate::core::stored::platform::{self, Flavour};
use crate::core::Error;

#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
pub const FLAVOUR: Flavour = Flavour::Spin;
#[cfg(feature = "wasmcloud")]
pub const FLAVOUR: Flavour = Flavour::WasmCloud1;
#[cfg(feature = "wasmcloud2")]
pub const FLAVOUR: Flavour = Flavour::WasmCloud2;

#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
pub const STORE: &str = "default";
/// wasmCloud 1.x links one store per component; its Redis provider ignores names.
#[cfg(feature = "wasmcloud")]
pub const STORE: &str = "";
/// wasmCloud 2: the bucket (NATS JetStream), key prefix (Redis) or directory
/// to use; NATS bucket names are `[a-zA-Z0-9_-]+`.
#[cfg(feature = "wasmcloud2")]
pub const STORE: &str = "banatie";

pub struct Kv<'t> {
    bucket: store::Bucket,
    timings: &'t Timings,
    /// The store's byte order for 8-byte counters, once learnt (wasmCloud).
    big_endian: Cell<Option<bool>>,
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
        Ok(Kv { bucket, timings, big_endian: Cell::new(None) })
    }

    fn timed<T>(&self, op: &str, f: impl FnOnce() -> Result<T, store::Error>) -> Result<T, Error> {
        self.timings.measure(Kind::Kv, f).map_err(|e| kv_error(op, e))
    }

    /// A counter's value at `stored` (a spelled key), `None` when absent.
    fn read(&self, stored: &str) -> Result<Option<i64>, Error> {
        let Some(bytes) = self.timed("get", || self.bucket.get(stored))? else { return Ok(None) };
        let value = FLAVOUR.decode_counter(&bytes).resolve(|| self.big_endian().ok());
        value.map(Some).ok_or_else(|| Error::KeyValue(format!("kv: {stored} is not a counter")))
    }

    /// The byte order of the store's 8-byte counters, from the probe counter
    /// (made the first time it is needed; read once per request at most).
    fn big_endian(&self) -> Result<bool, Error> {
        if let Some(known) = self.big_endian.get() {
            return Ok(known);
        }
        let probe = FLAVOUR.store_key(keys::COUNTER_PROBE);
        let mut bytes = self.timed("get", || self.bucket.get(&probe))?;
        if bytes.is_none() {
            self.add(&probe, magnitude(1))?;
            bytes = self.timed("get", || self.bucket.get(&probe))?;
        }
        let known = bytes
            .as_deref()
            .and_then(|b| FLAVOUR.big_endian_probe(b))
            .ok_or_else(|| Error::KeyValue("kv: the counter probe is not an 8-byte counter".into()))?;
        self.big_endian.set(Some(known));
        Ok(known)
    }

    /// One increment of the store's own, tried again while it lost a race
    /// (wash's NATS: "wrong last sequence", nothing written).
    fn add(&self, stored: &str, delta: Delta) -> Result<i64, Error> {
        let mut tries = 0;
        loop {
            match self.timings.measure(Kind::Kv, || platform_increment(&self.bucket, stored, delta)) {
                Err(store::Error::Other(m))
                    if FLAVOUR.is_increment_conflict(&m) && tries < platform::CONFLICT_RETRIES =>
                {
                    tries += 1;
                    backoff(tries);
                }
                other => return other.map_err(|e| kv_error("increment", e)),
            }
        }
    }
}

impl KeyValue for Kv<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.timed("get", || self.bucket.get(&FLAVOUR.store_key(key)))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let spelled: Vec<String> = keys.iter().map(|k| FLAVOUR.store_key(k).into_owned()).collect();
        let found = self.timed("get-many", || get_many(&self.bucket, &spelled))?;
        // Spin's SQLite store answers only the keys it found; match by name.
        let mut found: std::collections::HashMap<String, Vec<u8>> = found.into_iter().collect();
        Ok(spelled.iter().map(|k| found.remove(k)).collect())
    }

    fn count_up(&self, key: &str) -> Result<i64, Error> {
        self.add(&FLAVOUR.store_key(key), magnitude(1))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.timed("set", || self.bucket.set(&FLAVOUR.store_key(key), value))
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), Error> {
        let spelled: Vec<(String, Vec<u8>)> =
            pairs.iter().map(|(k, v)| (FLAVOUR.store_key(k).into_owned(), v.clone())).collect();
        self.timed("set-many", || set_many(&self.bucket, &spelled))
    }

    fn delete(&self, key: &str) -> Result<(), Error> {
        self.timed("delete", || self.bucket.delete(&FLAVOUR.store_key(key)))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let stored = FLAVOUR.store_key(key);
        let Some(down) = FLAVOUR.down_key(&stored) else { return self.add(&stored, signed(delta)) };
        // Ups in `stored`, downs in `down`: each an unsigned atomic increment.
        if delta >= 0 {
            let up = self.add(&stored, magnitude(delta))?;
            Ok(up - self.read(&down)?.unwrap_or(0))
        } else {
            let down = self.add(&down, magnitude(delta))?;
            Ok(self.read(&stored)?.unwrap_or(0) - down)
        }
    }

    fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        let stored = FLAVOUR.store_key(key);
        let Some(up) = self.read(&stored)? else { return Ok(None) };
        match FLAVOUR.down_key(&stored) {
            Some(down) => Ok(Some(up - self.read(&down)?.unwrap_or(0))),
            None => Ok(Some(up)),
        }
    }

    fn create_counter(&self, key: &str) -> Result<(), Error> {
        let stored = FLAVOUR.store_key(key);
        self.add(&stored, magnitude(0))?;
        if let Some(down) = FLAVOUR.down_key(&stored) {
            self.add(&down, magnitude(0))?;
        }
        Ok(())
    }

    fn delete_counter(&self, key: &str) -> Result<(), Error> {
        let stored = FLAVOUR.store_key(key);
        self.timed("delete", || self.bucket.delete(&stored))?;
        if let Some(down) = FLAVOUR.down_key(&stored) {
            self.timed("delete", || self.bucket.delete(&down))?;
        }
        Ok(())
    }

    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error> {
        self.timed("cas", || compare_and_swap(&self.bucket, &FLAVOUR.store_key(key), expected, new))
    }

    fn flavour(&self) -> Flavour {
        FLAVOUR
    }
}

/// A random wait within `platform::conflict_wait_span_us` before an
/// increment that lost a race is tried again.
fn backoff(tries: u32) {
    let wait_us = wasi::random::random::get_random_u64() % platform::conflict_wait_span_us(tries);
    wasi::clocks::monotonic_clock::subscribe_duration(wait_us * 1_000).block();
}

/// What the store's `increment` takes: signed on Spin, unsigned on wasmCloud.
#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
type Delta = i64;
#[cfg(any(feature = "wasmcloud", feature = "wasmcloud2"))]
type Delta = u64;

/// A signed delta for a store with one signed counter (Spin).
#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
fn signed(delta: i64) -> Delta {
    delta
}
#[cfg(any(feature = "wasmcloud", feature = "wasmcloud2"))]
fn signed(_: i64) -> Delta {
    unreachable!("wasmCloud counters are split in two (`Flavour::down_key`)")
}

/// The size of a step up or down, as the store's `increment` takes it.
fn magnitude(delta: i64) -> Delta {
    Delta::try_from(delta.unsigned_abs()).unwrap_or(Delta::MAX)
}

#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
fn platform_increment(bucket: &store::Bucket, key: &str, delta: i64) -> Result<i64, store::Error> {
    atomics::increment(bucket, key, delta)
}

#[cfg(any(feature = "wasmcloud", feature = "wasmcloud2"))]
fn platform_increment(bucket: &store::Bucket, key: &str, delta: u64) -> Result<i64, store::Error> {
    atomics::increment(bucket, key, delta).map(|v| v.min(i64::MAX as u64) as i64)
}

/// One `set-many` (Spin, wasmCloud 2: `wasi:keyvalue/batch`).
#[cfg(not(feature = "wasmcloud"))]
fn set_many(bucket: &store::Bucket, pairs: &[(String, Vec<u8>)]) -> Result<(), store::Error> {
    super::bindings::keyvalue::batch::set_many(bucket, pairs)
}

/// One `get-many`, as the (key, value) pairs found (Spin: only those found;
/// Spin v3.6 `crates/factor-key-value/src/host.rs` `get_many`).
#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
fn get_many(bucket: &store::Bucket, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, store::Error> {
    let found = super::bindings::keyvalue::batch::get_many(bucket, keys)?;
    Ok(found.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
}

/// wasmCloud 2's draft: an option per key.
#[cfg(feature = "wasmcloud2")]
fn get_many(bucket: &store::Bucket, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, store::Error> {
    Ok(super::bindings::keyvalue::batch::get_many(bucket, keys)?.into_iter().flatten().collect())
}

/// wasmCloud 1.x: one get each.
#[cfg(feature = "wasmcloud")]
fn get_many(bucket: &store::Bucket, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, store::Error> {
    let mut found = Vec::new();
    for key in keys {
        if let Some(v) = bucket.get(key)? {
            found.push((key.clone(), v));
        }
    }
    Ok(found)
}

/// wasmCloud 1.x: its providers are not known to implement `batch`: one set each.
#[cfg(feature = "wasmcloud")]
fn set_many(bucket: &store::Bucket, pairs: &[(String, Vec<u8>)]) -> Result<(), store::Error> {
    pairs.iter().try_for_each(|(k, v)| bucket.set(k, v))
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

/// wasmCloud's draft has no compare-and-swap, and nothing here calls one
/// (`flavour().exclusion()` is `SettledClaim`).
#[cfg(any(feature = "wasmcloud", feature = "wasmcloud2"))]
fn compare_and_swap(_: &store::Bucket, key: &str, _: &[u8], _: &[u8]) -> Result<bool, store::Error> {
    Err(store::Error::Other(format!("no compare-and-swap on this platform (key {key})")))
}
