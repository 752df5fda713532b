//! Whether a URL is a live URL, and the item it names: an absolute URL
//! (`http(s)://host/…`, or `//host/…`), or a path, whose path is
//! `/api/v1/live/generate` (its query is the item) or
//! `/cdn/{project}/live/{scope}` (its query and `scope`). The query is
//! decoded as the service decodes it (`+` a space, `%XX` strictly, UTF-8).
//! The host and the project a URL names are not kept: the warm request's
//! base URL and key say where and for whom.

use super::item::Item;

/// The live route's path.
pub const LIVE_PATH: &str = "/api/v1/live/generate";

/// The item a live URL names; `Ok(None)` when `url` is not a live URL (an
/// image of another service, another route); `Err` when it is one the
/// service would refuse whole (a malformed query, a repeated parameter).
pub fn live_item(url: &str) -> Result<Option<Item>, String> {
    let Some(path_and_query) = path_of(url.trim()) else { return Ok(None) };
    let without_fragment = path_and_query.split('#').next().unwrap_or("");
    let (path, query) = without_fragment.split_once('?').unwrap_or((without_fragment, ""));
    if path == LIVE_PATH {
        return Item::from_pairs(pairs(query)?).map(Some);
    }
    let Some((_project, scope)) = path.strip_prefix("/cdn/").and_then(|rest| rest.split_once("/live/"))
    else {
        return Ok(None);
    };
    if scope.is_empty() || scope.contains('/') {
        return Ok(None);
    }
    Item::from_pairs(pairs(query)?)?.with("scope", scope).map(Some)
}

/// The path and query of an absolute, scheme-relative or path-only URL;
/// `None` for anything else (a relative path, `data:`, …).
fn path_of(url: &str) -> Option<&str> {
    let after_scheme = ["http://", "https://", "//"].iter().find_map(|s| strip_prefix_ignore_case(url, s));
    match after_scheme {
        Some(rest) => {
            let start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let tail = &rest[start..];
            tail.starts_with('/').then_some(tail)
        }
        None => url.starts_with('/').then_some(url),
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// A query's decoded pairs, in order.
pub fn pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// One `application/x-www-form-urlencoded` component: `+` is a space, `%`
/// starts two hex digits, the result is UTF-8.
fn decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err("malformed percent-encoding in the query".into());
    }
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "the query is not UTF-8 once decoded".into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn json_of(url: &str) -> serde_json::Value {
        live_item(url).unwrap().unwrap_or_else(|| panic!("{url} is live")).to_json()
    }

    #[test]
    fn absolute_and_path_only_live_urls_are_their_query() {
        let want = json!({"prompt": "a red fox", "aspect_ratio": "16:9"});
        for url in [
            "https://img.example.com/api/v1/live/generate?prompt=a+red+fox&aspect_ratio=16%3A9",
            "HTTP://127.0.0.1:3000/api/v1/live/generate?prompt=a%20red%20fox&aspect_ratio=16:9#top",
            "//img.example.com/api/v1/live/generate?prompt=a+red+fox&aspect_ratio=16:9",
            "/api/v1/live/generate?prompt=a+red+fox&aspect_ratio=16:9",
        ] {
            assert_eq!(json_of(url), want, "{url}");
        }
    }

    #[test]
    fn a_public_urls_scope_becomes_the_items_scope() {
        assert_eq!(
            json_of("https://img.example.com/cdn/acme-blog/live/hero?prompt=a+red+fox&w=384&format=avif"),
            json!({"prompt": "a red fox", "w": "384", "format": "avif", "scope": "hero"})
        );
        assert_eq!(json_of("/cdn/acme-blog/live/hero?prompt=x"), json!({"prompt": "x", "scope": "hero"}));
        assert!(live_item("/cdn/acme/live/hero?prompt=x&scope=blog").is_err());
    }

    #[test]
    fn a_signed_urls_signature_is_dropped() {
        let signed =
            "/api/v1/live/generate?aspect_ratio=16%3A9&exp=1767225600&project=p1&prompt=a%20red%20fox\
                      &sig=syt0Xo9RyNc7dTLwQdU3g4Qq2Zjr-0u5rgh_iHJefiw";
        assert_eq!(json_of(signed), json!({"prompt": "a red fox", "aspect_ratio": "16:9"}));
    }

    #[test]
    fn other_urls_are_not_live() {
        for url in [
            "https://img.example.com/logo.png",
            "/api/v1/live/generate/x?prompt=a",
            "/api/v1/live/regenerate?prompt=a",
            "/cdn/acme/live/?prompt=a",
            "/cdn/acme/live/a/b?prompt=a",
            "api/v1/live/generate?prompt=a",
            "data:image/png;base64,AAAA",
            "https://img.example.com?x=/api/v1/live/generate",
        ] {
            assert_eq!(live_item(url), Ok(None), "{url}");
        }
    }

    #[test]
    fn a_query_the_service_would_refuse_whole_is_an_error() {
        assert!(live_item("/api/v1/live/generate?prompt=%zz").is_err());
        assert!(live_item("/api/v1/live/generate?prompt=%ff").is_err());
        assert!(live_item("/api/v1/live/generate?prompt=a&prompt=b").is_err());
    }
}
