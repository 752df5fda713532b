//! The `--dev` stand-in provider: answers Gemini's `generateContent` REST call
//! on 127.0.0.1 with a placeholder picture (see `picture`). Not a generator;
//! every answer is logged as a stand-in.

use std::convert::Infallible;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::picture;

/// Start on an ephemeral loopback port; returns the base URL.
pub async fn start() -> anyhow::Result<String> {
    super::serve_loopback(hyper::service::service_fn(handle)).await
}

fn json_response(status: u16, value: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("valid response")
}

/// Build the Gemini answer for a request body, or an error answer.
pub fn answer(path: &str, body: &[u8]) -> (u16, Value) {
    if !(path.starts_with("/v1beta/models/") && path.ends_with(":generateContent")) {
        return (404, json!({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}));
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return (
            400,
            json!({"error": {"code": 400, "message": "invalid JSON", "status": "INVALID_ARGUMENT"}}),
        );
    };
    let prompt = request.pointer("/contents/0/parts/0/text").and_then(Value::as_str).unwrap_or("");
    let ratio =
        request.pointer("/generationConfig/imageConfig/aspectRatio").and_then(Value::as_str).unwrap_or("1:1");
    tracing::info!(
        "--dev: stand-in provider drew a placeholder (not a real generation) for a {ratio} prompt"
    );
    let data = STANDARD.encode(picture::draw_png(prompt, ratio));
    (
        200,
        json!({"candidates": [{"content": {"role": "model", "parts": [
            {"inlineData": {"mimeType": "image/png", "data": data}}]}, "finishReason": "STOP"}]}),
    )
}

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let (status, value) = answer(&path, &body);
    Ok(json_response(status, value))
}
