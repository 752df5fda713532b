//! The live pipeline: a live URL, prepared and authenticated
//! (`routes::live`), answered with its image:
//!
//! prepare (parse and plan once: [`prepare`]) → check (references, variant,
//! scope, model) → obtain (from the cache, or made now under the
//! single-flight: [`obtain`]) → answer (304 | HEAD headers | the object
//! streamed from S3 | the bytes made now: [`cached`])
//!
//! An answer that finds the cached object gone obtains the image again, once
//! (it is made again and replaced). Generic over the `core::ports` traits so
//! the whole flow runs natively in tests with in-memory fakes. Nothing here
//! imports a route handler (`api::graph_tests`).

pub mod cached;
pub mod flight;
pub mod gate;
pub mod make;
pub mod obtain;
pub mod owner;
pub mod plan;
pub mod prepare;
pub mod store;

use self::gate::Gate;
use self::obtain::{Obtain, Obtained};
use self::plan::{Got, How, Plan};
use self::prepare::Prepared;
use crate::api::context::{Context, Incoming};
use crate::api::kv::counters::bump;
use crate::api::records::scopes;
use crate::api::reply::{Body, Reply};
use crate::core::http::headers;
use crate::core::http::request::GenerationRequest;
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider};
use crate::core::stored::entry::Entry;
use crate::core::stored::project::Project;
use crate::core::stored::scope::Scope;
use crate::core::stored::stats::Counter;
use crate::core::Error;

/// `project` is the caller `auth` found for the URL; `now` is the request's
/// wall-clock second (one reading, so budget spend and refund agree).
pub async fn get<K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    prepared: Prepared,
    incoming: &Incoming,
    now: u64,
) -> Result<Reply<S::Body>, Error> {
    let checked = prepared.checked(&ctx.kv, &project.id)?;
    let (scope, stored) = scope_of(&ctx.kv, project, &checked.request, incoming, now)?;
    let original = checked.original(&ctx.config, &project.id)?;
    let wanted = checked.wanted;
    let variant = wanted.map(|w| (original.variant(&w), w));
    let plan = Plan { project, request: &checked.request, original, variant, now };
    let gate = Gate::new(ctx, project, incoming, scope, stored, plan.variant.is_some(), now);
    let mut reply = answer(ctx, &plan, incoming, &gate).await?;
    if wanted.is_some_and(|w| w.negotiated) {
        reply.headers.push(headers::vary_accept());
    }
    Ok(gate.finish(reply))
}

/// The scope of the image: the public URL's, or the one the request names
/// (on first use, where the project allows it, one that is not stored yet:
/// `false`; the gate stores it before a generation).
fn scope_of(
    kv: &impl KeyValue,
    project: &Project,
    request: &GenerationRequest,
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

#[cfg(test)]
mod derived_tests;
#[cfg(test)]
mod faults_tests;
