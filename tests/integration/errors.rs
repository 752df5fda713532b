//! Every error is a JSON body with the right status, and writes nothing.

use crate::support::gemini::Behavior;
use crate::support::host::{standard_vars, Host};
use crate::support::{enc, gemini::Gemini, http::send, s3, s3_endpoint, unique, World};

/// Nothing for this host's projects in KV or S3.
fn assert_nothing_written(w: &World) {
    assert!(w.host.kv_keys("live:").is_empty(), "no cache entry");
    for project in w.host.kv_keys("project:") {
        let id = project.trim_start_matches("project:");
        assert!(s3::list(s3_endpoint(), &format!("live/{id}/")).unwrap().is_empty(), "no object");
    }
}

pub fn bad_input_is_400_and_writes_nothing() {
    let w = World::new();
    let key = w.host.create_project("bad-input");
    let long = "x".repeat(2001);
    let cases = [
        "/api/v1/live/generate".to_string(),
        "/api/v1/live/generate?prompt=".to_string(),
        "/api/v1/live/generate?prompt=%20%20".to_string(),
        format!("/api/v1/live/generate?prompt={long}"),
        "/api/v1/live/generate?prompt=fox&aspect_ratio=7:5".to_string(),
        "/api/v1/live/generate?prompt=fox&aspect_ratio=".to_string(),
        "/api/v1/live/generate?prompt=fox&size=large".to_string(),
        "/api/v1/live/generate?prompt=fox&prompt=cat".to_string(),
        "/api/v1/live/generate?prompt=%E2%28%A1".to_string(),
        "/api/v1/live/generate?prompt=%zz".to_string(),
    ];
    for case in &cases {
        let r = w.host.get(case, &key);
        assert_eq!(r.status, 400, "{case}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.error_code(), "bad_request", "{case}");
    }
    // Exactly max_prompt_length characters is fine.
    let ok = w.host.get(&format!("/api/v1/live/generate?prompt={}", "y".repeat(2000)), &key);
    assert_eq!(ok.status, 200);
    w.host.get(&format!("/api/v1/live/generate?prompt={}", "y".repeat(2000)), &key);
    assert_eq!(w.gemini.calls(), 1, "no bad request reached the provider");
    assert_eq!(w.host.kv_keys("live:").len(), 1);
}

pub fn missing_or_unknown_key_is_401() {
    let w = World::new();
    let url = w.host.url(&format!("/api/v1/live/generate?prompt={}", enc(&unique("fox"))));
    for headers in [vec![], vec![("x-api-key", "bl_not-a-real-key")], vec![("x-api-key", "garbage")]] {
        let r = send("GET", &url, &headers, b"");
        assert_eq!(r.status, 401);
        assert_eq!(r.error_code(), "unauthorized");
    }
    assert_eq!(w.gemini.calls(), 0);
    assert_nothing_written(&w);
}

pub fn unknown_route_is_404_and_wrong_method_is_405() {
    let w = World::new();
    let key = w.host.create_project("routes");
    for path in ["/", "/api/v1/live", "/api/v1/live/generate/extra", "/api/v2/live/generate?prompt=x"] {
        let r = w.host.get(path, &key);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.error_code(), "not_found");
    }
    for method in ["POST", "PUT", "PATCH", "OPTIONS"] {
        let r = send(method, &w.host.url("/api/v1/live/generate?prompt=fox"), &[("x-api-key", &key)], b"");
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.error_code(), "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET, HEAD, DELETE"));
    }
    let r = send("GET", &w.host.url("/api/v1/projects"), &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(w.gemini.calls(), 0);
}

pub fn provider_failure_is_502_and_writes_nothing() {
    let w = World::new();
    let key = w.host.create_project("provider-down");
    for behavior in [Behavior::Status(500), Behavior::Status(503), Behavior::NoImage] {
        w.gemini.set(behavior.clone());
        let r = w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(&unique("fox"))), &key);
        assert_eq!(r.status, 502, "{behavior:?}");
        assert_eq!(r.error_code(), "provider_error");
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            !text.contains("INTERNAL") && !text.contains(crate::support::gemini::API_KEY),
            "no internals leak: {text}"
        );
    }
    assert_nothing_written(&w);
    // Errors are not cached: the same prompt works once the provider recovers.
    w.gemini.set(Behavior::Image);
    let prompt = unique("fox");
    w.gemini.set(Behavior::Status(500));
    assert_eq!(w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(&prompt)), &key).status, 502);
    w.gemini.set(Behavior::Image);
    let r = w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(&prompt)), &key);
    assert_eq!(r.header("x-cache-status"), Some("MISS"));
}

pub fn refused_prompt_is_422_and_writes_nothing() {
    let w = World::new();
    let key = w.host.create_project("safety");
    w.gemini.set(Behavior::Refuse);
    let url = format!("/api/v1/live/generate?prompt={}", enc(&unique("something forbidden")));
    let r = w.host.get(&url, &key);
    assert_eq!(r.status, 422);
    assert_eq!(r.error_code(), "prompt_refused");
    assert_nothing_written(&w);
    // A refusal is not cached either: asked again, the provider is asked again.
    w.host.get(&url, &key);
    assert_eq!(w.gemini.calls(), 2);
}

pub fn unreachable_s3_is_502_and_writes_nothing() {
    let gemini = Gemini::start();
    // Held for the test and never listened on: refused, and nobody else's.
    let nothing = testkit::port::Reserved::new();
    let closed = format!("http://{}", nothing.addr());
    let host = Host::start(&standard_vars(&closed, &gemini.url));
    let key = host.create_project("no-s3");
    let r = host.get(&format!("/api/v1/live/generate?prompt={}", enc(&unique("fox"))), &key);
    assert_eq!(r.status, 502);
    assert_eq!(r.error_code(), "storage_error");
    assert_eq!(gemini.calls(), 1);
    assert!(host.kv_keys("live:").is_empty());
}
