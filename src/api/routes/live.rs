//! The live family (`GET|HEAD|DELETE /api/v1/live/generate`,
//! `POST /api/v1/live/regenerate`, `GET|HEAD /cdn/{project}/live/{scope}`):
//! read the URL — its query may be its credential (a signed URL) — and
//! prepare it once (`live::prepare`), prefetch what a HIT reads first,
//! authenticate, then hand it to the pipeline (`live::get`), or to the purge.

use super::purge;
use crate::api::auth::{self, Credentials};
use crate::api::context::{Client, ClientLimit, Context, Incoming};
use crate::api::kv::prefetch::Prefetched;
use crate::api::live::{self, prepare};
use crate::api::reply::Reply;
use crate::api::request::Request;
use crate::core::config::Config;
use crate::core::decide::client;
use crate::core::http::request;
use crate::core::http::routes::{Auth, ClientLimits, Method, Query, Route};
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider, Respond};
use crate::core::stored::keys;
use crate::core::Error;

pub async fn handle<B, K: KeyValue, S: ObjectStore, P: Provider, E: Env>(
    ctx: &Context<Prefetched<K>, S, P, E>,
    route: Route,
    auth: Auth,
    request: Request<B>,
    respond: &dyn Respond,
    now: u64,
) -> Result<Reply<S::Body>, Error> {
    let mut query = match route.query() {
        Query::Public => request::parse_public_query(&request.query)?,
        Query::Live | Query::Later => request::parse_query(&request.query)?,
    };
    let credentials = Credentials {
        api_key: request.header("x-api-key")?,
        authorization: request.header("authorization")?,
        query: None,
        cdn_project: None,
    };
    let cdn_project = match &route {
        Route::Cdn { project, scope } => {
            // The scope is in the path, and in the cache key (a public
            // query cannot name one: `request::parse_public_query`).
            query.pairs.push(("scope".into(), scope.clone()));
            Some(project.as_str())
        }
        _ => None,
    };
    let credentials = Credentials { query: Some(&query), cdn_project, ..credentials };
    let accept = request.header_values("accept").join(",");
    let prepared = prepare::prepare(&ctx.config, &query, &accept);
    // A GET or HEAD's first reads in one call (`kv::prefetch`); a purge's
    // reads come after its waits, and are made fresh.
    if let (Method::Get | Method::Head, Some(project)) =
        (request.method, auth::claimed_project(auth, &credentials))
    {
        let mut reads = vec![keys::project(project)];
        reads.extend(prepared.first_reads(project));
        ctx.kv.prefetch(reads);
    }
    let project = auth::authenticate(&ctx.kv, &ctx.config, auth, &request.path, &credentials, now)?.project();
    if request.method == Method::Delete {
        return purge::delete(ctx, &project, prepared).await;
    }
    let public_scope = match &route {
        Route::Cdn { scope, .. } => Some(auth::public_scope(&ctx.kv, &project, scope)?),
        _ => None,
    };
    let held = match route.client_limits() {
        ClientLimits::Never => false,
        ClientLimits::WhenSigned => query.signed.is_some(),
        ClientLimits::Always => true,
    };
    let regenerate = route == Route::Regenerate;
    let incoming = Incoming {
        // A regenerate always answers the new image.
        if_none_match: if regenerate { None } else { request.header_list("if-none-match") },
        head: request.method == Method::Head,
        accept,
        client: if held { client_limit(&ctx.config, &request, now) } else { None },
        public_scope,
        regenerate,
    };
    live::get(ctx, &project, prepared, &incoming, respond, now).await
}

/// The per-client limits of a request that carries no API key, when the
/// runtime says who the client is (Spin and banatie-host do; wasmCloud does
/// not, and there the limits do not apply).
fn client_limit<B>(config: &Config, request: &Request<B>, now: u64) -> Option<Client> {
    let client = client::client(
        &request.header_values(client::CLIENT_ADDR_HEADER),
        &request.header_values("x-forwarded-for"),
        &config.trusted_proxies,
    )?;
    let id = client::client_id(client, config.client_ipv6_prefix);
    let limit = |limit: u32, key: String| (limit > 0).then_some(ClientLimit { key, limit });
    Some(Client {
        misses: limit(config.client_misses_per_hour, keys::client_misses(&id, now)),
        derivations: limit(config.client_derivations_per_hour, keys::client_derivations(&id, now)),
    })
}
