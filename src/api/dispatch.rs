//! The one table from a route and method to the handler that answers it
//! (`core::http::routes` resolved the path and says who may call it). Each route
//! but the live family is authenticated by its headers here ([`auth`]); the
//! live family's credentials may be in its query, which `routes::live` reads
//! first.

use super::auth::{self, Caller, Credentials};
use super::context::Context;
use super::kv::prefetch::Prefetched;
use super::reply::Reply;
use super::request::{Request, RequestBody, MAX_BODY_BYTES};
use super::routes::{aliases, blocks, demo, entries, health, live, projects, scopes, sign, stats, warm};
use crate::core::http::routes::{Auth, Method, Route};
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider, Respond};
use crate::core::Error;

pub async fn dispatch<B, K, S, P, E>(
    ctx: &Context<Prefetched<K>, S, P, E>,
    (route, auth): (Route, Auth),
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
    let (kv, now) = (&ctx.kv, ctx.env.now_unix());
    let caller = || -> Result<Caller, Error> {
        let credentials =
            Credentials::headers(request.header("x-api-key")?, request.header("authorization")?);
        auth::authenticate(kv, &ctx.config, auth, &request.path, &credentials, now)
    };
    let project = || caller().map(Caller::project);
    match (route, request.method) {
        (route @ (Route::Live | Route::Regenerate | Route::Cdn { .. }), _) => {
            live::handle(ctx, route, auth, request, respond, now).await
        }
        (Route::Warm, _) => {
            let project = project()?;
            let body = request.body.read(warm::MAX_BODY_BYTES).await?;
            warm::warm(ctx, &project, &body, respond, now).await
        }
        (Route::Scopes, Method::Post) => {
            scopes::create(ctx, &project()?, &policy_body(request).await?, now).await
        }
        (Route::Scopes, _) => scopes::list(kv, &project()?),
        (Route::Scope(slug), Method::Patch) => {
            scopes::update(kv, &project()?, &slug, &policy_body(request).await?)
        }
        (Route::Scope(slug), Method::Delete) => scopes::delete(ctx, &project()?, &slug).await,
        (Route::Scope(slug), _) => scopes::get(kv, &project()?, &slug),
        (Route::Aliases, _) => aliases::list(kv, &project()?),
        (Route::Alias(name), Method::Put) => {
            aliases::put(ctx, &project()?, &name, &body(request).await?).await
        }
        (Route::Alias(name), Method::Delete) => aliases::delete(ctx, &project()?, &name).await,
        (Route::Alias(name), _) => aliases::get(kv, &project()?, &name),
        (Route::Stats | Route::DemoStats, _) => stats::get(kv, &project()?, now),
        (Route::Entries, _) => entries::list(kv, &project()?, &entries::page(&request.query)?),
        (Route::Sign | Route::DemoSign, _) => {
            let (project, origin) = (project()?, request.origin.clone());
            sign::sign(&project, &ctx.config, &body(request).await?, now, origin)
        }
        (Route::DemoPage, _) => caller().map(|_| demo::page(&ctx.config)),
        (Route::Health, method) => {
            caller()?;
            health::check(ctx, method == Method::Head).await
        }
        (Route::Rotate(id), _) => {
            caller()?;
            projects::rotate(kv, &id, ctx.env.random_bytes64())
        }
        (Route::ImageBlock(id), method) => {
            let (project, by) = blocks::project_of(kv, caller()?, &request.query)?;
            match method {
                Method::Post => blocks::block(ctx, (&project, by), &id, &body(request).await?, now).await,
                Method::Delete => blocks::lift(ctx, &project, &id).await,
                _ => blocks::get(kv, &project, &id),
            }
        }
        (Route::Blocks, _) => blocks::list(kv, &blocks::project_of(kv, caller()?, &request.query)?.0),
        (Route::Project(id), _) => {
            caller()?;
            projects::update(kv, &id, &policy_body(request).await?)
        }
        (Route::Projects, _) => {
            caller()?;
            projects::create(kv, &body(request).await?, &ctx.env)
        }
    }
}

/// The request's body, at most [`MAX_BODY_BYTES`].
async fn body<B: RequestBody>(request: Request<B>) -> Result<Vec<u8>, Error> {
    request.body.read(MAX_BODY_BYTES).await
}

/// The body of a route that may set a prompt policy, at most
/// `policy::MAX_BODY_BYTES` (a thousand terms).
async fn policy_body<B: RequestBody>(request: Request<B>) -> Result<Vec<u8>, Error> {
    request.body.read(crate::core::decide::policy::MAX_BODY_BYTES).await
}
