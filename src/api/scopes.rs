//! Scopes (X-API-Key, the caller's project): `GET|POST /api/v1/scopes`,
//! `GET|PATCH|DELETE /api/v1/scopes/{slug}`, and what the live pipeline asks
//! of them — the scope of a request (created by its first generation when
//! the project allows it). Its cap on new generations is reserved with `reserve::Unit`
//! in `live`, like the per-client allowance.

use serde_json::json;

use super::context::Context;
use super::lease;
use super::reply::Reply;
use crate::core::headers;
use crate::core::keys;
use crate::core::ports::{Env, KeyValue};
use crate::core::project::Project;
use crate::core::scope::{self, Scope};
use crate::core::Error;

pub fn load(kv: &impl KeyValue, project: &str, slug: &str) -> Result<Option<Scope>, Error> {
    kv.get(&keys::scope(project, slug))?.map(|b| Scope::decode(&b)).transpose()
}

/// The scope a live request names, and whether it is stored: when it is
/// not and the project has `lazy_scopes`, the scope it will be (not public,
/// the defaults), stored by [`store_lazy`] only once a generation is about
/// to happen in it — a HEAD, a HIT or a refused MISS writes nothing.
/// Otherwise 404.
pub fn find(kv: &impl KeyValue, project: &Project, slug: &str, now: u64) -> Result<(Scope, bool), Error> {
    if let Some(s) = load(kv, &project.id, slug)? {
        return Ok((s, true));
    }
    if !project.lazy_scopes {
        return Err(Error::NotFound("no such scope (create it, or set lazy_scopes on the project)"));
    }
    Ok((Scope::lazy(slug, now), false))
}

/// Store the lazy scope `find` gave (if nobody has stored it meanwhile).
pub async fn store_lazy<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    scope: &Scope,
) -> Result<(), Error> {
    let kv = &ctx.kv;
    if load(kv, &project.id, &scope.slug)?.is_none() {
        kv.set(&keys::scope(&project.id, &scope.slug), &scope.encode())?;
    }
    add_to_index(ctx, &project.id, &scope.slug).await
}

fn document(kv: &impl KeyValue, project: &str, s: &Scope) -> Result<serde_json::Value, Error> {
    let used = kv.counter(&keys::scope_generations(project, &s.slug))?.unwrap_or(0);
    Ok(json!({
        "slug": s.slug,
        "generations_limit": s.generations_limit,
        "generations_used": used,
        "allow_new_generations": s.allow_new_generations,
        "public": s.public,
        "created_at": s.created_at,
    }))
}

pub async fn create<K: KeyValue, S, P, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    body: &[u8],
    now: u64,
) -> Result<Reply<B>, Error> {
    let kv = &ctx.kv;
    let changes = scope::parse_body(body, true)?;
    let slug = changes.slug.clone().expect("parse_body requires it");
    if load(kv, &project.id, &slug)?.is_some() {
        return Err(Error::Conflict("a scope with this slug exists"));
    }
    let mut s = Scope::lazy(&slug, now);
    changes.apply(&mut s);
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
    kv.set(&keys::scope(&project.id, slug), &s.encode())?;
    Ok(Reply::json(200, document(kv, &project.id, &s)?))
}

/// The scope goes; its cached images stay (a scope of the same slug created
/// again serves them again) and its generation count starts again.
pub async fn delete<K: KeyValue, S, P, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    slug: &str,
) -> Result<Reply<B>, Error> {
    let kv = &ctx.kv;
    load(kv, &project.id, slug)?.ok_or(Error::NotFound("no such scope"))?;
    kv.delete(&keys::scope(&project.id, slug))?;
    if let Err(e) = kv.delete_counter(&keys::scope_generations(&project.id, slug)) {
        crate::diag!("scope counter not removed: {e}");
    }
    remove_from_index(ctx, &project.id, slug).await?;
    Ok(Reply::empty(204, headers::deleted()))
}

/// The project's scope slugs.
fn index(kv: &impl KeyValue, project: &str) -> Result<Vec<String>, Error> {
    let raw = kv.get(&keys::scope_index(project))?;
    Ok(raw.as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default())
}

/// Change the index under its lease (`api::lease::once`), so concurrent
/// changes are not lost on any store. `change` says whether it changed
/// anything (nothing left to do: done).
async fn change_index<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    change: impl Fn(&mut Vec<String>) -> bool,
) -> Result<(), Error> {
    let key = keys::scope_index(project);
    let done = || Ok(!change(&mut index(&ctx.kv, project)?));
    let work = || {
        let mut slugs = index(&ctx.kv, project)?;
        change(&mut slugs);
        ctx.kv.set(&key, &serde_json::to_vec(&slugs).expect("slugs serialise"))
    };
    lease::once(ctx, &keys::lock(&key), done, work).await
}

async fn add_to_index<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    slug: &str,
) -> Result<(), Error> {
    change_index(ctx, project, |slugs| {
        let new = !slugs.iter().any(|s| s == slug);
        if new {
            slugs.push(slug.to_string());
        }
        new
    })
    .await
}

async fn remove_from_index<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    slug: &str,
) -> Result<(), Error> {
    change_index(ctx, project, |slugs| {
        let before = slugs.len();
        slugs.retain(|s| s != slug);
        slugs.len() != before
    })
    .await
}

#[cfg(test)]
#[path = "scopes_tests.rs"]
mod tests;
