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
pub mod progress;
pub mod store;

use self::gate::Gate;
use self::obtain::{Obtain, Obtained};
use self::plan::{Got, How, Plan};
use self::prepare::{Checked, Prepared};
use self::progress::Progress;
use crate::api::context::{Context, Incoming};
use crate::api::kv::counters::bump;
use crate::api::records::scopes;
use crate::api::reply::{Body, Reply};
use crate::core::http::headers;
use crate::core::http::request::GenerationRequest;
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider, Respond};
use crate::core::stored::entry::Entry;
use crate::core::stored::project::Project;
use crate::core::stored::scope::Scope;
use crate::core::stored::stats::Counter;
use crate::core::Error;

/// `project` is the caller `auth` found for the URL; `now` is the request's
/// wall-clock second (one reading, so budget spend and refund agree). A
/// progressive answer goes out through `respond` (then the reply is
/// `Body::Sent`).
pub async fn get<K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    prepared: Prepared,
    incoming: &Incoming,
    respond: &dyn Respond,
    now: u64,
) -> Result<Reply<S::Body>, Error> {
    let checked = prepared.checked(&ctx.kv, &project.id)?;
    let (scope, stored) = scope_of(&ctx.kv, project, &checked.request, incoming, now)?;
    let original = checked.original(&ctx.config, &project.id)?;
    let progress = progress_of(ctx, project, &checked, scope.as_ref(), incoming, respond);
    let wanted = checked.wanted;
    let variant = wanted.map(|w| (original.variant(&w), w));
    let plan = Plan { project, request: &checked.request, original, variant, now };
    let gate = Gate::new(ctx, project, incoming, scope, stored, plan.variant.is_some(), now);
    let mut reply = match answer(ctx, &plan, incoming, &gate, &progress).await {
        Ok(reply) if matches!(reply.body, Body::Sent) => return Ok(reply),
        Ok(reply) => reply,
        Err(e) if progress.begun() => return Ok(progress.fail(&e)),
        Err(e) => return Err(e),
    };
    if wanted.is_some_and(|w| w.negotiated) {
        reply.headers.push(headers::vary_accept());
    }
    Ok(gate.finish(reply))
}

/// How a warm item ended: the image's id, and whether it was made now (by
/// this request, or by another while it waited) rather than found cached.
pub struct Warmed {
    pub image_id: String,
    pub made: bool,
}

/// Make sure the image `query` names is cached (a warm item, `routes::warm`):
/// the same checks, limits and single-flight as a keyed GET of that URL,
/// without an answer.
pub async fn warm<K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    query: &crate::core::http::request::RawQuery,
    respond: &dyn Respond,
    now: u64,
) -> Result<Warmed, Error> {
    let incoming = Incoming {
        if_none_match: None,
        head: false,
        accept: String::new(),
        client: None,
        public_scope: None,
        regenerate: false,
    };
    let checked = prepare::prepare(&ctx.config, query, "").checked(&ctx.kv, &project.id)?;
    let (scope, stored) = scope_of(&ctx.kv, project, &checked.request, &incoming, now)?;
    let original = checked.original(&ctx.config, &project.id)?;
    let variant = checked.wanted.map(|w| (original.variant(&w), w));
    let plan = Plan { project, request: &checked.request, original, variant, now };
    let gate = Gate::new(ctx, project, &incoming, scope, stored, plan.variant.is_some(), now);
    let progress = Progress::off(respond);
    let obtain = Obtain { ctx, plan: &plan, incoming: &incoming, gate: &gate, progress: &progress };
    let mut broken = None;
    for _ in 0..2 {
        match obtain.image(broken.as_ref()).await? {
            Obtained::Gone(entry) => broken = Some(entry),
            Obtained::Got(got) => {
                let made = !matches!(got.how, How::Cached);
                if matches!(got.how, How::Made { .. }) {
                    bump(&ctx.kv, &project.id, Counter::Misses, 1);
                }
                return Ok(Warmed { image_id: got.entry.image_id, made });
            }
        }
    }
    Err(Error::Storage("an original's object is gone again".into()))
}

/// Whether a MISS of this request answers progressively: the URL, its
/// scope or its project asks for it, and the client takes images and wants
/// a body. Only then is anything about it worked out.
fn progress_of<'r, K, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    checked: &Checked,
    scope: Option<&Scope>,
    incoming: &Incoming,
    respond: &'r dyn Respond,
) -> Progress<'r> {
    let asked =
        checked.progressive || scope.is_some_and(|s| s.progressive_misses) || project.progressive_misses;
    let takes_images = || crate::core::http::accept::takes_images(Some(&incoming.accept));
    if !(asked && !incoming.head && takes_images()) {
        return Progress::off(respond);
    }
    let request = &checked.request;
    let size = ctx.config.model_for(request).map_or((1024, 1024), |model| {
        crate::core::provider::pixels_for(&model.provider, &request.aspect_ratio)
    });
    let random = ctx.env.random_bytes64();
    let mut seed = [0; 16];
    seed.copy_from_slice(&random[..16]);
    Progress::new(respond, &ctx.config, size, checked.wanted.as_ref(), seed)
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
    progress: &Progress<'_>,
) -> Result<Reply<S::Body>, Error> {
    let obtain = Obtain { ctx, plan, incoming, gate, progress };
    let mut broken: Option<Entry> = None;
    for _ in 0..2 {
        let got = match obtain.image(broken.as_ref()).await? {
            Obtained::Got(got) => got,
            Obtained::Gone(entry) => {
                broken = Some(entry);
                continue;
            }
        };
        let answered = match progress.begun() {
            true => last_part(ctx, plan, got, progress).await?,
            false => reply(ctx, plan, got, incoming).await?,
        };
        match answered {
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

/// The last part of a progressive answer: the bytes made now, or the
/// object of the entry another request made (counted as the plain answer
/// counts it; `Ok(Err(entry))` when its object is gone).
async fn last_part<K: KeyValue, S: ObjectStore, P, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    plan: &Plan<'_>,
    got: Got,
    progress: &Progress<'_>,
) -> Result<Result<Reply<B>, Entry>, Error> {
    let slot = plan.variant.as_ref().map_or(&plan.original, |(slot, _)| slot);
    match got.how {
        How::Made { bytes, .. } => {
            bump(&ctx.kv, &plan.project.id, Counter::Misses, 1);
            Ok(Ok(progress.finish(&bytes)))
        }
        How::Cached | How::Coalesced => match cached::bytes(ctx, slot, &got.entry).await? {
            Some(bytes) => Ok(Ok(progress.finish(&bytes))),
            None => Ok(Err(got.entry)),
        },
    }
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
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod progressive_tests;
