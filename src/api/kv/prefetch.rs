//! The reads a request is known to make first, made in one `get-many`.
//!
//! A keyed HIT reads the project record, the entry and its last access, in
//! that order, one host call each; the project's id is known before any of
//! them (from the API key, the signed URL or the public URL: `api::auth`),
//! so `dispatch` asks for all of them at once and each read is answered from
//! what came back. The prefetched values answer only the request's leading
//! run of reads: each key's first read, until the request reads a key it did
//! not prefetch or writes anything — from then on every read goes to the
//! store. Between the `get-many` and the reads it answers there is no wait
//! and no write (a HIT: record, scope, entry, variant, last access, then its
//! count), so each sees what a read at the time of the `get-many` saw; a
//! request that goes on to a lease, a wait or a generation reads afresh. Where
//! `get-many` fails (Spin's Redis store: `core::ports::KeyValue::get_many`)
//! nothing is prefetched and every read goes to the store, as before, after
//! that one failed call; wasmCloud 1.x, whose `get-many` is one get per key,
//! prefetches nothing.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::core::ports::KeyValue;
use crate::core::stored::platform::Flavour;
use crate::core::Error;

pub struct Prefetched<K> {
    inner: K,
    memo: RefCell<HashMap<String, Option<Vec<u8>>>>,
}

/// Fewer keys than this are read one by one (a `get-many` of one key saves
/// nothing, and on Spin's Redis store it is a `KEYS` scan of that pattern).
const MIN_KEYS: usize = 2;

impl<K: KeyValue> Prefetched<K> {
    pub fn new(inner: K) -> Prefetched<K> {
        Prefetched { inner, memo: RefCell::new(HashMap::new()) }
    }

    /// Read `keys` in one call, for the reads to come.
    pub fn prefetch(&self, keys: Vec<String>) {
        if keys.len() < MIN_KEYS || self.inner.flavour() == Flavour::WasmCloud1 {
            return;
        }
        match self.inner.get_many(&keys) {
            Ok(values) => self.memo.borrow_mut().extend(keys.into_iter().zip(values)),
            Err(e) => crate::diag!("prefetch skipped: {e}"),
        }
    }

    /// The leading run is over: every read from now on goes to the store.
    fn done(&self) {
        if !self.memo.borrow().is_empty() {
            self.memo.borrow_mut().clear();
        }
    }
}

impl<K: KeyValue> KeyValue for Prefetched<K> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let memo = self.memo.borrow_mut().remove(key);
        match memo {
            Some(value) => Ok(value),
            None => {
                self.done();
                self.inner.get(key)
            }
        }
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        self.done();
        self.inner.get_many(keys)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.done();
        self.inner.set(key, value)
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), Error> {
        self.done();
        self.inner.set_many(pairs)
    }
    fn delete(&self, key: &str) -> Result<(), Error> {
        self.done();
        self.inner.delete(key)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.done();
        self.inner.increment(key, delta)
    }
    fn count_up(&self, key: &str) -> Result<i64, Error> {
        self.done();
        self.inner.count_up(key)
    }
    fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        self.done();
        self.inner.counter(key)
    }
    fn create_counter(&self, key: &str) -> Result<(), Error> {
        self.done();
        self.inner.create_counter(key)
    }
    fn delete_counter(&self, key: &str) -> Result<(), Error> {
        self.done();
        self.inner.delete_counter(key)
    }
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error> {
        self.done();
        self.inner.compare_and_swap(key, expected, new)
    }
    fn flavour(&self) -> Flavour {
        self.inner.flavour()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fakes::MemKv;

    fn set(kv: &MemKv, pairs: &[(&str, &str)]) {
        for (k, v) in pairs {
            kv.set(k, v.as_bytes()).unwrap();
        }
    }

    /// Prefetched values answer the leading reads only: once the request
    /// reads another key or writes, it reads what the store holds now.
    #[test]
    fn prefetched_values_answer_only_the_leading_reads() {
        let kv = MemKv::default();
        set(&kv, &[("a", "1"), ("b", "2"), ("c", "3")]);
        let p = Prefetched::new(&kv);
        p.prefetch(vec!["a".into(), "b".into(), "c".into()]);
        // Another instance writes meanwhile.
        set(&kv, &[("a", "new"), ("b", "new"), ("c", "new")]);
        kv.take_ops();
        assert_eq!(p.get("a").unwrap().as_deref(), Some(&b"1"[..]), "as read by the get-many");
        assert!(kv.take_ops().is_empty(), "answered without a call");
        p.get("lease").unwrap();
        assert_eq!(p.get("b").unwrap().as_deref(), Some(&b"new"[..]), "after another read: fresh");

        let p = Prefetched::new(&kv);
        p.prefetch(vec!["a".into(), "b".into()]);
        set(&kv, &[("a", "newer")]);
        p.count_up("hits").unwrap();
        assert_eq!(p.get("a").unwrap().as_deref(), Some(&b"newer"[..]), "after a write: fresh");

        let p = Prefetched::new(&kv);
        kv.take_ops();
        p.prefetch(vec!["a".into()]);
        assert!(kv.take_ops().is_empty(), "one key is read when it is read");
    }
}
