//! The admin API: projects and their keys.

use crate::support::host::{standard_vars, Host, ADMIN_TOKEN};
use crate::support::{enc, gemini::Gemini, http::send, s3_endpoint, unique, World};

pub fn projects_are_created_by_the_admin_only() {
    let w = World::new();
    let url = w.host.url("/api/v1/projects");
    let body = br#"{"name":"shop"}"#;
    for auth in ["", "Bearer wrong-token", ADMIN_TOKEN] {
        let headers: Vec<(&str, &str)> = if auth.is_empty() { vec![] } else { vec![("authorization", auth)] };
        let r = send("POST", &url, &headers, body);
        assert_eq!(r.status, 401, "authorization {auth:?}");
        assert_eq!(r.error_code(), "unauthorized");
    }
    assert!(w.host.kv_keys("project:").is_empty());
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    for bad in [&b"{}"[..], b"not json", br#"{"name":""}"#, br#"{"name":"x","extra":1}"#] {
        let r = send("POST", &url, &[("authorization", &bearer)], bad);
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(bad));
    }
    let r = send("POST", &url, &[("authorization", &bearer)], body);
    assert_eq!(r.status, 201);
    let created = r.json();
    let id = created["project_id"].as_str().unwrap();
    let key = created["api_key"].as_str().unwrap();
    assert_eq!(created["name"], "shop");
    assert!(key.starts_with("bl_"));
    assert_eq!(w.host.kv_keys("project:"), vec![format!("project:{id}")]);
    // The new key works at once.
    let live = w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(&unique("fox"))), key);
    assert_eq!(live.status, 200);
}

pub fn api_keys_are_stored_only_as_hashes() {
    let w = World::new();
    let key = w.host.create_project("hashed");
    let db = std::fs::read(w.host.state.path().join("sqlite_key_value.db")).unwrap();
    let wal = std::fs::read(w.host.state.path().join("sqlite_key_value.db-wal")).unwrap_or_default();
    let needle = key.as_bytes();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(needle.len()).any(|win| win == needle), "the plain API key is not stored");
    }
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert!(w.host.kv_get(&format!("apikey:{hash}")).is_some());
}

pub fn admin_api_is_disabled_without_a_token() {
    let gemini = Gemini::start();
    let vars: Vec<_> =
        standard_vars(s3_endpoint(), &gemini.url).into_iter().filter(|(k, _)| k != "admin_token").collect();
    let host = Host::start(&vars);
    let r = send(
        "POST",
        &host.url("/api/v1/projects"),
        &[("authorization", "Bearer anything")],
        br#"{"name":"x"}"#,
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), "forbidden");
    assert!(host.kv_keys("project:").is_empty());
}
