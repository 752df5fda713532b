//! OpenAI Images (`gpt-image-1`): `POST {base}/v1/images/generations` with
//! `Authorization: Bearer`, body `{model, prompt, size, n: 1}`; the image is
//! `data[0].b64_json`. A refusal is a 400 whose `error.code` is
//! `moderation_blocked` (422 here, never cached). The aspect ratio maps to the
//! nearest size the model supports.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::answer::{GeneratedImage, DEFAULT_RETRY_AFTER};
use crate::http::outbound::{HttpAnswer, HttpRequestSpec};
use crate::http::request::GenerationRequest;
use crate::Error;

/// Sizes `gpt-image-1` accepts: as the API spells them, in pixels.
const SIZES: [(&str, (u32, u32)); 3] =
    [("1024x1024", (1024, 1024)), ("1536x1024", (1536, 1024)), ("1024x1536", (1024, 1536))];

/// The supported size nearest to `aspect_ratio` ("16:9" → "1536x1024").
pub fn size_for(aspect_ratio: &str) -> &'static str {
    nearest(aspect_ratio).0
}

/// The same size in pixels: what the image will measure.
pub fn pixels_for(aspect_ratio: &str) -> (u32, u32) {
    nearest(aspect_ratio).1
}

/// The pixels of a size as the API spells it ("1536x1024"); `None` for a
/// size `gpt-image-1` does not take.
pub fn pixels_of_size(size: &str) -> Option<(u32, u32)> {
    SIZES.iter().find(|(name, _)| *name == size).map(|(_, pixels)| *pixels)
}

fn nearest(aspect_ratio: &str) -> (&'static str, (u32, u32)) {
    let ratio = aspect_ratio
        .split_once(':')
        .and_then(|(w, h)| Some(w.parse::<f64>().ok()? / h.parse::<f64>().ok()?))
        .filter(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(1.0);
    let distance = |(w, h): (u32, u32)| (ratio.ln() - (f64::from(w) / f64::from(h)).ln()).abs();
    let by_distance =
        |a: &&(&str, (u32, u32)), b: &&(&str, (u32, u32))| distance(a.1).total_cmp(&distance(b.1));
    *SIZES.iter().min_by(by_distance).unwrap_or(&SIZES[0])
}

/// With input images (`ref=`): `POST {base}/v1/images/edits`, a
/// `multipart/form-data` body of `model`, `prompt`, `size`, `n` and one
/// `image[]` file per input (OpenAI API reference, "Create image edit":
/// gpt-image-1 takes up to 16). Its answer is read like a generation's.
pub fn build_request(
    base_url: &str,
    model: &str,
    api_key: &str,
    req: &GenerationRequest,
    inputs: &[GeneratedImage],
) -> HttpRequestSpec {
    if !inputs.is_empty() {
        return edit_request(base_url, model, api_key, req, inputs);
    }
    let body = json!({"model": model, "prompt": req.prompt, "size": size_for(&req.aspect_ratio), "n": 1});
    HttpRequestSpec {
        method: "POST",
        url: format!("{base_url}/v1/images/generations"),
        headers: vec![
            ("authorization".into(), format!("Bearer {api_key}")),
            ("content-type".into(), "application/json".into()),
        ],
        body: serde_json::to_vec(&body).expect("JSON value serialises"),
    }
}

/// The request of [`build_request`], asking for `partial_images` (1–3)
/// previews as Server-Sent Events (`stream: true`; OpenAI API reference,
/// "Image generation streaming"): `image_generation.partial_image` events
/// (`b64_json`, `partial_image_index`), then `image_generation.completed`.
/// Generations only: an edit (`ref=`) is not streamed here.
pub fn build_streaming_request(
    base_url: &str,
    model: &str,
    api_key: &str,
    req: &GenerationRequest,
    partial_images: u8,
) -> HttpRequestSpec {
    let body = json!({
        "model": model,
        "prompt": req.prompt,
        "size": size_for(&req.aspect_ratio),
        "n": 1,
        "stream": true,
        "partial_images": partial_images.clamp(1, 3),
    });
    let mut spec = build_request(base_url, model, api_key, req, &[]);
    spec.body = serde_json::to_vec(&body).expect("JSON value serialises");
    spec.headers.push(("accept".into(), "text/event-stream".into()));
    spec
}

/// What one event of a streamed generation says.
#[derive(Debug, PartialEq, Eq)]
pub enum Streamed {
    /// A preview (`image_generation.partial_image`).
    Partial(GeneratedImage),
    /// The image (`image_generation.completed`).
    Completed(GeneratedImage),
}

/// An event of a streamed generation: a preview, the image, or nothing to
/// act on (`Ok(None)`: another event type); an `error` event is the
/// provider's failure (a refusal when its code says `moderation_blocked`).
pub fn streamed(event: &super::sse::Event) -> Result<Option<Streamed>, Error> {
    let image = |v: &Value| -> Result<GeneratedImage, Error> {
        let data = v.get("b64_json").and_then(Value::as_str).unwrap_or("");
        let bytes = STANDARD
            .decode(data)
            .map_err(|e| Error::Provider(format!("openai streamed image data that is not base64: {e}")))?;
        if bytes.is_empty() {
            return Err(Error::Provider("openai streamed an empty image".into()));
        }
        Ok(GeneratedImage { content_type: content_type(v).into(), bytes })
    };
    let parse = || -> Result<Value, Error> {
        serde_json::from_str(&event.data)
            .map_err(|e| Error::Provider(format!("openai streamed invalid JSON: {e}")))
    };
    match event.name.as_str() {
        "image_generation.partial_image" => Ok(Some(Streamed::Partial(image(&parse()?)?))),
        "image_generation.completed" => Ok(Some(Streamed::Completed(image(&parse()?)?))),
        "error" => {
            let v = parse()?;
            let err = v.get("error").unwrap_or(&v);
            let code = err.get("code").and_then(Value::as_str).unwrap_or("?");
            let message: String =
                err.get("message").and_then(Value::as_str).unwrap_or("").chars().take(200).collect();
            Err(match code {
                "moderation_blocked" => Error::PromptRefused("moderation_blocked".into()),
                _ => Error::Provider(format!("openai streamed an error ({code}): {message}")),
            })
        }
        _ => Ok(None),
    }
}

fn content_type(v: &Value) -> &'static str {
    match v.get("output_format").and_then(Value::as_str) {
        Some("jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => "image/png",
    }
}

/// The stem of the multipart boundary; the boundary is the first of
/// `STEM`, `STEM-1`, `STEM-2`, … that occurs in no part (RFC 2046 §5.1.1:
/// it must not appear in the content), so no prompt or image can end a part.
const BOUNDARY_STEM: &str = "banatie-live-3f9c2a71d4e84b0c9a6e5d1f7b2c8e40";

fn boundary(parts: &[&[u8]]) -> String {
    let contains = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    (0u32..)
        .map(|n| if n == 0 { BOUNDARY_STEM.to_string() } else { format!("{BOUNDARY_STEM}-{n}") })
        .find(|b| !parts.iter().any(|p| contains(p, b)))
        .expect("finite parts cannot hold every boundary")
}

fn edit_request(
    base_url: &str,
    model: &str,
    api_key: &str,
    req: &GenerationRequest,
    inputs: &[GeneratedImage],
) -> HttpRequestSpec {
    let size = size_for(&req.aspect_ratio);
    let mut contents: Vec<&[u8]> = vec![model.as_bytes(), req.prompt.as_bytes()];
    contents.extend(inputs.iter().map(|i| i.bytes.as_slice()));
    let b = boundary(&contents);
    let mut body = Vec::new();
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!("--{b}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    };
    field("model", model);
    field("prompt", &req.prompt);
    field("size", size);
    field("n", "1");
    for (i, image) in inputs.iter().enumerate() {
        let ext = image.content_type.strip_prefix("image/").unwrap_or("png");
        body.extend_from_slice(
            format!(
                "--{b}\r\ncontent-disposition: form-data; name=\"image[]\"; filename=\"ref{i}.{ext}\"\r\n\
                 content-type: {}\r\n\r\n",
                image.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&image.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    HttpRequestSpec {
        method: "POST",
        url: format!("{base_url}/v1/images/edits"),
        headers: vec![
            ("authorization".into(), format!("Bearer {api_key}")),
            ("content-type".into(), format!("multipart/form-data; boundary={b}")),
        ],
        body,
    }
}

fn openai_error(answer: &HttpAnswer) -> (Option<String>, String) {
    let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let code = err.and_then(|e| e.get("code")).and_then(Value::as_str).map(str::to_string);
    let message: String =
        err.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("").chars().take(200).collect();
    let detail =
        format!("openai answered HTTP {} ({}): {message}", answer.status, code.as_deref().unwrap_or("?"));
    (code, detail)
}

pub fn parse_response(answer: &HttpAnswer) -> Result<GeneratedImage, Error> {
    if answer.status != 200 {
        let (code, detail) = openai_error(answer);
        return Err(match (answer.status, code.as_deref()) {
            (400, Some("moderation_blocked")) => Error::PromptRefused("moderation_blocked".into()),
            (429, _) => {
                Error::ProviderBusy { retry_after: answer.retry_after.unwrap_or(DEFAULT_RETRY_AFTER), detail }
            }
            _ => Error::Provider(detail),
        });
    }
    let v: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| Error::Provider(format!("openai answered invalid JSON: {e}")))?;
    let data = v
        .pointer("/data/0/b64_json")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Provider("openai answered without data[0].b64_json".into()))?;
    let bytes = STANDARD
        .decode(data)
        .map_err(|e| Error::Provider(format!("openai image data is not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(Error::Provider("openai answered an empty image".into()));
    }
    Ok(GeneratedImage { content_type: content_type(&v).into(), bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_as_the_api_spells_it_is_its_pixels() {
        assert_eq!(pixels_of_size("1536x1024"), Some((1536, 1024)));
        assert_eq!(pixels_of_size(size_for("9:16")), Some(pixels_for("9:16")));
        assert_eq!(pixels_of_size("512x512"), None);
    }

    #[test]
    fn ratios_map_to_the_nearest_supported_size() {
        let sizes: Vec<_> = crate::http::request::ASPECT_RATIOS.iter().map(|r| (*r, size_for(r))).collect();
        assert_eq!(
            sizes,
            vec![
                ("1:1", "1024x1024"),
                ("2:3", "1024x1536"),
                ("3:2", "1536x1024"),
                ("3:4", "1024x1536"),
                ("4:3", "1536x1024"),
                ("4:5", "1024x1536"),
                ("5:4", "1536x1024"),
                ("9:16", "1024x1536"),
                ("16:9", "1536x1024"),
                ("21:9", "1536x1024"),
            ]
        );
    }

    #[test]
    fn request_matches_the_wire_format() {
        let req =
            GenerationRequest { prompt: "a fox".into(), aspect_ratio: "16:9".into(), ..Default::default() };
        let spec = build_request("http://o", "gpt-image-1", "sk-KEY", &req, &[]);
        assert_eq!(spec.url, "http://o/v1/images/generations");
        assert!(spec.headers.contains(&("authorization".into(), "Bearer sk-KEY".into())));
        let body: Value = serde_json::from_slice(&spec.body).unwrap();
        assert_eq!(body, json!({"model":"gpt-image-1","prompt":"a fox","size":"1536x1024","n":1}));
        assert!(!format!("{spec:?}").contains("sk-KEY"));
    }

    #[test]
    fn answers_map_to_images_refusals_and_failures() {
        let ok = HttpAnswer {
            status: 200,
            retry_after: None,
            body: br#"{"created":1,"data":[{"b64_json":"iVBORw=="}]}"#.to_vec(),
        };
        assert_eq!(parse_response(&ok).unwrap().bytes, vec![0x89, b'P', b'N', b'G']);
        let refused = HttpAnswer {
            status: 400,
            retry_after: None,
            body: br#"{"error":{"message":"blocked","type":"image_generation_user_error","param":null,"code":"moderation_blocked"}}"#.to_vec(),
        };
        assert_eq!(parse_response(&refused), Err(Error::PromptRefused("moderation_blocked".into())));
        let other_400 = HttpAnswer {
            status: 400,
            retry_after: None,
            body: br#"{"error":{"code":"invalid_size"}}"#.to_vec(),
        };
        assert_eq!(parse_response(&other_400).unwrap_err().status(), 502);
        let down = HttpAnswer { status: 500, retry_after: None, body: b"oops".to_vec() };
        assert_eq!(parse_response(&down).unwrap_err().status(), 502);
        let busy = HttpAnswer { status: 429, retry_after: Some(3), body: vec![] };
        assert_eq!(parse_response(&busy).unwrap_err().status(), 503);
        let empty = HttpAnswer { status: 200, retry_after: None, body: br#"{"data":[]}"#.to_vec() };
        assert_eq!(parse_response(&empty).unwrap_err().status(), 502);
    }

    #[test]
    fn the_multipart_boundary_occurs_in_no_part() {
        let stem = BOUNDARY_STEM;
        let req = GenerationRequest {
            prompt: format!("a fox {stem} and {stem}-1"),
            aspect_ratio: "1:1".into(),
            ..Default::default()
        };
        let image =
            GeneratedImage { content_type: "image/png".into(), bytes: format!("x{stem}-2y").into_bytes() };
        let spec = build_request("http://o", "gpt-image-1", "k", &req, &[image]);
        let content_type = &spec.headers.iter().find(|(n, _)| n == "content-type").unwrap().1;
        assert_eq!(content_type, &format!("multipart/form-data; boundary={stem}-3"));
        assert!(spec.url.ends_with("/v1/images/edits"));
    }
}
