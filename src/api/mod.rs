//! The service as plain Rust: a [`Request`] in, a [`Reply`] out. The route
//! table and who may call what are `core::routes`; this module reads the
//! request's headers and body, authenticates through `auth`, and runs the
//! handler. No WASI here: `adapters::inbound` builds the `Request` and the
//! `Context`, and writes the `Reply` out.

pub mod aliases;
pub mod allowance;
pub mod auth;
pub mod cached;
pub mod context;
pub mod counters;
pub mod demo;
pub mod entries;
pub mod expiry;
pub mod flight;
pub mod gate;
pub mod health;
pub mod lease;
pub mod live;
pub mod log;
pub mod make;
pub mod obtain;
pub mod owner;
pub mod plan;
pub mod prefetch;
pub mod projects;
pub mod purge;
pub mod reply;
pub mod reserve;
pub mod scopes;
pub mod sign;
pub mod slot;
pub mod stats;
pub mod store;

#[cfg(test)]
mod derived_tests;
#[cfg(test)]
mod dispatch_tests;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod faults_tests;
#[cfg(test)]
mod graph_tests;

use crate::core::client;
use crate::core::config::Config;
use crate::core::keys;
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider};
use crate::core::request;
use crate::core::routes::{self, ClientLimits, Method, Query, Route};
use crate::core::Error;
use auth::Credentials;
pub use context::{Client, ClientLimit, Context, Incoming};
pub use reply::{Body, Reply};

/// Largest request body any route reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request as the handlers see it.
pub struct Request<B> {
    pub method: Method,
    pub path: String,
    /// The raw query, without the `?` (empty when there is none).
    pub query: String,
    /// Every header field, names in lower case, a repeated field once per value.
    pub headers: Vec<(String, Vec<u8>)>,
    /// `scheme://authority`, when the host says it.
    pub origin: Option<String>,
    pub body: B,
}

/// A request body, read only by the routes that take one.
#[allow(async_fn_in_trait)] // single-threaded wasm executor
pub trait RequestBody {
    /// The whole body, or 413 once it passes `max_bytes`.
    async fn read(self, max_bytes: usize) -> Result<Vec<u8>, Error>;
}

impl RequestBody for Vec<u8> {
    async fn read(self, max_bytes: usize) -> Result<Vec<u8>, Error> {
        if self.len() > max_bytes {
            return Err(Error::PayloadTooLarge);
        }
        Ok(self)
    }
}

impl<B> Request<B> {
    /// Every value of a header, in the order received.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let values = self.headers.iter().filter(|(n, _)| n == name);
        values.filter_map(|(_, v)| std::str::from_utf8(v).ok()).collect()
    }

    /// A list header's values across all its fields, joined with `, ` (RFC
    /// 9110 §5.3: the same as one field); `None` when absent.
    pub fn header_list(&self, name: &str) -> Option<String> {
        let values = self.header_values(name);
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// The single value of a header; a repeated header is a 400.
    pub fn header(&self, name: &str) -> Result<Option<&str>, Error> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(one), None) => std::str::from_utf8(one)
                .map(Some)
                .map_err(|_| Error::BadRequest(format!("header {name} is not UTF-8"))),
            (Some(_), Some(_)) => Err(Error::BadRequest(format!("header {name} given more than once"))),
        }
    }
}

/// Route, authenticate, run the handler. `open` builds the context, and is
/// called only for a request that reached a route (a 404 or 405 touches
/// neither configuration nor stores).
pub async fn handle<B, K, S, P, E>(
    request: Request<B>,
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
    // (`core::error_image`), unless `error_images` is off.
    let accept = request.header_list("accept");
    let wants_image = request.method == Method::Get && crate::core::accept::prefers_image(accept.as_deref());
    let mut as_image = false;
    let result = async {
        let resolved = routes::resolve(&request.path, request.method)?;
        let image_route = wants_image && resolved.0.is_live();
        let ctx = prefetching(open()?);
        // Only once the configuration says so (a misconfigured service answers JSON).
        as_image = image_route && ctx.config.error_images;
        dispatch(&ctx, resolved, request).await
    };
    match result.await {
        Ok(reply) => reply,
        Err(e) if as_image => Reply::error_image(&e),
        Err(e) => Reply::error(&e),
    }
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

/// [`handle`] over a context that is already open, before errors are
/// rendered (what the tests look at).
#[cfg(test)]
async fn run<B, K, S, P, E>(ctx: &Context<K, S, P, E>, request: Request<B>) -> Result<Reply<S::Body>, Error>
where
    B: RequestBody,
    K: KeyValue,
    S: ObjectStore,
    P: Provider,
    E: Env,
{
    let resolved = routes::resolve(&request.path, request.method)?;
    let ctx = Context {
        config: ctx.config.clone(),
        kv: prefetch::Prefetched::new(&ctx.kv),
        store: &ctx.store,
        provider: &ctx.provider,
        env: &ctx.env,
    };
    dispatch(&ctx, resolved, request).await
}

/// The context of one request, its store reads prefetched (`api::prefetch`).
fn prefetching<K: KeyValue, S, P, E>(ctx: Context<K, S, P, E>) -> Context<prefetch::Prefetched<K>, S, P, E> {
    let Context { config, kv, store, provider, env } = ctx;
    Context { config, kv: prefetch::Prefetched::new(kv), store, provider, env }
}

async fn dispatch<B, K, S, P, E>(
    ctx: &Context<prefetch::Prefetched<K>, S, P, E>,
    (route, auth): (Route, routes::Auth),
    request: Request<B>,
) -> Result<Reply<S::Body>, Error>
where
    B: RequestBody,
    K: KeyValue,
    S: ObjectStore,
    P: Provider,
    E: Env,
{
    let now = ctx.env.now_unix();
    let query = match route.query() {
        Query::Live => Some(request::parse_query(&request.query)?),
        Query::Public => Some(request::parse_public_query(&request.query)?),
        Query::Later => None,
    };
    let cdn_project = match &route {
        Route::Cdn { project, .. } => Some(project.as_str()),
        _ => None,
    };
    let credentials = Credentials {
        api_key: request.header("x-api-key")?,
        authorization: request.header("authorization")?,
        query: query.as_ref(),
        cdn_project,
    };
    // A GET or HEAD's first reads in one call (`api::prefetch`); a purge's
    // reads come after its waits, and are made fresh.
    let reads_first = route.is_live() && matches!(request.method, Method::Get | Method::Head);
    if let (true, Some(project), Some(query)) =
        (reads_first, auth::claimed_project(auth, &credentials), &query)
    {
        let accept = request.header_values("accept").join(",");
        let mut reads = vec![keys::project(project)];
        reads.extend(live::first_reads(&ctx.config, project, query, &route, &accept));
        ctx.kv.prefetch(reads);
    }
    let caller = auth::authenticate(&ctx.kv, &ctx.config, auth, &request.path, &credentials, now)?;
    if route.is_live() {
        let (mut query, project) = (query.expect("a live route's query is read first"), caller.project());
        if request.method == Method::Delete {
            return purge::delete(ctx, &project, &query).await;
        }
        let public_scope = match &route {
            Route::Cdn { scope, .. } => {
                let public = auth::public_scope(&ctx.kv, &project, scope)?;
                query.pairs.push(("scope".into(), scope.clone()));
                Some(public)
            }
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
            accept: request.header_values("accept").join(","),
            head: request.method == Method::Head,
            client: if held { client_limit(&ctx.config, &request, now) } else { None },
            public_scope,
            regenerate,
        };
        return live::get(ctx, &project, &query, &incoming, now).await;
    }
    match route {
        Route::Live | Route::Regenerate | Route::Cdn { .. } => unreachable!("answered above"),
        Route::Scopes => match request.method {
            Method::Post => {
                let body = request.body.read(MAX_BODY_BYTES).await?;
                scopes::create(ctx, &caller.project(), &body, now).await
            }
            _ => scopes::list(&ctx.kv, &caller.project()),
        },
        Route::Scope(slug) => match request.method {
            Method::Patch => {
                let body = request.body.read(MAX_BODY_BYTES).await?;
                scopes::update(&ctx.kv, &caller.project(), &slug, &body)
            }
            Method::Delete => scopes::delete(ctx, &caller.project(), &slug).await,
            _ => scopes::get(&ctx.kv, &caller.project(), &slug),
        },
        Route::Aliases => aliases::list(&ctx.kv, &caller.project()),
        Route::Alias(name) => match request.method {
            Method::Put => {
                let body = request.body.read(MAX_BODY_BYTES).await?;
                aliases::put(ctx, &caller.project(), &name, &body).await
            }
            Method::Delete => aliases::delete(ctx, &caller.project(), &name).await,
            _ => aliases::get(&ctx.kv, &caller.project(), &name),
        },
        Route::Stats | Route::DemoStats => stats::get(&ctx.kv, &caller.project(), now),
        Route::Entries => {
            let page = crate::core::entries::parse_page(&request::parse_pairs(&request.query)?)?;
            entries::list(&ctx.kv, &caller.project(), &page)
        }
        Route::Sign | Route::DemoSign => {
            let project = caller.project();
            let origin = request.origin.clone();
            let body = request.body.read(MAX_BODY_BYTES).await?;
            sign::sign(&project, &ctx.config, &body, now, origin)
        }
        Route::DemoPage => Ok(demo::page(&ctx.config)),
        Route::Health => health::check(ctx, request.method == Method::Head).await,
        Route::Rotate(id) => projects::rotate(&ctx.kv, &id, ctx.env.random_bytes64()),
        Route::Projects => {
            let body = request.body.read(MAX_BODY_BYTES).await?;
            projects::create(&ctx.kv, &body, &ctx.env)
        }
    }
}
