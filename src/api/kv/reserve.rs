//! One unit reserved on a KV counter against a limit: an atomic add, undone
//! at once when the caller's check refuses the new count (so N concurrent
//! requests against a limit L reserve exactly L), and given back when the
//! request does not generate after all. The per-client allowance and a
//! scope's `generations_limit` both work this way.

use std::cell::Cell;

use crate::core::ports::KeyValue;
use crate::core::Error;

pub struct Unit<'a, K> {
    kv: &'a K,
    /// The counter; `None` when nothing is limited.
    key: Option<String>,
    /// The count this request's reservation brought the counter to.
    used: Cell<Option<i64>>,
}

impl<'a, K: KeyValue> Unit<'a, K> {
    pub fn new(kv: &'a K, key: Option<String>) -> Self {
        Unit { kv, key, used: Cell::new(None) }
    }

    /// Reserve one (once; later calls are no-ops). `check` judges the count
    /// the add produced; its error undoes the add and is returned.
    pub fn take(&self, check: impl FnOnce(i64) -> Result<(), Error>) -> Result<(), Error> {
        let Some(key) = &self.key else { return Ok(()) };
        if self.used.get().is_some() {
            return Ok(());
        }
        let used = self.kv.increment(key, 1)?;
        if let Err(e) = check(used) {
            self.undo(key);
            return Err(e);
        }
        self.used.set(Some(used));
        Ok(())
    }

    /// This request did not generate after all: give the unit back.
    pub fn refund(&self) {
        if let (Some(key), Some(_)) = (&self.key, self.used.take()) {
            self.undo(key);
        }
    }

    /// The counter reserved on, when something is limited.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The count after this request's reservation, if it holds one.
    pub fn used(&self) -> Option<i64> {
        self.used.get()
    }

    fn undo(&self, key: &str) {
        if let Err(e) = self.kv.increment(key, -1) {
            crate::diag!("reserved unit of {key} not given back: {e}");
        }
    }
}
