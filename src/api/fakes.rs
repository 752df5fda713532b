//! In-memory implementations of the `core::ports` traits for native tests.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::core::ports::{Clock, KeyValue, ObjectStore, Provider, StoredObject};
use crate::core::provider::GeneratedImage;
use crate::core::request::GenerationRequest;
use crate::core::Error;

/// Which runtime's observable key-value semantics the fake reproduces
/// (read from Spin v3.6.0's `crates/key-value-{spin,redis}/src/store.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Semantics {
    /// Spin's SQLite store: counters are 8 little-endian bytes (any other
    /// length panics, as Spin's `expect("incorrect length")` does).
    #[default]
    SpinSqlite,
    /// Spin's Redis store: counters are decimal text (INCRBY), and a swap
    /// reports failure although its SET was applied.
    SpinRedis,
}

#[derive(Default)]
pub struct MemKv {
    pub map: RefCell<BTreeMap<String, Vec<u8>>>,
    pub fail_writes: Cell<bool>,
    pub semantics: Semantics,
}

impl MemKv {
    pub fn with(semantics: Semantics) -> MemKv {
        MemKv { semantics, ..MemKv::default() }
    }
}

impl KeyValue for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.map.borrow().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        if self.fail_writes.get() {
            return Err(Error::KeyValue("injected".into()));
        }
        self.map.borrow_mut().insert(key.into(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), Error> {
        self.map.borrow_mut().remove(key);
        Ok(())
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let mut map = self.map.borrow_mut();
        let current = map.get(key);
        let next = match self.semantics {
            Semantics::SpinSqlite => {
                let n =
                    current.map(|v| i64::from_le_bytes(v.as_slice().try_into().expect("incorrect length")));
                let next = n.unwrap_or(0) + delta;
                map.insert(key.into(), next.to_le_bytes().to_vec());
                next
            }
            Semantics::SpinRedis => {
                let n = match current {
                    None => 0,
                    Some(v) => {
                        std::str::from_utf8(v).ok().and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| {
                            Error::KeyValue("ERR value is not an integer or out of range".into())
                        })?
                    }
                };
                map.insert(key.into(), (n + delta).to_string().into_bytes());
                n + delta
            }
        };
        Ok(next)
    }
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error> {
        let mut map = self.map.borrow_mut();
        if map.get(key).map(Vec::as_slice) != Some(expected) {
            return Ok(false);
        }
        map.insert(key.into(), new.to_vec());
        Ok(self.semantics != Semantics::SpinRedis)
    }
}

/// Returns `Pending` once, so concurrent futures interleave in `join_all`.
#[derive(Default)]
pub struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Virtual time: sleeping advances it instantly (tests never really wait).
#[derive(Default)]
pub struct FakeClock {
    pub now_ms: Cell<u64>,
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }
    async fn sleep(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
        YieldOnce::default().await
    }
}

#[derive(Default)]
pub struct MemStore {
    pub objects: RefCell<BTreeMap<String, (String, Vec<u8>)>>,
    pub fail_puts: Cell<bool>,
}

impl ObjectStore for MemStore {
    type Body = Vec<u8>;
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), Error> {
        if self.fail_puts.get() {
            return Err(Error::Storage("injected".into()));
        }
        self.objects.borrow_mut().insert(key.into(), (content_type.into(), bytes));
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<StoredObject<Vec<u8>>>, Error> {
        Ok(self
            .objects
            .borrow()
            .get(key)
            .map(|(_, b)| StoredObject { size: b.len() as u64, body: b.clone() }))
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
}

/// Draws "bytes" from the prompt; can be told to fail or refuse.
#[derive(Default)]
pub struct FakeProvider {
    pub calls: Cell<usize>,
    pub answer: RefCell<Option<Error>>,
}

impl Provider for FakeProvider {
    async fn generate(&self, request: &GenerationRequest) -> Result<GeneratedImage, Error> {
        self.calls.set(self.calls.get() + 1);
        YieldOnce::default().await; // a real provider call takes a while
        if let Some(e) = self.answer.borrow().clone() {
            return Err(e);
        }
        Ok(GeneratedImage {
            content_type: "image/png".into(),
            bytes: format!("PNG:{}:{}", request.prompt, request.aspect_ratio).into_bytes(),
        })
    }
}
