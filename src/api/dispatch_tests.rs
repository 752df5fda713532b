//! `api::handle` and `dispatch` over fakes: the route table, who may call
//! what, header and body rules, and that each route reaches its handler.

use std::cell::Cell;

use super::{handle, Reply};
use crate::api::fakes::{body, request, FakeContext, Recorded, World};
use crate::core::config::Secret;
use crate::core::http::routes::Method;

/// Through `handle`, counting how often the context was opened.
fn handled(w: &World, req: super::Request<Vec<u8>>, opened: &Cell<u32>) -> Reply<Vec<u8>> {
    w.block_on(handle(req, &Recorded::default(), || -> Result<FakeContext<'_>, _> {
        opened.set(opened.get() + 1);
        Ok(w.ctx())
    }))
}

fn json(reply: &Reply<Vec<u8>>) -> serde_json::Value {
    assert_eq!(reply.header("content-type"), Some("application/json"));
    serde_json::from_slice(&body(reply)).unwrap()
}

#[test]
fn unknown_paths_and_methods_are_answered_without_opening_anything() {
    let w = World::new();
    let opened = Cell::new(0);
    let r = handled(&w, request(Method::Get, "/nope", &[], b""), &opened);
    assert_eq!(r.status, 404);
    assert_eq!(json(&r)["error"]["code"], "not_found");
    let r = handled(&w, request(Method::Post, "/api/v1/live/generate?prompt=x", &[], b""), &opened);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, DELETE"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(opened.get(), 0, "no configuration or store for a request that has no route");
    let r = handled(&w, request(Method::Get, "/api/v1/live/generate?prompt=x", &[], b""), &opened);
    assert_eq!((r.status, opened.get()), (401, 1));
}

#[test]
fn a_context_that_cannot_open_is_the_errors_answer() {
    let w = World::new();
    let req = request(Method::Get, "/api/v1/live/stats", &[("x-api-key", &w.alpha)], b"");
    let r = w.block_on(handle(req, &Recorded::default(), || -> Result<FakeContext<'_>, _> {
        Err(crate::core::Error::Misconfigured("variable s3_bucket is empty".into()))
    }));
    assert_eq!(r.status, 500);
    assert_eq!(json(&r)["error"]["code"], "misconfigured");
    assert!(!String::from_utf8(body(&r)).unwrap().contains("s3_bucket"), "detail stays in the log");
}

#[test]
fn a_repeated_credential_header_is_a_400() {
    let w = World::new();
    let headers = [("x-api-key", w.alpha.as_str()), ("x-api-key", w.beta.as_str())];
    let e = w.request(request(Method::Get, "/api/v1/live/stats", &headers, b"")).err().unwrap();
    assert_eq!((e.status(), e.public_message()), (400, "header x-api-key given more than once".into()));
}

#[test]
fn if_none_match_may_span_fields() {
    let w = World::new();
    let etag = w.get("prompt=fox", Some(&w.alpha), false).unwrap().header("etag").unwrap().to_string();
    // RFC 9110 §5.3: a list in two fields is the list in one.
    let r = w.live(
        "prompt=fox",
        &[("x-api-key", &w.alpha), ("if-none-match", "\"a\""), ("if-none-match", &etag)],
        false,
    );
    assert_eq!(r.unwrap().status, 304);
    let r = w.live(
        "prompt=fox",
        &[("x-api-key", &w.alpha), ("if-none-match", "\"a\""), ("if-none-match", "\"b\"")],
        false,
    );
    assert_eq!(r.unwrap().status, 200);
}

#[test]
fn delete_purges_with_a_key_and_a_signed_url_may_not() {
    let w = World::new();
    w.get("prompt=fox", Some(&w.alpha), false).unwrap();
    assert_eq!((w.entries(), w.store.objects.borrow().len()), (1, 1));
    let signed = "prompt=fox&project=proj-a&sig=abc";
    let e = w.request(request(Method::Delete, &format!("/api/v1/live/generate?{signed}"), &[], b""));
    assert_eq!(e.err().unwrap().status(), 403);
    let e = w.request(request(
        Method::Delete,
        "/api/v1/live/generate?prompt=fox",
        &[("x-api-key", &w.beta)],
        b"",
    ));
    assert_eq!(e.err().unwrap().status(), 404, "another project's key finds nothing to purge");
    let purge = request(Method::Delete, "/api/v1/live/generate?prompt=fox", &[("x-api-key", &w.alpha)], b"");
    let r = w.request(purge).unwrap();
    assert_eq!((r.status, r.header("cache-control")), (204, Some("no-store")));
    assert_eq!((w.entries(), w.store.objects.borrow().len()), (0, 0));
}

#[test]
fn the_admin_routes_need_the_bearer_token_and_create_working_projects() {
    let mut w = World::new();
    let create = |w: &World, auth: &[(&str, &str)]| {
        w.request(request(Method::Post, "/api/v1/projects", auth, br#"{"name":"new"}"#))
    };
    assert_eq!(create(&w, &[("authorization", "Bearer t")]).err().unwrap().status(), 403, "no admin_token");
    w.config.admin_token = Some(Secret("t0ken".into()));
    assert_eq!(create(&w, &[]).err().unwrap().status(), 401);
    assert_eq!(create(&w, &[("authorization", "Bearer nope")]).err().unwrap().status(), 401);
    let r = create(&w, &[("authorization", "bearer t0ken")]).unwrap();
    assert_eq!(r.status, 201);
    let key = json(&r)["api_key"].as_str().unwrap().to_string();
    let stats = w.request(request(Method::Get, "/api/v1/live/stats", &[("x-api-key", &key)], b"")).unwrap();
    assert_eq!(json(&stats)["project_id"], json(&r)["project_id"]);
    let rotate =
        request(Method::Post, "/api/v1/projects/proj-a/rotate", &[("authorization", "Bearer t0ken")], b"");
    assert_eq!(w.request(rotate).unwrap().status, 200);
    assert_eq!(w.get("prompt=x", Some(&w.alpha), false).err().unwrap().status(), 401, "the old key is gone");
}

#[test]
fn bodies_over_the_limit_are_413_and_sign_answers_a_url_on_the_requests_origin() {
    let w = World::new();
    let big = vec![b' '; super::request::MAX_BODY_BYTES + 1];
    let e = w.request(request(Method::Post, "/api/v1/live/sign", &[("x-api-key", &w.alpha)], &big));
    assert_eq!(e.err().unwrap().status(), 413);
    let sign = request(Method::Post, "/api/v1/live/sign", &[("x-api-key", &w.alpha)], br#"{"prompt":"fox"}"#);
    let r = w.request(sign).unwrap();
    let url = json(&r)["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://localhost:3000/api/v1/live/generate?"), "{url}");
    let query = url.split_once('?').unwrap().1;
    assert_eq!(w.get(query, None, false).unwrap().header("x-cache-status"), Some("MISS"), "signed: no key");
}

#[test]
fn the_demo_routes_exist_only_with_a_demo_project() {
    let mut w = World::new();
    for (method, path) in
        [(Method::Get, "/"), (Method::Get, "/api/v1/demo/stats"), (Method::Post, "/api/v1/demo/sign")]
    {
        assert_eq!(
            w.request(request(method, path, &[], br#"{"prompt":"fox"}"#)).err().unwrap().status(),
            404
        );
    }
    w.config.demo_project_id = Some("proj-b".into());
    let page = w.request(request(Method::Get, "/", &[], b"")).unwrap();
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(body(&page)).unwrap();
    assert!(
        html.contains(r#"<select id="model" title="model"><option>gemini</option><option>other</option><option>plain</option><option>seeded</option></select>"#),
        "the model picker names every model"
    );
    w.config.models.truncate(1);
    let one = String::from_utf8(body(&w.request(request(Method::Get, "/", &[], b"")).unwrap())).unwrap();
    assert!(one.contains(r#"<select hidden id="model""#), "one model: no picker");
    let stats = w.request(request(Method::Get, "/api/v1/demo/stats", &[], b"")).unwrap();
    assert_eq!(json(&stats)["project_id"], "proj-b");
    let signed = w.request(request(Method::Post, "/api/v1/demo/sign", &[], br#"{"prompt":"fox"}"#)).unwrap();
    assert!(json(&signed)["path"].as_str().unwrap().contains("project=proj-b"));
}

const IMG_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

#[test]
fn an_image_get_that_prefers_an_image_gets_its_error_as_one_and_api_clients_get_json() {
    let w = World::new();
    let opened = Cell::new(0);
    let live = "/api/v1/live/generate?prompt=fox";
    let r = handled(&w, request(Method::Get, live, &[("accept", IMG_ACCEPT)], b""), &opened);
    assert_eq!((r.status, r.header("content-type")), (401, Some("image/svg+xml")));
    assert_eq!(r.header("x-error-code"), Some("unauthorized"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("vary"), Some("Accept"));
    let error: serde_json::Value = serde_json::from_str(r.header("x-error").unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    let svg = String::from_utf8(body(&r)).unwrap();
    assert!(svg.starts_with("<svg ") && svg.contains("This image link is not valid"), "{svg}");
    for accept in ["*/*", "application/json"] {
        let r = handled(&w, request(Method::Get, live, &[("accept", accept)], b""), &opened);
        assert_eq!((r.status, json(&r)["error"]["code"].as_str()), (401, Some("unauthorized")), "{accept}");
    }
    // Not an image route: JSON, whatever Accept says.
    let r = handled(&w, request(Method::Get, "/api/v1/live/stats", &[("accept", IMG_ACCEPT)], b""), &opened);
    assert_eq!(json(&r)["error"]["code"], "unauthorized");
}

#[test]
fn error_images_off_answers_json_to_an_img_too() {
    let w = World::new();
    let req = request(Method::Get, "/api/v1/live/generate?prompt=fox", &[("accept", IMG_ACCEPT)], b"");
    let r = w.block_on(handle(req, &Recorded::default(), || -> Result<FakeContext<'_>, _> {
        let mut ctx = w.ctx();
        ctx.config.error_images = false;
        Ok(ctx)
    }));
    assert_eq!(json(&r)["error"]["code"], "unauthorized");
}

#[test]
fn signing_keeps_model_seed_template_and_refs_and_refuses_what_the_url_could_not_do() {
    let w = World::new();
    let sign = |body: &str| {
        w.request(request(Method::Post, "/api/v1/live/sign", &[("x-api-key", &w.alpha)], body.as_bytes()))
    };
    let signed =
        sign(r#"{"prompt":"fox","model":"gemini","seed":7,"template":"comic","ref":["@logo","abc"]}"#)
            .unwrap();
    let path = json(&signed)["path"].as_str().unwrap().to_string();
    for part in ["model=gemini", "seed=7", "template=comic", "ref=%40logo", "ref=abc"] {
        assert!(path.contains(part), "{part} is signed: {path}");
    }
    assert_eq!(sign(r#"{"prompt":"fox","model":"plain","seed":7}"#).err().unwrap().status(), 400);
    assert_eq!(sign(r#"{"prompt":"fox","model":"nope"}"#).err().unwrap().status(), 400);
}

#[test]
fn a_misconfigured_service_answers_json_even_to_an_img() {
    let w = World::new();
    let req = request(Method::Get, "/api/v1/live/generate?prompt=fox", &[("accept", IMG_ACCEPT)], b"");
    let r = w.block_on(handle(req, &Recorded::default(), || -> Result<FakeContext<'_>, _> {
        Err(crate::core::Error::Misconfigured("variable s3_bucket is empty".into()))
    }));
    assert_eq!((r.status, json(&r)["error"]["code"].as_str()), (500, Some("misconfigured")));
}

/// The store calls of each request `ask` makes, once its image is cached and
/// hot (past `core::stored::stats::HITS_STEP` hits, in one minute).
fn hot_hit_ops(w: &World, ask: &dyn Fn() -> Reply<Vec<u8>>) -> Vec<Vec<(&'static str, String)>> {
    for _ in 0..=crate::core::stored::stats::HITS_STEP + 1 {
        ask();
    }
    (0..5)
        .map(|_| {
            w.kv.take_ops();
            assert_eq!(ask().header("x-cache-status"), Some("HIT"));
            w.kv.take_ops()
        })
        .collect()
}

/// A keyed HIT reads its project, entry and last access in one call and
/// counts itself in one more (issue 28: at most two); so does a variant's. A
/// signed HIT from a client under a per-client limit reads that client's
/// counter too (its X-RateLimit headers): three.
#[test]
fn a_hot_hit_makes_two_store_calls() {
    use crate::core::decide::signature;
    let mut w = World::new();
    w.provider.picture.set(Some((64, 32)));
    w.config.variant_widths = vec![8, 16];
    w.config.client_misses_per_hour = 10;
    w.config.client_derivations_per_hour = 10;
    let key = w.alpha.clone();
    let (_, secret) = crate::api::fakes::add_project(&w.kv, "proj-s", 7, 100);
    let signed = |prompt: &str| {
        let pairs = vec![("prompt".into(), prompt.into()), ("project".into(), "proj-s".into())];
        signature::signed_path(&secret, crate::core::http::routes::LIVE_PATH, &pairs)
    };
    let keyed = |q: &str| w.get(q, Some(&key), false).unwrap();
    type Ask<'a> = &'a dyn Fn() -> Reply<Vec<u8>>;
    let cases: [(&str, Ask); 3] = [
        ("keyed", &|| keyed("prompt=fox")),
        ("variant", &|| keyed("prompt=fox&w=16&format=jpeg")),
        ("signed", &|| {
            let client = [("spin-client-addr", "203.0.113.7:4000")];
            w.request(request(Method::Get, &signed("owl"), &client, b"")).unwrap()
        }),
    ];
    for (name, ask) in cases {
        for ops in hot_hit_ops(&w, ask) {
            let kinds: Vec<&str> = ops.iter().map(|(op, _)| *op).collect();
            // A URL without a key also reads its client's hourly counter, for
            // the answer's X-RateLimit-Remaining.
            let expected: &[&str] = match name {
                "signed" => &["get_many", "increment", "counter"],
                _ => &["get_many", "increment"],
            };
            assert_eq!(kinds, expected, "{name}: {ops:#?}");
        }
    }
    // The project's hits: every hit of the first 32 of an entry, then by 32.
    let hits = w.counter("proj-a", crate::core::stored::stats::Counter::Hits);
    assert_eq!(hits, 32 + 32, "two entries of 39 hits each: {hits}");
}

/// Where `get-many` fails (Spin's Redis store) every read is made one by
/// one, and the answers are the same.
#[test]
fn without_get_many_a_hit_reads_one_by_one() {
    let w = World::on(crate::api::fakes::Semantics::SpinRedis);
    let key = w.alpha.clone();
    let first = w.get("prompt=fox", Some(&key), false).unwrap();
    w.get("prompt=fox", Some(&key), false).unwrap();
    w.kv.take_ops();
    let hit = w.get("prompt=fox", Some(&key), false).unwrap();
    assert_eq!((hit.header("x-cache-status"), body(&hit)), (Some("HIT"), body(&first)));
    let kinds: Vec<&str> = w.kv.take_ops().iter().map(|(op, _)| *op).collect();
    assert_eq!(kinds, ["get_many", "get", "get", "get", "increment", "increment"], "{kinds:?}");
}
