//! Prompt policies over fakes, through the whole of `api`: set by the admin
//! (`PATCH /api/v1/projects/{id}`) and on a scope, a refused prompt is a 422
//! that calls no provider, stores nothing and costs the client one unit.

use crate::api::fakes::{body, request, World};
use crate::api::Reply;
use crate::core::http::routes::Method;
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::Error;

const ADMIN: &str = "Bearer adm";

fn world() -> World {
    let mut w = World::new();
    w.config.admin_token = Some(crate::core::config::Secret("adm".into()));
    w.config.client_misses_per_hour = 5;
    let mut p = Project::decode(&w.kv.map.borrow()[&keys::project("proj-a")]).unwrap();
    p.slug = Some("acme".into());
    w.kv.map.borrow_mut().insert(keys::project("proj-a"), p.encode());
    w.kv.map.borrow_mut().insert(keys::project_slug("acme"), b"proj-a".to_vec());
    w
}

fn patch_project(w: &World, body: &str) -> Result<Reply<Vec<u8>>, Error> {
    w.request(request(Method::Patch, "/api/v1/projects/proj-a", &[("authorization", ADMIN)], body.as_bytes()))
}

fn scope_api(w: &World, method: Method, path: &str, body: &str) -> Result<Reply<Vec<u8>>, Error> {
    w.request(request(method, path, &[("x-api-key", &w.alpha)], body.as_bytes()))
}

/// A public URL from one client address.
fn public(w: &World, query: &str) -> Result<Reply<Vec<u8>>, Error> {
    let client = [("spin-client-addr", "203.0.113.7:4000")];
    w.request(request(Method::Get, &format!("/cdn/acme/live/hero?{query}"), &client, b""))
}

fn json(r: &Reply<Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(&body(r)).unwrap()
}

#[track_caller]
fn refused(r: Result<Reply<Vec<u8>>, Error>, rule: &str) {
    let e = r.err().unwrap_or_else(|| panic!("not refused ({rule})"));
    assert_eq!((e.status(), e.code()), (422, "prompt_refused"), "{e:?}");
    assert!(e.public_message().contains(rule), "{}", e.public_message());
}

#[test]
fn a_denied_prompt_is_a_422_that_makes_and_stores_nothing() {
    let w = world();
    let r =
        patch_project(&w, r#"{"deny_terms":["Gore"],"deny_patterns":["\\bcelebrit(y|ies)\\b"]}"#).unwrap();
    assert_eq!(json(&r)["policy"]["deny_terms"], serde_json::json!(["Gore"]));
    refused(w.get("prompt=much+GORE", Some(&w.alpha), false), "deny_terms");
    refused(w.get("prompt=two+celebrities", Some(&w.alpha), false), "deny_patterns");
    assert_eq!((w.provider.calls.get(), w.entries(), w.store.objects.borrow().len()), (0, 0, 0));
    // A prompt the policy allows is generated; the other project is not held to it.
    assert_eq!(w.get("prompt=gorecki", Some(&w.alpha), false).unwrap().status, 200);
    assert_eq!(w.get("prompt=gore", Some(&w.beta), false).unwrap().status, 200);
    // Lifted, the prompt is generated.
    patch_project(&w, r#"{"deny_terms":[],"deny_patterns":[]}"#).unwrap();
    assert!(!w.kv.map.borrow().contains_key(&keys::policy("proj-a")), "an empty policy is removed");
    assert_eq!(w.get("prompt=much+GORE", Some(&w.alpha), false).unwrap().status, 200);
    assert_eq!(w.provider.calls.get(), 3);
}

#[test]
fn a_public_scope_generates_only_what_its_allow_list_and_templates_let_and_a_refusal_costs_a_unit() {
    let w = world();
    let scope =
        r#"{"slug":"hero","public":true,"allow_patterns":["^(a|an) (shoe|boot)\\b"],"templates_only":true}"#;
    let created = scope_api(&w, Method::Post, "/api/v1/scopes", scope).unwrap();
    assert_eq!(json(&created)["policy"]["templates_only"], true);
    let ok = public(&w, "prompt=a+boot&template=product").unwrap();
    assert_eq!((ok.status, ok.header("x-ratelimit-remaining")), (200, Some("4")));
    refused(public(&w, "prompt=a+hat&template=product"), "allow_patterns");
    refused(public(&w, "prompt=a+shoe"), "templates_only");
    assert_eq!(w.provider.calls.get(), 1);
    // Each refusal cost the client one unit of its five.
    let hit = public(&w, "prompt=a+boot&template=product").unwrap();
    assert_eq!((hit.header("x-cache-status"), hit.header("x-ratelimit-remaining")), (Some("HIT"), Some("2")));
    // The project's key is not held to a public scope's allow list.
    let keyed = w.get("prompt=a+hat&scope=hero", Some(&w.alpha), false).unwrap();
    assert_eq!(keyed.status, 200);
    // Over its allowance, a refused prompt is the allowance's 429.
    // (What the project made through its key is served on the public URL:
    // a policy judges new generations, not the cache.)
    assert_eq!(public(&w, "prompt=a+hat").unwrap().header("x-cache-status"), Some("HIT"));
    refused(public(&w, "prompt=a+cap"), "templates_only");
    refused(public(&w, "prompt=a+cap"), "templates_only");
    assert_eq!(public(&w, "prompt=a+cap").err().unwrap().status(), 429);
}

#[test]
fn an_enhanced_prompt_is_held_to_the_deny_lists() {
    let w = world();
    // The fakes' text model adds "golden hour, 35mm".
    patch_project(&w, r#"{"deny_terms":["golden hour"]}"#).unwrap();
    refused(w.get("prompt=a+fox&enhance=true", Some(&w.alpha), false), "deny_terms");
    assert_eq!((w.provider.text_calls.get(), w.provider.calls.get(), w.entries()), (1, 0, 0));
    assert_eq!(w.get("prompt=a+fox", Some(&w.alpha), false).unwrap().status, 200);
}

#[test]
fn a_bad_policy_is_a_400_naming_the_field_and_changes_nothing() {
    let w = world();
    patch_project(&w, r#"{"deny_terms":["gore"]}"#).unwrap();
    let before = w.kv.map.borrow().get(&keys::policy("proj-a")).cloned();
    let many: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
    let cases = [
        (r#"{"deny_terms":["fox"],"deny_patterns":["(unclosed"]}"#.to_string(), "deny_patterns"),
        (r#"{"allow_patterns":["a{1000}{1000}"]}"#.to_string(), "allow_patterns"),
        (serde_json::json!({ "deny_terms": many }).to_string(), "deny_terms"),
        (r#"{"deny_terms":["fox"],"budget":1}"#.to_string(), "budget"),
    ];
    for (body, field) in &cases {
        let e = patch_project(&w, body).err().unwrap();
        assert_eq!(e.status(), 400, "{field}");
        assert!(e.public_message().contains(field), "{field}: {}", e.public_message());
        let e = scope_api(&w, Method::Post, "/api/v1/scopes", &body.replacen('{', r#"{"slug":"s","#, 1));
        assert_eq!(e.err().unwrap().status(), 400, "scope {field}");
    }
    assert_eq!(w.kv.map.borrow().get(&keys::policy("proj-a")).cloned(), before);
    assert!(!w.kv.map.borrow().keys().any(|k| k.starts_with("scope")), "no scope was made");
    // The route is the admin's, and names a project that exists.
    let keyed = request(Method::Patch, "/api/v1/projects/proj-a", &[("x-api-key", &w.alpha)], b"{}");
    assert_eq!(w.request(keyed).err().unwrap().status(), 401);
    let none = request(Method::Patch, "/api/v1/projects/nope", &[("authorization", ADMIN)], b"{}");
    assert_eq!(w.request(none).err().unwrap().status(), 404);
}

fn moderated(fail_open: bool) -> World {
    let mut w = world();
    w.config.moderation = Some(crate::core::provider::moderation::Moderation {
        base_url: "http://m".into(),
        api_key: crate::core::config::Secret("sk".into()),
        model: "omni-moderation-latest".into(),
        fail_open,
        timeout_ms: 1000,
    });
    w
}

#[test]
fn a_flagged_prompt_is_a_422_with_its_categories_and_moderation_is_asked_once_per_key() {
    let w = moderated(false);
    for _ in 0..5 {
        let e = w.get("prompt=FLAGME+now", Some(&w.alpha), false).err().unwrap();
        assert_eq!(e, Error::Flagged(vec!["violence".into()]));
    }
    assert_eq!((w.provider.moderation_calls.get(), w.provider.calls.get(), w.entries()), (1, 0, 0));
    let body = body(&Reply::<Vec<u8>>::error(&Error::Flagged(vec!["violence".into()])));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "prompt_refused");
    assert_eq!(body["error"]["categories"], serde_json::json!(["violence"]));
    // A clean prompt is asked once too, then generated; a HIT asks nothing.
    assert_eq!(w.get("prompt=a+fox", Some(&w.alpha), false).unwrap().status, 200);
    assert_eq!(w.get("prompt=a+fox", Some(&w.alpha), false).unwrap().header("x-cache-status"), Some("HIT"));
    assert_eq!((w.provider.moderation_calls.get(), w.provider.calls.get()), (2, 1));
    // The signed or public client pays its unit for a flagged prompt, asked or remembered.
    scope_api(&w, Method::Post, "/api/v1/scopes", r#"{"slug":"hero","public":true}"#).unwrap();
    for _ in 0..2 {
        assert_eq!(public(&w, "prompt=FLAGME+here").err().unwrap().code(), "prompt_refused");
    }
    let next = public(&w, "prompt=an+owl").unwrap();
    assert_eq!(next.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(w.provider.moderation_calls.get(), 4);
}

#[test]
fn a_moderation_outage_is_a_503_when_closed_and_generates_when_open() {
    let w = moderated(false);
    w.provider.moderation_down.set(true);
    let e = w.get("prompt=a+fox", Some(&w.alpha), false).err().unwrap();
    assert_eq!((e.status(), e.code(), e.retry_after()), (503, "moderation_unavailable", Some(30)));
    assert_eq!((w.provider.calls.get(), w.entries()), (0, 0));
    // Back up: asked again (an outage is not a verdict), and generated.
    w.provider.moderation_down.set(false);
    assert_eq!(w.get("prompt=a+fox", Some(&w.alpha), false).unwrap().status, 200);
    assert_eq!(w.provider.moderation_calls.get(), 2);

    let w = moderated(true);
    w.provider.moderation_down.set(true);
    assert_eq!(w.get("prompt=a+fox", Some(&w.alpha), false).unwrap().status, 200);
    assert_eq!((w.provider.moderation_calls.get(), w.provider.calls.get()), (1, 1));
}
