//! Scopes (X-API-Key, the caller's project): `GET|POST /api/v1/scopes`,
//! `GET|PATCH|DELETE /api/v1/scopes/{slug}`. What the pipeline asks of a
//! scope, and the index of slugs, is `records::scopes`.

use serde_json::json;

use crate::api::context::Context;
use crate::api::records::policies;
use crate::api::records::scopes::{add_to_index, index, load, remove_from_index};
use crate::api::reply::Reply;
use crate::core::http::headers;
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::stored::scope::{self, Scope};
use crate::core::Error;

fn document(kv: &impl KeyValue, project: &str, s: &Scope) -> Result<serde_json::Value, Error> {
    let used = kv.counter(&keys::scope_generations(project, &s.slug))?.unwrap_or(0);
    Ok(json!({
        "slug": s.slug,
        "generations_limit": s.generations_limit,
        "generations_used": used,
        "allow_new_generations": s.allow_new_generations,
        "public": s.public,
        "created_at": s.created_at,
        "policy": policies::load(kv, &keys::scope_policy(project, &s.slug))?,
    }))
}

pub async fn create<K: KeyValue, S, P, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    body: &[u8],
    now: u64,
) -> Result<Reply<B>, Error> {
    let kv = &ctx.kv;
    let (slug, changes) = scope::parse_create(body)?;
    if load(kv, &project.id, &slug)?.is_some() {
        return Err(Error::Conflict("a scope with this slug exists"));
    }
    let mut s = Scope::lazy(&slug, now);
    changes.apply(&mut s);
    policies::change(kv, &keys::scope_policy(&project.id, &slug), &changes.policy)?;
    kv.set(&keys::scope(&project.id, &slug), &s.encode())?;
    add_to_index(ctx, &project.id, &slug).await?;
    Ok(Reply::json(201, document(kv, &project.id, &s)?))
}

pub fn list<B>(kv: &impl KeyValue, project: &Project) -> Result<Reply<B>, Error> {
    let mut docs = Vec::new();
    for slug in index(kv, &project.id)? {
        if let Some(s) = load(kv, &project.id, &slug)? {
            docs.push(document(kv, &project.id, &s)?);
        }
    }
    Ok(Reply::json(200, json!({ "scopes": docs })))
}

pub fn get<B>(kv: &impl KeyValue, project: &Project, slug: &str) -> Result<Reply<B>, Error> {
    let s = load(kv, &project.id, slug)?.ok_or(Error::NotFound("no such scope"))?;
    Ok(Reply::json(200, document(kv, &project.id, &s)?))
}

pub fn update<B>(kv: &impl KeyValue, project: &Project, slug: &str, body: &[u8]) -> Result<Reply<B>, Error> {
    let changes = scope::parse_body(body, false)?;
    let mut s = load(kv, &project.id, slug)?.ok_or(Error::NotFound("no such scope"))?;
    changes.apply(&mut s);
    policies::change(kv, &keys::scope_policy(&project.id, slug), &changes.policy)?;
    kv.set(&keys::scope(&project.id, slug), &s.encode())?;
    Ok(Reply::json(200, document(kv, &project.id, &s)?))
}

/// The scope goes (with its policy); its cached images stay (a scope of the same slug created
/// again serves them again) and its generation count starts again.
pub async fn delete<K: KeyValue, S, P, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    slug: &str,
) -> Result<Reply<B>, Error> {
    let kv = &ctx.kv;
    load(kv, &project.id, slug)?.ok_or(Error::NotFound("no such scope"))?;
    kv.delete(&keys::scope(&project.id, slug))?;
    kv.delete(&keys::scope_policy(&project.id, slug))?;
    if let Err(e) = kv.delete_counter(&keys::scope_generations(&project.id, slug)) {
        crate::diag!("scope counter not removed: {e}");
    }
    remove_from_index(ctx, &project.id, slug).await?;
    Ok(Reply::empty(204, headers::deleted()))
}

#[cfg(test)]
#[path = "scopes_tests.rs"]
mod tests;
