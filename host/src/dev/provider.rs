//! The `--dev` stand-in provider: answers on 127.0.0.1 in the shapes of the
//! real ones with a placeholder picture (see `picture`) — Gemini's
//! `generateContent`, and OpenAI's `images/generations`, plain or, with
//! `stream: true`, as Server-Sent Events with `partial_images` previews —
//! after a wait (`--dev-wait-ms`), as real providers make a person wait, so
//! the demo shows what a progressive MISS looks like. Not a generator; every
//! answer is logged as a stand-in.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::picture;
use banatie_core::provider::{gemini, openai};

type Body = BoxBody<Bytes, Infallible>;

/// Start on an ephemeral loopback port, answering after `wait`; returns
/// the base URL.
pub async fn start(wait: Duration) -> anyhow::Result<String> {
    super::serve_loopback(hyper::service::service_fn(move |req| handle(req, wait))).await
}

fn full(status: u16, content_type: &str, bytes: impl Into<Bytes>) -> Response<Body> {
    let body = Full::new(bytes.into()).map_err(|never| match never {}).boxed();
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body)
        .expect("valid response")
}

fn json_response(status: u16, value: Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

/// Gemini's answer for a request body, or an error answer.
pub fn gemini_answer(path: &str, body: &[u8]) -> (u16, Value) {
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
    let data = STANDARD.encode(picture::draw_png(prompt, gemini::pixels_for(ratio), picture::SHAPES));
    (
        200,
        json!({"candidates": [{"content": {"role": "model", "parts": [
            {"inlineData": {"mimeType": "image/png", "data": data}}]}, "finishReason": "STOP"}]}),
    )
}

/// An OpenAI generations request, read: its prompt, size and how many
/// previews it streams (`None`: not streamed).
fn openai_request(body: &[u8]) -> Option<(String, String, Option<u8>)> {
    let request: Value = serde_json::from_slice(body).ok()?;
    let prompt = request.get("prompt")?.as_str()?.to_string();
    let size = request.get("size").and_then(Value::as_str).unwrap_or("1024x1024").to_string();
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let partials = request.get("partial_images").and_then(Value::as_u64).unwrap_or(0).min(3) as u8;
    Some((prompt, size, stream.then_some(partials)))
}

/// The picture for an OpenAI `size` ("1536x1024"; square for one the API
/// does not take), with `shapes` shapes.
fn openai_png(prompt: &str, size: &str, shapes: usize) -> Vec<u8> {
    picture::draw_png(prompt, openai::pixels_of_size(size).unwrap_or((1024, 1024)), shapes)
}

/// One Server-Sent Event of OpenAI's image stream.
fn event(name: &str, mut data: Value, png: &[u8]) -> Bytes {
    data["type"] = json!(name);
    data["b64_json"] = json!(STANDARD.encode(png));
    data["output_format"] = json!("png");
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

async fn handle(req: Request<hyper::body::Incoming>, wait: Duration) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if path != "/v1/images/generations" {
        tokio::time::sleep(wait).await;
        let (status, value) = gemini_answer(&path, &body);
        return Ok(json_response(status, value));
    }
    let Some((prompt, size, stream)) = openai_request(&body) else {
        let error =
            json!({"error": {"message": "invalid request", "type": "invalid_request_error", "code": null}});
        return Ok(json_response(400, error));
    };
    tracing::info!("--dev: stand-in provider drew a placeholder (not a real generation), {size}");
    let Some(partials) = stream else {
        tokio::time::sleep(wait).await;
        let data = STANDARD.encode(openai_png(&prompt, &size, picture::SHAPES));
        return Ok(json_response(
            200,
            json!({"created": 0, "data": [{"b64_json": data}], "output_format": "png"}),
        ));
    };
    // The previews and the image spread over the wait, as they arrive from OpenAI.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let step = wait / (u32::from(partials) + 1);
    tokio::spawn(async move {
        for index in 0..partials {
            tokio::time::sleep(step).await;
            let shapes = usize::from(index) * picture::SHAPES / usize::from(partials + 1);
            let data = json!({"partial_image_index": index, "size": size});
            let png = openai_png(&prompt, &size, shapes);
            if tx.send(event("image_generation.partial_image", data, &png)).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(step).await;
        let data = json!({"size": size, "usage": {"total_tokens": 0}});
        let _ = tx
            .send(event("image_generation.completed", data, &openai_png(&prompt, &size, picture::SHAPES)))
            .await;
    });
    let body = Channel(rx).boxed();
    Ok(Response::builder().status(200).header("content-type", "text/event-stream").body(body).expect("valid"))
}

/// A body of the chunks a channel carries, as they come.
struct Channel(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Channel {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_is_answered_at_its_real_size() {
        let body = br#"{"contents":[{"parts":[{"text":"fox"}]}],"generationConfig":{"imageConfig":{"aspectRatio":"16:9"}}}"#;
        let (status, value) = gemini_answer("/v1beta/models/m:generateContent", body);
        assert_eq!(status, 200);
        let data = value.pointer("/candidates/0/content/parts/0/inlineData/data").unwrap().as_str().unwrap();
        let png = STANDARD.decode(data).unwrap();
        let info = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), gemini::pixels_for("16:9"));
        assert_eq!(openai::pixels_for("16:9"), (1536, 1024));
    }

    #[test]
    fn an_openai_stream_is_read_as_the_component_reads_it() {
        let partial =
            event("image_generation.partial_image", json!({"partial_image_index": 0}), b"\x89PNG\r\n\x1a\nx");
        let mut reader = banatie_core::provider::sse::Reader::new(1 << 20);
        let events = reader.feed(&partial).unwrap();
        assert!(matches!(openai::streamed(&events[0]), Ok(Some(openai::Streamed::Partial(_)))));
    }
}
