//! An in-memory key-value store with each runtime's observable semantics,
//! and reads that can lag writes (a store seen from another instance).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::core::ports::KeyValue;
use crate::core::stored::platform::Flavour;
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
    /// wasmCloud 2's `wasi:keyvalue@0.2.0-draft` (any wash backend): no
    /// compare-and-swap at all (calling one fails the test), counters as
    /// decimal text.
    WasmCloud,
}

#[derive(Default)]
pub struct MemKv {
    pub map: RefCell<BTreeMap<String, Vec<u8>>>,
    pub fail_writes: Cell<bool>,
    /// Only `set_many` fails (how entries are written).
    pub fail_set_many: Cell<bool>,
    pub semantics: Semantics,
    /// Writes that other reads do not see yet: until when, and what they
    /// see meanwhile (a store whose reads lag its writes; see [`MemKv::lagging`]).
    lag: Option<(Rc<Cell<u64>>, u64)>,
    unseen: RefCell<BTreeMap<String, Unseen>>,
    /// Every call made through [`KeyValue`], in order: (operation, key).
    pub ops: RefCell<Vec<(&'static str, String)>>,
}

/// Until when a write is unseen, and what reads see meanwhile.
type Unseen = (u64, Option<Vec<u8>>);

impl MemKv {
    pub fn with(semantics: Semantics) -> MemKv {
        MemKv { semantics, ..MemKv::default() }
    }

    /// From now on, reads see a `set` or `delete` only `lag_ms` of `clock`
    /// after it: the gap between a read and a write in another instance (or
    /// a lagging replica) made visible in virtual time.
    pub fn set_lag(&mut self, clock: Rc<Cell<u64>>, lag_ms: u64) {
        self.lag = Some((clock, lag_ms));
    }

    /// The stored keys that start with `prefix`.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.map.borrow().keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }

    /// The calls made so far; `take` empties the log.
    pub fn take_ops(&self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut self.ops.borrow_mut())
    }

    fn note(&self, op: &'static str, key: &str) {
        self.ops.borrow_mut().push((op, key.to_string()));
    }

    fn read(&self, key: &str) -> Option<Vec<u8>> {
        if let Some((clock, _)) = &self.lag {
            if let Some((until, seen)) = self.unseen.borrow().get(key) {
                if clock.get() < *until {
                    return seen.clone();
                }
            }
        }
        self.map.borrow().get(key).cloned()
    }

    fn write(&self, key: &str, value: Option<Vec<u8>>) {
        if let Some((clock, lag)) = &self.lag {
            let seen = self.read(key);
            self.unseen.borrow_mut().insert(key.into(), (clock.get() + lag, seen));
        }
        match value {
            Some(v) => self.map.borrow_mut().insert(key.into(), v),
            None => self.map.borrow_mut().remove(key),
        };
    }
}

impl KeyValue for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.note("get", key);
        Ok(self.read(key))
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        self.note("get_many", &keys.join(" "));
        if self.semantics == Semantics::SpinRedis {
            // Spin's Redis store: `KEYS` with the keys as patterns.
            return Err(Error::KeyValue("ERR wrong number of arguments for 'keys' command".into()));
        }
        Ok(keys.iter().map(|k| self.read(k)).collect())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.note("set", key);
        if self.fail_writes.get() {
            return Err(Error::KeyValue("injected".into()));
        }
        self.write(key, Some(value.to_vec()));
        Ok(())
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), Error> {
        self.note("set_many", &pairs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(" "));
        if self.fail_writes.get() || self.fail_set_many.get() {
            return Err(Error::KeyValue("injected".into()));
        }
        for (key, value) in pairs {
            self.write(key, Some(value.clone()));
        }
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), Error> {
        self.note("delete", key);
        self.write(key, None);
        Ok(())
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.note("increment", key);
        self.add(key, delta)
    }
    fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        self.note("counter", key);
        let Some(bytes) = self.read(key) else { return Ok(None) };
        self.flavour()
            .decode_counter(&bytes)
            .resolve(|| None)
            .map(Some)
            .ok_or_else(|| Error::KeyValue(format!("{key} is not a counter")))
    }
    fn create_counter(&self, key: &str) -> Result<(), Error> {
        self.note("create_counter", key);
        self.add(key, 0).map(drop)
    }
    fn delete_counter(&self, key: &str) -> Result<(), Error> {
        self.note("delete_counter", key);
        self.write(key, None);
        Ok(())
    }
    fn flavour(&self) -> Flavour {
        match self.semantics {
            Semantics::SpinSqlite | Semantics::SpinRedis => Flavour::Spin,
            Semantics::WasmCloud => Flavour::WasmCloud2,
        }
    }
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error> {
        self.note("compare_and_swap", key);
        assert_ne!(self.semantics, Semantics::WasmCloud, "no compare-and-swap on wasmCloud ({key})");
        let mut map = self.map.borrow_mut();
        if map.get(key).map(Vec::as_slice) != Some(expected) {
            return Ok(false);
        }
        map.insert(key.into(), new.to_vec());
        Ok(self.semantics != Semantics::SpinRedis)
    }
}

impl MemKv {
    fn add(&self, key: &str, delta: i64) -> Result<i64, Error> {
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
            Semantics::SpinRedis | Semantics::WasmCloud => {
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
}
