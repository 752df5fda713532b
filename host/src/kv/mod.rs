//! `wasi:keyvalue@0.2.0-draft2` store + atomics for the component, over a
//! [`Backend`] (SQLite by default, Redis by runtime config; the backend owns
//! durability and atomicity).
//!
//! Only the store labels listed in the component's `key_value_stores` can be
//! opened, as in Spin. The atomics follow Spin v3.6.0's host
//! (`crates/factor-key-value/src/host.rs`) call for call, so that the
//! component meets here what it meets under `spin up`: `cas.new` reads
//! nothing, `cas.current` reads (and the backend remembers what it read),
//! `swap` is the backend's own (see [`Cas`]), and a failed swap hands back a
//! fresh handle on which `current` has already been called.

pub mod redis;
pub mod sqlite;

use std::sync::Arc;

use wasmtime::component::{HasData, Resource, ResourceTable};

use crate::bindings::keyvalue::atomics::{self, CasError};
use crate::bindings::keyvalue::batch;
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
    /// `batch.get-many`: the pairs of the keys found, as Spin's store of
    /// the same kind answers (SQLite: found keys only, in no set order).
    fn get_many(&self, store: &str, keys: &[String]) -> BackendResult<Vec<(String, Option<Vec<u8>>)>>;
    /// `batch.set-many`, as Spin's store of the same kind does it (SQLite: one
    /// transaction; Redis: `MSET`).
    fn set_many(&self, store: &str, pairs: &[(String, Vec<u8>)]) -> BackendResult<()>;
    /// `batch.delete-many`.
    fn delete_many(&self, store: &str, keys: &[String]) -> BackendResult<()>;
    /// Add `delta` to the counter under `key` (missing is 0), in the
    /// backend's own encoding, as Spin's store of the same kind does.
    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, IncrementError>;
    /// Begin a compare-and-swap on `key` (Spin: `Store::new_compare_and_swap`).
    fn new_cas(&self, store: &str, key: &str) -> BackendResult<Box<dyn Cas>>;
    /// Whether a call may wait (on the network, on a lock) and so must run
    /// off the async worker. SQLite's calls do not: it moves off by itself
    /// only when it has to wait (see `sqlite`).
    fn blocks(&self) -> bool {
        true
    }
}

/// One compare-and-swap, with the semantics of Spin's store of that kind.
pub trait Cas: Send {
    /// Read the value; `swap` is conditional on what was read here.
    fn current(&mut self) -> BackendResult<Option<Vec<u8>>>;
    fn swap(&mut self, value: &[u8]) -> Result<(), SwapError>;
}

#[derive(Debug)]
pub enum SwapError {
    /// Reported as not swapped (which, on Redis, does not mean nothing was written).
    CasFailed(String),
    Other(String),
}

#[derive(Debug)]
pub enum IncrementError {
    /// The stored value is not a counter of this backend. Spin's SQLite store
    /// panics here (`expect("incorrect length")`); the host traps the guest.
    NotACounter(String),
    Store(String),
}

/// What the KV interfaces need from the store: the backend and the labels the
/// component may open, plus the resource table.
pub struct KvView<'a> {
    pub table: &'a mut ResourceTable,
    pub kv: &'a KvAccess,
    /// Operations on the store this request made (`--log-host-calls`).
    pub operations: &'a mut u32,
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
    cas: Box<dyn Cas>,
}

const LIST_PAGE: usize = 1000;

/// Run a (synchronous) backend call without stalling the async worker it is
/// on: SQLite waits on a lock and Redis on the network, so the worker's other
/// tasks move to another thread meanwhile, as Spin does
/// (`task::block_in_place` in `crates/key-value-spin/src/store.rs`).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn other(e: String) -> Error {
    Error::Other(e)
}

/// `f` on the worker, or through [`blocking`] for a backend that blocks.
fn run<T>(blocks: bool, f: impl FnOnce() -> T) -> T {
    if blocks {
        blocking(f)
    } else {
        f()
    }
}

impl KvView<'_> {
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        run(self.kv.backend.blocks(), f)
    }

    /// The bucket's store, counting the operation about to be made on it.
    fn label(&mut self, bucket: &Resource<BucketHandle>) -> wasmtime::Result<String> {
        *self.operations += 1;
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
        Ok(self.run(|| self.kv.backend.get(&s, &key)).map_err(other))
    }

    fn set(
        &mut self,
        b: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let s = self.label(&b)?;
        Ok(self.run(|| self.kv.backend.set(&s, &key, &value)).map_err(other))
    }

    fn delete(&mut self, b: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let s = self.label(&b)?;
        Ok(self.run(|| self.kv.backend.delete(&s, &key)).map_err(other))
    }

    fn exists(&mut self, b: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let s = self.label(&b)?;
        Ok(self.run(|| self.kv.backend.exists(&s, &key)).map_err(other))
    }

    fn list_keys(
        &mut self,
        b: Resource<BucketHandle>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let s = self.label(&b)?;
        let keys = match self.run(|| self.kv.backend.list_keys(&s, cursor.as_deref(), LIST_PAGE)) {
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

/// Spin v3.6.0 `crates/factor-key-value/src/host.rs`: an empty list is
/// answered without calling the store; otherwise the store's own batch.
impl batch::Host for KvView<'_> {
    fn get_many(
        &mut self,
        b: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let s = self.label(&b)?;
        Ok(self.run(|| self.kv.backend.get_many(&s, &keys)).map_err(other))
    }

    fn set_many(
        &mut self,
        b: Resource<BucketHandle>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        if pairs.is_empty() {
            return Ok(Ok(()));
        }
        let s = self.label(&b)?;
        Ok(self.run(|| self.kv.backend.set_many(&s, &pairs)).map_err(other))
    }

    fn delete_many(
        &mut self,
        b: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        let s = self.label(&b)?;
        Ok(self.run(|| self.kv.backend.delete_many(&s, &keys)).map_err(other))
    }
}

impl KvView<'_> {
    fn new_cas(
        &mut self,
        store: String,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, Error>> {
        let cas = match self.run(|| self.kv.backend.new_cas(&store, &key)) {
            Ok(cas) => cas,
            Err(e) => return Ok(Err(other(e))),
        };
        Ok(Ok(self.table.push(CasHandle { store, key, cas })?))
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
        match self.run(|| self.kv.backend.increment(&s, &key, delta)) {
            Ok(n) => Ok(Ok(n)),
            Err(IncrementError::Store(e)) => Ok(Err(other(e))),
            Err(IncrementError::NotACounter(e)) => Err(wasmtime::Error::msg(e)),
        }
    }

    fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> wasmtime::Result<Result<(), CasError>> {
        *self.operations += 1;
        let blocks = self.kv.backend.blocks();
        let mut handle = self.table.delete(cas)?;
        match run(blocks, || handle.cas.swap(&value)) {
            Ok(()) => Ok(Ok(())),
            Err(SwapError::Other(e)) => Ok(Err(CasError::StoreError(other(e)))),
            Err(SwapError::CasFailed(_)) => {
                // As Spin: a new handle for the same key, `current` already called.
                let fresh = match self.new_cas(handle.store, handle.key)? {
                    Ok(fresh) => fresh,
                    Err(e) => return Ok(Err(CasError::StoreError(e))),
                };
                let cas = &mut self.table.get_mut(&fresh)?.cas;
                if let Err(e) = run(blocks, || cas.current()) {
                    return Ok(Err(CasError::StoreError(other(e))));
                }
                Ok(Err(CasError::CasFailed(fresh)))
            }
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
        self.new_cas(s, key)
    }

    fn current(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        *self.operations += 1;
        let blocks = self.kv.backend.blocks();
        let cas = &mut self.table.get_mut(&cas)?.cas;
        Ok(run(blocks, || cas.current()).map_err(other))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}
