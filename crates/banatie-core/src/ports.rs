//! The doors between core logic and the outside world. `adapters`
//! implements them over WASI; tests implement them in memory.
#![allow(async_fn_in_trait)] // single-threaded wasm executor: no Send bounds wanted

use crate::config::ProviderConfig;
use crate::http::headers::Header;
use crate::http::request::GenerationRequest;
use crate::provider::GeneratedImage;
use crate::stored::platform::Flavour;
use crate::Error;

/// A key-value store with atomic counters (`wasi:keyvalue` store + atomics),
/// keyed by the logical keys of `core::stored::keys` (the adapter spells them as its
/// store needs). What each runtime's store guarantees is `core::stored::platform`.
pub trait KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error>;
    /// Several gets in one call (`wasi:keyvalue/batch`'s `get-many`), the
    /// values in the order of `keys`. It may fail where a single `get` would
    /// not (Spin's Redis store answers `get-many` with `KEYS`, which fails:
    /// `banatie-host` `kv/redis.rs`); callers that can, read one by one then.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error>;
    /// Several sets in one call (`wasi:keyvalue/batch`'s `set-many`: one
    /// transaction on Spin's SQLite store, `MSET` on its Redis store).
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), Error>;
    fn delete(&self, key: &str) -> Result<(), Error>;
    /// Add `delta` (not 0: read with [`KeyValue::counter`]) and return the
    /// new value; a missing key counts from 0. Exact under concurrency once
    /// the counter exists; its very first increments are exact only where
    /// `flavour().first_increment_is_atomic()` (else see `api::kv::counters::ensure`).
    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error>;
    /// Add 1 to a counter that never goes down (no negative `increment` is
    /// ever made of it) and return the new value: one store call on every
    /// runtime (on wasmCloud its decrements key is not read).
    fn count_up(&self, key: &str) -> Result<i64, Error> {
        self.increment(key, 1)
    }
    /// A counter's value, read without writing; `None` when it does not exist.
    fn counter(&self, key: &str) -> Result<Option<i64>, Error>;
    /// Make the counter exist (at 0 when it did not; unchanged when it did).
    fn create_counter(&self, key: &str) -> Result<(), Error>;
    /// Remove a counter (on wasmCloud: both of its keys).
    fn delete_counter(&self, key: &str) -> Result<(), Error>;
    /// Set `key` to `new` if its value is still `expected` (only where
    /// `flavour().exclusion()` is `CompareAndSwap`). There is no CAS from
    /// *absent*: Spin's SQLite store makes that an unconditional upsert (see
    /// `core::decide::single_flight`). `Ok(false)` when the swap was refused — which
    /// on Spin's Redis store does not prove that nothing was written.
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error>;
    /// Which build this is, and so what its store guarantees (`core::stored::platform`).
    fn flavour(&self) -> Flavour;
}

/// Everything a request draws from its environment: wall-clock time (leases
/// cross processes, so it is wall time), waiting, ids and randomness. One
/// door, so tests replace all of it at once (virtual time, predictable ids).
pub trait Env {
    fn now_ms(&self) -> u64;
    /// A monotonic clock in microseconds (measuring durations, never dates).
    fn monotonic_us(&self) -> u64;
    /// The same clock in milliseconds.
    fn monotonic_ms(&self) -> u64 {
        self.monotonic_us() / 1000
    }
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> u64 {
        self.now_ms() / 1000
    }
    async fn sleep(&self, ms: u64);
    /// A fresh unique id (image ids, generation ids, project ids).
    fn new_id(&self) -> String;
    fn random_u32(&self) -> u32;
    /// 64 random bytes: the seed of new credentials.
    fn random_bytes64(&self) -> [u8; 64];
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
    /// The whole object in memory (to derive a variant from it), never more
    /// than `max_bytes`: a larger one is an error. `Ok(None)`: no such object.
    async fn get_bytes(&self, key: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, Error>;
    async fn delete(&self, key: &str) -> Result<(), Error>;
}

/// An image generation provider.
pub trait Provider {
    /// An image of `request` from `model` (one of the configured models),
    /// given `inputs` (the images of its `ref`s). With `previews`, a
    /// provider that streams partial images (OpenAI's `partial_images`)
    /// hands each to it as it arrives; one that does not, never calls it.
    async fn generate(
        &self,
        model: &ProviderConfig,
        request: &GenerationRequest,
        inputs: &[GeneratedImage],
        previews: Option<&dyn Fn(GeneratedImage)>,
    ) -> Result<GeneratedImage, Error>;
    /// The provider's text model's richer version of `prompt`.
    async fn enhance(&self, prompt: &str) -> Result<String, Error>;
    /// What `moderation` says of `prompt` and `images` (`Err`: it could not
    /// be asked, `Error::ModerationUnavailable`).
    async fn moderate(
        &self,
        moderation: &crate::provider::moderation::Moderation,
        prompt: &str,
        images: &[GeneratedImage],
    ) -> Result<crate::provider::moderation::Verdict, Error>;
}

/// An answer that goes out while the request is still at work (a
/// progressive MISS, the warm endpoint's lines): its head at once, then its
/// body chunk by chunk. Nothing here waits for the client: what it cannot
/// take yet is kept, in order, and sent as it takes more — by the end of
/// the request, within a deadline, by the adapter — so a slow or departed
/// client never holds up what the request makes for everyone. A client
/// that has gone is written to no more; the request goes on.
pub trait Respond {
    /// Send the status and headers now. Once; later calls are ignored.
    fn begin(&self, status: u16, headers: Vec<Header>);
    /// Append `bytes` to the body. `droppable` (a preview): sent only if
    /// the client can take all of it now, else dropped, never queued.
    fn chunk(&self, bytes: Vec<u8>, droppable: bool);
    /// Whether [`Respond::begin`] was called.
    fn begun(&self) -> bool;
    /// Whether the client has gone (a write to it failed): nothing more
    /// reaches it, and work only it wanted need not begin.
    fn gone(&self) -> bool;
}

// A borrowed port is a port: tests keep their fakes and hand out references.

impl<T: KeyValue + ?Sized> KeyValue for &T {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        (**self).set(key, value)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        (**self).get_many(keys)
    }
    fn count_up(&self, key: &str) -> Result<i64, Error> {
        (**self).count_up(key)
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), Error> {
        (**self).set_many(pairs)
    }
    fn delete(&self, key: &str) -> Result<(), Error> {
        (**self).delete(key)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        (**self).increment(key, delta)
    }
    fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        (**self).counter(key)
    }
    fn create_counter(&self, key: &str) -> Result<(), Error> {
        (**self).create_counter(key)
    }
    fn delete_counter(&self, key: &str) -> Result<(), Error> {
        (**self).delete_counter(key)
    }
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error> {
        (**self).compare_and_swap(key, expected, new)
    }
    fn flavour(&self) -> Flavour {
        (**self).flavour()
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    fn monotonic_us(&self) -> u64 {
        (**self).monotonic_us()
    }
    async fn sleep(&self, ms: u64) {
        (**self).sleep(ms).await
    }
    fn new_id(&self) -> String {
        (**self).new_id()
    }
    fn random_u32(&self) -> u32 {
        (**self).random_u32()
    }
    fn random_bytes64(&self) -> [u8; 64] {
        (**self).random_bytes64()
    }
}

impl<T: ObjectStore + ?Sized> ObjectStore for &T {
    type Body = T::Body;
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), Error> {
        (**self).put(key, content_type, bytes).await
    }
    async fn get(&self, key: &str) -> Result<Option<StoredObject<Self::Body>>, Error> {
        (**self).get(key).await
    }
    async fn get_bytes(&self, key: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, Error> {
        (**self).get_bytes(key, max_bytes).await
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        (**self).delete(key).await
    }
}

impl<T: Provider + ?Sized> Provider for &T {
    async fn generate(
        &self,
        model: &ProviderConfig,
        request: &GenerationRequest,
        inputs: &[GeneratedImage],
        previews: Option<&dyn Fn(GeneratedImage)>,
    ) -> Result<GeneratedImage, Error> {
        (**self).generate(model, request, inputs, previews).await
    }
    async fn enhance(&self, prompt: &str) -> Result<String, Error> {
        (**self).enhance(prompt).await
    }
    async fn moderate(
        &self,
        moderation: &crate::provider::moderation::Moderation,
        prompt: &str,
        images: &[GeneratedImage],
    ) -> Result<crate::provider::moderation::Verdict, Error> {
        (**self).moderate(moderation, prompt, images).await
    }
}
