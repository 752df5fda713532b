//! Parse and normalise the live URL's query into a [`GenerationRequest`].
//!
//! Strict by design: every parameter must be known, may appear once, must be
//! valid percent-encoded UTF-8. Anything else is a 400 that names the problem;
//! nothing is silently ignored, because every accepted parameter is part of the
//! cache key. Does not authenticate (see `api::live`).

use super::Error;

/// Aspect ratios Gemini's `imageConfig.aspectRatio` accepts.
pub const ASPECT_RATIOS: [&str; 10] = [
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
];
pub const DEFAULT_ASPECT_RATIO: &str = "1:1";
/// Longest query we look at, in bytes, before decoding anything.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

const KNOWN: [&str; 2] = ["prompt", "aspect_ratio"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRequest {
    /// Trimmed, never empty.
    pub prompt: String,
    /// One of [`ASPECT_RATIOS`].
    pub aspect_ratio: String,
}

/// Decode one `application/x-www-form-urlencoded` component strictly: `+` is a
/// space, `%` must start two hex digits, the result must be UTF-8.
pub fn decode_component(raw: &str) -> Result<String, Error> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(Error::BadRequest("malformed percent-encoding".into()));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::BadRequest("query is not valid UTF-8".into()))
}

/// Split a query into decoded (name, value) pairs, refusing repeated names.
pub fn parse_pairs(query: &str) -> Result<Vec<(String, String)>, Error> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(Error::BadRequest("query too long".into()));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = decode_component(name)?;
        let value = decode_component(value)?;
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(Error::BadRequest(format!(
                "parameter '{}' given more than once",
                short(&name)
            )));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Parse the live endpoint's query.
pub fn parse(query: &str, max_prompt_length: usize) -> Result<GenerationRequest, Error> {
    let pairs = parse_pairs(query)?;
    if let Some((name, _)) = pairs.iter().find(|(n, _)| !KNOWN.contains(&n.as_str())) {
        return Err(Error::BadRequest(format!(
            "unknown parameter '{}'",
            short(name)
        )));
    }
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let prompt = value("prompt")
        .ok_or_else(|| Error::BadRequest("parameter 'prompt' is required".into()))?
        .trim();
    if prompt.is_empty() {
        return Err(Error::BadRequest("parameter 'prompt' is empty".into()));
    }
    if prompt.chars().count() > max_prompt_length {
        return Err(Error::BadRequest(format!(
            "parameter 'prompt' is longer than {max_prompt_length} characters"
        )));
    }
    if prompt
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::BadRequest(
            "parameter 'prompt' contains control characters".into(),
        ));
    }
    let aspect_ratio = value("aspect_ratio").unwrap_or(DEFAULT_ASPECT_RATIO);
    if !ASPECT_RATIOS.contains(&aspect_ratio) {
        return Err(Error::BadRequest(format!(
            "parameter 'aspect_ratio' must be one of {}",
            ASPECT_RATIOS.join(", ")
        )));
    }
    Ok(GenerationRequest {
        prompt: prompt.to_string(),
        aspect_ratio: aspect_ratio.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(query: &str) -> String {
        match parse(query, 20) {
            Err(Error::BadRequest(m)) => m,
            other => panic!("{query:?} gave {other:?}"),
        }
    }

    #[test]
    fn prompt_is_decoded_and_trimmed_and_ratio_defaults() {
        let r = parse("prompt=+a%20red+fox%0A", 20).unwrap();
        assert_eq!(r.prompt, "a red fox");
        assert_eq!(r.aspect_ratio, "1:1");
        let r = parse("aspect_ratio=16%3A9&prompt=x", 20).unwrap();
        assert_eq!(r.aspect_ratio, "16:9");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(parse(&format!("prompt={}", "é".repeat(20)), 20).is_ok());
        assert!(bad(&format!("prompt={}", "é".repeat(21))).contains("longer than 20"));
    }

    #[test]
    fn bad_queries_are_refused_with_a_reason() {
        assert!(bad("").contains("required"));
        assert!(bad("prompt=").contains("empty"));
        assert!(bad("prompt=+++").contains("empty"));
        assert!(bad("prompt=a&aspect_ratio=7:5").contains("aspect_ratio"));
        assert!(bad("prompt=a&size=big").contains("unknown parameter 'size'"));
        assert!(bad("prompt=a&prompt=b").contains("more than once"));
        assert!(bad("prompt=%zz").contains("percent"));
        assert!(bad("prompt=%E2%82").contains("UTF-8"));
        assert!(bad("prompt=a%00b").contains("control"));
        assert!(bad(&"x".repeat(MAX_QUERY_BYTES + 1)).contains("too long"));
    }
}
