//! Public embeddable URLs: signed links, budgets, stats, purge, rotation.

use crate::support::http::send;
use crate::support::sign::{now, signed_path};
use crate::support::{enc, s3, s3_endpoint, unique, World};

fn sign_via_api(w: &World, key: &str, body: &str) -> String {
    let r = send("POST", &w.host.url("/api/v1/live/sign"), &[("x-api-key", key)], body.as_bytes());
    assert_eq!(r.status, 200, "sign: {}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let path = v["path"].as_str().unwrap().to_string();
    assert_eq!(v["url"].as_str().unwrap(), w.host.url(&path), "the url is absolute, on this host");
    path
}

fn anonymous(w: &World, path: &str) -> crate::support::http::Reply {
    send("GET", &w.host.url(path), &[], b"")
}

pub fn a_signed_url_needs_no_key_and_is_cached_like_any_other() {
    let w = World::new();
    let key = w.host.create_project("public");
    let prompt = unique("a red fox");
    let body = format!(r#"{{"prompt":"{prompt}","aspect_ratio":"16:9","lifetime_seconds":3600}}"#);
    let path = sign_via_api(&w, &key, &body);
    assert!(path.contains("exp=") && path.contains("sig=") && !path.contains(&key));
    let miss = anonymous(&w, &path);
    assert_eq!(miss.status, 200, "{}", String::from_utf8_lossy(&miss.body));
    assert_eq!(miss.header("x-cache-status"), Some("MISS"));
    let hit = anonymous(&w, &path);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    // The signed URL and the keyed URL are the same cache entry.
    let keyed = w.host.get(&format!("/api/v1/live/generate?prompt={}&aspect_ratio=16:9", enc(&prompt)), &key);
    assert_eq!(keyed.header("x-cache-status"), Some("HIT"));
    assert_eq!(keyed.body, miss.body);
    assert_eq!(w.gemini.calls(), 1);
}

pub fn changing_any_character_of_a_signed_query_is_403() {
    let w = World::new();
    let key = w.host.create_project("tamper");
    let path = sign_via_api(&w, &key, r#"{"prompt":"a red fox","lifetime_seconds":600}"#);
    assert_eq!(anonymous(&w, &path).status, 200);
    let (route, query) = path.split_once('?').unwrap();
    for (i, c) in query.char_indices() {
        let replacement = if c == 'Z' { 'Y' } else { 'Z' };
        let tampered = format!("{route}?{}{replacement}{}", &query[..i], &query[i + c.len_utf8()..]);
        let r = anonymous(&w, &tampered);
        assert_eq!(r.status, 403, "changed char {i} ({c:?}): {tampered}");
        assert_eq!(r.error_code(), "invalid_signature");
    }
    assert_eq!(w.gemini.calls(), 1, "no tampered URL generated anything");
}

pub fn the_signature_tamper_matrix_is_403() {
    let w = World::new();
    let a = w.host.create_project_with(r#"{"name":"a"}"#);
    let b = w.host.create_project_with(r#"{"name":"b"}"#);
    let prompt = unique("a tower");
    let exp = (now() + 600).to_string();
    let good = [
        ("prompt", prompt.as_str()),
        ("aspect_ratio", "1:1"),
        ("project", a.id.as_str()),
        ("exp", exp.as_str()),
    ];
    let url = signed_path(&a.signing_secret, &good);
    assert_eq!(anonymous(&w, &url).status, 200, "the test's own signer matches the documented algorithm");
    let expired = (now() - 5).to_string();
    let mut cases: Vec<(&str, String)> = vec![
        ("prompt changed", url.replace("a%20tower", "a%20towel")),
        ("parameter added", format!("{url}&seed=1")),
        ("parameter removed", url.replace(&format!("exp={exp}&"), "")),
        ("aspect ratio changed", url.replace("aspect_ratio=1%3A1", "aspect_ratio=16%3A9")),
        ("signature missing", url.split("&sig=").next().unwrap().to_string()),
        ("signature truncated", url[..url.len() - 3].to_string()),
        ("signature empty", format!("{}&sig=", url.split("&sig=").next().unwrap())),
        ("another project's id", url.replace(&a.id, &b.id)),
        ("another project's secret", signed_path(&b.signing_secret, &good)),
    ];
    let stale = [
        ("prompt", prompt.as_str()),
        ("aspect_ratio", "1:1"),
        ("project", a.id.as_str()),
        ("exp", expired.as_str()),
    ];
    cases.push(("expired", signed_path(&a.signing_secret, &stale)));
    let forged_for_b = [("prompt", prompt.as_str()), ("aspect_ratio", "1:1"), ("project", b.id.as_str())];
    cases.push(("signed with A's secret for B", signed_path(&a.signing_secret, &forged_for_b)));
    for (label, case) in &cases {
        let r = anonymous(&w, case);
        assert_eq!(r.status, 403, "{label}: {case}");
        assert_eq!(r.error_code(), "invalid_signature", "{label}");
    }
    assert_eq!(w.gemini.calls(), 1);
    assert_eq!(w.host.kv_keys("live:").len(), 1);
}

pub fn the_budget_refuses_misses_with_429_but_serves_hits() {
    let w = World::new();
    let p = w.host.create_project_with(r#"{"name":"small","generations_per_hour":2}"#);
    let url = |p: &str| format!("/api/v1/live/generate?prompt={}", enc(p));
    let (one, two, three) = (unique("one"), unique("two"), unique("three"));
    assert_eq!(w.host.get(&url(&one), &p.api_key).status, 200);
    assert_eq!(w.host.get(&url(&two), &p.api_key).status, 200);
    let refused = w.host.get(&url(&three), &p.api_key);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.error_code(), "budget_exceeded");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));
    let hit = w.host.get(&url(&one), &p.api_key);
    assert_eq!((hit.status, hit.header("x-cache-status")), (200, Some("HIT")));
    assert_eq!(w.gemini.calls(), 2);
    let budget = &w.host.stats(&p.api_key)["budget"];
    assert_eq!((budget["limit"].as_u64(), budget["used"].as_u64()), (Some(2), Some(2)));
    assert!(budget["resets_at"].as_u64().unwrap() > now());
}

pub fn stats_are_exact_after_concurrent_hits() {
    let w = World::new();
    let key = w.host.create_project("busy");
    let prompts: Vec<String> = (0..3).map(|i| unique(&format!("picture {i}"))).collect();
    let mut bytes = 0;
    for p in &prompts {
        let r = w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(p)), &key);
        assert_eq!(r.header("x-cache-status"), Some("MISS"));
        bytes += r.body.len();
    }
    std::thread::scope(|scope| {
        for i in 0..40 {
            let (w, key, prompt) = (&w, &key, &prompts[i % 3]);
            scope.spawn(move || {
                let r = w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(prompt)), key);
                assert_eq!(r.header("x-cache-status"), Some("HIT"));
            });
        }
    });
    let s = w.host.stats(&key);
    assert_eq!(s["hits"], 40);
    assert_eq!(s["misses"], 3);
    assert_eq!(s["generations"], 3);
    assert_eq!(s["entries"], 3);
    assert_eq!(s["bytes_stored"], bytes);
    assert_eq!(s["hit_ratio"], 0.9302);
    assert_eq!(s["budget"]["used"], 3);
    // Another project sees only its own figures.
    let other = w.host.create_project("quiet");
    let o = w.host.stats(&other);
    assert_eq!((o["hits"].as_i64(), o["entries"].as_i64()), (Some(0), Some(0)));
}

pub fn purge_removes_the_entry_and_the_object() {
    let w = World::new();
    let key = w.host.create_project("purge");
    let other = w.host.create_project("not-mine");
    let q = format!("/api/v1/live/generate?prompt={}&aspect_ratio=4:3", enc(&unique("a ship")));
    let first = w.host.get(&q, &key);
    let entry_key = w.host.kv_keys("live:")[0].clone();
    let entry: serde_json::Value = serde_json::from_slice(&w.host.kv_get(&entry_key).unwrap()).unwrap();
    let object = entry["object_key"].as_str().unwrap().to_string();
    assert!(s3::get(s3_endpoint(), &object).is_some());

    let not_mine = send("DELETE", &w.host.url(&q), &[("x-api-key", &other)], b"");
    assert_eq!(not_mine.status, 404, "another project cannot purge it");
    assert!(s3::get(s3_endpoint(), &object).is_some());

    let purged = send("DELETE", &w.host.url(&q), &[("x-api-key", &key)], b"");
    assert_eq!(purged.status, 204);
    assert!(purged.body.is_empty());
    assert!(w.host.kv_get(&entry_key).is_none());
    assert!(s3::get(s3_endpoint(), &object).is_none(), "the object is gone from the bucket");
    assert_eq!(send("DELETE", &w.host.url(&q), &[("x-api-key", &key)], b"").status, 404);
    let s = w.host.stats(&key);
    assert_eq!((s["entries"].as_i64(), s["bytes_stored"].as_i64()), (Some(0), Some(0)));

    let again = w.host.get(&q, &key);
    assert_eq!(again.header("x-cache-status"), Some("MISS"));
    assert_ne!(again.header("x-image-id"), first.header("x-image-id"));
    assert_eq!(w.gemini.calls(), 2);
}

pub fn rotation_invalidates_the_old_key_and_old_signatures() {
    let w = World::new();
    let p = w.host.create_project_with(r#"{"name":"rotating"}"#);
    let prompt = unique("a kite");
    let old_signed = sign_via_api(&w, &p.api_key, &format!(r#"{{"prompt":"{prompt}"}}"#));
    assert_eq!(anonymous(&w, &old_signed).status, 200);

    let r = w.host.admin("POST", &format!("/api/v1/projects/{}/rotate", p.id), "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let rotated = r.json();
    let new_key = rotated["api_key"].as_str().unwrap();
    assert_ne!(new_key, p.api_key);
    assert_ne!(rotated["signing_secret"].as_str().unwrap(), p.signing_secret);

    let url = format!("/api/v1/live/generate?prompt={}", enc(&prompt));
    assert_eq!(w.host.get(&url, &p.api_key).status, 401, "the old key stops working at once");
    assert_eq!(anonymous(&w, &old_signed).status, 403, "old signatures stop working at once");
    let hit = w.host.get(&url, new_key);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"), "the cache survives rotation");
    let new_signed = sign_via_api(&w, new_key, &format!(r#"{{"prompt":"{prompt}"}}"#));
    assert_eq!(anonymous(&w, &new_signed).status, 200);

    let unknown = w.host.admin("POST", "/api/v1/projects/no-such-project/rotate", "");
    assert_eq!(unknown.status, 404);
    let unauthorized = send("POST", &w.host.url(&format!("/api/v1/projects/{}/rotate", p.id)), &[], b"");
    assert_eq!(unauthorized.status, 401);
}
