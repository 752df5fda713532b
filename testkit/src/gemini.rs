//! A Gemini double on 127.0.0.1: speaks the `generateContent` REST format,
//! checks the API key header and request shape, counts calls, and can be told
//! to fail, refuse, or answer without an image.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

pub const API_KEY: &str = "test-gemini-key";

#[derive(Clone, Debug)]
pub enum Behavior {
    Image,
    Status(u16),
    Refuse,
    NoImage,
    /// 200 with a body that is not Gemini's JSON.
    Garbage,
    /// An image of exactly this many bytes (a PNG signature, then filler).
    Sized(usize),
}

pub struct Gemini {
    pub url: String,
    calls: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
    behavior: Arc<Mutex<Behavior>>,
    pub last_request: Arc<Mutex<Option<Value>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Gemini {
    pub fn start() -> Gemini {
        let calls = Arc::new(AtomicUsize::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let behavior = Arc::new(Mutex::new(Behavior::Image));
        let last_request = Arc::new(Mutex::new(None));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = (calls.clone(), behavior.clone(), last_request.clone(), delay_ms.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let mut stop_rx = stop_rx;
                loop {
                    let stream = tokio::select! {
                        a = listener.accept() => match a { Ok((s, _)) => s, Err(_) => continue },
                        _ = &mut stop_rx => break,
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, std::convert::Infallible>(handle(req, state).await) }
                        });
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        Gemini {
            url: format!("http://{addr}"),
            calls,
            delay_ms,
            behavior,
            last_request,
            shutdown: Some(stop_tx),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Answer every call only after this many milliseconds.
    pub fn set_delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn set(&self, behavior: Behavior) {
        *self.behavior.lock().unwrap() = behavior;
    }
}

impl Drop for Gemini {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

type State = (Arc<AtomicUsize>, Arc<Mutex<Behavior>>, Arc<Mutex<Option<Value>>>, Arc<AtomicU64>);

fn reply(status: u16, value: Value) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap()
}

fn google_error(code: u16, status: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    reply(code, json!({"error": {"code": code, "message": message, "status": status}}))
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    (calls, behavior, last, delay): State,
) -> hyper::Response<Full<Bytes>> {
    calls.fetch_add(1, Ordering::SeqCst);
    let delay = delay.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let path = req.uri().path().to_string();
    let key_ok = req.headers().get("x-goog-api-key").is_some_and(|v| v == API_KEY);
    let method_ok = req.method() == hyper::Method::POST;
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if !key_ok {
        return google_error(403, "PERMISSION_DENIED", "API key not valid");
    }
    if !(method_ok && path.starts_with("/v1beta/models/") && path.ends_with(":generateContent")) {
        return google_error(404, "NOT_FOUND", "no such method");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return google_error(400, "INVALID_ARGUMENT", "invalid JSON payload");
    };
    *last.lock().unwrap() = Some(request.clone());
    let prompt = request.pointer("/contents/0/parts/0/text").and_then(Value::as_str);
    let modalities = request.pointer("/generationConfig/responseModalities");
    let ratio = request.pointer("/generationConfig/imageConfig/aspectRatio").and_then(Value::as_str);
    let (Some(prompt), Some(ratio)) = (prompt, ratio) else {
        return google_error(400, "INVALID_ARGUMENT", "missing prompt or aspectRatio");
    };
    if modalities != Some(&json!(["IMAGE"])) {
        return google_error(400, "INVALID_ARGUMENT", "responseModalities must be [IMAGE]");
    }
    let behavior = behavior.lock().unwrap().clone();
    match behavior {
        Behavior::Image => {
            let png = tiny_png(prompt, ratio);
            let data = base64::engine::general_purpose::STANDARD.encode(png);
            reply(
                200,
                json!({
                    "candidates": [{"content": {"role": "model", "parts": [
                        {"text": "Here is your image"},
                        {"inlineData": {"mimeType": "image/png", "data": data}}]},
                      "finishReason": "STOP", "index": 0}],
                    "modelVersion": "gemini-2.5-flash-image"
                }),
            )
        }
        Behavior::Sized(n) => {
            let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
            bytes.extend(prompt.bytes().cycle().take(n.saturating_sub(8)));
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            reply(
                200,
                json!({"candidates": [{"content": {"role": "model", "parts": [
                {"inlineData": {"mimeType": "image/png", "data": data}}]}, "finishReason": "STOP"}]}),
            )
        }
        Behavior::Status(429) => google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted"),
        Behavior::Status(code) => google_error(code, "INTERNAL", "An internal error has occurred"),
        Behavior::Garbage => hyper::Response::builder()
            .status(200)
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(b"<html>502 Bad Gateway</html>")))
            .unwrap(),
        Behavior::Refuse => reply(200, json!({"promptFeedback": {"blockReason": "SAFETY"}})),
        Behavior::NoImage => reply(
            200,
            json!({"candidates": [{"content": {"role": "model",
            "parts": [{"text": "I cannot draw that"}]}, "finishReason": "STOP"}]}),
        ),
    }
}

/// A small PNG whose colour comes from the prompt and whose width from the ratio.
fn tiny_png(prompt: &str, ratio: &str) -> Vec<u8> {
    use sha2::Digest;
    let seed = sha2::Sha256::digest(format!("{prompt}|{ratio}").as_bytes());
    let (w, h) =
        match ratio.split_once(':').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        {
            Some((a, b)) if a > 0 && b > 0 => ((16 * a / a.max(b)).max(1), (16 * b / a.max(b)).max(1)),
            _ => (16, 16),
        };
    let pixels: Vec<u8> = (0..w * h).flat_map(|i| [seed[0], seed[1], seed[(i % 32) as usize]]).collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
    out
}
