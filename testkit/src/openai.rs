//! An OpenAI Images double: `POST /v1/images/generations` with a bearer key,
//! `{model, prompt, size, n}` in, `data[0].b64_json` out; a refusal is a 400
//! with `code: moderation_blocked`, as the real API answers. With
//! `Behavior::Stream`, a request with `stream: true` is answered as OpenAI
//! streams: Server-Sent Events, `partial_images` `image_generation.partial_image`
//! events then `image_generation.completed`, paced.

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};

use crate::double::{double_newtype, picture, reply, tiny_png, Double, Seen, PACED_MS};

pub const API_KEY: &str = "sk-test-openai-key";
pub const SIZES: [&str; 3] = ["1024x1024", "1536x1024", "1024x1536"];

#[derive(Clone, Debug)]
pub enum Behavior {
    Image,
    Refuse,
    Status(u16),
    /// Pictures of the real size; a streamed request's previews and image
    /// come one every `every_ms` (an unstreamed one: the image, at once).
    Stream {
        every_ms: u64,
    },
}

double_newtype!(OpenAi, Behavior);

impl OpenAi {
    pub fn start() -> OpenAi {
        OpenAi(Double::start(Behavior::Image, answer))
    }
}

fn error(status: u16, code: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    reply(
        status,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}}),
    )
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// The parts of a `multipart/form-data` body (RFC 7578), as the images
/// edits endpoint reads them; `None` when it is not one.
pub fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type.strip_prefix("multipart/form-data; boundary=")?;
    let delimiter = format!("--{boundary}");
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    loop {
        if body[at..].starts_with(b"--") {
            return Some(parts);
        }
        at += 2; // CRLF after the delimiter
        let head_end = find(body, b"\r\n\r\n", at)?;
        let head = String::from_utf8_lossy(&body[at..head_end]).into_owned();
        let next = find(body, format!("\r\n{delimiter}").as_bytes(), head_end + 4)?;
        let data = body[head_end + 4..next].to_vec();
        let mut part = Part { name: String::new(), filename: None, content_type: None, data };
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                let value = |key: &str| {
                    line.split(&format!("{key}=\"")).nth(1)?.split('"').next().map(str::to_string)
                };
                part.name = value("name").unwrap_or_default();
                part.filename = value("filename");
            } else if let Some(t) = lower.strip_prefix("content-type:") {
                part.content_type = Some(t.trim().to_string());
            }
        }
        parts.push(part);
        at = next + 2 + delimiter.len();
    }
}

/// `POST /v1/images/edits`: `model`, `prompt`, `size`, `n` and `image[]`
/// files, as OpenAI's API takes them; answered like a generation.
fn edits(seen: &Seen) -> Result<Value, Box<hyper::Response<Full<Bytes>>>> {
    let content_type = seen.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(parts) = multipart(content_type, &seen.body) else {
        return Err(Box::new(error(400, "invalid_request_error", "Expected multipart/form-data")));
    };
    let field = |name: &str| {
        parts.iter().find(|p| p.name == name).map(|p| String::from_utf8_lossy(&p.data).into_owned())
    };
    let images = parts.iter().filter(|p| p.name == "image[]" && p.filename.is_some()).count();
    if images == 0 || images > 16 {
        return Err(Box::new(error(400, "invalid_value", "image[] must hold 1 to 16 images")));
    }
    Ok(json!({
        "model": field("model"),
        "prompt": field("prompt"),
        "size": field("size"),
        "n": field("n").and_then(|n| n.parse::<u64>().ok()),
    }))
}

fn answer(seen: &Seen, behavior: &Behavior) -> hyper::Response<Full<Bytes>> {
    let bearer = format!("Bearer {API_KEY}");
    if seen.headers.get("authorization").is_none_or(|v| v != bearer.as_str()) {
        return error(401, "invalid_api_key", "Incorrect API key provided");
    }
    let request = match (seen.method == hyper::Method::POST, seen.path.as_str()) {
        (true, "/v1/images/generations") => match serde_json::from_slice::<Value>(&seen.body) {
            Ok(request) => request,
            Err(_) => return error(400, "invalid_json", "We could not parse the JSON body of your request"),
        },
        (true, "/v1/images/edits") => match edits(seen) {
            Ok(request) => request,
            Err(refused) => return *refused,
        },
        _ => return error(404, "not_found", "Unknown request URL"),
    };
    let prompt = request.get("prompt").and_then(Value::as_str).unwrap_or("");
    let size = request.get("size").and_then(Value::as_str).unwrap_or("");
    if prompt.is_empty()
        || !SIZES.contains(&size)
        || request.get("n") != Some(&json!(1))
        || request.get("model").is_none()
    {
        return error(400, "invalid_value", "Invalid prompt, size, n or model");
    }
    match behavior {
        Behavior::Image => {
            let data = base64::engine::general_purpose::STANDARD
                .encode(tiny_png(prompt, size.replace('x', ":").as_str()));
            reply(
                200,
                json!({"created": 1_700_000_000, "data": [{"b64_json": data}], "output_format": "png", "size": size}),
            )
        }
        Behavior::Refuse => {
            error(400, "moderation_blocked", "Your request was rejected as a result of our safety system.")
        }
        Behavior::Status(code) => {
            error(*code, "server_error", "The server had an error while processing your request.")
        }
        Behavior::Stream { every_ms } => streamed(&request, prompt, size, *every_ms),
    }
}

/// A picture of the size asked for (`1536x1024` is 3:2), with `seed`.
fn sized(prompt: &str, size: &str, seed: &str) -> Vec<u8> {
    let ratio = match size {
        "1536x1024" => "3:2",
        "1024x1536" => "2:3",
        _ => "1:1",
    };
    picture(&format!("{prompt}|{seed}"), ratio)
}

/// OpenAI's answer to a generation asked with `stream: true` (else the
/// image at once, in the plain shape).
fn streamed(request: &Value, prompt: &str, size: &str, every_ms: u64) -> hyper::Response<Full<Bytes>> {
    let encode = |png: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(png);
    if request.get("stream") != Some(&json!(true)) {
        let data = encode(sized(prompt, size, "final"));
        return reply(
            200,
            json!({"created": 1_700_000_000, "data": [{"b64_json": data}], "output_format": "png"}),
        );
    }
    let partials = request.get("partial_images").and_then(Value::as_u64).unwrap_or(0).min(3);
    let mut body = String::new();
    for index in 0..partials {
        let data = json!({"type": "image_generation.partial_image", "b64_json": encode(sized(prompt, size, &format!("partial {index}"))),
                          "partial_image_index": index, "size": size, "output_format": "png"});
        body.push_str(&format!("event: image_generation.partial_image\ndata: {data}\n\n"));
    }
    let data = json!({"type": "image_generation.completed", "b64_json": encode(sized(prompt, size, "final")),
                      "size": size, "output_format": "png", "usage": {"total_tokens": 100}});
    body.push_str(&format!("event: image_generation.completed\ndata: {data}\n\n"));
    hyper::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header(PACED_MS, every_ms.to_string())
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}
