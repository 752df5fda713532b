//! `DELETE /api/v1/live/generate?...` (X-API-Key): remove one entry and its
//! object, and every variant derived from it (any `w`/`format` in the URL
//! names the same image). The entry goes first, so no entry ever points at a
//! deleted object; the next GET for the same parameters is a MISS.
//!
//! A purge is linearised with what makes the image: it holds the original's
//! lease (a generation or regenerate in flight finishes first, and one that
//! starts later finds the purge done), and a variant being derived is
//! waited for under its own lease before it is removed; a derivation that
//! stores its variant after the purge removed the original takes it back
//! itself (`records::images::take_back_variant`, from `live::owner`). Either way nothing of
//! the image is left once both have finished, and the stats equal the rows.

use crate::api::context::Context;
use crate::api::kv::lease;
use crate::api::live::prepare::Prepared;
use crate::api::records::images;
use crate::api::reply::Reply;
use crate::core::http::headers;
use crate::core::ports::{Env, KeyValue, ObjectStore};
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::Error;

/// How long a purge's lease on the original lives if its holder dies.
const PURGE_LEASE_S: u64 = 60;

/// `project` is the key's owner (the route table admits no signed URL
/// here). The URL is judged as a GET would judge it, though any variant
/// names the same image.
pub async fn delete<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    prepared: Prepared,
) -> Result<Reply<S::Body>, Error> {
    let slot = prepared.checked(&ctx.kv, &project.id)?.original(&ctx.config, &project.id)?;
    let none = || Error::NotFound("no cached image for these parameters");
    ctx.kv.get(&slot.entry_key)?.ok_or_else(none)?;
    let wait_ms = ctx.config.coalesce_wait_seconds * 1000;
    let lease_key = keys::lease(&project.id, &slot.hash);
    let held = lease::hold(ctx, &lease_key, PURGE_LEASE_S, wait_ms).await?;
    let result = images::remove_original(ctx, &project.id, &slot).await;
    held.release();
    result?.ok_or_else(none)?;
    Ok(Reply::empty(204, headers::deleted()))
}
