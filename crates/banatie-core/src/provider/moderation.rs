//! Moderation before the provider (`moderation = openai`): OpenAI's
//! `POST /v1/moderations` (or any endpoint that speaks it) judges the prompt
//! and the request's reference images before a generation, under the
//! generation's lease. Its wire format, as documented by OpenAI: `{"model":
//! "omni-moderation-latest", "input": [{"type":"text","text":…},
//! {"type":"image_url","image_url":{"url":"data:image/png;base64,…"}}]}` →
//! `{"id":…,"model":…,"results":[{"flagged":bool,"categories":{name:bool,…},
//! "category_scores":{…}}]}`. And the providers' own safety settings, from
//! one variable (`provider_safety`): Gemini's `safetySettings` thresholds,
//! OpenAI's `moderation` parameter.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::answer::Sent;
use super::GeneratedImage;
pub use crate::config::{Moderation, Safety};
use crate::http::outbound::{HttpAnswer, HttpRequestSpec};
use crate::Error;

/// What a closed moderation outage tells a client to wait.
pub const OUTAGE_RETRY_AFTER: u64 = 30;

/// What moderation said of one cache key's prompt (and references),
/// remembered under `keys::moderation` so it is asked once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub flagged: bool,
    /// The categories it flagged (sorted; empty when not flagged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl Verdict {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a verdict serialises")
    }

    /// A row that cannot be read is no verdict (moderation is asked again).
    pub fn decode(bytes: &[u8]) -> Option<Verdict> {
        serde_json::from_slice(bytes).ok()
    }

    /// A flagged verdict as the request's answer.
    pub fn refusal(&self) -> Option<Error> {
        self.flagged.then(|| Error::Flagged(self.categories.clone()))
    }
}

pub fn build_request(m: &Moderation, prompt: &str, images: &[GeneratedImage]) -> HttpRequestSpec {
    let mut input = vec![json!({ "type": "text", "text": prompt })];
    for image in images {
        let data = base64::engine::general_purpose::STANDARD.encode(&image.bytes);
        let url = format!("data:{};base64,{data}", image.content_type);
        input.push(json!({ "type": "image_url", "image_url": { "url": url } }));
    }
    HttpRequestSpec {
        method: "POST",
        url: format!("{}/v1/moderations", m.base_url),
        headers: vec![
            ("authorization".into(), format!("Bearer {}", m.api_key.expose())),
            ("content-type".into(), "application/json".into()),
        ],
        body: serde_json::to_vec(&json!({ "model": m.model, "input": input })).expect("JSON serialises"),
    }
}

/// How much of a moderation answer is read.
pub const ANSWER_LIMIT: usize = 256 * 1024;

/// The verdict, or the outage (`Error::ModerationUnavailable`, its detail
/// logged) when there is none: unreachable, timed out, or no 200 with results.
pub fn outcome(sent: Sent) -> Result<Verdict, Error> {
    let down = |detail: String| Error::ModerationUnavailable { retry_after: OUTAGE_RETRY_AFTER, detail };
    let answer = match sent {
        Sent::Answered(answer) => answer,
        Sent::Unreachable(e) => return Err(down(format!("moderation unreachable: {e}"))),
        Sent::TimedOut => return Err(down("moderation timed out".into())),
    };
    parse_response(&answer).map_err(down)
}

fn parse_response(answer: &HttpAnswer) -> Result<Verdict, String> {
    if answer.status != 200 {
        return Err(format!("moderation answered HTTP {}", answer.status));
    }
    let v: Value = serde_json::from_slice(&answer.body).map_err(|e| format!("moderation: not JSON: {e}"))?;
    let results = v["results"].as_array().filter(|r| !r.is_empty()).ok_or("moderation: no results")?;
    let mut verdict = Verdict { flagged: false, categories: Vec::new() };
    for result in results {
        verdict.flagged |= result["flagged"].as_bool().ok_or("moderation: a result without flagged")?;
        if let Some(categories) = result["categories"].as_object() {
            let named = categories.iter().filter(|(_, on)| on.as_bool() == Some(true));
            verdict.categories.extend(named.map(|(name, _)| name.clone()));
        }
    }
    verdict.categories.sort();
    verdict.categories.dedup();
    if !verdict.flagged {
        verdict.categories.clear();
    }
    Ok(verdict)
}

/// Gemini's `safetySettings` for `provider_safety` (none for `default`):
/// `strict` blocks from a low probability of harm on, `relaxed` only a high
/// one, in each of the four adjustable categories.
pub fn gemini_safety(safety: Safety) -> Option<Value> {
    let threshold = match safety {
        Safety::Default => return None,
        Safety::Strict => "BLOCK_LOW_AND_ABOVE",
        Safety::Relaxed => "BLOCK_ONLY_HIGH",
    };
    let categories = [
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
    ];
    Some(Value::Array(categories.iter().map(|c| json!({ "category": c, "threshold": threshold })).collect()))
}

/// OpenAI's `moderation` for `provider_safety` (none for `default`): `auto`
/// (OpenAI's stricter level) for `strict`, `low` for `relaxed`.
pub fn openai_safety(safety: Safety) -> Option<&'static str> {
    match safety {
        Safety::Default => None,
        Safety::Strict => Some("auto"),
        Safety::Relaxed => Some("low"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Secret;

    fn moderation() -> Moderation {
        Moderation {
            base_url: "http://m".into(),
            api_key: Secret("sk".into()),
            model: crate::config::DEFAULT_MODERATION_MODEL.into(),
            fail_open: false,
            timeout_ms: crate::config::DEFAULT_MODERATION_TIMEOUT_MS,
        }
    }

    fn answer(status: u16, body: Value) -> Sent {
        Sent::Answered(HttpAnswer { status, retry_after: None, body: serde_json::to_vec(&body).unwrap() })
    }

    #[test]
    fn the_prompt_and_the_references_go_in_openais_wire_format() {
        let png = GeneratedImage { content_type: "image/png".into(), bytes: vec![1, 2, 3] };
        let spec = build_request(&moderation(), "a fox", &[png]);
        assert_eq!((spec.method, spec.url.as_str()), ("POST", "http://m/v1/moderations"));
        assert!(spec.headers.contains(&("authorization".into(), "Bearer sk".into())));
        let body: Value = serde_json::from_slice(&spec.body).unwrap();
        assert_eq!(
            body,
            json!({"model":"omni-moderation-latest","input":[
                {"type":"text","text":"a fox"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AQID"}}
            ]})
        );
    }

    #[test]
    fn a_verdict_is_read_and_an_outage_is_a_503() {
        let flagged = json!({"id":"modr-1","model":"omni-moderation-latest","results":[{
            "flagged": true,
            "categories": {"violence": true, "sexual": false, "harassment/threatening": true},
            "category_scores": {"violence": 0.9, "sexual": 0.01, "harassment/threatening": 0.7}
        }]});
        assert_eq!(
            outcome(answer(200, flagged)).unwrap(),
            Verdict { flagged: true, categories: vec!["harassment/threatening".into(), "violence".into()] }
        );
        let clean = json!({"results":[{"flagged":false,"categories":{"violence":false}}]});
        assert_eq!(outcome(answer(200, clean)).unwrap(), Verdict { flagged: false, categories: vec![] });
        for down in [
            answer(500, json!({})),
            answer(429, json!({})),
            answer(200, json!({"results":[]})),
            Sent::TimedOut,
        ] {
            let e = outcome(down).unwrap_err();
            assert_eq!((e.status(), e.code(), e.retry_after()), (503, "moderation_unavailable", Some(30)));
        }
        let v = Verdict { flagged: true, categories: vec!["violence".into()] };
        assert_eq!(Verdict::decode(&v.encode()), Some(v.clone()));
        assert_eq!(v.refusal().unwrap().status(), 422);
        assert_eq!(Verdict::decode(b"junk"), None);
    }

    #[test]
    fn one_setting_sets_both_providers_safety() {
        assert_eq!(Safety::parse("strict"), Some(Safety::Strict));
        assert_eq!(Safety::parse("loose"), None);
        assert_eq!(gemini_safety(Safety::Default), None);
        let strict = gemini_safety(Safety::Strict).unwrap();
        assert_eq!(strict.as_array().unwrap().len(), 4);
        assert_eq!(strict[0]["threshold"], "BLOCK_LOW_AND_ABOVE");
        assert_eq!(gemini_safety(Safety::Relaxed).unwrap()[3]["threshold"], "BLOCK_ONLY_HIGH");
        assert_eq!(
            (openai_safety(Safety::Strict), openai_safety(Safety::Relaxed)),
            (Some("auto"), Some("low"))
        );
    }
}
