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

#[derive(Default)]
pub struct MemKv {
    pub map: RefCell<BTreeMap<String, Vec<u8>>>,
    pub fail_writes: Cell<bool>,
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
        let current = map.get(key).map(|v| i64::from_le_bytes(v.as_slice().try_into().unwrap())).unwrap_or(0);
        map.insert(key.into(), (current + delta).to_le_bytes().to_vec());
        Ok(current + delta)
    }
    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, Error> {
        let mut map = self.map.borrow_mut();
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        map.insert(key.into(), new.to_vec());
        Ok(true)
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
