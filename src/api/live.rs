//! The live endpoint, `GET|HEAD /api/v1/live/generate`, as a linear pipeline:
//!
//! parse → plan (the original's slot, the variant's) → obtain (from the
//! cache, or made now under the single-flight: `api::obtain`) → answer
//! (304 | HEAD headers | the object streamed from S3 | the bytes made now)
//!
//! An answer that finds the cached object gone obtains the image again, once
//! (it is made again and replaced). The caller is already authenticated
//! (`api::dispatch`, from the route table). Generic over the `core::ports`
//! traits so the whole flow runs natively in tests with in-memory fakes.

use super::aliases;
use super::cached;
use super::context::{Context, Incoming};
use super::counters::bump;
use super::gate::Gate;
use super::obtain::{Obtain, Obtained};
use super::plan::{Got, How, Plan};
use super::reply::{Body, Reply};
use super::scopes;
use super::slot::Slot;
use crate::core::config::Config;
use crate::core::entry::Entry;
use crate::core::headers;
use crate::core::keys;
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider};
use crate::core::project::Project;
use crate::core::request::{self, RawQuery};
use crate::core::routes::Route;
use crate::core::scope::Scope;
use crate::core::stats::Counter;
use crate::core::{variant, Error};

/// `project` is the caller `auth` found for `query`; `now` is the request's
/// wall-clock second (one reading, so budget spend and refund agree).
pub async fn get<K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    query: &RawQuery,
    incoming: &Incoming,
    now: u64,
) -> Result<Reply<S::Body>, Error> {
    let mut request = request::validate(query, ctx.config.max_prompt_length)?;
    request.refs = aliases::resolve(&ctx.kv, &project.id, &request.refs)?;
    let config = &ctx.config;
    let asked = variant::parse(&query.pairs, &config.variant_widths, &config.variant_qualities)?;
    let wanted = asked.map(|a| a.resolve(Some(&incoming.accept)));
    let (scope, stored) = scope_of(&ctx.kv, project, &request, incoming, now)?;
    let original = Slot::new(config, &project.id, &request)?;
    let variant = wanted.map(|w| (original.variant(&w), w));
    let plan = Plan { project, request: &request, original, variant, now };
    let gate = Gate::new(ctx, project, incoming, scope, stored, plan.variant.is_some(), now);
    let mut reply = answer(ctx, &plan, incoming, &gate).await?;
    if wanted.is_some_and(|w| w.negotiated) {
        reply.headers.push(headers::vary_accept());
    }
    Ok(gate.finish(reply))
}

/// The keys a HIT of this request reads first, after its project's record:
/// the scope it names, the original's entry, the variant's, and the
/// original's last access — read with the record in one call
/// (`api::prefetch`). Nothing where the request cannot be planned without
/// reading (references by alias) or is not valid (`get` says why).
pub fn first_reads(
    config: &Config,
    project: &str,
    query: &RawQuery,
    route: &Route,
    accept: &str,
) -> Vec<String> {
    let mut query = query.clone();
    if let Route::Cdn { scope, .. } = route {
        query.pairs.push(("scope".into(), scope.clone()));
    }
    let Ok(request) = request::validate(&query, config.max_prompt_length) else { return Vec::new() };
    let Ok(original) = Slot::new(config, project, &request) else { return Vec::new() };
    if !request.refs.is_empty() {
        return Vec::new();
    }
    let mut reads = Vec::with_capacity(4);
    if let Some(slug) = &request.scope {
        reads.push(keys::scope(project, slug));
    }
    reads.push(original.entry_key.clone());
    let asked = variant::parse(&query.pairs, &config.variant_widths, &config.variant_qualities);
    if let Ok(Some(asked)) = asked {
        reads.push(original.variant(&asked.resolve(Some(accept))).entry_key);
    }
    reads.push(keys::seen(project, original.image_hash()));
    reads
}

/// The scope of the image: the public URL's, or the one the request names
/// (on first use, where the project allows it, one that is not stored yet:
/// `false`; the gate stores it before a generation).
fn scope_of(
    kv: &impl KeyValue,
    project: &Project,
    request: &request::GenerationRequest,
    incoming: &Incoming,
    now: u64,
) -> Result<(Option<Scope>, bool), Error> {
    match (&incoming.public_scope, &request.scope) {
        (Some(found), _) => Ok((Some(found.clone()), true)),
        (None, Some(slug)) => scopes::find(kv, project, slug, now).map(|(s, stored)| (Some(s), stored)),
        (None, None) => Ok((None, true)),
    }
}

/// Obtain the image and answer with it; when its object (or, for a
/// variant, its original's) turns out to be gone, obtain it again, made
/// again, and answer with that.
async fn answer<K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<K, S, P, E>,
    plan: &Plan<'_>,
    incoming: &Incoming,
    gate: &Gate<'_, K>,
) -> Result<Reply<S::Body>, Error> {
    let obtain = Obtain { ctx, plan, incoming, gate };
    let mut broken: Option<Entry> = None;
    for _ in 0..2 {
        let got = match obtain.image(broken.as_ref()).await? {
            Obtained::Got(got) => got,
            Obtained::Gone(entry) => {
                broken = Some(entry);
                continue;
            }
        };
        match reply(ctx, plan, got, incoming).await? {
            Ok(reply) => return Ok(reply),
            Err(gone) => broken = Some(gone),
        }
    }
    let gone = broken.map(|e| e.object_key).unwrap_or_default();
    Err(Error::Storage(format!("object {gone} is gone again")))
}

/// The answer for `got`: the bytes made now (a MISS), or the cached entry
/// answered from the cache (`Ok(Err(entry))` when its object is gone).
async fn reply<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    plan: &Plan<'_>,
    got: Got,
    incoming: &Incoming,
) -> Result<Result<Reply<S::Body>, Entry>, Error> {
    let slot = plan.variant.as_ref().map_or(&plan.original, |(slot, _)| slot);
    let coalesced = match got.how {
        How::Made { bytes, timing } => {
            bump(&ctx.kv, &plan.project.id, Counter::Misses, 1);
            let mut headers = headers::miss(&got.entry);
            headers.extend(timing);
            return Ok(Ok(Reply { status: 200, headers, body: Body::Bytes(bytes) }));
        }
        How::Cached => false,
        How::Coalesced => true,
    };
    Ok(cached::answer(ctx, slot, &got.entry, incoming, coalesced).await?.ok_or(got.entry))
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "enhance_tests.rs"]
mod enhance_tests;
