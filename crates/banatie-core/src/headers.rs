//! Which headers a live response carries. Pure decisions over an [`Entry`].

use sha2::{Digest, Sha256};

use super::cache_key::hex;
use super::entry::Entry;

/// Images are content-addressed by their URL's parameters and never change.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Errors are never cached, by us or by anyone in between.
pub const CACHE_NO_STORE: &str = "no-store";

/// Strong ETag over the image bytes: the first 128 bits of their SHA-256.
pub fn etag_for(bytes: &[u8]) -> String {
    format!("\"{}\"", &hex(&Sha256::digest(bytes))[..32])
}

fn common(entry: &Entry) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", entry.content_type.clone()),
        ("content-length", entry.size.to_string()),
        ("cache-control", CACHE_IMMUTABLE.to_string()),
        ("etag", entry.etag.clone()),
        ("x-image-id", entry.image_id.clone()),
    ]
}

/// Headers of a response served from the cache; `hits` counts this hit.
pub fn hit(entry: &Entry, hits: i64) -> Vec<(&'static str, String)> {
    let mut h = common(entry);
    h.push(("x-cache-status", "HIT".into()));
    h.push(("x-cache-hit-count", hits.to_string()));
    h
}

/// Headers of a response that generated the image just now.
pub fn miss(entry: &Entry) -> Vec<(&'static str, String)> {
    let mut h = common(entry);
    h.push(("x-cache-status", "MISS".into()));
    h.push(("x-generation-id", entry.generation_id.clone()));
    h
}

/// Headers of a 304 Not Modified: enough for a cache to refresh its copy.
pub fn not_modified(entry: &Entry) -> Vec<(&'static str, String)> {
    vec![
        ("cache-control", CACHE_IMMUTABLE.to_string()),
        ("etag", entry.etag.clone()),
        ("x-image-id", entry.image_id.clone()),
        ("x-cache-status", "HIT".into()),
    ]
}

/// Does an `If-None-Match` header match this ETag? `*` matches anything;
/// otherwise any listed tag, compared weakly (a `W/` prefix is ignored), as
/// RFC 9110 says for If-None-Match.
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header.trim() == "*" || header.split(',').any(|t| bare(t) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_understands_lists() {
        let etag = "\"abc\"";
        assert!(if_none_match("\"abc\"", etag));
        assert!(if_none_match("W/\"abc\"", etag));
        assert!(if_none_match("\"x\", \"abc\"", etag));
        assert!(if_none_match("*", etag));
        assert!(!if_none_match("\"abd\"", etag));
        assert!(!if_none_match("abc", etag));
    }

    #[test]
    fn etag_is_a_quoted_content_hash() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(etag_for(b"abc"), "\"ba7816bf8f01cfea414140de5dae2223\"");
    }
}
