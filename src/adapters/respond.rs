//! A `Reply` written through Spin's response outparam; bodies from S3 are
//! spliced, never buffered.

use spin_sdk::http::{Fields, IncomingResponse, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::StreamError;

use crate::api::{Body, Reply};
use crate::core::http::headers;
use crate::core::Error;

pub async fn send(out: ResponseOutparam, mut reply: Reply<IncomingResponse>) {
    // banatie-host answered the object from its cache and sends the bytes
    // itself: the token goes back instead of them (`core::http::headers::HOST_OBJECT`).
    if let Body::Stream(upstream) = &reply.body {
        let token = super::http::header(upstream, headers::HOST_OBJECT);
        if let Some(token) = token.filter(|t| headers::is_host_object_token(t)) {
            reply.headers.retain(|(name, _)| *name != "content-length");
            reply.headers.push((headers::HOST_OBJECT, token));
            reply.body = Body::Empty;
        }
    }
    if let Body::Bytes(bytes) = &reply.body {
        if reply.header("content-length").is_none() {
            reply.headers.push(("content-length", bytes.len().to_string()));
        }
    }
    let headers = match fields(&reply) {
        Ok(headers) => headers,
        Err(bad) => {
            // Loudly: a header our code produced was refused by the host. The
            // client gets a plain 500 (whose headers are constants), not a
            // response with part of its headers missing.
            let error = Error::Internal(format!("response header {bad} refused by the host"));
            reply = Reply::error(&error);
            fields(&reply).expect("the error headers are valid")
        }
    };
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(reply.status);
    match reply.body {
        Body::Empty | Body::Sent => out.set(response),
        Body::Bytes(bytes) => {
            if let Err(e) = out.set_with_body(response, bytes).await {
                crate::diag!("client write failed: {e:?}");
            }
        }
        Body::Stream(upstream) => splice(out, response, upstream),
    }
}

/// The reply's headers as WASI fields; `Err(name)` for the first refused one.
fn fields(reply: &Reply<IncomingResponse>) -> Result<Fields, String> {
    let headers = Fields::new();
    for (name, value) in &reply.headers {
        if let Err(e) = headers.append(name, value.as_bytes()) {
            return Err(format!("{name} ({e:?})"));
        }
    }
    Ok(headers)
}

/// Stream an upstream body to the client with `wasi:io` splice: the host moves
/// the bytes from one stream to the other, so they never enter the
/// component's memory, whatever the object's size.
fn splice(out: ResponseOutparam, response: OutgoingResponse, upstream: IncomingResponse) {
    let (Ok(body), Ok(source)) = (response.body(), upstream.consume()) else {
        crate::diag!("bodies already taken");
        return;
    };
    out.set(response);
    let (Ok(sink), Ok(input)) = (body.write(), source.stream()) else {
        crate::diag!("body streams unavailable");
        return;
    };
    loop {
        match sink.blocking_splice(&input, SPLICE_BYTES) {
            Ok(_) => {}
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                crate::diag!("streaming the object failed: {}", e.to_debug_string());
                break;
            }
        }
    }
    drop(input);
    drop(source);
    drop(sink);
    if let Err(e) = OutgoingBody::finish(body, None) {
        crate::diag!("response body not finished: {e:?}");
    }
}

/// Most bytes one splice call may move.
const SPLICE_BYTES: u64 = 1 << 20;
