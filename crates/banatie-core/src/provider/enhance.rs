//! Prompt enhancement (`enhance=true`): the provider's text model rewrites a
//! prompt into a richer image prompt before the image is generated. Gemini:
//! `generateContent` with the text model; OpenAI: chat completions.

use serde_json::{json, Value};

use super::answer::Sent;
use crate::config::ProviderConfig;
use crate::http::outbound::{HttpAnswer, HttpRequestSpec};
use crate::Error;

/// An enhanced prompt longer than this is not used (the original is).
pub const MAX_ENHANCED_CHARS: usize = 4000;

pub const INSTRUCTION: &str = "Rewrite the user's prompt into one richer, more specific prompt for an \
image generation model. Keep its subject and intent; add composition, lighting, style and detail. \
Answer with the prompt only, no preamble, no quotes.";

pub fn build_request(config: &ProviderConfig, text_model: &str, prompt: &str) -> HttpRequestSpec {
    match config {
        ProviderConfig::Gemini { api_key, base_url, .. } => {
            let body = json!({
                "systemInstruction": { "parts": [{ "text": INSTRUCTION }] },
                "contents": [{ "role": "user", "parts": [{ "text": prompt }] }]
            });
            HttpRequestSpec {
                method: "POST",
                url: format!("{base_url}/v1beta/models/{text_model}:generateContent"),
                headers: vec![
                    ("x-goog-api-key".into(), api_key.expose().into()),
                    ("content-type".into(), "application/json".into()),
                ],
                body: serde_json::to_vec(&body).expect("JSON value serialises"),
            }
        }
        ProviderConfig::OpenAi { api_key, base_url, .. } => {
            let body = json!({
                "model": text_model,
                "messages": [
                    { "role": "system", "content": INSTRUCTION },
                    { "role": "user", "content": prompt }
                ]
            });
            HttpRequestSpec {
                method: "POST",
                url: format!("{base_url}/v1/chat/completions"),
                headers: vec![
                    ("authorization".into(), format!("Bearer {}", api_key.expose())),
                    ("content-type".into(), "application/json".into()),
                ],
                body: serde_json::to_vec(&body).expect("JSON value serialises"),
            }
        }
    }
}

/// How much of a text model's answer is read: the longest prompt we use,
/// in JSON, with room for the rest of the document.
pub fn answer_limit() -> usize {
    MAX_ENHANCED_CHARS * 8 + 64 * 1024
}

/// How an enhancement call ended: the enhanced prompt, or why there is none
/// (every failure is the caller's cue to fall back to the prompt as given).
pub fn outcome(config: &ProviderConfig, sent: Sent) -> Result<String, Error> {
    match sent {
        Sent::Answered(answer) => parse_response(config, &answer),
        Sent::Unreachable(e) => {
            Err(Error::Provider(format!("{} enhancement unreachable: {e}", config.name())))
        }
        Sent::TimedOut => Err(Error::Provider(format!("{} enhancement timed out", config.name()))),
    }
}

/// The enhanced prompt, or why there is none (the caller falls back).
pub fn parse_response(config: &ProviderConfig, answer: &HttpAnswer) -> Result<String, Error> {
    let fail = |m: String| Error::Provider(format!("{} enhancement: {m}", config.name()));
    if answer.status != 200 {
        return Err(fail(format!("answered HTTP {}", answer.status)));
    }
    let v: Value = serde_json::from_slice(&answer.body).map_err(|e| fail(format!("not JSON: {e}")))?;
    let text = match config {
        ProviderConfig::Gemini { .. } => {
            v.pointer("/candidates/0/content/parts").and_then(Value::as_array).map(|parts| {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<String>()
            })
        }
        ProviderConfig::OpenAi { .. } => {
            v.pointer("/choices/0/message/content").and_then(Value::as_str).map(str::to_string)
        }
    };
    let text = text.map(|t| t.trim().trim_matches('"').trim().to_string()).unwrap_or_default();
    if text.is_empty() {
        return Err(fail("no text in the answer".into()));
    }
    if text.chars().count() > MAX_ENHANCED_CHARS {
        return Err(fail(format!("answer longer than {MAX_ENHANCED_CHARS} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(fail("control characters in the answer".into()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn gemini() -> ProviderConfig {
        ProviderConfig::Gemini {
            api_key: Secret("k".into()),
            base_url: "http://g".into(),
            model: "img".into(),
        }
    }
    fn openai() -> ProviderConfig {
        ProviderConfig::OpenAi {
            api_key: Secret("k".into()),
            base_url: "http://o".into(),
            model: "img".into(),
        }
    }
    fn ok(body: Value) -> HttpAnswer {
        HttpAnswer { status: 200, retry_after: None, body: serde_json::to_vec(&body).unwrap() }
    }

    #[test]
    fn requests_go_to_the_text_model_in_each_wire_format() {
        let g = build_request(&gemini(), "gemini-2.5-flash", "a fox");
        assert_eq!(g.url, "http://g/v1beta/models/gemini-2.5-flash:generateContent");
        let body: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(body.pointer("/contents/0/parts/0/text"), Some(&json!("a fox")));
        assert!(body.pointer("/generationConfig").is_none(), "text, not an image");
        let o = build_request(&openai(), "gpt-4o-mini", "a fox");
        assert_eq!(o.url, "http://o/v1/chat/completions");
        let body: Value = serde_json::from_slice(&o.body).unwrap();
        assert_eq!(
            (body["model"].as_str(), body.pointer("/messages/1/content")),
            (Some("gpt-4o-mini"), Some(&json!("a fox")))
        );
    }

    #[test]
    fn answers_are_read_and_bad_ones_refused() {
        let g = ok(json!({"candidates":[{"content":{"parts":[{"text":" \"A red fox, dawn light\" "}]}}]}));
        assert_eq!(parse_response(&gemini(), &g).unwrap(), "A red fox, dawn light");
        let o = ok(json!({"choices":[{"message":{"role":"assistant","content":"A fox in snow"}}]}));
        assert_eq!(parse_response(&openai(), &o).unwrap(), "A fox in snow");
        assert!(parse_response(&gemini(), &ok(json!({"candidates":[]}))).is_err());
        assert!(
            parse_response(&gemini(), &HttpAnswer { status: 500, retry_after: None, body: vec![] }).is_err()
        );
        let long = "x".repeat(MAX_ENHANCED_CHARS + 1);
        assert!(parse_response(&openai(), &ok(json!({"choices":[{"message":{"content":long}}]}))).is_err());
        assert!(outcome(&gemini(), Sent::TimedOut).unwrap_err().log_detail().unwrap().contains("timed out"));
        assert_eq!(outcome(&openai(), Sent::Answered(o)).unwrap(), "A fox in snow");
    }
}
