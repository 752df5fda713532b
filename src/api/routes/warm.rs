//! `POST /api/v1/live/warm` (X-API-Key): make many images before their
//! first visitor. The body is a JSON array of at most 100 items, each the
//! parameters of a live URL (`core::http::warm`); the answer is
//! `application/x-ndjson`, one line per item, written as each completes. At
//! most `warm_concurrency` items are made at a time, each under the usual
//! single-flight, budget and limits (`live::warm`). A client that goes
//! away stops the items not yet begun; those under way finish (their leases
//! settle, what they made is stored).

use futures::stream::{FuturesUnordered, StreamExt};

use crate::api::context::Context;
use crate::api::live;
use crate::api::reply::Reply;
use crate::core::http::headers;
use crate::core::http::warm::{self, Done};
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider, Respond};
use crate::core::stored::project::Project;
use crate::core::Error;

pub use crate::core::http::warm::MAX_BODY_BYTES;

pub async fn warm<K: KeyValue, S: ObjectStore, P: Provider, E: Env, B>(
    ctx: &Context<K, S, P, E>,
    project: &Project,
    body: &[u8],
    respond: &dyn Respond,
    now: u64,
) -> Result<Reply<B>, Error> {
    let items = warm::parse(body)?;
    respond.begin(200, headers::ndjson());
    let mut waiting = items.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    let at_once = ctx.config.warm_concurrency as usize;
    loop {
        while running.len() < at_once && !respond.gone() {
            let Some((index, item)) = waiting.next() else { break };
            running.push(async move {
                let outcome = match item {
                    Ok(query) => live::warm(ctx, project, &query, respond, now).await,
                    Err(e) => Err(e),
                };
                (index, outcome)
            });
        }
        let Some((index, outcome)) = running.next().await else { break };
        let line = match &outcome {
            Ok(w) if w.made => warm::line(index, Done::Generated { image_id: &w.image_id }),
            Ok(w) => warm::line(index, Done::Cached { image_id: &w.image_id }),
            Err(e) => warm::line(index, Done::Failed(e)),
        };
        respond.chunk(line, false);
    }
    Ok(Reply::sent())
}

#[cfg(test)]
#[path = "warm_tests.rs"]
mod tests;
