//! Replies and how they reach the client. This is the only place where a
//! `core::Error` becomes an HTTP response, and the only body writer.

use futures::{SinkExt, StreamExt};
use serde_json::json;
use spin_sdk::http::{Fields, IncomingResponse, OutgoingResponse, ResponseOutparam};

use crate::core::headers::CACHE_NO_STORE;
use crate::core::Error;

pub enum Body<B> {
    Empty,
    Bytes(Vec<u8>),
    /// An upstream body streamed through in bounded chunks.
    Stream(B),
}

pub struct Reply<B> {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<B>,
}

impl<B> Reply<B> {
    pub fn json(status: u16, value: serde_json::Value) -> Reply<B> {
        Reply {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("cache-control", CACHE_NO_STORE.into()),
            ],
            body: Body::Bytes(serde_json::to_vec(&value).expect("JSON value serialises")),
        }
    }

    /// The one mapping from error to response. Internal detail goes to the log
    /// (stderr, which Spin and banatie-host collect), never to the client.
    pub fn error(error: &Error) -> Reply<B> {
        if let Some(detail) = error.log_detail() {
            eprintln!("banatie-live: {} {}: {detail}", error.status(), error.code());
        }
        let mut reply = Reply::json(
            error.status(),
            json!({"error": {"code": error.code(), "message": error.public_message()}}),
        );
        reply.headers.extend(error.extra_headers());
        reply
    }
}

/// Write a reply through Spin's response outparam.
pub async fn send(out: ResponseOutparam, mut reply: Reply<IncomingResponse>) {
    if let Body::Bytes(bytes) = &reply.body {
        if !reply.headers.iter().any(|(n, _)| *n == "content-length") {
            reply.headers.push(("content-length", bytes.len().to_string()));
        }
    }
    let fields: Vec<(String, Vec<u8>)> =
        reply.headers.into_iter().map(|(name, value)| (name.to_string(), value.into_bytes())).collect();
    let headers = Fields::from_list(&fields).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(reply.status);
    let mut sink = response.take_body();
    out.set(response);
    let result = match reply.body {
        Body::Empty => Ok(()),
        Body::Bytes(bytes) => sink.send(bytes).await,
        Body::Stream(upstream) => {
            let mut chunks = upstream.take_body_stream();
            let mut result = Ok(());
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    Ok(chunk) => {
                        if let Err(e) = sink.send(chunk).await {
                            result = Err(e);
                            break;
                        }
                    }
                    Err(e) => {
                        eprintln!("banatie-live: upstream body failed mid-stream: {e:?}");
                        break;
                    }
                }
            }
            result
        }
    };
    if let Err(e) = result {
        eprintln!("banatie-live: client write failed: {e:?}");
    }
}
