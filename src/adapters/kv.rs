//! `wasi:keyvalue` store + atomics → [`KeyValue`]. Opens the `default` store,
//! the same one Spin's own key-value API uses.

use super::bindings::wasi::keyvalue::{atomics, store};
use crate::core::ports::KeyValue;
use crate::core::Error;

pub const STORE: &str = "default";

pub struct Kv {
    bucket: store::Bucket,
}

fn kv_error(op: &str, e: store::Error) -> Error {
    let detail = match e {
        store::Error::NoSuchStore => "no such store".to_string(),
        store::Error::AccessDenied => "access denied".to_string(),
        store::Error::Other(m) => m,
    };
    Error::KeyValue(format!("kv {op}: {detail}"))
}

impl Kv {
    pub fn open() -> Result<Kv, Error> {
        let bucket = store::open(STORE).map_err(|e| kv_error("open", e))?;
        Ok(Kv { bucket })
    }
}

impl KeyValue for Kv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.bucket.get(key).map_err(|e| kv_error("get", e))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.bucket.set(key, value).map_err(|e| kv_error("set", e))
    }

    fn delete(&self, key: &str) -> Result<(), Error> {
        self.bucket.delete(key).map_err(|e| kv_error("delete", e))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        atomics::increment(&self.bucket, key, delta).map_err(|e| kv_error("increment", e))
    }
}
