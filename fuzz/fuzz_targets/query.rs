//! Query parsing and canonicalisation: any bytes as a live URL query must give
//! a value or a clean error, never a panic; an accepted query has a trimmed,
//! non-empty prompt and a stable cache key; an accepted variant has a ladder
//! width and a suffix that cannot spell another key.
#![no_main]

use banatie_core as core;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    let Ok(raw) = core::http::request::parse_query(query) else { return };
    if let Ok(request) = core::http::request::validate(&raw, 2000) {
        assert!(!request.prompt.is_empty());
        assert_eq!(request.prompt.trim(), request.prompt);
        let a = core::decide::cache_key::hash(&request, "gemini", "m");
        assert_eq!(a, core::decide::cache_key::hash(&request, "gemini", "m"));
        assert_eq!(a.len(), 64);
    }
    let ladder = core::variant::DEFAULT_WIDTHS;
    // Both settings of `variant_qualities`: none (q is the format's default)
    // and a list (q snaps to one of them).
    let qualities: &[u8] = if data.len().is_multiple_of(2) { &[] } else { &[50, 80] };
    if let Ok(Some(asked)) = core::variant::parse(&raw.pairs, &ladder, qualities) {
        assert!(asked.width.is_none_or(|w| ladder.contains(&w)));
        assert!(asked.quality.is_none_or(|q| qualities.contains(&q)), "{:?}", asked.quality);
        let suffix = asked.resolve(Some(query)).suffix();
        assert!(!suffix.is_empty() && suffix.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'), "{suffix}");
        // Every key the component can build is spelled for wasmCloud 2's
        // stores and read back as itself.
        let key = core::stored::keys::entry("p", &core::stored::keys::variant_hash("h", &suffix));
        let stored = core::stored::platform::Flavour::WasmCloud2.store_key(&key);
        assert!(stored.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)), "{stored}");
        assert_eq!(core::stored::platform::Flavour::WasmCloud2.logical_key(&stored).as_deref(), Some(key.as_str()));
    }
});
