//! Takedowns over fakes, through the whole of `api`.

use crate::api::fakes::{body, request, World};
use crate::api::Reply;
use crate::core::http::routes::Method;
use crate::core::stored::keys;
use crate::core::stored::stats::Counter;
use crate::core::Error;

fn world() -> World {
    let mut w = World::new();
    w.provider.picture.set(Some((64, 32)));
    w.config.variant_widths = vec![8, 16, 32];
    w.config.admin_token = Some(crate::core::config::Secret("adm".into()));
    w
}

fn keyed(w: &World, query: &str) -> Result<Reply<Vec<u8>>, Error> {
    w.get(query, Some(&w.alpha), false)
}

fn blocks_api(w: &World, method: Method, path: &str, body: &str) -> Result<Reply<Vec<u8>>, Error> {
    w.request(request(method, path, &[("x-api-key", &w.alpha)], body.as_bytes()))
}

fn json(r: &Reply<Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(&body(r)).unwrap()
}

#[test]
fn a_takedown_removes_the_image_and_its_variants_and_every_url_of_it_is_451_until_lifted() {
    let w = world();
    let miss = keyed(&w, "prompt=fox").unwrap();
    let id = miss.header("x-image-id").unwrap().to_string();
    for q in ["prompt=fox&w=8&format=jpeg", "prompt=fox&w=16&format=webp", "prompt=fox&w=32&format=png"] {
        assert_eq!(keyed(&w, q).unwrap().status, 200);
    }
    keyed(&w, "prompt=other").unwrap();
    assert_eq!((w.counter("proj-a", Counter::Entries), w.counter("proj-a", Counter::Variants)), (2, 3));
    let path = format!("/api/v1/images/{id}/block");
    let blocked = blocks_api(&w, Method::Post, &path, r#"{"reason":"DMCA 42"}"#).unwrap();
    assert_eq!((blocked.status, json(&blocked)["reason"].as_str()), (201, Some("DMCA 42")));
    assert_eq!(json(&blocked)["by"], "key");
    // Its objects are gone, the other image's stays; stats moved as for a purge.
    assert_eq!(w.store.objects.borrow().len(), 1);
    assert_eq!((w.counter("proj-a", Counter::Entries), w.counter("proj-a", Counter::Variants)), (1, 0));
    let calls = w.provider.calls.get();
    for q in
        ["prompt=fox", "prompt=fox&w=8&format=jpeg", "prompt=fox&w=16&format=avif", "prompt=fox&format=lqip"]
    {
        assert_eq!(keyed(&w, q).err().unwrap(), Error::Blocked, "{q}");
    }
    assert_eq!(w.get("prompt=fox", Some(&w.alpha), true).err().unwrap().status(), 451, "HEAD too");
    let regenerate =
        request(Method::Post, "/api/v1/live/regenerate?prompt=fox", &[("x-api-key", &w.alpha)], b"");
    assert_eq!(w.request(regenerate).err().unwrap(), Error::Blocked);
    assert_eq!(w.provider.calls.get(), calls, "never generated again");
    // Listed, read, blocked again (the same block), lifted.
    let list = json(&blocks_api(&w, Method::Get, "/api/v1/blocks", "").unwrap());
    assert_eq!(list["blocks"][0]["image_id"], id.as_str());
    assert_eq!(blocks_api(&w, Method::Get, &path, "").unwrap().status, 200);
    assert_eq!(blocks_api(&w, Method::Post, &path, "").unwrap().status, 200);
    // The other project's key cannot see it.
    let other = request(Method::Get, &path, &[("x-api-key", &w.beta)], b"");
    assert_eq!(w.request(other).err().unwrap().status(), 404);
    assert_eq!(blocks_api(&w, Method::Delete, &path, "").unwrap().status, 204);
    assert!(!w.kv.map.borrow().contains_key(&keys::blocked("proj-a", &w.kv_hash_of("fox"))));
    assert_eq!(keyed(&w, "prompt=fox").unwrap().header("x-cache-status"), Some("MISS"));
}

#[test]
fn the_admin_blocks_for_a_named_project_and_bad_input_changes_nothing() {
    let w = world();
    let id = keyed(&w, "prompt=fox").unwrap().header("x-image-id").unwrap().to_string();
    let admin = |method, path: &str, body: &[u8]| {
        w.request(request(method, path, &[("authorization", "Bearer adm")], body))
    };
    let path = format!("/api/v1/images/{id}/block");
    assert_eq!(admin(Method::Post, &path, b"").err().unwrap().status(), 400, "which project?");
    assert_eq!(admin(Method::Post, &format!("{path}?project=nope"), b"").err().unwrap().status(), 404);
    assert_eq!(blocks_api(&w, Method::Post, &path, r#"{"why":1}"#).err().unwrap().status(), 400);
    let unknown = "/api/v1/images/0d56ce37-e090-45ee-9f1d-d1cb6c801308/block";
    assert_eq!(blocks_api(&w, Method::Post, unknown, "").err().unwrap().status(), 404);
    assert_eq!(keyed(&w, "prompt=fox").unwrap().header("x-cache-status"), Some("HIT"), "nothing changed");
    let done = admin(Method::Post, &format!("{path}?project=proj-a"), b"").unwrap();
    assert_eq!((done.status, json(&done)["by"].as_str()), (201, Some("admin")));
    assert_eq!(keyed(&w, "prompt=fox").err().unwrap(), Error::Blocked);
}

#[test]
fn twenty_generations_racing_a_takedown_leave_nothing_served_or_stored() {
    let w = world();
    let id = keyed(&w, "prompt=fox").unwrap().header("x-image-id").unwrap().to_string();
    let ctx = w.ctx();
    let path = format!("/api/v1/images/{id}/block");
    let mut racing: Vec<_> = (0..20)
        .map(|i| {
            let q = if i % 2 == 0 { "prompt=fox&w=8&format=jpeg" } else { "prompt=fox" };
            let method = if i % 4 == 1 { "/api/v1/live/regenerate" } else { "/api/v1/live/generate" };
            let m = if i % 4 == 1 { Method::Post } else { Method::Get };
            request(m, &format!("{method}?{q}"), &[("x-api-key", &w.alpha)], b"")
        })
        .collect();
    racing.insert(7, request(Method::Post, &path, &[("x-api-key", &w.alpha)], b""));
    let answers = w.block_on(futures::future::join_all(racing.into_iter().map(|r| crate::api::run(&ctx, r))));
    assert_eq!(answers[7].as_ref().map(|r| r.status).ok(), Some(201));
    for q in ["prompt=fox", "prompt=fox&w=8&format=jpeg"] {
        assert_eq!(keyed(&w, q).err().unwrap(), Error::Blocked, "{q}");
    }
    assert_eq!(
        w.store.objects.borrow().len(),
        0,
        "{:?}",
        w.store.objects.borrow().keys().collect::<Vec<_>>()
    );
    assert_eq!((w.counter("proj-a", Counter::Entries), w.counter("proj-a", Counter::Variants)), (0, 0));
}
