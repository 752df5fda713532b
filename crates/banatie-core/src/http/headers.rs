//! Every header set the component answers with, and the 304 / HEAD / body
//! choice for a cached image. Pure decisions; `api` attaches them, the
//! adapter writes them (adding only `Content-Length` for a buffered body).

use crate::decide::client::Allowance;
use crate::http::error::Error;
use crate::stored::entry::Entry;

/// Images are content-addressed by their URL's parameters and never change.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Errors are never cached, by us or by anyone in between.
pub const CACHE_NO_STORE: &str = "no-store";

/// An image is never sniffed into something else, and never runs as a
/// document: opened at its URL, an SVG's scripts or an HTML body's would run
/// on our origin; `sandbox` without allowances and `default-src 'none'`
/// keep them inert even where a type got past the provider check.
pub const NOSNIFF: &str = "nosniff";
/// banatie-host's object cache (`--object-cache`) marks an S3 answer it made
/// from its copy with this header, a token valid for the one request; a
/// component that streams that answer to its client answers the token
/// instead of the bytes, and the host sends the copy itself
/// (`adapters::respond`; `host/src/object_cache.rs`). No other runtime sends
/// it, so there the bytes are streamed as always.
pub const HOST_OBJECT: &str = "banatie-host-object";

/// The shape of banatie-host's tokens (32 lowercase hex digits): anything
/// else under that name (a proxy's header, say) is not one, and the body is
/// streamed.
pub fn is_host_object_token(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
pub const IMAGE_CSP: &str = "default-src 'none'; sandbox";

/// One response header.
pub type Header = (&'static str, String);

/// A JSON document (answers of the API and every error): never cached.
pub fn json() -> Vec<Header> {
    vec![("content-type", "application/json".into()), ("cache-control", CACHE_NO_STORE.into())]
}

/// An error's JSON headers, and what the error adds (Allow, Retry-After, …).
pub fn error(error: &Error) -> Vec<Header> {
    let mut h = json();
    // The code of the body's `error.code`, for what reads only heads
    // (banatie-host's metrics, a CDN's logs).
    h.push(("x-error-code", error.code().to_string()));
    match error {
        Error::MethodNotAllowed(allow) => h.push(("allow", allow.clone())),
        Error::NotCached => h.push(("x-cache-status", "MISS".into())),
        Error::RateLimited { allowance, .. } => h.extend(rate_limit(allowance)),
        _ => {}
    }
    if let Some(seconds) = error.retry_after() {
        h.push(("retry-after", seconds.to_string()));
    }
    h
}

/// An error answered as an image (`core::http::error_image`): the error's own
/// headers (`X-Error-Code`, `Retry-After`, `X-RateLimit-*`, no-store) with
/// the SVG's type, the JSON error in `X-Error`, `Vary: Accept` (the body
/// depends on it), and the image CSP without sandbox's block on styles.
pub fn error_image(e: &Error, json: &serde_json::Value) -> Vec<Header> {
    let mut h: Vec<Header> = error(e).into_iter().filter(|(n, _)| *n != "content-type").collect();
    h.insert(0, ("content-type", "image/svg+xml".into()));
    h.push(("x-error", crate::http::error_image::ascii_json(json)));
    h.push(vary_accept());
    h.push(("x-content-type-options", NOSNIFF.into()));
    h.push(("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'".into()));
    h
}

/// `X-RateLimit-*`: the client's hourly allowance of new generations.
pub fn rate_limit(a: &Allowance) -> Vec<Header> {
    vec![
        ("x-ratelimit-limit", a.limit.to_string()),
        ("x-ratelimit-remaining", a.remaining().to_string()),
        ("x-ratelimit-reset", a.reset_at.to_string()),
    ]
}

/// `X-Scope` on every live answer whose image belongs to a scope.
pub fn scope(slug: &str) -> Header {
    ("x-scope", slug.to_string())
}

/// A purge's 204: nothing to cache.
pub fn deleted() -> Vec<Header> {
    vec![("cache-control", CACHE_NO_STORE.into())]
}

/// The demo page: HTML, revalidated on every load (it changes with releases).
pub fn page() -> Vec<Header> {
    vec![("content-type", "text/html; charset=utf-8".into()), ("cache-control", "no-cache".into())]
}

/// How a request for a cached image is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// 304: the client's copy is current (counts as a hit).
    NotModified,
    /// HEAD: the headers alone (not a hit: nothing was served).
    HeadersOnly,
    /// 200 with the object streamed from S3 (a hit).
    Object,
}

/// `If-None-Match` wins over HEAD, as for any conditional request (RFC 9110 §13.2.2).
pub fn choose(if_none_match_header: Option<&str>, etag: &str, head: bool) -> Cached {
    if if_none_match_header.is_some_and(|h| if_none_match(h, etag)) {
        Cached::NotModified
    } else if head {
        Cached::HeadersOnly
    } else {
        Cached::Object
    }
}

/// Marks an answer that waited for another request's generation.
pub fn coalesced() -> Header {
    ("x-cache-coalesced", "true".into())
}

fn common(entry: &Entry) -> Vec<Header> {
    let mut h = vec![
        ("content-type", entry.content_type.clone()),
        ("content-length", entry.size.to_string()),
        ("cache-control", CACHE_IMMUTABLE.to_string()),
        ("etag", entry.etag.clone()),
        ("x-image-id", entry.image_id.clone()),
        ("x-content-type-options", NOSNIFF.into()),
        ("content-security-policy", IMAGE_CSP.into()),
        (crate::variant::marking::HEADER.0, crate::variant::marking::HEADER.1.into()),
        // The model's name (`models`); an entry from before names: its model id.
        ("x-model-used", entry.model_used().to_string()),
    ];
    if let Some(e) = &entry.enhancement {
        h.push(("x-prompt-enhancement", e.clone()));
    }
    if let Some(original) = &entry.variant_of {
        h.push(("x-variant-of", original.clone()));
    }
    h
}

/// On every answer to `format=auto`: the bytes depend on `Accept`.
pub fn vary_accept() -> Header {
    ("vary", "Accept".into())
}

/// `Server-Timing` of a variant derived now: its time and the component's
/// linear memory when it finished (the derivation's peak, as an instance's
/// memory only grows), where the runtime tells it.
pub fn derivation(micros: u64, peak_memory: Option<u64>) -> Header {
    let mut value = format!("derive;dur={:.3}", micros as f64 / 1000.0);
    if let Some(bytes) = peak_memory {
        value.push_str(&format!(", derive-memory;desc=\"{bytes}\""));
    }
    ("server-timing", value)
}

/// Headers of a response served from the cache; `hits` counts this hit.
pub fn hit(entry: &Entry, hits: i64) -> Vec<Header> {
    let mut h = common(entry);
    h.push(("x-cache-status", "HIT".into()));
    h.push(("x-cache-hit-count", hits.to_string()));
    h
}

/// Headers of a response that generated the image just now.
pub fn miss(entry: &Entry) -> Vec<Header> {
    let mut h = common(entry);
    h.push(("x-cache-status", "MISS".into()));
    h.push(("x-generation-id", entry.generation_id.clone()));
    h
}

/// Headers of a progressive MISS (`http::multipart`), sent before the image
/// exists: what is known then. Never cached, by anyone; `X-Accel-Buffering`
/// asks nginx-like proxies not to hold the parts back.
pub fn progressive(boundary: &str) -> Vec<Header> {
    vec![
        ("content-type", crate::http::multipart::content_type(boundary)),
        ("cache-control", CACHE_NO_STORE.into()),
        ("x-accel-buffering", "no".into()),
        ("x-content-type-options", NOSNIFF.into()),
        ("x-cache-status", "MISS".into()),
        (crate::variant::marking::HEADER.0, crate::variant::marking::HEADER.1.into()),
    ]
}

/// Headers of the warm endpoint's answer: one JSON line per item, as each
/// completes.
pub fn ndjson() -> Vec<Header> {
    vec![
        ("content-type", "application/x-ndjson".into()),
        ("cache-control", CACHE_NO_STORE.into()),
        ("x-accel-buffering", "no".into()),
    ]
}

/// Headers of a 304 Not Modified: enough for a cache to refresh its copy.
pub fn not_modified(entry: &Entry) -> Vec<Header> {
    let mut h = vec![
        ("cache-control", CACHE_IMMUTABLE.to_string()),
        ("etag", entry.etag.clone()),
        ("x-image-id", entry.image_id.clone()),
        ("x-cache-status", "HIT".into()),
        (crate::variant::marking::HEADER.0, crate::variant::marking::HEADER.1.into()),
    ];
    if let Some(original) = &entry.variant_of {
        h.push(("x-variant-of", original.clone()));
    }
    h
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
    fn a_matching_etag_wins_over_head_and_head_never_streams() {
        assert_eq!(choose(Some("\"e\""), "\"e\"", false), Cached::NotModified);
        assert_eq!(choose(Some("\"e\""), "\"e\"", true), Cached::NotModified);
        assert_eq!(choose(Some("\"x\""), "\"e\"", true), Cached::HeadersOnly);
        assert_eq!(choose(None, "\"e\"", false), Cached::Object);
    }

    #[test]
    fn errors_carry_json_no_store_and_their_own_headers() {
        let h = error(&Error::MethodNotAllowed("GET".into()));
        assert_eq!(h[0], ("content-type", "application/json".into()));
        assert_eq!(h[1], ("cache-control", "no-store".into()));
        assert_eq!(h[2], ("x-error-code", "method_not_allowed".into()));
        assert_eq!(h[3], ("allow", "GET".into()));
        assert_eq!(error(&Error::Busy { retry_after: 5 })[3], ("retry-after", "5".into()));
        assert_eq!(error(&Error::NotCached)[3], ("x-cache-status", "MISS".into()));
        assert_eq!(error(&Error::BadSignature).len(), 3);
    }
}
