//! An error as an image. A live URL sits in an `<img>`: a JSON body there is
//! a broken-image icon, so when the request prefers an image
//! (`accept::prefers_image`) an error on an image route is answered with a
//! small SVG that says what happened, under the same status, `Retry-After`
//! and `X-Error-Code`, with the JSON error in `X-Error`
//! (`headers::error_image`). The SVG is ours, static text (every value
//! escaped, no script, no external reference), and is served under a CSP
//! that allows no script. `error_images=false` turns it off.

use crate::http::error::Error;

/// XML text, escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// What the image says: a title for the code, and when to come back.
pub fn wording(error: &Error) -> (&'static str, String) {
    let title = match error.code() {
        _ if matches!(error, Error::PolicyRefused(_) | Error::Flagged(_)) => {
            "This prompt is not allowed here"
        }
        "moderation_unavailable" => "Image service unavailable",
        "blocked" => "This image was taken down",
        "budget_exceeded" => "Generation budget spent",
        "derivations_exceeded" => "Variant budget spent",
        "rate_limited" => "Rate limited",
        "scope_closed" => "New images are switched off here",
        "prompt_refused" => "Prompt refused by the provider",
        "provider_busy" => "The image provider is busy",
        "busy" => "Still generating elsewhere",
        "provider_error" => "The image could not be generated",
        "storage_error" | "kv_unavailable" | "misconfigured" | "project_unreadable" => {
            "Image service unavailable"
        }
        "invalid_signature" | "unauthorized" | "forbidden" => "This image link is not valid",
        "not_found" | "not_cached" => "Image not found",
        "bad_request" | "payload_too_large" | "method_not_allowed" => "This image URL is not valid",
        "variant_unavailable" => "This variant cannot be made",
        _ => "Image unavailable",
    };
    let when = match error.retry_after() {
        Some(s) if s >= 120 => format!("try again in {} min", s.div_ceil(60)),
        Some(s) => format!("retry in {s} s"),
        None => String::new(),
    };
    (title, when)
}

/// The SVG (16:9, 640×360).
pub fn svg(error: &Error) -> String {
    let (title, when) = wording(error);
    let label = if when.is_empty() { title.to_string() } else { format!("{title}: {when}") };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"360\" viewBox=\"0 0 640 360\" \
role=\"img\" aria-label=\"{label}\">\
<rect width=\"640\" height=\"360\" fill=\"#eceff1\"/>\
<text x=\"320\" y=\"172\" font-family=\"sans-serif\" font-size=\"28\" fill=\"#37474f\" text-anchor=\"middle\">{title}</text>\
<text x=\"320\" y=\"214\" font-family=\"sans-serif\" font-size=\"20\" fill=\"#607d8b\" text-anchor=\"middle\">{when}</text>\
<text x=\"320\" y=\"330\" font-family=\"monospace\" font-size=\"14\" fill=\"#90a4ae\" text-anchor=\"middle\">{code} · {status}</text>\
</svg>",
        label = escape(&label),
        title = escape(title),
        when = escape(&when),
        code = escape(error.code()),
        status = error.status(),
    )
}

/// A JSON text with every non-ASCII character as `\uXXXX`: a header value.
pub fn ascii_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).expect("JSON serialises");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_says_what_happened_and_when_to_come_back() {
        let svg = svg(&Error::RateLimited {
            retry_after: 720,
            allowance: crate::decide::client::Allowance { limit: 3, used: 4, reset_at: 0 },
        });
        assert!(svg.contains(">Rate limited<") && svg.contains(">try again in 12 min<"), "{svg}");
        assert!(svg.contains("rate_limited · 429"));
        assert!(svg.starts_with("<svg ") && !svg.contains("<script"));
        let (title, when) = wording(&Error::Busy { retry_after: 5 });
        assert_eq!((title, when.as_str()), ("Still generating elsewhere", "retry in 5 s"));
        assert_eq!(wording(&Error::PromptRefused("x".into())).0, "Prompt refused by the provider");
        assert_eq!(wording(&Error::PolicyRefused("deny_terms")).0, "This prompt is not allowed here");
    }

    #[test]
    fn the_json_header_is_ascii() {
        let v = serde_json::json!({"error": {"message": "é — \u{1F600}\n"}});
        let text = ascii_json(&v);
        assert!(text.is_ascii() && !text.contains('\n'), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
    }
}
