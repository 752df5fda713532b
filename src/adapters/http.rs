//! Outbound HTTP through spin-sdk: one helper that buffers (provider calls,
//! S3 PUT/DELETE) and one that hands back a streamable response (S3 GET).
//! Errors are plain strings for the caller to wrap in its own `core::Error`.

use spin_sdk::http::{send, IncomingResponse, Method, Request, Response};

use crate::core::provider::{HttpAnswer, HttpRequestSpec};

fn method(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    }
}

fn build(spec: HttpRequestSpec) -> Request {
    let mut b = Request::builder();
    b.method(method(spec.method)).uri(spec.url);
    for (name, value) in spec.headers {
        b.header(name, value);
    }
    b.body(spec.body).build()
}

/// Send and read the whole answer.
pub async fn send_buffered(spec: HttpRequestSpec) -> Result<HttpAnswer, String> {
    let response: Response = send(build(spec)).await.map_err(|e| e.to_string())?;
    let retry_after = response
        .header("retry-after")
        .and_then(|v| v.as_str())
        .and_then(crate::core::http::outbound::retry_after);
    Ok(HttpAnswer { status: *response.status(), retry_after, body: response.into_body() })
}

/// Send and read the answer, but never more than `max_bytes` of it: a
/// larger one is an error before it can fill the instance's memory.
pub async fn send_capped(spec: HttpRequestSpec, max_bytes: usize) -> Result<HttpAnswer, String> {
    read_capped(send_streaming(spec).await?, max_bytes).await
}

/// A response's whole answer, never more than `max_bytes` of it.
pub async fn read_capped(response: IncomingResponse, max_bytes: usize) -> Result<HttpAnswer, String> {
    use futures::TryStreamExt;
    let too_large = || format!("answer larger than {max_bytes} bytes");
    let declared = header(&response, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(too_large());
    }
    let retry_after =
        header(&response, "retry-after").and_then(|s| crate::core::http::outbound::retry_after(&s));
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    let mut chunks = response.take_body_stream();
    while let Some(chunk) = chunks.try_next().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpAnswer { status: response.status(), retry_after, body })
}

/// Send and return the response with its body still unread.
pub async fn send_streaming(spec: HttpRequestSpec) -> Result<IncomingResponse, String> {
    send::<_, IncomingResponse>(build(spec)).await.map_err(|e| e.to_string())
}

/// First value of a response header, as text.
pub fn header(response: &IncomingResponse, name: &str) -> Option<String> {
    response.headers().get(name).into_iter().next().and_then(|v| String::from_utf8(v).ok())
}
