//! An OpenAI Images double: `POST /v1/images/generations` with a bearer key,
//! `{model, prompt, size, n}` in, `data[0].b64_json` out; a refusal is a 400
//! with `code: moderation_blocked`, as the real API answers.

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};

use crate::double::{double_newtype, reply, tiny_png, Double, Seen};

pub const API_KEY: &str = "sk-test-openai-key";
pub const SIZES: [&str; 3] = ["1024x1024", "1536x1024", "1024x1536"];

#[derive(Clone, Debug)]
pub enum Behavior {
    Image,
    Refuse,
    Status(u16),
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

fn answer(seen: &Seen, behavior: &Behavior) -> hyper::Response<Full<Bytes>> {
    let bearer = format!("Bearer {API_KEY}");
    if seen.headers.get("authorization").is_none_or(|v| v != bearer.as_str()) {
        return error(401, "invalid_api_key", "Incorrect API key provided");
    }
    if !(seen.method == hyper::Method::POST && seen.path == "/v1/images/generations") {
        return error(404, "not_found", "Unknown request URL");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&seen.body) else {
        return error(400, "invalid_json", "We could not parse the JSON body of your request");
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
    }
}
