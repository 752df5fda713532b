//! The service as plain Rust: a [`Request`] in, a [`Reply`] out. No WASI
//! here: `adapters::inbound` builds the `Request` and the `Context`, and
//! writes the `Reply` out.
//!
//! # Layout
//! Rooms by role; arrows point down only (`graph_tests` keeps it so):
//! - [`dispatch`]: the one table from (route, method) to handler, after
//!   [`auth`] says who is calling (`core::http::routes` says what each route needs).
//! - [`routes`]: the handlers, thin, one module per route family; `routes::live`
//!   reads a live URL and hands it to the pipeline.
//! - [`live`]: the live pipeline: prepare (parse and plan once) → obtain
//!   (cached, or made under a lease: flight, gate, make, owner, store) → answer
//!   (cached). It never imports a route handler.
//! - [`records`]: what routes and the pipeline share: projects, scopes,
//!   aliases, the removal of a cached image.
//! - [`kv`]: key-value helpers below all of them: leases, slots, counters,
//!   reservations, expiring rows, prefetched reads.
//! - [`context`], [`request`], [`reply`], [`log`]: what every room uses.

pub mod auth;
pub mod context;
mod dispatch;
pub mod kv;
pub mod live;
pub mod log;
pub mod records;
pub mod reply;
pub mod request;
pub mod routes;

#[cfg(test)]
mod dispatch_tests;
#[cfg(test)]
mod fakes;

pub use self::context::Context;
use self::dispatch::dispatch;
use self::kv::prefetch::Prefetched;
pub use self::reply::{Body, Reply};
pub use self::request::{Request, RequestBody};
use crate::core::http::routes::{resolve, Method};
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider, Respond};
use crate::core::Error;

/// Route, authenticate, run the handler. `open` builds the context, and is
/// called only for a request that reached a route (a 404 or 405 touches
/// neither configuration nor stores).
pub async fn handle<B, K, S, P, E>(
    request: Request<B>,
    respond: &dyn Respond,
    open: impl FnOnce() -> Result<Context<K, S, P, E>, Error>,
) -> Reply<S::Body>
where
    B: RequestBody,
    K: KeyValue,
    S: ObjectStore,
    P: Provider,
    E: Env,
{
    log::begin(request.header("x-request-id").ok().flatten());
    // An error of an image GET that prefers an image is an image
    // (`core::http::error_image`), unless `error_images` is off.
    let accept = request.header_list("accept");
    let wants_image =
        request.method == Method::Get && crate::core::http::accept::prefers_image(accept.as_deref());
    let mut as_image = false;
    let result = async {
        let resolved = resolve(&request.path, request.method)?;
        let image_route = wants_image && resolved.0.is_live();
        let ctx = prefetching(open()?);
        // Only once the configuration says so (a misconfigured service answers JSON).
        as_image = image_route && ctx.config.error_images;
        dispatch(&ctx, resolved, request, respond).await
    };
    match result.await {
        Ok(reply) => reply,
        Err(e) if as_image => Reply::error_image(&e),
        Err(e) => Reply::error(&e),
    }
}

/// [`handle`] over a context that is already open, before errors are
/// rendered (what the tests look at), its streamed answers (a progressive
/// MISS, warm lines) recorded and dropped.
#[cfg(test)]
async fn run<B, K, S, P, E>(ctx: &Context<K, S, P, E>, request: Request<B>) -> Result<Reply<S::Body>, Error>
where
    B: RequestBody,
    K: KeyValue,
    S: ObjectStore,
    P: Provider,
    E: Env,
{
    run_streamed(ctx, request, &fakes::Recorded::default()).await
}

/// [`run`], its streamed answer written to `respond`.
#[cfg(test)]
async fn run_streamed<B, K, S, P, E>(
    ctx: &Context<K, S, P, E>,
    request: Request<B>,
    respond: &dyn Respond,
) -> Result<Reply<S::Body>, Error>
where
    B: RequestBody,
    K: KeyValue,
    S: ObjectStore,
    P: Provider,
    E: Env,
{
    let resolved = resolve(&request.path, request.method)?;
    let ctx = Context {
        config: ctx.config.clone(),
        kv: Prefetched::new(&ctx.kv),
        store: &ctx.store,
        provider: &ctx.provider,
        env: &ctx.env,
    };
    dispatch(&ctx, resolved, request, respond).await
}

/// The context of one request, its store reads prefetched (`api::kv::prefetch`).
fn prefetching<K: KeyValue, S, P, E>(ctx: Context<K, S, P, E>) -> Context<Prefetched<K>, S, P, E> {
    let Context { config, kv, store, provider, env } = ctx;
    Context { config, kv: Prefetched::new(kv), store, provider, env }
}
