//! Parse and normalise a live or public URL's query into a [`GenerationRequest`]
//! (which routes read which query: `core::http::routes::Query`).
//!
//! Strict by design: every parameter must be known, may appear once, must be
//! valid percent-encoded UTF-8. Anything else is a 400 that names the problem
//! (in a signed URL, the one opaque 403); nothing is silently ignored, because
//! every accepted parameter is part of the cache key, a variant's key or the
//! signature. Does not authenticate (`api::auth::authenticate`).

use unicode_normalization::UnicodeNormalization;

use crate::http::error::short;
use crate::Error;

/// Aspect ratios Gemini's `imageConfig.aspectRatio` accepts.
pub const ASPECT_RATIOS: [&str; 10] =
    ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"];
pub const DEFAULT_ASPECT_RATIO: &str = "1:1";
/// Longest query we look at, in bytes, before decoding anything.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Most parameters a query may have (a signed URL has at most ten); counted before
/// anything is decoded, so a query of thousands of names costs nothing.
pub const MAX_PARAMS: usize = 32;

/// Parameters that shape the image (all part of the cache key).
/// `aspectRatio` is an alias of `aspect_ratio` (the spelling of the service
/// this one grew from); giving both is a 400.
pub const GENERATION_PARAMS: [&str; 9] =
    ["prompt", "aspect_ratio", "aspectRatio", "scope", "enhance", "model", "seed", "template", "ref"];
/// `ref` may be given this many times at most.
pub const MAX_REFS: usize = 3;
/// The largest `seed` (Gemini's `generationConfig.seed` is an int32).
pub const MAX_SEED: u32 = i32::MAX as u32;
/// Parameters of a signed URL (never part of the cache key).
pub const SIGNATURE_PARAMS: [&str; 3] = ["project", "exp", "sig"];
/// Parameters that shape the answer, not the image (never part of the
/// cache key): `progressive=1` asks a MISS for a progressive answer.
pub const ANSWER_PARAMS: [&str; 1] = ["progressive"];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenerationRequest {
    /// Trimmed, never empty.
    pub prompt: String,
    /// One of [`ASPECT_RATIOS`].
    pub aspect_ratio: String,
    /// The scope the image belongs to (a valid slug), if any.
    pub scope: Option<String>,
    /// `enhance=true`: the provider's text model rewrites the prompt first.
    pub enhance: bool,
    /// `model=NAME`, one of the `models` variable's (checked against it by
    /// `Config::model`); `None`: the first.
    pub model: Option<String>,
    /// `seed=N` (0 to [`MAX_SEED`]), for a model that takes one.
    pub seed: Option<u32>,
    /// `template=NAME`, one of `core::decide::template::TEMPLATES`.
    pub template: Option<String>,
    /// `ref=` (repeatable, at most [`MAX_REFS`]; a set, sorted): as given,
    /// image ids or `@alias`es; once resolved (`api::records::aliases::resolve`), the
    /// images' ids, which are what the cache key holds.
    pub refs: Vec<String>,
}

/// Decode one `application/x-www-form-urlencoded` component strictly: `+` is a
/// space, `%` must start two hex digits, the result must be UTF-8.
pub fn decode_component(raw: &str) -> Result<String, Error> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok =
                bytes.len() > i + 2 && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit();
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
/// Linear in the query's length.
pub fn parse_pairs(query: &str) -> Result<Vec<(String, String)>, Error> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(Error::BadRequest("query too long".into()));
    }
    if query.split('&').filter(|p| !p.is_empty()).nth(MAX_PARAMS).is_some() {
        return Err(Error::BadRequest(format!("more than {MAX_PARAMS} parameters")));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = decode_component(name)?;
        let value = decode_component(value)?;
        // `ref` is the one parameter given more than once (in order).
        if name != "ref" && !seen.insert(name.clone()) {
            return Err(Error::BadRequest(format!("parameter '{}' given more than once", short(&name))));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// A signed URL's own parameters (see `signature`). Never part of the cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParams {
    pub project: String,
    pub exp: Option<u64>,
    pub sig: String,
}

/// A live or public URL's query, decoded but not yet validated: a signed URL
/// is verified over exactly these pairs before anything else is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawQuery {
    /// Every decoded parameter, in URL order (what a signature covers).
    pub pairs: Vec<(String, String)>,
    /// Present when the URL carries `sig`, `project` or `exp`.
    pub signed: Option<SignedParams>,
}

/// A hand-written public URL's query: the generation and variant parameters
/// except `scope` (it is in the path); keys and signatures have no place in it.
pub fn parse_public_query(query: &str) -> Result<RawQuery, Error> {
    let raw = parse_query(query)?;
    if raw.signed.is_some() || raw.pairs.iter().any(|(n, _)| n == "scope") {
        return Err(Error::BadRequest(
            "a public URL takes no signature and no scope parameter; its scope is in the path".into(),
        ));
    }
    // Anyone may write a public URL: it may reference the project's images
    // only by the aliases the project chose to name.
    if raw.pairs.iter().any(|(n, v)| n == "ref" && !v.starts_with('@')) {
        return Err(Error::BadRequest("a public URL's 'ref' must be an @alias".into()));
    }
    Ok(raw)
}

/// Stage 1: decode. In a URL that carries `sig=`, every defect is the opaque
/// signature error, so no edit of a signed URL can tell the editor more.
pub fn parse_query(query: &str) -> Result<RawQuery, Error> {
    // Decoded leniently, so that `si%67=` is as signed as `sig=`.
    let looks_signed = query.split('&').any(|p| {
        let name = p.split_once('=').map_or(p, |(n, _)| n);
        percent_encoding::percent_decode_str(name).decode_utf8_lossy() == "sig"
    });
    let opaque = |e: Error| if looks_signed { Error::BadSignature } else { e };
    let pairs = parse_pairs(query).map_err(opaque)?;
    let signed = signed_params(&pairs)?;
    Ok(RawQuery { pairs, signed })
}

/// Stage 2: every parameter known, the generation parameters valid.
pub fn validate(raw: &RawQuery, max_prompt_length: usize) -> Result<GenerationRequest, Error> {
    let known = |n: &str| {
        GENERATION_PARAMS.contains(&n)
            || SIGNATURE_PARAMS.contains(&n)
            || ANSWER_PARAMS.contains(&n)
            || crate::variant::VARIANT_PARAMS.contains(&n)
    };
    if let Some((name, _)) = raw.pairs.iter().find(|(n, _)| !known(n)) {
        return Err(Error::BadRequest(format!("unknown parameter '{}'", short(name))));
    }
    generation_request(&raw.pairs, max_prompt_length)
}

/// `progressive=`: `1` asks for a progressive answer to a MISS, `0` (or
/// none) for a plain one; anything else is a 400.
pub fn progressive(pairs: &[(String, String)]) -> Result<bool, Error> {
    match value(pairs, "progressive") {
        None | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => {
            Err(Error::BadRequest(format!("parameter 'progressive' must be 0 or 1, not '{}'", short(other))))
        }
    }
}

/// Both stages, for callers that verify no signature in between.
pub fn parse(query: &str, max_prompt_length: usize) -> Result<(RawQuery, GenerationRequest), Error> {
    let raw = parse_query(query)?;
    let request = validate(&raw, max_prompt_length)?;
    Ok((raw, request))
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Validate the generation parameters among `pairs` (others are ignored here).
pub fn generation_request(
    pairs: &[(String, String)],
    max_prompt_length: usize,
) -> Result<GenerationRequest, Error> {
    let prompt = value(pairs, "prompt")
        .ok_or_else(|| Error::BadRequest("parameter 'prompt' is required".into()))?
        .trim();
    if prompt.chars().all(|c| c.is_whitespace() || invisible(c)) {
        return Err(Error::BadRequest("parameter 'prompt' is empty".into()));
    }
    // One spelling per text: NFC, so that composed and decomposed accents are
    // one cache entry (an NFC prompt's key is unchanged).
    let prompt: String = prompt.nfc().collect();
    let prompt = prompt.as_str();
    if prompt.chars().count() > max_prompt_length {
        return Err(Error::BadRequest(format!(
            "parameter 'prompt' is longer than {max_prompt_length} characters"
        )));
    }
    if prompt.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::BadRequest("parameter 'prompt' contains control characters".into()));
    }
    let aspect_ratio = match (value(pairs, "aspect_ratio"), value(pairs, "aspectRatio")) {
        (Some(_), Some(_)) => {
            return Err(Error::BadRequest("give 'aspect_ratio' or its alias 'aspectRatio', not both".into()))
        }
        (one, other) => one.or(other).unwrap_or(DEFAULT_ASPECT_RATIO),
    };
    if !ASPECT_RATIOS.contains(&aspect_ratio) {
        return Err(Error::BadRequest(format!(
            "parameter 'aspect_ratio' must be one of {}",
            ASPECT_RATIOS.join(", ")
        )));
    }
    let scope = match value(pairs, "scope") {
        None => None,
        Some(s) if crate::stored::scope::valid_slug(s) => Some(s.to_string()),
        Some(_) => return Err(Error::BadRequest(crate::stored::scope::SLUG_RULE.into())),
    };
    let enhance = match value(pairs, "enhance") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Error::BadRequest("parameter 'enhance' must be true or false".into())),
    };
    let model = match value(pairs, "model") {
        None => None,
        Some(m) if valid_model_name(m) => Some(m.to_string()),
        Some(_) => {
            return Err(Error::BadRequest(
                "parameter 'model' must be a model's name (a-z, 0-9, -, _ and .)".into(),
            ))
        }
    };
    let seed = match value(pairs, "seed") {
        None => None,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if n <= MAX_SEED && !s.starts_with('+') => Some(n),
            _ => {
                return Err(Error::BadRequest(format!(
                    "parameter 'seed' must be a number from 0 to {MAX_SEED}"
                )))
            }
        },
    };
    let template = match value(pairs, "template") {
        None => None,
        Some(t) if crate::decide::template::find(t).is_some() => Some(t.to_string()),
        Some(t) => {
            return Err(Error::BadRequest(format!(
                "parameter 'template' must be one of {}, not '{}'",
                crate::decide::template::names(),
                short(t)
            )))
        }
    };
    // A set: a signature covers the sorted query, so the order of `ref`s
    // cannot mean anything (or a signed URL could be permuted into new images).
    let mut refs: Vec<String> = pairs.iter().filter(|(n, _)| n == "ref").map(|(_, v)| v.clone()).collect();
    refs.sort();
    refs.dedup();
    if refs.len() > MAX_REFS {
        return Err(Error::BadRequest(format!("at most {MAX_REFS} 'ref' parameters")));
    }
    if let Some(bad) = refs.iter().find(|r| !valid_ref(r)) {
        return Err(Error::BadRequest(format!(
            "parameter 'ref' must be an image id or @alias, not '{}'",
            short(bad)
        )));
    }
    Ok(GenerationRequest {
        prompt: prompt.to_string(),
        aspect_ratio: aspect_ratio.to_string(),
        scope,
        enhance,
        model,
        seed,
        template,
        refs,
    })
}

impl GenerationRequest {
    /// The query parameters that ask for this again, normalised (a signed
    /// URL's): refs as given (an alias is resolved when the URL is used).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("prompt".to_string(), self.prompt.clone()),
            ("aspect_ratio".to_string(), self.aspect_ratio.clone()),
        ];
        let optional = [
            ("scope", self.scope.clone()),
            ("enhance", self.enhance.then(|| "true".to_string())),
            ("model", self.model.clone()),
            ("seed", self.seed.map(|s| s.to_string())),
            ("template", self.template.clone()),
        ];
        out.extend(optional.into_iter().filter_map(|(n, v)| Some((n.to_string(), v?))));
        out.extend(self.refs.iter().map(|r| ("ref".to_string(), r.clone())));
        out
    }
}

/// `ref=`: `@` and an alias (a slug), or an image id (1–64 of
/// `[A-Za-z0-9-]`: the UUIDs `X-Image-Id` gives).
fn valid_ref(r: &str) -> bool {
    match r.strip_prefix('@') {
        Some(alias) => crate::stored::scope::valid_slug(alias),
        None => (1..=64).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
    }
}

/// A model's name in `models` and in `model=`: 1–32 of `[a-z0-9._-]`.
pub fn valid_model_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

/// Characters that show nothing: zero-width spaces and joiners, the byte
/// order mark, the soft hyphen and friends (Unicode `Default_Ignorable`
/// format characters a prompt could be made of).
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}')
}

/// Any of `project`, `exp`, `sig` makes this a signed URL, which then needs
/// all of `project` and `sig` and a numeric `exp` if present. Every defect is
/// the same opaque 403.
fn signed_params(pairs: &[(String, String)]) -> Result<Option<SignedParams>, Error> {
    if !SIGNATURE_PARAMS.iter().any(|p| value(pairs, p).is_some()) {
        return Ok(None);
    }
    let project = value(pairs, "project").filter(|p| !p.is_empty()).ok_or(Error::BadSignature)?;
    let sig = value(pairs, "sig").filter(|s| !s.is_empty()).ok_or(Error::BadSignature)?;
    let exp = match value(pairs, "exp") {
        None => None,
        Some(e) => Some(e.parse::<u64>().map_err(|_| Error::BadSignature)?),
    };
    Ok(Some(SignedParams { project: project.to_string(), exp, sig: sig.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> GenerationRequest {
        parse(query, 20).unwrap().1
    }

    fn bad(query: &str) -> String {
        match parse(query, 20) {
            Err(Error::BadRequest(m)) => m,
            other => panic!("{query:?} gave {other:?}"),
        }
    }

    #[test]
    fn progressive_is_0_or_1_and_never_part_of_the_image() {
        let pairs = |v: &str| {
            vec![("prompt".to_string(), "fox".to_string()), ("progressive".to_string(), v.to_string())]
        };
        assert_eq!(progressive(&pairs("1")), Ok(true));
        assert_eq!(progressive(&pairs("0")), Ok(false));
        assert_eq!(progressive(&[]), Ok(false));
        for bad in ["2", "yes", "true", ""] {
            assert!(matches!(progressive(&pairs(bad)), Err(Error::BadRequest(_))), "{bad}");
        }
        let (_, with) = parse("prompt=fox&progressive=1", 100).unwrap();
        let (_, without) = parse("prompt=fox", 100).unwrap();
        assert_eq!(with, without, "the same image, so the same cache key");
    }

    #[test]
    fn prompt_is_decoded_and_trimmed_and_ratio_defaults() {
        let r = req("prompt=+a%20red+fox%0A");
        assert_eq!(r.prompt, "a red fox");
        assert_eq!(r.aspect_ratio, "1:1");
        let r = req("aspect_ratio=16%3A9&prompt=x");
        assert_eq!(r.aspect_ratio, "16:9");
    }

    #[test]
    fn signed_url_parameters_are_recognised_and_checked() {
        let q = parse_query("prompt=x&project=p1&exp=17&sig=abc").unwrap();
        let signed = q.signed.unwrap();
        assert_eq!((signed.project.as_str(), signed.exp, signed.sig.as_str()), ("p1", Some(17), "abc"));
        assert_eq!(q.pairs.len(), 4);
        assert!(parse_query("prompt=x").unwrap().signed.is_none());
        // Defects in a signed URL are all the same opaque error.
        assert_eq!(parse_query("prompt=%zz&project=p&sig=s").unwrap_err(), Error::BadSignature);
        assert_eq!(parse_query("prompt=a&prompt=b&sig=s").unwrap_err(), Error::BadSignature);
        // An unknown parameter is judged only after the signature.
        assert!(parse_query("prompt=x&seed=1&project=p&sig=s").is_ok());
        for broken in
            ["prompt=x&project=p1", "prompt=x&sig=abc", "prompt=x&project=p&sig=s&exp=soon", "prompt=x&exp=1"]
        {
            assert_eq!(parse_query(broken).unwrap_err(), Error::BadSignature, "{broken}");
        }
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
        assert!(bad("prompt=a&aspectRatio=7:5").contains("aspect_ratio"));
        assert!(bad("prompt=a&aspect_ratio=1:1&aspectRatio=1:1").contains("not both"));
        assert_eq!(
            req("prompt=a&aspectRatio=16%3A9"),
            req("prompt=a&aspect_ratio=16%3A9"),
            "one cache entry"
        );
        assert!(bad("prompt=a&size=big").contains("unknown parameter 'size'"));
        assert!(bad("prompt=a&prompt=b").contains("more than once"));
        assert!(bad("prompt=%zz").contains("percent"));
        assert!(bad("prompt=%E2%82").contains("UTF-8"));
        assert!(bad("prompt=a%00b").contains("control"));
        assert!(bad(&"x".repeat(MAX_QUERY_BYTES + 1)).contains("too long"));
    }

    #[test]
    fn too_many_parameters_are_refused_before_decoding() {
        let many: String = (0..MAX_PARAMS).map(|i| format!("&p{i}=%zz")).collect();
        assert!(bad(&format!("prompt=a{many}")).contains("more than 32 parameters"));
        let signed: String = (0..40).map(|i| format!("&p{i}=1")).collect();
        assert_eq!(parse_query(&format!("prompt=a&sig=x{signed}")).unwrap_err(), Error::BadSignature);
    }

    #[test]
    fn an_encoded_sig_name_still_makes_defects_opaque() {
        assert_eq!(parse_query("prompt=%zz&project=p&si%67=s").unwrap_err(), Error::BadSignature);
        assert_eq!(parse_query("prompt=a&si%67=s&si%67=t").unwrap_err(), Error::BadSignature);
    }

    #[test]
    fn a_prompt_of_invisible_characters_is_empty() {
        for q in ["prompt=%E2%80%8B", "prompt=%EF%BB%BF%E2%80%8B%20", "prompt=%C2%AD%E2%81%A0"] {
            assert!(bad(q).contains("empty"), "{q}");
        }
        assert_eq!(req("prompt=a%E2%80%8Bb").prompt, "a\u{200B}b", "inside text they stay");
    }

    #[test]
    fn composed_and_decomposed_spellings_are_one_prompt() {
        let nfc = req("prompt=caf%C3%A9");
        let nfd = req("prompt=cafe%CC%81");
        assert_eq!(nfc, nfd);
        assert_eq!(nfc.prompt, "caf\u{e9}");
    }

    #[test]
    fn refs_are_a_set_of_at_most_three_and_public_urls_take_aliases_only() {
        let r = req("prompt=a&ref=@logo&ref=0d56ce37&ref=@logo");
        assert_eq!(r.refs, ["0d56ce37", "@logo"], "sorted, each once");
        assert!(bad("prompt=a&ref=a&ref=b&ref=c&ref=d").contains("at most 3"));
        assert!(bad("prompt=a&ref=@Not_A_Slug").contains("image id or @alias"));
        assert!(bad("prompt=a&ref=a/b").contains("image id or @alias"));
        assert!(parse_public_query("prompt=a&ref=@logo").is_ok());
        assert!(
            matches!(parse_public_query("prompt=a&ref=0d56ce37"), Err(Error::BadRequest(m)) if m.contains("@alias"))
        );
    }
}
