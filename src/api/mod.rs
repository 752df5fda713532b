//! Routes: method + path → handler, as one table. Builds the adapters for the
//! request, runs the handler, and hands the reply (or the error) to `respond`.

pub mod live;
pub mod projects;
pub mod respond;

#[cfg(test)]
mod fakes;

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, IncomingResponse, Method, ResponseOutparam};

use crate::adapters::{self, kv::Kv, provider::ConfiguredProvider, s3::S3};
use crate::core::Error;
use respond::Reply;

/// Largest request body any route reads.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    LiveGenerate,
    Projects,
}

/// The route table.
const ROUTES: [(&str, Route, &str); 2] = [
    ("/api/v1/live/generate", Route::LiveGenerate, "GET, HEAD"),
    ("/api/v1/projects", Route::Projects, "POST"),
];

fn route(path: &str) -> Option<(Route, &'static str)> {
    ROUTES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, r, allow)| (*r, *allow))
}

pub async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let reply = match dispatch(req).await {
        Ok(reply) => reply,
        Err(e) => Reply::error(&e),
    };
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
        _ => Err(Error::BadRequest(format!(
            "header {name} given more than once"
        ))),
    }
}

async fn read_body(req: IncomingRequest) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| Error::BadRequest("request body could not be read".into()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Error::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn dispatch(req: IncomingRequest) -> Result<Reply<IncomingResponse>, Error> {
    let path_with_query = req.path_with_query().unwrap_or_default();
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((&path_with_query, ""));
    let (route, allow) = route(path).ok_or(Error::NotFound("no such route"))?;
    let method = req.method();
    let allowed = match route {
        Route::LiveGenerate => matches!(method, Method::Get | Method::Head),
        Route::Projects => matches!(method, Method::Post),
    };
    if !allowed {
        return Err(Error::MethodNotAllowed(allow));
    }
    let config = adapters::config::load()?;
    let kv = Kv::open()?;
    match route {
        Route::LiveGenerate => {
            let head = matches!(method, Method::Head);
            let api_key = header(&req, "x-api-key")?;
            let store = S3::new(&config.s3)?;
            let provider = ConfiguredProvider(&config.provider);
            let ports = live::Ports {
                config: &config,
                kv: &kv,
                store: &store,
                provider: &provider,
            };
            let env = live::Env {
                now: adapters::random::now_unix(),
                new_id: adapters::random::uuid,
            };
            live::get(&ports, &env, query, api_key.as_deref(), head).await
        }
        Route::Projects => {
            let authorization = header(&req, "authorization")?;
            let body = read_body(req).await?;
            let ids = projects::NewProjectIds {
                id: adapters::random::uuid(),
                api_key_random: adapters::random::bytes32(),
                now: adapters::random::now_unix(),
            };
            let admin = config.admin_token.as_ref().map(|t| t.expose());
            projects::create(&kv, admin, authorization.as_deref(), &body, ids)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_knows_its_paths_and_methods() {
        assert_eq!(
            route("/api/v1/live/generate"),
            Some((Route::LiveGenerate, "GET, HEAD"))
        );
        assert_eq!(route("/api/v1/projects"), Some((Route::Projects, "POST")));
        assert_eq!(route("/api/v1/live/generate/"), None);
        assert_eq!(route("/"), None);
    }
}
