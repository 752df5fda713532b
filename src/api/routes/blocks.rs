//! Takedowns (X-API-Key, or the admin's token with `?project=`):
//! `POST /api/v1/images/{image_id}/block` removes the original, every
//! variant, their entries and objects, and records the cache key as
//! blocked — every later request for it, keyed, signed or public, any
//! variant, answers 451 and nothing generates it again;
//! `GET …/block` reads one, `DELETE …/block` lifts it, `GET /api/v1/blocks`
//! lists them.
//!
//! A takedown is linearised with what makes the image as a purge is
//! (`routes::purge`): it holds the original's lease, so a generation in
//! flight finishes first and is removed; the block is written before the
//! lease is released, and an owner reads it under its lease before it
//! makes anything (`live::make::original`), so one that starts later
//! answers 451.

use serde_json::json;

use crate::api::auth::Caller;
use crate::api::context::Context;
use crate::api::kv::lease;
use crate::api::kv::slot::Slot;
use crate::api::records::{blocks, images, projects};
use crate::api::reply::Reply;
use crate::core::http::headers;
use crate::core::ports::{Env, KeyValue, ObjectStore};
use crate::core::stored::block::{self, Block};
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::Error;

/// How long a takedown's lease on the original lives if its holder dies.
const TAKEDOWN_LEASE_S: u64 = 60;

/// The project a takedown route acts for, and who acts: the key's project,
/// or (the admin) the one `?project=` names.
pub fn project_of(kv: &impl KeyValue, caller: Caller, query: &str) -> Result<(Project, &'static str), Error> {
    match caller {
        Caller::Project(project) => Ok((project, "key")),
        _ => {
            let id = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("project="))
                .filter(|id| crate::core::stored::project::plausible_id(id))
                .ok_or_else(|| {
                    Error::BadRequest("the admin names the project: ?project={project_id}".into())
                })?;
            let project = projects::load(kv, id)?.ok_or(Error::NotFound("no such project"))?;
            Ok((project, "admin"))
        }
    }
}

fn document(block: &Block) -> serde_json::Value {
    json!({
        "image_id": block.image_id,
        "reason": block.reason,
        "blocked_at": block.blocked_at,
        "by": block.by,
    })
}

/// Take the original `image_id` down. Blocking one already blocked answers
/// its block (200); an id that names no cached original is a 404 (a
/// variant's id: block the original it names in `X-Variant-Of`).
pub async fn block<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    (project, by): (&Project, &str),
    image_id: &str,
    body: &[u8],
    now: u64,
) -> Result<Reply<S::Body>, Error> {
    let reason = block::parse_reason(body)?;
    let kv = &ctx.kv;
    if let Some(hash) = blocks::index(kv, &project.id)?.get(image_id) {
        if let Some(found) = blocks::load(kv, &project.id, hash)? {
            return Ok(Reply::json(200, document(&found)));
        }
    }
    let none = || {
        Error::NotFound(
            "no cached original with this image id in the project (a variant: block its X-Variant-Of)",
        )
    };
    let hash = kv.get(&keys::image_index(&project.id, image_id))?.ok_or_else(none)?;
    let hash = String::from_utf8(hash).map_err(|_| none())?;
    let slot = Slot::of(&project.id, &hash);
    let wait_ms = ctx.config.coalesce_wait_seconds * 1000;
    let held = lease::hold(ctx, &keys::lease(&project.id, &hash), TAKEDOWN_LEASE_S, wait_ms).await?;
    let block =
        Block { image_id: image_id.into(), hash: hash.clone(), reason, blocked_at: now, by: by.into() };
    let done = async {
        kv.set(&keys::blocked(&project.id, &hash), &block.encode())?;
        blocks::add_to_index(ctx, &project.id, &block).await?;
        images::remove_original(ctx, &project.id, &slot).await
    }
    .await;
    held.release();
    done?;
    Ok(Reply::json(201, document(&block)))
}

/// The block of `image_id`.
pub fn get<B>(kv: &impl KeyValue, project: &Project, image_id: &str) -> Result<Reply<B>, Error> {
    let none = || Error::NotFound("this image id is not blocked");
    let index = blocks::index(kv, &project.id)?;
    let hash = index.get(image_id).ok_or_else(none)?;
    let found = blocks::load(kv, &project.id, hash)?.ok_or_else(none)?;
    Ok(Reply::json(200, document(&found)))
}

/// Lift the block of `image_id`: its URLs generate again (nothing was kept).
pub async fn lift<K: KeyValue, S, P, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    image_id: &str,
) -> Result<Reply<B>, Error> {
    let index = blocks::index(&ctx.kv, &project.id)?;
    let hash = index.get(image_id).ok_or(Error::NotFound("this image id is not blocked"))?;
    ctx.kv.delete(&keys::blocked(&project.id, hash))?;
    blocks::remove_from_index(ctx, &project.id, image_id).await?;
    Ok(Reply::empty(204, headers::deleted()))
}

/// Every block of the project, oldest first.
pub fn list<B>(kv: &impl KeyValue, project: &Project) -> Result<Reply<B>, Error> {
    let mut found = Vec::new();
    for hash in blocks::index(kv, &project.id)?.values() {
        found.extend(blocks::load(kv, &project.id, hash)?);
    }
    found.sort_by_key(|b| b.blocked_at);
    Ok(Reply::json(200, json!({ "blocks": found.iter().map(document).collect::<Vec<_>>() })))
}

#[cfg(test)]
#[path = "blocks_tests.rs"]
mod tests;
