//! A project's aliases — its names for its images, for `ref=@name` — as
//! the routes (`routes::aliases`) and the live pipeline use them: all of
//! them one record (`keys::aliases`, at most `core::stored::alias::MAX_ALIASES`),
//! resolving a request's `ref`s to image ids, and finding an original by its
//! id (`keys::image_index`).

use std::collections::BTreeMap;

use super::record;
use crate::api::context::Context;
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::entry::Entry;
use crate::core::stored::keys;
use crate::core::Error;

/// The project's aliases: name → image id.
pub fn load(kv: &impl KeyValue, project: &str) -> Result<BTreeMap<String, String>, Error> {
    record::load(kv, &keys::aliases(project))
}

/// The original of this project whose image id is `image_id`, if it is
/// cached (an id of another project's image is not found: never told apart).
pub fn original(kv: &impl KeyValue, project: &str, image_id: &str) -> Result<Option<Entry>, Error> {
    let Some(hash) = kv.get(&keys::image_index(project, image_id))? else { return Ok(None) };
    let hash = String::from_utf8_lossy(&hash).into_owned();
    let Some(bytes) = kv.get(&keys::entry(project, &hash))? else { return Ok(None) };
    let entry = Entry::decode(&bytes)?;
    Ok((entry.image_id == image_id && entry.variant_of.is_none()).then_some(entry))
}

/// A request's `ref`s as image ids: each `@alias` looked up (one read, for
/// all of them); sorted, each once. An unknown alias is a 404.
pub fn resolve(kv: &impl KeyValue, project: &str, refs: &[String]) -> Result<Vec<String>, Error> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let aliases = if refs.iter().any(|r| r.starts_with('@')) { load(kv, project)? } else { BTreeMap::new() };
    let mut ids = refs
        .iter()
        .map(|r| match r.strip_prefix('@') {
            Some(name) => aliases.get(name).cloned().ok_or(Error::NotFound("no such alias (ref)")),
            None => Ok(r.clone()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Change the aliases under their lock (`record::change`).
pub async fn change<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    change: impl Fn(&mut BTreeMap<String, String>) -> bool,
) -> Result<(), Error> {
    record::change(ctx, &keys::aliases(project), change).await
}
