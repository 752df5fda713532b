//! A project's scopes as the routes (`routes::scopes`) and the live
//! pipeline use them: a scope's record, the scope of a live request
//! (created by its first generation when the project allows it), and the
//! project's index of slugs (one record, changed under its lock). A scope's
//! cap on new generations is reserved by `live::gate`.

use super::record;
use crate::api::context::Context;
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::stored::scope::Scope;
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

/// The project's scope slugs.
pub fn index(kv: &impl KeyValue, project: &str) -> Result<Vec<String>, Error> {
    record::load(kv, &keys::scope_index(project))
}

/// Add `slug` to the project's index (if it is not there).
pub async fn add_to_index<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    slug: &str,
) -> Result<(), Error> {
    record::change(ctx, &keys::scope_index(project), |slugs: &mut Vec<String>| {
        let new = !slugs.iter().any(|s| s == slug);
        if new {
            slugs.push(slug.to_string());
        }
        new
    })
    .await
}

/// Remove `slug` from the project's index (if it is there).
pub async fn remove_from_index<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &str,
    slug: &str,
) -> Result<(), Error> {
    record::change(ctx, &keys::scope_index(project), |slugs: &mut Vec<String>| {
        let before = slugs.len();
        slugs.retain(|s| s != slug);
        slugs.len() != before
    })
    .await
}
