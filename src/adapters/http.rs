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
    let retry_after =
        response.header("retry-after").and_then(|v| v.as_str()).and_then(|s| s.trim().parse::<u64>().ok());
    Ok(HttpAnswer { status: *response.status(), retry_after, body: response.into_body() })
}

/// Send and return the response with its body still unread.
pub async fn send_streaming(spec: HttpRequestSpec) -> Result<IncomingResponse, String> {
    send::<_, IncomingResponse>(build(spec)).await.map_err(|e| e.to_string())
}

/// First value of a response header, as text.
pub fn header(response: &IncomingResponse, name: &str) -> Option<String> {
    response.headers().get(name).into_iter().next().and_then(|v| String::from_utf8(v).ok())
}
