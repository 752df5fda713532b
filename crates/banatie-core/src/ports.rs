//! The three doors between core logic and the outside world. `adapters`
//! implements them over WASI; tests implement them in memory.
#![allow(async_fn_in_trait)] // single-threaded wasm executor: no Send bounds wanted

use super::provider::GeneratedImage;
use super::request::GenerationRequest;
use super::Error;

/// A key-value store with atomic counters (`wasi:keyvalue` store + atomics).
pub trait KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error>;
    fn delete(&self, key: &str) -> Result<(), Error>;
    /// Atomically add `delta` and return the new value (a missing key is 0).
    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error>;
    /// Set `key` to `new` if its value is still `expected`. There is no CAS
    /// from *absent*: Spin's SQLite store makes that an unconditional upsert
    /// (see `core::single_flight`). `Ok(false)` when the swap was refused —
    /// which on Spin's Redis store does not prove that nothing was written.
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error>;
}

/// Wall-clock time and waiting. Leases cross processes, so time is wall time.
pub trait Clock {
    fn now_ms(&self) -> u64;
    async fn sleep(&self, ms: u64);
}

/// An object read from the store: its size and a body to stream.
pub struct StoredObject<B> {
    pub size: u64,
    pub body: B,
}

/// An S3-like object store.
pub trait ObjectStore {
    /// A readable body that the responder can stream to the client.
    type Body;
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), Error>;
    /// `Ok(None)` when there is no such object.
    async fn get(&self, key: &str) -> Result<Option<StoredObject<Self::Body>>, Error>;
    async fn delete(&self, key: &str) -> Result<(), Error>;
}

/// An image generation provider.
pub trait Provider {
    async fn generate(&self, request: &GenerationRequest) -> Result<GeneratedImage, Error>;
}
