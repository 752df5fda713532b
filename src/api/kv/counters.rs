//! Moving the per-project stats counters, and making sure a counter exists
//! before concurrent first increments can race on it.

use super::lease;
use crate::api::context::Context;
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::keys;
use crate::core::stored::stats::{self, Counter};
use crate::core::Error;

/// Move a project's stats counter. A counter that fails to move is logged;
/// it never fails the request it describes.
pub fn bump(kv: &impl KeyValue, project: &str, counter: Counter, delta: i64) {
    if delta == 0 {
        return;
    }
    if let Err(e) = kv.increment(&keys::stats(project, counter), delta) {
        crate::diag!("counter {} not updated: {e}", counter.name());
    }
}

/// Make `key` exist before it is incremented concurrently, where the
/// store's first increment is not atomic (`core::stored::platform`: on wash's NATS
/// two first increments of a key never written both read 1). It is created
/// once, under a lease (the others wait until it exists); where it exists
/// this is one read, and on Spin nothing.
pub async fn ensure<K: KeyValue, S, P, E: Env>(ctx: &Context<K, S, P, E>, key: &str) -> Result<(), Error> {
    if ctx.kv.flavour().first_increment_is_atomic() || ctx.kv.get(key)?.is_some() {
        return Ok(());
    }
    let exists = || Ok(ctx.kv.get(key)?.is_some());
    lease::once(ctx, &keys::lock(key), exists, || ctx.kv.create_counter(key)).await
}

/// The counters a new project starts with, made at once where first
/// increments are not atomic (its stats and its entries log's sequence), so
/// its first concurrent requests count exactly.
pub fn create_project_counters(kv: &impl KeyValue, project: &str) -> Result<(), Error> {
    if kv.flavour().first_increment_is_atomic() {
        return Ok(());
    }
    for counter in stats::ALL {
        kv.create_counter(&keys::stats(project, counter))?;
    }
    kv.create_counter(&keys::entry_seq(project))
}
