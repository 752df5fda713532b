//! Aliases (X-API-Key, the caller's project): `GET /api/v1/aliases`,
//! `GET|PUT|DELETE /api/v1/aliases/{name}` — a project's names for its
//! images, for `ref=@name` — and what the live pipeline asks of references:
//! resolving a request's `ref`s to image ids, and finding an original by
//! its id. All of a project's aliases are one record (`keys::aliases`), at
//! most `core::alias::MAX_ALIASES`, changed under its lock so concurrent changes are
//! not lost on any store.

use std::collections::BTreeMap;

use serde_json::json;

use super::context::Context;
use super::lease;
use super::reply::Reply;
use crate::core::entry::Entry;
use crate::core::headers;
use crate::core::keys;
use crate::core::ports::{Env, KeyValue};
use crate::core::project::Project;
use crate::core::Error;

use crate::core::alias::{self, MAX_ALIASES};

fn load(kv: &impl KeyValue, project: &str) -> Result<BTreeMap<String, String>, Error> {
    let raw = kv.get(&keys::aliases(project))?;
    Ok(raw.as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default())
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

pub fn list<B>(kv: &impl KeyValue, project: &Project) -> Result<Reply<B>, Error> {
    Ok(Reply::json(200, json!({ "aliases": load(kv, &project.id)? })))
}

pub fn get<B>(kv: &impl KeyValue, project: &Project, name: &str) -> Result<Reply<B>, Error> {
    let id = load(kv, &project.id)?.remove(name).ok_or(Error::NotFound("no such alias"))?;
    Ok(Reply::json(200, json!({ "name": name, "image_id": id })))
}

/// Name (or name again) a cached original of the project.
pub async fn put<K: KeyValue, S, P, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    name: &str,
    body: &[u8],
) -> Result<Reply<B>, Error> {
    let image_id = alias::parse_put_body(body)?;
    if original(&ctx.kv, &project.id, &image_id)?.is_none() {
        return Err(Error::NotFound("no cached original with this image id in the project"));
    }
    let full = std::cell::Cell::new(false);
    change(ctx, &project.id, |aliases| {
        if !aliases.contains_key(name) && aliases.len() >= MAX_ALIASES {
            full.set(true);
            return false;
        }
        aliases.insert(name.to_string(), image_id.clone()).as_ref() != Some(&image_id)
    })
    .await?;
    if full.get() {
        return Err(Error::Conflict("the project has 100 aliases: delete one first"));
    }
    Ok(Reply::json(200, json!({ "name": name, "image_id": image_id })))
}

pub async fn delete<K: KeyValue, S, P, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    name: &str,
) -> Result<Reply<B>, Error> {
    if !load(&ctx.kv, &project.id)?.contains_key(name) {
        return Err(Error::NotFound("no such alias"));
    }
    change(ctx, &project.id, |aliases| aliases.remove(name).is_some()).await?;
    Ok(Reply::empty(204, headers::deleted()))
}

/// Change the record under its lock (`api::lease::once`); `change` says
/// whether it changed anything (nothing left to do: done).
async fn change<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    change: impl Fn(&mut BTreeMap<String, String>) -> bool,
) -> Result<(), Error> {
    let key = keys::aliases(project);
    let done = || Ok(!change(&mut load(&ctx.kv, project)?));
    let work = || {
        let mut aliases = load(&ctx.kv, project)?;
        change(&mut aliases);
        ctx.kv.set(&key, &serde_json::to_vec(&aliases).expect("aliases serialise"))
    };
    lease::once(ctx, &keys::lock(&key), done, work).await
}
