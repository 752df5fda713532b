//! Scopes (X-API-Key, the caller's project): `GET|POST /api/v1/scopes`,
//! `GET|PATCH|DELETE /api/v1/scopes/{slug}`, and what the live pipeline asks
//! of them — the scope of a request (created on first use when the project
//! allows it). Its cap on new generations is reserved with `reserve::Unit`
//! in `live`, like the per-client allowance.

use serde_json::json;

use super::reply::Reply;
use crate::core::headers;
use crate::core::ports::KeyValue;
use crate::core::project::Project;
use crate::core::scope::{self, Scope};
use crate::core::Error;

pub fn load(kv: &impl KeyValue, project: &str, slug: &str) -> Result<Option<Scope>, Error> {
    kv.get(&scope::scope_key(project, slug))?.map(|b| Scope::decode(&b)).transpose()
}

/// The scope a live request names: stored, or created now (not public) when
/// the project has `lazy_scopes`; otherwise 404.
pub fn ensure(kv: &impl KeyValue, project: &Project, slug: &str, now: u64) -> Result<Scope, Error> {
    if let Some(s) = load(kv, &project.id, slug)? {
        return Ok(s);
    }
    if !project.lazy_scopes {
        return Err(Error::NotFound("no such scope (create it, or set lazy_scopes on the project)"));
    }
    let s = Scope::lazy(slug, now);
    kv.set(&scope::scope_key(&project.id, slug), &s.encode())?;
    add_to_index(kv, &project.id, slug)?;
    Ok(s)
}

fn document(kv: &impl KeyValue, project: &str, s: &Scope) -> Result<serde_json::Value, Error> {
    let used = kv.increment(&scope::generations_key(project, &s.slug), 0)?;
    Ok(json!({
        "slug": s.slug,
        "generations_limit": s.generations_limit,
        "generations_used": used,
        "allow_new_generations": s.allow_new_generations,
        "public": s.public,
        "created_at": s.created_at,
    }))
}

pub fn create<B>(kv: &impl KeyValue, project: &Project, body: &[u8], now: u64) -> Result<Reply<B>, Error> {
    let changes = scope::parse_body(body, true)?;
    let slug = changes.slug.clone().expect("parse_body requires it");
    if load(kv, &project.id, &slug)?.is_some() {
        return Err(Error::Conflict("a scope with this slug exists"));
    }
    let mut s = Scope::lazy(&slug, now);
    changes.apply(&mut s);
    kv.set(&scope::scope_key(&project.id, &slug), &s.encode())?;
    add_to_index(kv, &project.id, &slug)?;
    Ok(Reply::json(201, document(kv, &project.id, &s)?))
}

pub fn list<B>(kv: &impl KeyValue, project: &Project) -> Result<Reply<B>, Error> {
    let mut docs = Vec::new();
    for slug in index(kv, &project.id)?.1 {
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
    kv.set(&scope::scope_key(&project.id, slug), &s.encode())?;
    Ok(Reply::json(200, document(kv, &project.id, &s)?))
}

/// The scope goes; its cached images stay (a scope of the same slug created
/// again serves them again) and its generation count starts again.
pub fn delete<B>(kv: &impl KeyValue, project: &Project, slug: &str) -> Result<Reply<B>, Error> {
    load(kv, &project.id, slug)?.ok_or(Error::NotFound("no such scope"))?;
    kv.delete(&scope::scope_key(&project.id, slug))?;
    if let Err(e) = kv.delete(&scope::generations_key(&project.id, slug)) {
        eprintln!("banatie-live: scope counter not removed: {e}");
    }
    remove_from_index(kv, &project.id, slug)?;
    Ok(Reply::empty(204, headers::deleted()))
}

/// The project's scope slugs, with the raw record they were read from.
fn index(kv: &impl KeyValue, project: &str) -> Result<(Option<Vec<u8>>, Vec<String>), Error> {
    let raw = kv.get(&scope::index_key(project))?;
    let slugs = raw.as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
    Ok((raw, slugs))
}

/// Change the index by compare-and-swap from what was read, so concurrent
/// changes are not lost (the very first write, from absent, is a plain set).
fn change_index(
    kv: &impl KeyValue,
    project: &str,
    change: impl Fn(&mut Vec<String>) -> bool,
) -> Result<(), Error> {
    let key = scope::index_key(project);
    for _ in 0..32 {
        let (raw, mut slugs) = index(kv, project)?;
        if !change(&mut slugs) {
            return Ok(());
        }
        let new = serde_json::to_vec(&slugs).expect("slugs serialise");
        match raw {
            None => return kv.set(&key, &new),
            Some(old) => {
                // A swap reported as failed may still have been applied (Spin's Redis).
                if kv.compare_and_swap(&key, &old, &new)? || kv.get(&key)?.as_deref() == Some(&new[..]) {
                    return Ok(());
                }
            }
        }
    }
    Err(Error::KeyValue("scope index: too much contention".into()))
}

fn add_to_index(kv: &impl KeyValue, project: &str, slug: &str) -> Result<(), Error> {
    change_index(kv, project, |slugs| {
        let new = !slugs.iter().any(|s| s == slug);
        if new {
            slugs.push(slug.to_string());
        }
        new
    })
}

fn remove_from_index(kv: &impl KeyValue, project: &str, slug: &str) -> Result<(), Error> {
    change_index(kv, project, |slugs| {
        let before = slugs.len();
        slugs.retain(|s| s != slug);
        slugs.len() != before
    })
}

#[cfg(test)]
#[path = "scopes_tests.rs"]
mod tests;
