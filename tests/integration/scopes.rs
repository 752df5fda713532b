//! Scopes and hand-written public URLs through the real runtime, Garage and
//! a provider double.

use crate::support::http::send;
use crate::support::{enc, unique, World};

fn scope_api(w: &World, key: &str, method: &str, path: &str, body: &str) -> u16 {
    send(method, &w.host.url(path), &[("x-api-key", key)], body.as_bytes()).status
}

pub fn public_scope_urls_work_by_hand_and_scope_limits_stop_only_misses() {
    let w = World::new();
    let name = unique("Acme Blog");
    let r = w.host.admin("POST", "/api/v1/projects", &format!(r#"{{"name":"{name}"}}"#));
    assert_eq!(r.status, 201);
    let (key, slug) =
        (r.json()["api_key"].as_str().unwrap().to_string(), r.json()["slug"].as_str().unwrap().to_string());
    assert!(slug.starts_with("acme-blog-"), "{slug}");
    assert_eq!(
        scope_api(
            &w,
            &key,
            "POST",
            "/api/v1/scopes",
            r#"{"slug":"hero","public":true,"generations_limit":2}"#
        ),
        201
    );
    assert_eq!(scope_api(&w, &key, "POST", "/api/v1/scopes", r#"{"slug":"drafts"}"#), 201);

    // Written by hand, no key, no signature.
    let url = |scope: &str, prompt: &str| {
        w.host.url(&format!("/cdn/{slug}/live/{scope}?prompt={}&aspect_ratio=16:9", enc(prompt)))
    };
    let fox = unique("a red fox");
    let miss = send("GET", &url("hero", &fox), &[], b"");
    assert_eq!(miss.status, 200, "{}", String::from_utf8_lossy(&miss.body));
    assert_eq!((miss.header("x-cache-status"), miss.header("x-scope")), (Some("MISS"), Some("hero")));
    let hit = send("GET", &url("hero", &fox), &[], b"");
    assert_eq!((hit.header("x-cache-status"), hit.body == miss.body), (Some("HIT"), true));

    // A scope that is not public needs a key or a signature.
    let private = send("GET", &url("drafts", &fox), &[], b"");
    assert_eq!((private.status, private.error_code().as_str()), (401, "unauthorized"));

    // generations_limit 2: a second MISS, then 429 for new prompts; HITs go on.
    assert_eq!(send("GET", &url("hero", &unique("a blue whale")), &[], b"").status, 200);
    let refused = send("GET", &url("hero", &unique("a third one")), &[], b"");
    assert_eq!((refused.status, refused.error_code().as_str()), (429, "scope_closed"));
    assert_eq!(send("GET", &url("hero", &fox), &[], b"").header("x-cache-status"), Some("HIT"));
    assert_eq!(w.gemini.calls(), 2);

    // Switched off: 429 at once, even under the limit.
    assert_eq!(scope_api(&w, &key, "PATCH", "/api/v1/scopes/hero", r#"{"generations_limit":50}"#), 200);
    assert_eq!(
        scope_api(&w, &key, "PATCH", "/api/v1/scopes/hero", r#"{"allow_new_generations":false}"#),
        200
    );
    let off = send("GET", &url("hero", &unique("while off")), &[], b"");
    assert_eq!((off.status, off.error_code().as_str()), (429, "scope_closed"));
    assert_eq!(send("GET", &url("hero", &fox), &[], b"").header("x-cache-status"), Some("HIT"));
    assert_eq!(w.gemini.calls(), 2);
    let doc = send("GET", &w.host.url("/api/v1/scopes/hero"), &[("x-api-key", &key)], b"").json();
    assert_eq!(
        (doc["generations_used"].as_i64(), doc["allow_new_generations"].as_bool()),
        (Some(2), Some(false))
    );
}

pub fn the_entries_list_matches_the_hit_counts_clients_saw() {
    let w = World::new();
    let key = w.host.create_project("entries");
    let prompts: Vec<String> = (0..3).map(|i| unique(&format!("entry {i}"))).collect();
    let url = |p: &str| w.host.url(&format!("/api/v1/live/generate?prompt={}", enc(p)));
    let mut seen = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let mut count = None;
        for _ in 0..=i {
            let r = send("GET", &url(p), &[("x-api-key", &key)], b"");
            count = r.header("x-cache-hit-count").map(str::to_string);
        }
        seen.push(count.map_or(0, |c| c.parse::<i64>().unwrap()));
    }
    let list = send("GET", &w.host.url("/api/v1/live/entries?limit=10"), &[("x-api-key", &key)], b"").json();
    let entries = list["entries"].as_array().unwrap();
    let listed: Vec<(String, i64)> = entries
        .iter()
        .map(|e| (e["prompt"].as_str().unwrap().to_string(), e["hit_count"].as_i64().unwrap()))
        .collect();
    let expected: Vec<(String, i64)> = prompts.iter().cloned().zip(seen).rev().collect();
    assert_eq!(listed, expected, "newest first, hit counts as the clients saw them");
    assert!(entries[0]["last_accessed_at"].as_u64().is_some() && entries[2]["last_accessed_at"].is_null());
}

/// Ten identical requests at once, each provider call slow enough (0.5 s)
/// that they all overlap: one of them enhances and generates (the MISS),
/// the nine others wait for it and answer its image (coalesced HITs).
pub fn enhance_makes_one_text_call_and_one_image_call_for_ten_identical_requests() {
    let w = World::new();
    w.gemini.set_delay(500);
    let key = w.host.create_project("enhance");
    let url = w.host.url(&format!("/api/v1/live/generate?prompt={}&enhance=true", enc(&unique("a fox"))));
    let replies: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..10).map(|_| s.spawn(|| send("GET", &url, &[("x-api-key", &key)], b""))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        replies.iter().all(|r| r.status == 200),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(replies.iter().all(|r| r.header("x-prompt-enhancement") == Some("applied")));
    assert_eq!(w.gemini.calls_to("/gemini-2.5-flash:generateContent"), 1, "one text call");
    assert_eq!(w.gemini.calls_to("/gemini-2.5-flash-image:generateContent"), 1, "one image call");
    let how: Vec<_> =
        replies.iter().map(|r| (r.header("x-cache-status"), r.header("x-cache-coalesced"))).collect();
    assert_eq!(how.iter().filter(|h| **h == (Some("MISS"), None)).count(), 1, "one made it: {how:?}");
    assert_eq!(
        how.iter().filter(|h| **h == (Some("HIT"), Some("true"))).count(),
        9,
        "nine waited for it: {how:?}"
    );
    assert!(replies.iter().all(|r| r.body == replies[0].body), "one image");
    let list = send("GET", &w.host.url("/api/v1/live/entries"), &[("x-api-key", &key)], b"").json();
    let enhanced = list["entries"][0]["enhanced_prompt"].as_str().unwrap();
    assert!(enhanced.ends_with(", cinematic light, high detail"), "{enhanced}");
}
