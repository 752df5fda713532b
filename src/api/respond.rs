//! Replies and how they reach the client. This is the only place where a
//! `core::Error` becomes an HTTP response, and the only body writer.

use serde_json::json;
use spin_sdk::http::{Fields, IncomingResponse, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::StreamError;

use crate::core::headers::CACHE_NO_STORE;
use crate::core::Error;

pub enum Body<B> {
    Empty,
    Bytes(Vec<u8>),
    /// An upstream body, spliced through without entering the component's memory.
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
    // One header at a time: a value the host refuses is dropped and logged,
    // never the whole set (which would send a response without Content-Type).
    let headers = Fields::new();
    for (name, value) in reply.headers {
        if let Err(e) = headers.append(name, value.as_bytes()) {
            eprintln!("banatie-live: response header {name} dropped ({e:?}): a bug to fix");
        }
    }
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(reply.status);
    match reply.body {
        Body::Empty => out.set(response),
        Body::Bytes(bytes) => {
            if let Err(e) = out.set_with_body(response, bytes).await {
                eprintln!("banatie-live: client write failed: {e:?}");
            }
        }
        Body::Stream(upstream) => splice(out, response, upstream),
    }
}

/// Stream an upstream body to the client with `wasi:io` splice: the host moves
/// the bytes from one stream to the other, so they never enter the
/// component's memory, whatever the object's size.
fn splice(out: ResponseOutparam, response: OutgoingResponse, upstream: IncomingResponse) {
    let (Ok(body), Ok(source)) = (response.body(), upstream.consume()) else {
        eprintln!("banatie-live: bodies already taken");
        return;
    };
    out.set(response);
    let (Ok(sink), Ok(input)) = (body.write(), source.stream()) else {
        eprintln!("banatie-live: body streams unavailable");
        return;
    };
    loop {
        match sink.blocking_splice(&input, SPLICE_BYTES) {
            Ok(_) => {}
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                eprintln!("banatie-live: streaming the object failed: {}", e.to_debug_string());
                break;
            }
        }
    }
    drop(input);
    drop(source);
    drop(sink);
    if let Err(e) = OutgoingBody::finish(body, None) {
        eprintln!("banatie-live: response body not finished: {e:?}");
    }
}

/// Most bytes one splice call may move.
const SPLICE_BYTES: u64 = 1 << 20;
