//! A small JSON record (a project's aliases, its scope slugs) read whole
//! and changed under its lock (`kv::lease::once`), so concurrent changes
//! are not lost on any store, compare-and-swap or not.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::context::Context;
use crate::api::kv::lease;
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::keys;
use crate::core::Error;

/// The record at `key`; absent, or unreadable, it is the empty one.
pub fn load<T: DeserializeOwned + Default>(kv: &impl KeyValue, key: &str) -> Result<T, Error> {
    let raw = kv.get(key)?;
    Ok(raw.as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default())
}

/// Change the record at `key` under its lock; `change` says whether it
/// changed anything (nothing left to do: done, and nothing is written).
pub async fn change<T, K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    key: &str,
    change: impl Fn(&mut T) -> bool,
) -> Result<(), Error>
where
    T: Serialize + DeserializeOwned + Default,
{
    let done = || Ok(!change(&mut load(&ctx.kv, key)?));
    let work = || {
        let mut record: T = load(&ctx.kv, key)?;
        change(&mut record);
        let bytes = serde_json::to_vec(&record).map_err(|e| Error::Internal(format!("{key}: {e}")))?;
        ctx.kv.set(key, &bytes)
    };
    lease::once(ctx, &keys::lock(key), done, work).await
}
