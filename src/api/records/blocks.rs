//! Takedowns as stored: a blocked cache key (`keys::blocked`, read before
//! an original is made or when it is not cached) and the project's index of
//! blocks (`keys::blocks`, blocked image id → cache key, changed under its
//! lock). What a block is: `core::stored::block`.

use std::collections::BTreeMap;

use super::record;
use crate::api::context::Context;
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::block::Block;
use crate::core::stored::keys;
use crate::core::Error;

/// The block on the cache key `hash`, if any.
pub fn load(kv: &impl KeyValue, project: &str, hash: &str) -> Result<Option<Block>, Error> {
    kv.get(&keys::blocked(project, hash))?.map(|b| Block::decode(&b)).transpose()
}

/// `Err(Blocked)` when the cache key `hash` was taken down.
pub fn check(kv: &impl KeyValue, project: &str, hash: &str) -> Result<(), Error> {
    match kv.get(&keys::blocked(project, hash))? {
        Some(_) => Err(Error::Blocked),
        None => Ok(()),
    }
}

/// The project's blocks: image id → cache key.
pub fn index(kv: &impl KeyValue, project: &str) -> Result<BTreeMap<String, String>, Error> {
    record::load(kv, &keys::blocks(project))
}

/// Record `block` in the project's index.
pub async fn add_to_index<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    block: &Block,
) -> Result<(), Error> {
    record::change(ctx, &keys::blocks(project), |index: &mut BTreeMap<String, String>| {
        index.insert(block.image_id.clone(), block.hash.clone()).as_ref() != Some(&block.hash)
    })
    .await
}

/// Remove `image_id` from the project's index.
pub async fn remove_from_index<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    image_id: &str,
) -> Result<(), Error> {
    record::change(ctx, &keys::blocks(project), |index: &mut BTreeMap<String, String>| {
        index.remove(image_id).is_some()
    })
    .await
}
