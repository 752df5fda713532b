//! The component's front door: a WASI HTTP request becomes an `api::Request`,
//! the per-request `Context` is built over the WASI adapters (only once the
//! route table has accepted the request), and the `Reply` is written out.

use futures::future::{select, Either};
use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Method as WasiMethod, ResponseOutparam, Scheme};

use super::{
    config, env::WasiEnv, kv::Kv, provider::ConfiguredProvider, respond, s3::S3, streamed::Streamed,
};
use crate::api::{self, RequestBody};
use crate::core::http::routes::Method;
use crate::core::http::timing::Timings;
use crate::core::ports::Respond;
use crate::core::Error;

/// How long the end of a streamed answer waits for a client that takes it
/// slowly (everything it was for is stored by then).
const STREAMED_END_MS: u64 = 30_000;

pub async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let timings = Timings::new(super::env::monotonic_us);
    let request = request(incoming);
    let streamed = Streamed::new(out);
    let handled = api::handle(request, &streamed, || {
        let config = config::load()?;
        Ok(api::Context {
            kv: Kv::open(&timings)?,
            store: S3::new(&config.s3, &timings)?,
            provider: ConfiguredProvider::new(&config, &timings),
            env: WasiEnv,
            config,
        })
    });
    // What a streamed answer queued goes out while the request goes on.
    let sending = std::pin::pin!(streamed.sending());
    let mut reply = match select(std::pin::pin!(handled), sending).await {
        Either::Left((reply, _)) => reply,
        Either::Right((never, _)) => match never {},
    };
    if streamed.begun() {
        return streamed.finish(STREAMED_END_MS).await;
    }
    timings.add_to(&mut reply.headers);
    if let Some(out) = streamed.take_out() {
        respond::send(out, reply).await;
    }
}

fn request(incoming: IncomingRequest) -> api::Request<Body> {
    let method = match incoming.method() {
        WasiMethod::Get => Method::Get,
        WasiMethod::Head => Method::Head,
        WasiMethod::Post => Method::Post,
        WasiMethod::Put => Method::Put,
        WasiMethod::Patch => Method::Patch,
        WasiMethod::Delete => Method::Delete,
        _ => Method::Other,
    };
    let path_with_query = incoming.path_with_query().unwrap_or_default();
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (path_with_query, String::new()),
    };
    let origin = incoming.scheme().zip(incoming.authority()).map(|(scheme, authority)| {
        let scheme = match scheme {
            Scheme::Http => "http".to_string(),
            Scheme::Https => "https".to_string(),
            Scheme::Other(s) => s,
        };
        format!("{scheme}://{authority}")
    });
    let headers =
        incoming.headers().entries().into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
    api::Request { method, path, query, headers, origin, body: Body(incoming) }
}

/// The request's body, read on demand.
pub struct Body(IncomingRequest);

impl RequestBody for Body {
    async fn read(self, max_bytes: usize) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        let mut stream = self.0.into_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| Error::BadRequest("request body could not be read".into()))?;
            if body.len() + chunk.len() > max_bytes {
                return Err(Error::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
