//! `wasi:keyvalue` store + atomics → [`KeyValue`]. Opens the `default` store,
//! the same one Spin's own key-value API uses.

use std::time::Instant;

use super::bindings::wasi::keyvalue::{atomics, store};
use crate::core::ports::KeyValue;
use crate::core::timing::{Kind, Timings};
use crate::core::Error;

pub const STORE: &str = "default";

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
        self.timed("increment", || atomics::increment(&self.bucket, key, delta))
    }

    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, Error> {
        self.timed("cas", || {
            let cas = atomics::Cas::new(&self.bucket, key)?;
            if cas.current()?.as_deref() != expected {
                return Ok(false);
            }
            match atomics::swap(cas, new) {
                Ok(()) => Ok(true),
                Err(atomics::CasError::CasFailed(_)) => Ok(false),
                Err(atomics::CasError::StoreError(e)) => Err(e),
            }
        })
    }
}
