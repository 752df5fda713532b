//! The live endpoint's MISS/HIT behaviour, checked through HTTP, S3 and KV.

use crate::support::{enc, http::send, s3, s3_endpoint, unique, World};

fn live(prompt: &str, extra: &str) -> String {
    format!("/api/v1/live/generate?prompt={}{extra}", enc(prompt))
}

pub fn miss_then_hit_serves_identical_bytes_and_headers() {
    let w = World::new();
    let key = w.host.create_project("shop");
    let prompt = unique("a red fox in the snow");
    let miss = w.host.get(&live(&prompt, "&aspect_ratio=16:9"), &key);
    assert_eq!(miss.status, 200, "{}", String::from_utf8_lossy(&miss.body));
    assert_eq!(miss.header("x-cache-status"), Some("MISS"));
    assert_eq!(miss.header("content-type"), Some("image/png"));
    assert_eq!(miss.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(miss.header("content-length"), Some(miss.body.len().to_string().as_str()));
    assert!(miss.header("x-generation-id").is_some_and(|v| v.len() == 36));
    assert!(miss.header("x-image-id").is_some_and(|v| v.len() == 36));
    assert!(miss.header("etag").is_some_and(|v| v.starts_with('"')));
    assert_eq!(miss.header("x-cache-hit-count"), None);
    assert_eq!(&miss.body[1..4], b"PNG");

    // Surrounding whitespace is not part of the key: same entry.
    let hit = w.host.get(&live(&format!("  {prompt} "), "&aspect_ratio=16:9"), &key);
    assert_eq!(hit.status, 200);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(hit.header("x-cache-hit-count"), Some("1"));
    assert_eq!(hit.body, miss.body);
    for h in ["etag", "x-image-id", "content-type", "content-length", "cache-control"] {
        assert_eq!(hit.header(h), miss.header(h), "header {h}");
    }
    assert_eq!(hit.header("x-generation-id"), None);
    assert_eq!(w.gemini.calls(), 1, "two identical requests, one generation");
    let third = w.host.get(&live(&prompt, "&aspect_ratio=16:9"), &key);
    assert_eq!(third.header("x-cache-hit-count"), Some("2"));
    assert_eq!(w.gemini.calls(), 1);

    // The provider got the real wire format.
    let sent = w.gemini.last_request().unwrap();
    assert_eq!(sent["contents"][0]["parts"][0]["text"], prompt.as_str());
    assert_eq!(sent["generationConfig"]["imageConfig"]["aspectRatio"], "16:9");

    // The entry in KV points at the object in S3, which holds the same bytes.
    let entries = w.host.kv_keys("live:");
    assert_eq!(entries.len(), 1);
    let entry: serde_json::Value = serde_json::from_slice(&w.host.kv_get(&entries[0]).unwrap()).unwrap();
    assert_eq!(entry["image_id"], miss.header("x-image-id").unwrap());
    assert_eq!(entry["size"], miss.body.len());
    assert_eq!(entry["prompt"], prompt.as_str());
    let object_key = entry["object_key"].as_str().unwrap();
    assert_eq!(s3::get(s3_endpoint(), object_key).as_deref(), Some(miss.body.as_slice()));
}

pub fn another_aspect_ratio_is_another_entry() {
    let w = World::new();
    let key = w.host.create_project("ratios");
    let prompt = unique("a lighthouse");
    let square = w.host.get(&live(&prompt, ""), &key);
    let wide = w.host.get(&live(&prompt, "&aspect_ratio=21:9"), &key);
    let square_again = w.host.get(&live(&prompt, "&aspect_ratio=1:1"), &key);
    assert_eq!(square.header("x-cache-status"), Some("MISS"));
    assert_eq!(wide.header("x-cache-status"), Some("MISS"));
    assert_eq!(square_again.header("x-cache-status"), Some("HIT"), "1:1 is the default");
    assert_ne!(square.body, wide.body);
    assert_eq!(w.gemini.calls(), 2);
    assert_eq!(w.host.kv_keys("live:").len(), 2);
}

pub fn projects_never_see_each_others_entries() {
    let w = World::new();
    let a = w.host.create_project("a");
    let b = w.host.create_project("b");
    let prompt = unique("a shared prompt");
    let from_a = w.host.get(&live(&prompt, ""), &a);
    let from_b = w.host.get(&live(&prompt, ""), &b);
    assert_eq!(from_a.header("x-cache-status"), Some("MISS"));
    assert_eq!(from_b.header("x-cache-status"), Some("MISS"), "B must not get A's entry");
    assert_ne!(from_a.header("x-image-id"), from_b.header("x-image-id"));
    assert_eq!(w.gemini.calls(), 2);
    let again_a = w.host.get(&live(&prompt, ""), &a);
    assert_eq!(again_a.header("x-image-id"), from_a.header("x-image-id"));
    assert_eq!(again_a.header("x-cache-hit-count"), Some("1"), "B's hit did not count for A");
}

pub fn a_restarted_host_keeps_the_cache() {
    let w = World::new();
    let key = w.host.create_project("durable");
    let prompt = unique("a castle");
    let miss = w.host.get(&live(&prompt, ""), &key);
    assert_eq!(miss.header("x-cache-status"), Some("MISS"));
    let host = w.host.restart();
    let hit = host.get(&live(&prompt, ""), &key);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"), "the API key and the entry survive a restart");
    assert_eq!(hit.body, miss.body);
    assert_eq!(w.gemini.calls(), 1);
}

pub fn head_reports_without_generating() {
    let w = World::new();
    let key = w.host.create_project("head");
    let url = w.host.url(&live(&unique("a boat"), ""));
    let before = send("HEAD", &url, &[("x-api-key", &key)], b"");
    assert_eq!(before.status, 404);
    assert_eq!(before.header("x-cache-status"), Some("MISS"));
    assert_eq!(w.gemini.calls(), 0, "HEAD never generates");
    let miss = send("GET", &url, &[("x-api-key", &key)], b"");
    let head = send("HEAD", &url, &[("x-api-key", &key)], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), miss.header("etag"));
    assert_eq!(head.header("content-length"), Some(miss.body.len().to_string().as_str()));
    assert_eq!(w.gemini.calls(), 1);
}

pub fn a_vanished_object_is_regenerated() {
    let w = World::new();
    let key = w.host.create_project("heal");
    let prompt = unique("a bridge");
    w.host.get(&live(&prompt, ""), &key);
    let entries = w.host.kv_keys("live:");
    let entry: serde_json::Value = serde_json::from_slice(&w.host.kv_get(&entries[0]).unwrap()).unwrap();
    s3::delete(s3_endpoint(), entry["object_key"].as_str().unwrap());
    let again = w.host.get(&live(&prompt, ""), &key);
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-cache-status"), Some("MISS"));
    assert_eq!(w.gemini.calls(), 2);
    let hit = w.host.get(&live(&prompt, ""), &key);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(hit.body, again.body);
}
