//! An OpenAI moderations double: `POST /v1/moderations` with a bearer key,
//! `{model, input: [{type: text, text}, {type: image_url, image_url: {url}}…]}`
//! in, `{id, model, results: [{flagged, categories, category_scores}]}` out,
//! as OpenAI's API reference documents it. A text containing `FLAGME` is
//! flagged for `violence` (and `harassment` when it also contains `HARASS`);
//! `Behavior::Down(status)` answers every call with that status.

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};

use crate::double::{double_newtype, reply, Double, Seen};

pub const API_KEY: &str = "sk-test-moderation-key";
/// The text that gets a prompt flagged.
pub const FLAG: &str = "FLAGME";

#[derive(Clone, Debug)]
pub enum Behavior {
    Answer,
    Down(u16),
}

double_newtype!(Moderation, Behavior);

impl Moderation {
    pub fn start() -> Moderation {
        Moderation(Double::start(Behavior::Answer, answer))
    }
}

const CATEGORIES: [&str; 13] = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

fn error(status: u16, message: &str) -> hyper::Response<Full<Bytes>> {
    reply(
        status,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
    )
}

fn answer(seen: &Seen, behavior: &Behavior) -> hyper::Response<Full<Bytes>> {
    if let Behavior::Down(status) = behavior {
        return error(*status, "The server had an error while processing your request.");
    }
    let bearer = format!("Bearer {API_KEY}");
    if seen.headers.get("authorization").is_none_or(|v| v != bearer.as_str()) {
        return error(401, "Incorrect API key provided");
    }
    if seen.method != hyper::Method::POST || seen.path != "/v1/moderations" {
        return error(404, "Unknown request URL");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&seen.body) else {
        return error(400, "We could not parse the JSON body of your request");
    };
    let Some(input) = request["input"].as_array().filter(|i| !i.is_empty()) else {
        return error(400, "input must be a non-empty array");
    };
    let mut text = String::new();
    for item in input {
        match item["type"].as_str() {
            Some("text") => text.push_str(item["text"].as_str().unwrap_or_default()),
            Some("image_url")
                if item["image_url"]["url"].as_str().is_some_and(|u| u.starts_with("data:image/")) => {}
            _ => return error(400, "each input is {type: text} or {type: image_url} with a data URL"),
        }
    }
    let flagged = text.contains(FLAG);
    let on = |c: &str| flagged && (c == "violence" || (c == "harassment" && text.contains("HARASS")));
    let categories: serde_json::Map<String, Value> =
        CATEGORIES.iter().map(|c| (c.to_string(), json!(on(c)))).collect();
    let scores: serde_json::Map<String, Value> =
        CATEGORIES.iter().map(|c| (c.to_string(), json!(if on(c) { 0.93 } else { 0.0004 }))).collect();
    reply(
        200,
        json!({
            "id": "modr-test",
            "model": request["model"].as_str().unwrap_or("omni-moderation-latest"),
            "results": [{
                "flagged": flagged,
                "categories": categories,
                "category_scores": scores,
                "category_applied_input_types": {},
            }]
        }),
    )
}
