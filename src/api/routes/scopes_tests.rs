//! Scopes and public URLs over fakes, through the whole of `api`.

use crate::api::fakes::{body, request, World};
use crate::api::Reply;
use crate::core::http::routes::Method;
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::Error;

fn json(r: &Reply<Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(&body(r)).unwrap()
}

fn scope_api(w: &World, method: Method, path: &str, body: &str) -> Result<Reply<Vec<u8>>, Error> {
    w.request(request(method, path, &[("x-api-key", &w.alpha)], body.as_bytes()))
}

fn public(w: &World, path_and_query: &str) -> Result<Reply<Vec<u8>>, Error> {
    w.request(request(Method::Get, path_and_query, &[], b""))
}

/// Give proj-a a slug (as a project created today has) and its index.
fn with_slug(w: &World, slug: &str, lazy: bool) {
    let mut p = Project::decode(&w.kv.map.borrow()[&keys::project("proj-a")]).unwrap();
    p.slug = Some(slug.into());
    p.lazy_scopes = lazy;
    w.kv.map.borrow_mut().insert(keys::project("proj-a"), p.encode());
    w.kv.map.borrow_mut().insert(keys::project_slug(slug), b"proj-a".to_vec());
}

#[test]
fn a_public_scope_serves_hand_written_urls_and_a_private_one_is_401() {
    let w = World::new();
    with_slug(&w, "acme", false);
    assert_eq!(
        scope_api(&w, Method::Post, "/api/v1/scopes", r#"{"slug":"hero","public":true}"#).unwrap().status,
        201
    );
    scope_api(&w, Method::Post, "/api/v1/scopes", r#"{"slug":"blog"}"#).unwrap();
    let miss = public(&w, "/cdn/acme/live/hero?prompt=a+red+fox&aspect_ratio=16:9").unwrap();
    assert_eq!((miss.header("x-cache-status"), miss.header("x-scope")), (Some("MISS"), Some("hero")));
    let hit = public(&w, "/cdn/proj-a/live/hero?prompt=a+red+fox&aspect_ratio=16:9").unwrap();
    assert_eq!(hit.header("x-cache-status"), Some("HIT"), "the project id works as its slug");
    let e = public(&w, "/cdn/acme/live/blog?prompt=a+red+fox").err().unwrap();
    assert_eq!(e.status(), 401);
    assert_eq!(public(&w, "/cdn/acme/live/nope?prompt=x").err().unwrap().status(), 401);
    assert_eq!(public(&w, "/cdn/nobody/live/hero?prompt=x").err().unwrap().status(), 404);
    assert_eq!(public(&w, "/cdn/acme/live/hero?prompt=x&scope=blog").err().unwrap().status(), 400);
    // The keyed URL of the same scope is the same entry; without a scope it is another.
    let keyed = w.get("prompt=a+red+fox&aspect_ratio=16:9&scope=hero", Some(&w.alpha), false).unwrap();
    assert_eq!(keyed.header("x-cache-status"), Some("HIT"));
    let unscoped = w.get("prompt=a+red+fox&aspect_ratio=16:9", Some(&w.alpha), false).unwrap();
    assert_eq!((unscoped.header("x-cache-status"), unscoped.header("x-scope")), (Some("MISS"), None));
}

#[test]
fn a_scopes_limit_and_switch_stop_misses_but_never_hits() {
    let w = World::new();
    scope_api(&w, Method::Post, "/api/v1/scopes", r#"{"slug":"hero","generations_limit":2}"#).unwrap();
    let get = |p: &str| w.get(&format!("prompt={p}&scope=hero"), Some(&w.alpha), false);
    get("one").unwrap();
    get("two").unwrap();
    let e = get("three").err().unwrap();
    assert_eq!((e.status(), e.code()), (429, "scope_closed"));
    assert!(e.public_message().contains("generations_limit"));
    assert_eq!(get("one").unwrap().header("x-cache-status"), Some("HIT"));
    assert_eq!(w.provider.calls.get(), 2);
    let doc = json(&scope_api(&w, Method::Get, "/api/v1/scopes/hero", "").unwrap());
    assert_eq!((doc["generations_used"].as_i64(), doc["generations_limit"].as_i64()), (Some(2), Some(2)));
    // Raise the limit, then switch new generations off: 429 at once.
    scope_api(&w, Method::Patch, "/api/v1/scopes/hero", r#"{"generations_limit":10}"#).unwrap();
    get("three").unwrap();
    scope_api(&w, Method::Patch, "/api/v1/scopes/hero", r#"{"allow_new_generations":false}"#).unwrap();
    assert!(get("four").err().unwrap().public_message().contains("switched off"));
    assert_eq!(get("two").unwrap().header("x-cache-status"), Some("HIT"));
    // A failed generation costs its unit (the provider was called).
    scope_api(&w, Method::Patch, "/api/v1/scopes/hero", r#"{"allow_new_generations":true}"#).unwrap();
    *w.provider.answer.borrow_mut() = Some(Error::Provider("down".into()));
    assert_eq!(get("five").err().unwrap().status(), 502);
    let doc = json(&scope_api(&w, Method::Get, "/api/v1/scopes/hero", "").unwrap());
    assert_eq!(doc["generations_used"].as_i64(), Some(4));
}

#[test]
fn scopes_are_listed_updated_deleted_and_created_lazily_when_allowed() {
    let w = World::new();
    let e = w.get("prompt=x&scope=later", Some(&w.alpha), false).err().unwrap();
    assert_eq!(e.status(), 404, "no lazy scopes unless the project allows them");
    with_slug(&w, "acme", true);
    let r = w.get("prompt=x&scope=later", Some(&w.alpha), false).unwrap();
    assert_eq!(r.header("x-scope"), Some("later"));
    scope_api(&w, Method::Post, "/api/v1/scopes", r#"{"slug":"hero"}"#).unwrap();
    let e = scope_api(&w, Method::Post, "/api/v1/scopes", r#"{"slug":"hero"}"#).err().unwrap();
    assert_eq!(e.status(), 409);
    let list = json(&scope_api(&w, Method::Get, "/api/v1/scopes", "").unwrap());
    let slugs: Vec<&str> =
        list["scopes"].as_array().unwrap().iter().map(|s| s["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["later", "hero"]);
    assert_eq!(scope_api(&w, Method::Delete, "/api/v1/scopes/hero", "").unwrap().status, 204);
    assert_eq!(scope_api(&w, Method::Get, "/api/v1/scopes/hero", "").err().unwrap().status(), 404);
    let list = json(&scope_api(&w, Method::Get, "/api/v1/scopes", "").unwrap());
    assert_eq!(list["scopes"].as_array().unwrap().len(), 1);
    // Another project sees none of them.
    let other = w.request(request(Method::Get, "/api/v1/scopes", &[("x-api-key", &w.beta)], b"")).unwrap();
    assert_eq!(json(&other)["scopes"].as_array().unwrap().len(), 0);
}

#[test]
fn regenerate_replaces_one_entry_with_a_new_image() {
    let w = World::new();
    let first = w.get("prompt=fox", Some(&w.alpha), false).unwrap();
    let regen = w
        .request(request(Method::Post, "/api/v1/live/regenerate?prompt=fox", &[("x-api-key", &w.alpha)], b""))
        .unwrap();
    assert_eq!(regen.header("x-cache-status"), Some("MISS"));
    assert_ne!(regen.header("x-image-id"), first.header("x-image-id"));
    let hit = w.get("prompt=fox", Some(&w.alpha), false).unwrap();
    assert_eq!(hit.header("x-image-id"), regen.header("x-image-id"));
    assert_eq!(w.store.objects.borrow().len(), 1, "the replaced object is deleted");
    assert_eq!(w.provider.calls.get(), 2);
}

#[test]
fn a_lazy_scope_is_stored_only_by_a_generation() {
    let w = World::new();
    with_slug(&w, "acme", true);
    let scope_row = || w.kv.map.borrow().contains_key(&keys::scope("proj-a", "later"));
    // HEAD of a new image in it: nothing written.
    let e = w.get("prompt=x&scope=later", Some(&w.alpha), true).err().unwrap();
    assert_eq!(e, Error::NotCached);
    assert!(!scope_row());
    // A MISS refused for a spent budget: nothing written either.
    let mut p = Project::decode(&w.kv.map.borrow()[&keys::project("proj-a")]).unwrap();
    p.generations_per_hour = 0;
    w.kv.map.borrow_mut().insert(keys::project("proj-a"), p.encode());
    let before = w.kv.map.borrow().clone();
    let e = w.get("prompt=x&scope=later", Some(&w.alpha), false).err().unwrap();
    assert_eq!(e.code(), "budget_exceeded");
    assert_eq!(*w.kv.map.borrow(), before, "a refused MISS changes nothing");
    // A generation stores it.
    p.generations_per_hour = 10;
    w.kv.map.borrow_mut().insert(keys::project("proj-a"), p.encode());
    assert_eq!(
        w.get("prompt=x&scope=later", Some(&w.alpha), false).unwrap().header("x-scope"),
        Some("later")
    );
    assert!(scope_row());
}

#[test]
fn a_project_id_in_a_public_url_is_always_that_project() {
    let w = World::new();
    // Another project took a slug spelled like proj-a's id before such
    // slugs were refused: the id still names proj-a.
    let id = "2c5e3f6a-9b1d-4e7f-8a2b-3c4d5e6f7a8b";
    let mut p = Project::decode(&w.kv.map.borrow()[&keys::project("proj-a")]).unwrap();
    p.id = id.into();
    w.kv.map.borrow_mut().insert(keys::project(id), p.encode());
    w.kv.map.borrow_mut().insert(keys::project_slug(id), b"proj-b".to_vec());
    let mut sp = crate::core::stored::scope::Scope::lazy("pub", 0);
    sp.public = true;
    w.kv.map.borrow_mut().insert(keys::scope(id, "pub"), sp.encode());
    let r = public(&w, &format!("/cdn/{id}/live/pub?prompt=fox")).unwrap();
    assert!(r.header("x-image-id").is_some());
    assert_eq!(w.kv.keys_with_prefix(&format!("live:{id}:")).len(), 1, "stored under proj-a's id");
    // (No new project may take such a slug: `core::stored::project`'s tests.)
}
