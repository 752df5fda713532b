//! A Gemini double: speaks the `generateContent` REST format, checks the API
//! key header and the request's shape, and can be told to fail, refuse,
//! answer without an image, or answer an image of a given size.

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};

use crate::double::{
    double_newtype, garbage, noise_png, picture, reply, sized_image, tiny_png, Double, Seen,
};

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
    /// A PNG picture of Gemini's real size for the aspect ratio
    /// (1024×1024 for 1:1), to derive variants from.
    Picture,
    /// A PNG of this size whose every pixel is noise: the hardest input an
    /// encoder gets (a derivation's worst case).
    Noise(u32, u32),
    /// A hostile answer: this part, as Gemini's wire format carries it,
    /// whatever it is.
    Inline {
        mime: String,
        data: Vec<u8>,
    },
    /// 429 with this `Retry-After` header.
    BusyFor(String),
}

double_newtype!(Gemini, Behavior);

impl Gemini {
    pub fn start() -> Gemini {
        Gemini(Double::start(Behavior::Image, answer))
    }
}

fn google_error(code: u16, status: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    reply(code, json!({"error": {"code": code, "message": message, "status": status}}))
}

fn image(data: &[u8]) -> hyper::Response<Full<Bytes>> {
    inline("image/png", data)
}

fn inline(mime: &str, data: &[u8]) -> hyper::Response<Full<Bytes>> {
    let data = base64::engine::general_purpose::STANDARD.encode(data);
    reply(
        200,
        json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Here is your image"},
                {"inlineData": {"mimeType": mime, "data": data}}]},
              "finishReason": "STOP", "index": 0}],
            "modelVersion": "gemini-2.5-flash-image"
        }),
    )
}

fn answer(seen: &Seen, behavior: &Behavior) -> hyper::Response<Full<Bytes>> {
    if seen.headers.get("x-goog-api-key").is_none_or(|v| v != API_KEY) {
        return google_error(403, "PERMISSION_DENIED", "API key not valid");
    }
    let route_ok = seen.path.starts_with("/v1beta/models/") && seen.path.ends_with(":generateContent");
    if !(seen.method == hyper::Method::POST && route_ok) {
        return google_error(404, "NOT_FOUND", "no such method");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&seen.body) else {
        return google_error(400, "INVALID_ARGUMENT", "invalid JSON payload");
    };
    let prompt = request.pointer("/contents/0/parts/0/text").and_then(Value::as_str);
    if request.get("generationConfig").is_none() && request.get("systemInstruction").is_some() {
        // A text model's request (prompt enhancement).
        return match (prompt, behavior) {
            (Some(p), Behavior::Image | Behavior::Sized(_) | Behavior::Picture | Behavior::Noise(..)) => {
                reply(
                    200,
                    json!({"candidates": [{"content": {"role": "model", "parts": [
                    {"text": format!("{p}, cinematic light, high detail")}]}, "finishReason": "STOP"}]}),
                )
            }
            (None, _) => google_error(400, "INVALID_ARGUMENT", "missing prompt"),
            _ => google_error(500, "INTERNAL", "An internal error has occurred"),
        };
    }
    let ratio = request.pointer("/generationConfig/imageConfig/aspectRatio").and_then(Value::as_str);
    let (Some(prompt), Some(ratio)) = (prompt, ratio) else {
        return google_error(400, "INVALID_ARGUMENT", "missing prompt or aspectRatio");
    };
    if request.pointer("/generationConfig/responseModalities") != Some(&json!(["IMAGE"])) {
        return google_error(400, "INVALID_ARGUMENT", "responseModalities must be [IMAGE]");
    }
    match behavior {
        Behavior::Image => image(&tiny_png(prompt, ratio)),
        Behavior::Sized(n) => image(&sized_image(prompt, *n)),
        Behavior::Picture => image(&picture(prompt, ratio)),
        Behavior::Noise(w, h) => image(&noise_png(prompt, *w, *h)),
        Behavior::Inline { mime, data } => inline(mime, data),
        Behavior::BusyFor(retry_after) => {
            let mut r = google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted");
            r.headers_mut().insert("retry-after", retry_after.parse().unwrap());
            r
        }
        Behavior::Status(429) => google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted"),
        Behavior::Status(code) => google_error(*code, "INTERNAL", "An internal error has occurred"),
        Behavior::Garbage => garbage(),
        Behavior::Refuse => reply(200, json!({"promptFeedback": {"blockReason": "SAFETY"}})),
        Behavior::NoImage => reply(
            200,
            json!({"candidates": [{"content": {"role": "model",
                "parts": [{"text": "I cannot draw that"}]}, "finishReason": "STOP"}]}),
        ),
    }
}
