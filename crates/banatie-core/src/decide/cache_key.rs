//! The cache key: SHA-256 over a canonical, versioned encoding of everything
//! that changes the generated image (the KV and S3 names built from it are
//! `core::stored::keys`).
//!
//! Encoding (v1), UTF-8, one field per line, fields sorted by name, each value
//! length-prefixed in bytes so no value can forge another field:
//!
//! ```text
//! banatie-live cache-key v1\n
//! aspect_ratio:3:1:1\n
//! model:22:gemini-2.5-flash-image\n
//! prompt:9:a red fox\n
//! provider:6:gemini\n
//! ```
//!
//! An image in a scope adds the field `scope`, one asked with
//! `enhance=true` the field `enhance:4:true`, one with `seed`, `template` or
//! `ref` those fields (`refs`: the images' ids, sorted, comma-separated);
//! any of them says `v2` on the first line
//! (`banatie-live cache-key v2\n`); an image without one keeps the v1
//! encoding above, so every entry stored before scopes existed stays valid.
//!
//! Changing this encoding orphans every stored entry: bump the version instead.

use sha2::{Digest, Sha256};

use crate::http::request::GenerationRequest;

pub const VERSION_LINE: &str = "banatie-live cache-key v1\n";
pub const VERSION_LINE_V2: &str = "banatie-live cache-key v2\n";

/// The canonical bytes for a request made with `provider`/`model`.
pub fn canonical(req: &GenerationRequest, provider: &str, model: &str) -> String {
    let mut fields = vec![
        ("aspect_ratio", req.aspect_ratio.as_str()),
        ("model", model),
        ("prompt", req.prompt.as_str()),
        ("provider", provider),
    ];
    if let Some(scope) = &req.scope {
        fields.push(("scope", scope.as_str()));
    }
    if req.enhance {
        fields.push(("enhance", "true"));
    }
    let seed = req.seed.map(|s| s.to_string());
    if let Some(seed) = &seed {
        fields.push(("seed", seed.as_str()));
    }
    if let Some(template) = &req.template {
        fields.push(("template", template.as_str()));
    }
    // The referenced images' ids, sorted (resolved: an alias moved to
    // another image is another key).
    let refs = req.refs.join(",");
    if !refs.is_empty() {
        fields.push(("refs", refs.as_str()));
    }
    let v2 =
        req.scope.is_some() || req.enhance || seed.is_some() || req.template.is_some() || !refs.is_empty();
    fields.sort_by_key(|(name, _)| *name);
    let mut out = String::from(if v2 { VERSION_LINE_V2 } else { VERSION_LINE });
    for (name, value) in fields {
        out.push_str(&format!("{name}:{}:{value}\n", value.len()));
    }
    out
}

/// Lower-case hex SHA-256 of the canonical encoding.
pub fn hash(req: &GenerationRequest, provider: &str, model: &str) -> String {
    hex(&Sha256::digest(canonical(req, provider, model).as_bytes()))
}

/// Lower-case hex of `bytes` (one string, no allocation per byte: a HIT
/// spells its cache key with it).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(prompt: &str, ratio: &str) -> GenerationRequest {
        GenerationRequest { prompt: prompt.into(), aspect_ratio: ratio.into(), ..Default::default() }
    }

    #[test]
    fn canonical_encoding_is_pinned() {
        assert_eq!(
            canonical(&req("a red fox", "1:1"), "gemini", "gemini-2.5-flash-image"),
            "banatie-live cache-key v1\naspect_ratio:3:1:1\nmodel:22:gemini-2.5-flash-image\n\
             prompt:9:a red fox\nprovider:6:gemini\n"
        );
    }

    #[test]
    fn hash_is_pinned_by_a_known_answer() {
        // sha256 of the canonical string above, computed independently (Python hashlib).
        assert_eq!(
            hash(&req("a red fox", "1:1"), "gemini", "gemini-2.5-flash-image"),
            "fba03139ac1344d356e6251fa4a8fc58fe33961475ac00c3cc488a67daef273b"
        );
    }

    #[test]
    fn a_scope_is_a_v2_field_and_leaves_scopeless_keys_alone() {
        let mut scoped = req("a red fox", "1:1");
        scoped.scope = Some("hero".into());
        let text = canonical(&scoped, "gemini", "gemini-2.5-flash-image");
        assert!(
            text.starts_with("banatie-live cache-key v2\n") && text.ends_with("scope:4:hero\n"),
            "{text}"
        );
        // sha256 computed independently (Python hashlib).
        assert_eq!(
            hash(&scoped, "gemini", "gemini-2.5-flash-image"),
            "16de9d4ee550f47c52c477875d3cbe3125b5bcc78477fae182b65ff76040eba4"
        );
    }

    #[test]
    fn enhance_is_part_of_the_key() {
        let mut enhanced = req("a red fox", "1:1");
        enhanced.enhance = true;
        let text = canonical(&enhanced, "gemini", "m");
        assert!(text.starts_with(VERSION_LINE_V2) && text.contains("\nenhance:4:true\n"), "{text}");
        assert_ne!(hash(&enhanced, "gemini", "m"), hash(&req("a red fox", "1:1"), "gemini", "m"));
    }

    #[test]
    fn every_parameter_changes_the_key() {
        let base = hash(&req("a red fox", "1:1"), "gemini", "m");
        assert_ne!(base, hash(&req("a red fox", "16:9"), "gemini", "m"));
        assert_ne!(base, hash(&req("a red fox.", "1:1"), "gemini", "m"));
        assert_ne!(base, hash(&req("a red fox", "1:1"), "openai", "m"));
        assert_ne!(base, hash(&req("a red fox", "1:1"), "gemini", "n"));
    }

    #[test]
    fn a_value_cannot_forge_another_field() {
        let sneaky = req("x\nprovider:6:gemini", "1:1");
        assert_ne!(hash(&sneaky, "gemini", "m"), hash(&req("x", "1:1"), "gemini", "m"));
    }

    #[test]
    fn seed_and_template_are_fields_of_a_v2_key() {
        let mut r = req("a red fox", "1:1");
        r.seed = Some(42);
        r.template = Some("sticker".into());
        assert_eq!(
            canonical(&r, "gemini", "m"),
            "banatie-live cache-key v2\naspect_ratio:3:1:1\nmodel:1:m\nprompt:9:a red fox\n\
             provider:6:gemini\nseed:2:42\ntemplate:7:sticker\n"
        );
        let plain = hash(&req("a red fox", "1:1"), "gemini", "m");
        assert_ne!(hash(&r, "gemini", "m"), plain);
        r.template = None;
        assert_ne!(hash(&r, "gemini", "m"), plain);
    }
}
