//! The reads a request is known to make first, made in one `get-many`.
//!
//! A keyed HIT reads the project record, the entry and its last access, in
//! that order, one host call each; the project's id is known before any of
//! them (from the API key, the signed URL or the public URL: `api::auth`),
//! so `dispatch` asks for all of them at once and each read is answered from
//! what came back. A prefetched value answers the *first* read of its key
//! only (later reads, such as the recheck after taking a lease, go to the
//! store), and a write of the key forgets it: each read sees what a read made
//! at the time of the `get-many` would have seen, and nothing this request
//! wrote is hidden from it. Where `get-many` fails (Spin's Redis store:
//! `core::ports::KeyValue::get_many`) nothing is prefetched and every read
//! goes to the store, as before.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::core::platform::Flavour;
use crate::core::ports::KeyValue;
use crate::core::Error;

pub struct Prefetched<K> {
    inner: K,
    memo: RefCell<HashMap<String, Option<Vec<u8>>>>,
}

impl<K: KeyValue> Prefetched<K> {
    pub fn new(inner: K) -> Prefetched<K> {
        Prefetched { inner, memo: RefCell::new(HashMap::new()) }
    }

    /// Read `keys` in one call, for the reads to come.
    pub fn prefetch(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        match self.inner.get_many(&keys) {
            Ok(values) => self.memo.borrow_mut().extend(keys.into_iter().zip(values)),
            Err(e) => crate::diag!("prefetch skipped: {e}"),
        }
    }

    fn forget(&self, key: &str) {
        if !self.memo.borrow().is_empty() {
            self.memo.borrow_mut().remove(key);
        }
    }
}

impl<K: KeyValue> KeyValue for Prefetched<K> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let memo = self.memo.borrow_mut().remove(key);
        match memo {
            Some(value) => Ok(value),
            None => self.inner.get(key),
        }
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        self.inner.get_many(keys)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.forget(key);
        self.inner.set(key, value)
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), Error> {
        pairs.iter().for_each(|(k, _)| self.forget(k));
        self.inner.set_many(pairs)
    }
    fn delete(&self, key: &str) -> Result<(), Error> {
        self.forget(key);
        self.inner.delete(key)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.forget(key);
        self.inner.increment(key, delta)
    }
    fn count_up(&self, key: &str) -> Result<i64, Error> {
        self.forget(key);
        self.inner.count_up(key)
    }
    fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        self.inner.counter(key)
    }
    fn create_counter(&self, key: &str) -> Result<(), Error> {
        self.forget(key);
        self.inner.create_counter(key)
    }
    fn delete_counter(&self, key: &str) -> Result<(), Error> {
        self.forget(key);
        self.inner.delete_counter(key)
    }
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error> {
        self.forget(key);
        self.inner.compare_and_swap(key, expected, new)
    }
    fn flavour(&self) -> Flavour {
        self.inner.flavour()
    }
}
