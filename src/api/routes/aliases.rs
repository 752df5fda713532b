//! Aliases (X-API-Key, the caller's project): `GET /api/v1/aliases`,
//! `GET|PUT|DELETE /api/v1/aliases/{name}`. The record itself, and what
//! the pipeline asks of it, is `records::aliases`.

use serde_json::json;

use crate::api::context::Context;
use crate::api::records::aliases::{change, load, original};
use crate::api::reply::Reply;
use crate::core::http::headers;
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::alias::{self, MAX_ALIASES};
use crate::core::stored::project::Project;
use crate::core::Error;

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
