//! Bumping the per-project stats counters. A counter that fails to move is
//! logged; it never fails the request it describes.

use crate::core::ports::KeyValue;
use crate::core::stats::{counter_key, Counter};

pub fn bump(kv: &impl KeyValue, project: &str, counter: Counter, delta: i64) {
    if delta == 0 {
        return;
    }
    if let Err(e) = kv.increment(&counter_key(project, counter), delta) {
        eprintln!("banatie-live: counter {} not updated: {e}", counter.name());
    }
}
