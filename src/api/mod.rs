//! Routes: method + path → handler, as one table. Builds the adapters for the
//! request, runs the handler, and hands the reply (or the error) to `respond`.

pub mod auth;
pub mod cached;
pub mod counters;
pub mod demo;
pub mod flight;
pub mod live;
pub mod projects;
pub mod purge;
pub mod respond;
pub mod sign;
pub mod stats;

#[cfg(test)]
mod fakes;

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, IncomingResponse, Method, ResponseOutparam, Scheme};

use crate::adapters::{self, clock::WasiClock, kv::Kv, provider::ConfiguredProvider, random, s3::S3};
use crate::core::timing::Timings;
use crate::core::{project, Error};
use respond::Reply;

/// Largest request body any route reads.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Live,
    Sign,
    Stats,
    Projects,
    Rotate(String),
    DemoPage,
    DemoSign,
    DemoStats,
}

impl Route {
    /// The methods the route answers, as the `Allow` header says them.
    fn allow(&self) -> &'static str {
        match self {
            Route::Live => "GET, HEAD, DELETE",
            Route::Stats | Route::DemoStats => "GET",
            Route::DemoPage => "GET, HEAD",
            Route::Sign | Route::Projects | Route::Rotate(_) | Route::DemoSign => "POST",
        }
    }

    fn allows(&self, method: &Method) -> bool {
        match self {
            Route::Live => matches!(method, Method::Get | Method::Head | Method::Delete),
            Route::Stats | Route::DemoStats => matches!(method, Method::Get),
            Route::DemoPage => matches!(method, Method::Get | Method::Head),
            Route::Sign | Route::Projects | Route::Rotate(_) | Route::DemoSign => {
                matches!(method, Method::Post)
            }
        }
    }
}

/// The route table.
fn route(path: &str) -> Option<Route> {
    match path {
        live::PATH => Some(Route::Live),
        "/api/v1/live/sign" => Some(Route::Sign),
        "/api/v1/live/stats" => Some(Route::Stats),
        "/api/v1/projects" => Some(Route::Projects),
        "/" => Some(Route::DemoPage),
        "/api/v1/demo/sign" => Some(Route::DemoSign),
        "/api/v1/demo/stats" => Some(Route::DemoStats),
        _ => {
            let id = path.strip_prefix("/api/v1/projects/")?.strip_suffix("/rotate")?;
            let valid = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            valid.then(|| Route::Rotate(id.to_string()))
        }
    }
}

pub async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let timings = Timings::default();
    let mut reply = match dispatch(req, &timings).await {
        Ok(reply) => reply,
        Err(e) => Reply::error(&e),
    };
    reply.headers.push(("server-timing", timings.header()));
    respond::send(out, reply).await;
}

/// The single value of a request header; a repeated header is a 400.
fn header(req: &IncomingRequest, name: &str) -> Result<Option<String>, Error> {
    let values = req.headers().get(name);
    match values.as_slice() {
        [] => Ok(None),
        [one] => String::from_utf8(one.clone())
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("header {name} is not UTF-8"))),
        _ => Err(Error::BadRequest(format!("header {name} given more than once"))),
    }
}

async fn read_body(req: IncomingRequest) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Error::BadRequest("request body could not be read".into()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Error::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `scheme://authority` of the request, when the host says it.
fn origin(req: &IncomingRequest) -> Option<String> {
    let scheme = match req.scheme()? {
        Scheme::Http => "http".to_string(),
        Scheme::Https => "https".to_string(),
        Scheme::Other(s) => s,
    };
    Some(format!("{scheme}://{}", req.authority()?))
}

async fn dispatch(req: IncomingRequest, timings: &Timings) -> Result<Reply<IncomingResponse>, Error> {
    let path_with_query = req.path_with_query().unwrap_or_default();
    let (path, query) = path_with_query.split_once('?').unwrap_or((&path_with_query, ""));
    let route = route(path).ok_or(Error::NotFound("no such route"))?;
    let method = req.method();
    if !route.allows(&method) {
        return Err(Error::MethodNotAllowed(route.allow()));
    }
    let config = adapters::config::load()?;
    let kv = Kv::open(timings)?;
    let now = random::now_unix();
    match route {
        Route::Live => {
            let api_key = header(&req, "x-api-key")?;
            let if_none_match = header(&req, "if-none-match")?;
            let store = S3::new(&config.s3, timings)?;
            let provider = ConfiguredProvider {
                config: &config.provider,
                timeout_ms: config.provider_timeout_ms,
                max_image_bytes: config.max_image_bytes,
                timings,
            };
            let ports = live::Ports {
                config: &config,
                kv: &kv,
                store: &store,
                provider: &provider,
                clock: &WasiClock,
            };
            match method {
                Method::Delete => purge::delete(&ports, query, api_key.as_deref()).await,
                _ => {
                    let env = live::Env { now, new_id: random::uuid, random: random::u32 };
                    let incoming = live::Incoming {
                        query,
                        api_key: api_key.as_deref(),
                        if_none_match: if_none_match.as_deref(),
                        head: method == Method::Head,
                    };
                    live::get(&ports, &env, &incoming).await
                }
            }
        }
        Route::Stats => {
            let project = auth::project_by_key(&kv, header(&req, "x-api-key")?.as_deref())?;
            stats::get(&kv, &project, now)
        }
        Route::Sign => {
            let project = auth::project_by_key(&kv, header(&req, "x-api-key")?.as_deref())?;
            let origin = origin(&req);
            let body = read_body(req).await?;
            sign::sign(&project, config.max_prompt_length, &body, now, origin)
        }
        Route::DemoPage => demo::project(&kv, &config).map(|_| demo::page()),
        Route::DemoStats => stats::get(&kv, &demo::project(&kv, &config)?, now),
        Route::DemoSign => {
            let project = demo::project(&kv, &config)?;
            let origin = origin(&req);
            let body = read_body(req).await?;
            sign::sign(&project, config.max_prompt_length, &body, now, origin)
        }
        Route::Projects | Route::Rotate(_) => {
            let admin = config.admin_token.as_ref().map(|t| t.expose());
            project::check_admin(header(&req, "authorization")?.as_deref(), admin)?;
            match route {
                Route::Rotate(id) => projects::rotate(&kv, &id, random::bytes64()),
                _ => {
                    let body = read_body(req).await?;
                    let fresh = projects::Fresh { id: random::uuid(), random: random::bytes64(), now };
                    projects::create(&kv, &body, fresh)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_knows_its_paths_and_methods() {
        assert_eq!(route("/api/v1/live/generate"), Some(Route::Live));
        assert_eq!(route("/api/v1/live/stats"), Some(Route::Stats));
        assert_eq!(route("/api/v1/projects/ab-12/rotate"), Some(Route::Rotate("ab-12".into())));
        assert_eq!(route("/api/v1/projects//rotate"), None);
        assert_eq!(route("/api/v1/projects/a/b/rotate"), None);
        assert_eq!(route("/api/v1/live/generate/"), None);
        assert_eq!(route("/"), Some(Route::DemoPage));
        assert_eq!(route("/index.html"), None);
        assert!(Route::Live.allows(&Method::Delete) && !Route::Live.allows(&Method::Post));
        assert_eq!(Route::Stats.allow(), "GET");
    }
}
