//! `GET|HEAD /api/v1/health` (no credentials): whether this component can
//! reach its key-value store and its bucket, for a readiness probe on any
//! runtime (Spin, SpinKube, wasmCloud; banatie-host's `/readyz` asks it).
//! One KV read and one S3 GET of keys that are never written: it costs no
//! storage, and a client can make it only as often as the runtime lets it
//! make any request. The answer names which part failed, never why (an
//! error's text may name hosts); the reason goes to the log.

use crate::api::context::Context;
use crate::api::reply::Reply;
use crate::core::ports::{KeyValue, ObjectStore};
use crate::core::stored::keys;
use crate::core::Error;

/// The largest probe object read (none exists; a stray one is not read whole).
const PROBE_BYTES: usize = 1024;

pub async fn check<K: KeyValue, S: ObjectStore, P, E>(
    ctx: &Context<K, S, P, E>,
    head: bool,
) -> Result<Reply<S::Body>, Error> {
    let part = |name: &str, result: Result<(), Error>| match result {
        Ok(()) => "ok",
        Err(e) => {
            crate::diag!("health: {name}: {e}");
            "unavailable"
        }
    };
    let kv = part("kv", ctx.kv.get(keys::HEALTH_PROBE).map(drop));
    let s3 = part("s3", ctx.store.get_bytes(keys::HEALTH_OBJECT, PROBE_BYTES).await.map(drop));
    let ready = kv == "ok" && s3 == "ok";
    let status = if ready { 200 } else { 503 };
    let body = serde_json::json!({ "status": if ready { "ok" } else { "unavailable" }, "kv": kv, "s3": s3 });
    Ok(if head {
        Reply::empty(status, crate::core::http::headers::json())
    } else {
        Reply::json(status, body)
    })
}
