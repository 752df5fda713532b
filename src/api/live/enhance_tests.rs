//! `enhance=true` over fakes: once per cache key, stored, said in a header,
//! and a failing text model falls back to the prompt as given.

use crate::api::fakes::{body, live_request, request, World};
use crate::api::run;
use crate::core::http::routes::Method;

#[test]
fn ten_concurrent_identical_requests_make_one_text_call_and_one_image_call() {
    let w = World::new();
    let ctx = w.ctx();
    let requests =
        (0..10).map(|_| live_request("prompt=a+fox&enhance=true", &[("x-api-key", &w.alpha)], false));
    let replies = w.block_on(futures::future::join_all(requests.map(|r| run(&ctx, r))));
    assert!(replies.iter().all(|r| r.as_ref().is_ok_and(|r| r.status == 200)));
    assert_eq!((w.provider.text_calls.get(), w.provider.calls.get()), (1, 1));
    let miss = replies.iter().flatten().find(|r| r.header("x-cache-status") == Some("MISS")).unwrap();
    assert_eq!(miss.header("x-prompt-enhancement"), Some("applied"));
    assert_eq!(body(miss), b"PNG:a fox, golden hour, 35mm:1:1", "the image came from the enhanced prompt");
    let hit = w.get("prompt=a+fox&enhance=true", Some(&w.alpha), false).unwrap();
    assert_eq!(
        (hit.header("x-cache-status"), hit.header("x-prompt-enhancement")),
        (Some("HIT"), Some("applied"))
    );
    // Without enhance it is another image.
    let plain = w.get("prompt=a+fox", Some(&w.alpha), false).unwrap();
    assert_eq!((plain.header("x-cache-status"), plain.header("x-prompt-enhancement")), (Some("MISS"), None));
    let list =
        w.request(request(Method::Get, "/api/v1/live/entries", &[("x-api-key", &w.alpha)], b"")).unwrap();
    let list: serde_json::Value = serde_json::from_slice(&body(&list)).unwrap();
    assert_eq!(list["entries"][1]["enhanced_prompt"], "a fox, golden hour, 35mm");
    assert!(list["entries"][0]["enhanced_prompt"].is_null());
}

#[test]
fn a_failing_text_model_falls_back_to_the_prompt_and_says_so() {
    let w = World::new();
    w.provider.text_fails.set(true);
    let r = w.get("prompt=a+fox&enhance=true", Some(&w.alpha), false).unwrap();
    assert_eq!((r.status, r.header("x-prompt-enhancement")), (200, Some("failed")));
    assert_eq!(body(&r), b"PNG:a fox:1:1");
    assert_eq!(w.get("prompt=a+fox&enhance=yes", Some(&w.alpha), false).err().unwrap().status(), 400);
}

#[test]
fn a_signed_url_can_carry_scope_and_enhance() {
    let w = World::new();
    w.request(request(Method::Post, "/api/v1/scopes", &[("x-api-key", &w.alpha)], br#"{"slug":"hero"}"#))
        .unwrap();
    let body_json = br#"{"prompt":"a fox","scope":"hero","enhance":true}"#;
    let signed =
        w.request(request(Method::Post, "/api/v1/live/sign", &[("x-api-key", &w.alpha)], body_json)).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&body(&signed)).unwrap();
    let path = doc["path"].as_str().unwrap();
    assert!(path.contains("scope=hero") && path.contains("enhance=true"), "{path}");
    let r = w.get(path.split_once('?').unwrap().1, None, false).unwrap();
    assert_eq!((r.header("x-scope"), r.header("x-prompt-enhancement")), (Some("hero"), Some("applied")));
}
