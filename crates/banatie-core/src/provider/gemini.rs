//! Gemini `generateContent` for images (REST, v1beta).
//!
//! Request: `POST {base}/v1beta/models/{model}:generateContent` with
//! `x-goog-api-key`, body `{"contents":[{"parts":[{"text":P}]}],
//! "generationConfig":{"responseModalities":["IMAGE"],"imageConfig":{"aspectRatio":R}}}`.
//! Answer: the first `candidates[].content.parts[].inlineData {mimeType, data}`
//! (REST also accepts `inline_data`/`mime_type`). A block reason or a
//! safety-like finish reason is a refusal (422); errors come as
//! `{"error":{"code","message","status"}}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::answer::{GeneratedImage, DEFAULT_RETRY_AFTER};
use crate::http::outbound::{HttpAnswer, HttpRequestSpec};
use crate::http::request::GenerationRequest;
use crate::Error;

/// Finish reasons that mean "refused", not "failed".
const REFUSAL_FINISH_REASONS: [&str; 7] = [
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "RECITATION",
];

/// `inputs` (`ref=`) go beside the text as `inlineData` parts (Gemini API,
/// "Image generation": text-and-image-to-image).
pub fn build_request(
    base_url: &str,
    model: &str,
    api_key: &str,
    req: &GenerationRequest,
    inputs: &[super::GeneratedImage],
) -> HttpRequestSpec {
    use base64::Engine;
    let mut parts = vec![json!({ "text": req.prompt })];
    for image in inputs {
        let data = base64::engine::general_purpose::STANDARD.encode(&image.bytes);
        parts.push(json!({ "inlineData": { "mimeType": image.content_type, "data": data } }));
    }
    let mut body = json!({
        "contents": [{ "parts": parts }],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": { "aspectRatio": req.aspect_ratio }
        }
    });
    // `generationConfig.seed` (Gemini API reference, GenerationConfig): the
    // same seed and prompt give the model the same starting noise.
    if let Some(seed) = req.seed {
        body["generationConfig"]["seed"] = json!(seed);
    }
    HttpRequestSpec {
        method: "POST",
        url: format!("{base_url}/v1beta/models/{model}:generateContent"),
        headers: vec![
            ("x-goog-api-key".into(), api_key.into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: serde_json::to_vec(&body).expect("JSON value serialises"),
    }
}

/// The size Gemini 2.5 Flash Image answers for each aspect ratio
/// (ai.google.dev/gemini-api/docs/image-generation, "Aspect ratios"): what
/// the image will measure, so a progressive answer's first frame can.
pub fn pixels_for(aspect_ratio: &str) -> (u32, u32) {
    match aspect_ratio {
        "2:3" => (832, 1248),
        "3:2" => (1248, 832),
        "3:4" => (864, 1184),
        "4:3" => (1184, 864),
        "4:5" => (896, 1152),
        "5:4" => (1152, 896),
        "9:16" => (768, 1344),
        "16:9" => (1344, 768),
        "21:9" => (1536, 672),
        _ => (1024, 1024),
    }
}

fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

fn google_error(answer: &HttpAnswer) -> String {
    let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let status = err.and_then(|e| e.get("status")).and_then(Value::as_str).unwrap_or("?");
    let message = err.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("");
    let message: String = message.chars().take(200).collect();
    format!("gemini answered HTTP {} ({status}): {message}", answer.status)
}

pub fn parse_response(answer: &HttpAnswer) -> Result<GeneratedImage, Error> {
    match answer.status {
        200 => {}
        429 => {
            return Err(Error::ProviderBusy {
                retry_after: answer.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
                detail: google_error(answer),
            })
        }
        _ => return Err(Error::Provider(google_error(answer))),
    }
    let v: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| Error::Provider(format!("gemini answered invalid JSON: {e}")))?;
    if let Some(reason) = field(&v, "promptFeedback", "prompt_feedback")
        .and_then(|f| field(f, "blockReason", "block_reason"))
        .and_then(Value::as_str)
    {
        return Err(Error::PromptRefused(reason.to_string()));
    }
    let candidates = v.get("candidates").and_then(Value::as_array);
    for candidate in candidates.into_iter().flatten() {
        let parts = candidate.get("content").and_then(|c| c.get("parts")).and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            if let Some(inline) = field(part, "inlineData", "inline_data") {
                return decode_inline(inline);
            }
        }
    }
    let finish = candidates
        .and_then(|c| c.first())
        .and_then(|c| field(c, "finishReason", "finish_reason"))
        .and_then(Value::as_str);
    match finish {
        Some(reason) if REFUSAL_FINISH_REASONS.contains(&reason) => {
            Err(Error::PromptRefused(reason.to_string()))
        }
        other => Err(Error::Provider(format!("gemini answered without an image (finishReason {other:?})"))),
    }
}

fn decode_inline(inline: &Value) -> Result<GeneratedImage, Error> {
    let mime = field(inline, "mimeType", "mime_type").and_then(Value::as_str).unwrap_or("");
    if !mime.starts_with("image/") || mime.len() > 64 {
        return Err(Error::Provider(format!("gemini answered a non-image part ({mime:.64})")));
    }
    let data = inline.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = STANDARD
        .decode(data)
        .map_err(|e| Error::Provider(format!("gemini image data is not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(Error::Provider("gemini answered an empty image".into()));
    }
    Ok(GeneratedImage { content_type: mime.to_string(), bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: Value) -> HttpAnswer {
        HttpAnswer { status: 200, retry_after: None, body: serde_json::to_vec(&body).unwrap() }
    }

    #[test]
    fn request_matches_the_rest_wire_format() {
        let req =
            GenerationRequest { prompt: "a fox".into(), aspect_ratio: "16:9".into(), ..Default::default() };
        let spec = build_request("http://g", "gemini-2.5-flash-image", "KEY", &req, &[]);
        assert_eq!(spec.url, "http://g/v1beta/models/gemini-2.5-flash-image:generateContent");
        assert!(spec.headers.contains(&("x-goog-api-key".into(), "KEY".into())));
        let body: Value = serde_json::from_slice(&spec.body).unwrap();
        assert_eq!(
            body,
            json!({"contents":[{"parts":[{"text":"a fox"}]}],
                   "generationConfig":{"responseModalities":["IMAGE"],
                                       "imageConfig":{"aspectRatio":"16:9"}}})
        );
        assert!(!format!("{spec:?}").contains("KEY"));
    }

    #[test]
    fn the_first_inline_image_is_taken_in_either_spelling() {
        let camel = ok(json!({"candidates":[{"content":{"parts":[
            {"text":"here you go"},
            {"inlineData":{"mimeType":"image/png","data":"iVBORw=="}}]}}]}));
        let img = parse_response(&camel).unwrap();
        assert_eq!(img.content_type, "image/png");
        assert_eq!(img.bytes, vec![0x89, b'P', b'N', b'G']);
        let snake = ok(json!({"candidates":[{"content":{"parts":[
            {"inline_data":{"mime_type":"image/jpeg","data":"/9j/"}}]}}]}));
        assert_eq!(parse_response(&snake).unwrap().content_type, "image/jpeg");
    }

    #[test]
    fn refusals_are_422_and_not_failures() {
        let blocked = ok(json!({"promptFeedback":{"blockReason":"SAFETY"}}));
        assert_eq!(parse_response(&blocked), Err(Error::PromptRefused("SAFETY".into())));
        let finish = ok(json!({"candidates":[{"finishReason":"IMAGE_SAFETY","content":{"parts":[]}}]}));
        assert_eq!(parse_response(&finish).unwrap_err().status(), 422);
    }

    #[test]
    fn failures_are_502_or_503() {
        let no_image =
            ok(json!({"candidates":[{"finishReason":"STOP","content":{"parts":[{"text":"no"}]}}]}));
        assert_eq!(parse_response(&no_image).unwrap_err().status(), 502);
        let err = HttpAnswer {
            status: 500,
            retry_after: None,
            body: br#"{"error":{"code":500,"message":"boom","status":"INTERNAL"}}"#.to_vec(),
        };
        let e = parse_response(&err).unwrap_err();
        assert_eq!(e.status(), 502);
        assert!(e.to_string().contains("INTERNAL"));
        let busy = HttpAnswer { status: 429, retry_after: Some(12), body: vec![] };
        assert_eq!(parse_response(&busy).unwrap_err().retry_after(), Some(12));
        let garbage = HttpAnswer { status: 200, retry_after: None, body: b"<html>".to_vec() };
        assert_eq!(parse_response(&garbage).unwrap_err().status(), 502);
        let bad_b64 = ok(json!({"candidates":[{"content":{"parts":[
            {"inlineData":{"mimeType":"image/png","data":"***"}}]}}]}));
        assert_eq!(parse_response(&bad_b64).unwrap_err().status(), 502);
    }
}
