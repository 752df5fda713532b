//! `wasi:keyvalue@0.2.0-draft2` store + atomics for the component, over a
//! [`Backend`] (SQLite by default, Redis by runtime config; the backend owns
//! durability and atomicity).
//!
//! Only the store labels listed in the component's `key_value_stores` can be
//! opened, as in Spin. Compare-and-swap remembers the value seen when the `cas`
//! handle was made and swaps only if the stored value is still that one.

pub mod redis;
pub mod sqlite;

use std::sync::Arc;

use wasmtime::component::{HasData, Resource, ResourceTable};

use crate::bindings::keyvalue::atomics::{self, CasError};
use crate::bindings::keyvalue::store::{self, Error, KeyResponse};

pub type BackendResult<T> = Result<T, String>;

/// A key-value engine shared by all instances of the host process.
pub trait Backend: Send + Sync {
    fn get(&self, store: &str, key: &str) -> BackendResult<Option<Vec<u8>>>;
    fn set(&self, store: &str, key: &str, value: &[u8]) -> BackendResult<()>;
    fn delete(&self, store: &str, key: &str) -> BackendResult<()>;
    fn exists(&self, store: &str, key: &str) -> BackendResult<bool>;
    /// All keys of a store in order, starting after `cursor`, at most `limit`.
    fn list_keys(&self, store: &str, cursor: Option<&str>, limit: usize) -> BackendResult<Vec<String>>;
    /// Add `delta` to the i64 (little-endian bytes) under `key`; missing is 0.
    fn increment(&self, store: &str, key: &str, delta: i64) -> BackendResult<i64>;
    /// Set `key` to `new` only if its value is still `expected` (`None`: absent).
    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> BackendResult<bool>;
}

/// What the KV interfaces need from the store: the backend and the labels the
/// component may open, plus the resource table.
pub struct KvView<'a> {
    pub table: &'a mut ResourceTable,
    pub kv: &'a KvAccess,
}

#[derive(Clone)]
pub struct KvAccess {
    pub backend: Arc<dyn Backend>,
    pub labels: Arc<Vec<String>>,
}

pub struct KvData;
impl HasData for KvData {
    type Data<'a> = KvView<'a>;
}

pub struct BucketHandle {
    store: String,
}

pub struct CasHandle {
    store: String,
    key: String,
    seen: Option<Vec<u8>>,
}

const LIST_PAGE: usize = 1000;

fn other(e: String) -> Error {
    Error::Other(e)
}

impl KvView<'_> {
    fn label(&self, bucket: &Resource<BucketHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.store.clone())
    }
}

impl store::Host for KvView<'_> {
    fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<BucketHandle>, Error>> {
        if !self.kv.labels.contains(&identifier) {
            return Ok(Err(Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(BucketHandle { store: identifier })?))
    }
}

impl store::HostBucket for KvView<'_> {
    fn get(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let s = self.label(&b)?;
        Ok(self.kv.backend.get(&s, &key).map_err(other))
    }

    fn set(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let s = self.label(&b)?;
        Ok(self.kv.backend.set(&s, &key, &value).map_err(other))
    }

    fn delete(&mut self, b: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let s = self.label(&b)?;
        Ok(self.kv.backend.delete(&s, &key).map_err(other))
    }

    fn exists(&mut self, b: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let s = self.label(&b)?;
        Ok(self.kv.backend.exists(&s, &key).map_err(other))
    }

    fn list_keys(
        &mut self,
        b: Resource<BucketHandle>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let s = self.label(&b)?;
        let keys = match self.kv.backend.list_keys(&s, cursor.as_deref(), LIST_PAGE) {
            Ok(keys) => keys,
            Err(e) => return Ok(Err(other(e))),
        };
        let cursor = (keys.len() == LIST_PAGE).then(|| keys.last().cloned()).flatten();
        Ok(Ok(KeyResponse { keys, cursor }))
    }

    fn drop(&mut self, b: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    fn increment(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let s = self.label(&b)?;
        Ok(self.kv.backend.increment(&s, &key, delta).map_err(other))
    }

    fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> wasmtime::Result<Result<(), CasError>> {
        let handle = self.table.delete(cas)?;
        match self.kv.backend.compare_and_swap(&handle.store, &handle.key, handle.seen.as_deref(), &value) {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                let seen = match self.kv.backend.get(&handle.store, &handle.key) {
                    Ok(seen) => seen,
                    Err(e) => return Ok(Err(CasError::StoreError(other(e)))),
                };
                let fresh = self.table.push(CasHandle { seen, ..handle })?;
                Ok(Err(CasError::CasFailed(fresh)))
            }
            Err(e) => Ok(Err(CasError::StoreError(other(e)))),
        }
    }
}

impl atomics::HostCas for KvView<'_> {
    fn new(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, Error>> {
        let s = self.label(&b)?;
        let seen = match self.kv.backend.get(&s, &key) {
            Ok(seen) => seen,
            Err(e) => return Ok(Err(other(e))),
        };
        Ok(Ok(self.table.push(CasHandle { store: s, key, seen })?))
    }

    fn current(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Ok(self.table.get(&cas)?.seen.clone()))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}
