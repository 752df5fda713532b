//! Progressive MISSes over the fakes: the head and the waiting frame at
//! once, previews as the provider streams them, the image last (the bytes a
//! HIT serves), the error frame when making fails; waiters, departed and
//! slow clients; and where a progressive answer never happens.

use crate::api::fakes::{add_project, body, live_request, Recorded, World};
use crate::api::{run, run_streamed, Body, Reply};
use crate::core::http::multipart;
use crate::core::ports::{KeyValue, Respond};
use crate::core::stored::keys;
use crate::core::stored::scope::Scope;
use crate::core::Error;

fn world() -> World {
    let mut w = World::new();
    // The size Gemini draws a 1:1 image at, so the frames can be exact.
    w.provider.picture.set(Some((1024, 1024)));
    w.config.variant_widths = vec![8, 16, 32];
    w
}

/// A keyed live GET of `query` with these headers, its streamed answer recorded.
fn streamed(w: &World, query: &str, headers: &[(&str, &str)]) -> (Result<Reply<Vec<u8>>, Error>, Recorded) {
    let recorded = Recorded::timed(w.env.now_ms.clone());
    let mut all = vec![("x-api-key", w.alpha.as_str())];
    all.extend_from_slice(headers);
    let reply = w.block_on(run_streamed(&w.ctx(), live_request(query, &all, false), &recorded));
    (reply, recorded)
}

/// The parts a recorded multipart answer holds, by its boundary.
fn parts(recorded: &Recorded) -> Vec<Vec<u8>> {
    let content_type = recorded.header("content-type").expect("a multipart head");
    let boundary = content_type.split("boundary=").nth(1).expect("a boundary").to_string();
    multipart::split(&recorded.body(), &boundary).expect("a whole multipart body")
}

fn size(png: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(png).unwrap();
    (image.width(), image.height())
}

#[test]
fn a_progressive_miss_sends_the_waiting_frame_at_once_then_the_image_a_hit_serves() {
    let w = world();
    let (reply, recorded) = streamed(&w, "prompt=fox&progressive=1", &[]);
    assert!(matches!(reply.unwrap().body, Body::Sent));
    let (status, _) = recorded.head.borrow().clone().unwrap();
    assert_eq!(status, 200);
    assert!(recorded.header("content-type").unwrap().starts_with("multipart/x-mixed-replace; boundary="));
    assert_eq!(recorded.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(recorded.header("x-cache-status").as_deref(), Some("MISS"));
    assert_eq!(recorded.header("x-ai-generated").as_deref(), Some("true"));
    let parts = parts(&recorded);
    assert_eq!(parts.len(), 2, "the waiting frame, then the image");
    // The frame has the final size: Gemini's 1:1.
    assert_eq!(size(&parts[0]), (1024, 1024));
    assert!(parts[0].len() <= 2048);
    assert_eq!(recorded.at.borrow()[0], crate::api::fakes::START_UNIX * 1000, "sent before any wait");
    let hit = w.get("prompt=fox", Some(&w.alpha), false).unwrap();
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(body(&hit), parts[1], "the last part is the image a HIT serves");
    assert_eq!(w.provider.calls.get(), 1);
    // The HIT, even asked progressively, is plain.
    let (hit, recorded) = streamed(&w, "prompt=fox&progressive=1", &[]);
    assert_eq!(hit.unwrap().header("x-cache-status"), Some("HIT"));
    assert!(!recorded.begun());
}

#[test]
fn a_variant_is_drawn_at_its_own_size_and_previews_come_in_its_format() {
    let w = world();
    w.provider.partials.set(2);
    let (_, recorded) = streamed(&w, "prompt=fox&w=16&format=jpeg&progressive=1", &[]);
    let parts = parts(&recorded);
    assert_eq!(parts.len(), 4, "waiting frame, two previews, the variant");
    let variant = w.get("prompt=fox&w=16&format=jpeg", Some(&w.alpha), false).unwrap();
    let (vw, vh) = size(&body(&variant));
    assert_eq!(size(&parts[0]), (16, 16), "1024×1024 at w=16: the size the variant of a 1:1 original has");
    for preview in &parts[1..3] {
        assert!(preview.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG, as the variant");
        assert_eq!(size(preview), (vw, vh));
    }
    assert_eq!(parts[3], body(&variant));
    assert_ne!(parts[1], parts[3]);
}

#[test]
fn waiters_get_the_waiting_frame_and_the_owners_image_without_calling_the_provider() {
    let w = world();
    let ctx = w.ctx();
    let recorders: Vec<Recorded> = (0..5).map(|_| Recorded::timed(w.env.now_ms.clone())).collect();
    let requests = recorders.iter().map(|r| {
        run_streamed(&ctx, live_request("prompt=crowd&progressive=1", &[("x-api-key", &w.alpha)], false), r)
    });
    let replies = w.block_on(futures::future::join_all(requests));
    assert!(replies.iter().all(|r| matches!(r.as_ref().unwrap().body, Body::Sent)));
    assert_eq!(w.provider.calls.get(), 1);
    let finals: Vec<Vec<u8>> = recorders.iter().map(|r| parts(r).last().unwrap().clone()).collect();
    assert!(finals.iter().all(|f| *f == finals[0]), "every client gets the same image");
    for r in &recorders {
        assert_eq!(r.at.borrow()[0], crate::api::fakes::START_UNIX * 1000, "each waiting frame at once");
    }
}

#[test]
fn a_failure_after_the_first_part_ends_with_the_error_frame_and_stores_nothing() {
    let w = world();
    *w.provider.answer.borrow_mut() = Some(Error::PromptRefused("SAFETY".into()));
    let (reply, recorded) = streamed(&w, "prompt=nope&progressive=1", &[]);
    assert!(matches!(reply.unwrap().body, Body::Sent), "the status went out as 200");
    let parts = parts(&recorded);
    assert_eq!(parts.len(), 2);
    assert_eq!(size(&parts[1]), (1024, 1024), "the error frame at the final size");
    assert_ne!(parts[1], parts[0]);
    assert_eq!((w.entries(), w.store.objects.borrow().len()), (0, 0), "nothing stored");
    let budget = w.kv.counter(&keys::budget("proj-a", crate::api::fakes::START_UNIX)).unwrap();
    assert_eq!(budget, Some(1), "a refusal costs what it costs unstreamed");
}

#[test]
fn a_client_that_leaves_or_reads_slowly_does_not_stop_the_image() {
    let w = world();
    w.provider.partials.set(2);
    let gone = Recorded::timed(w.env.now_ms.clone());
    gone.left.set(true);
    let slow = Recorded::timed(w.env.now_ms.clone());
    slow.slow.set(true);
    let ctx = w.ctx();
    let request = || live_request("prompt=left&progressive=1", &[("x-api-key", &w.alpha)], false);
    let both =
        futures::future::join(run_streamed(&ctx, request(), &gone), run_streamed(&ctx, request(), &slow));
    let (a, b) = w.block_on(both);
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(w.entries(), 1, "stored though its owner's client left");
    assert!(gone.body().is_empty(), "nothing reached the departed client");
    assert_eq!(parts(&slow).len(), 2, "the slow client: the waiting frame and the image");
    let hit = w.get("prompt=left", Some(&w.alpha), false).unwrap();
    assert_eq!(parts(&slow)[1], body(&hit));
    assert_eq!(w.provider.calls.get(), 1);
}

#[test]
fn only_a_miss_that_waits_for_a_client_that_takes_images_is_progressive() {
    let w = world();
    // HEAD never generates; JSON clients get JSON.
    let recorded = Recorded::default();
    let head = live_request("prompt=x&progressive=1", &[("x-api-key", &w.alpha)], true);
    assert_eq!(w.block_on(run_streamed(&w.ctx(), head, &recorded)).err(), Some(Error::NotCached));
    assert!(!recorded.begun());
    let (reply, recorded) = streamed(&w, "prompt=x&progressive=1", &[("accept", "application/json")]);
    assert_eq!(reply.unwrap().header("x-cache-status"), Some("MISS"));
    assert!(!recorded.begun());
    // Bad values are refused before anything.
    for bad in ["2", "yes"] {
        let (reply, recorded) = streamed(&w, &format!("prompt=y&progressive={bad}"), &[]);
        assert_eq!(reply.err().map(|e| e.status()), Some(400));
        assert!(!recorded.begun());
    }
    assert_eq!(w.provider.calls.get(), 1);
}

#[test]
fn a_scope_or_project_can_make_every_miss_progressive() {
    let w = world();
    let mut scope = Scope::lazy("hero", crate::api::fakes::START_UNIX);
    scope.progressive_misses = true;
    w.kv.set(&keys::scope("proj-a", "hero"), &scope.encode()).unwrap();
    let (_, recorded) = streamed(&w, "prompt=z&scope=hero", &[]);
    assert!(recorded.begun(), "the scope's setting");
    let (key, _) = add_project(&w.kv, "proj-p", 8, 100);
    let mut project = crate::api::records::projects::load(&w.kv, "proj-p").unwrap().unwrap();
    project.progressive_misses = true;
    w.kv.set(&keys::project("proj-p"), &project.encode()).unwrap();
    let recorded = Recorded::default();
    let request = live_request("prompt=z", &[("x-api-key", &key)], false);
    w.block_on(run_streamed(&w.ctx(), request, &recorded)).unwrap();
    assert!(recorded.begun(), "the project's setting");
    // And without either, a plain MISS.
    let plain = w.block_on(run(&w.ctx(), live_request("prompt=plain", &[("x-api-key", &w.alpha)], false)));
    assert!(matches!(plain.unwrap().body, Body::Bytes(_)));
}

#[test]
fn the_sign_api_signs_progressive_into_a_url_that_answers_progressively() {
    let w = world();
    let sign = crate::api::fakes::request(
        crate::core::http::routes::Method::Post,
        "/api/v1/live/sign",
        &[("x-api-key", &w.alpha)],
        br#"{"prompt":"signed fox","progressive":true}"#,
    );
    let signed: serde_json::Value = serde_json::from_slice(&body(&w.request(sign).unwrap())).unwrap();
    let path = signed["path"].as_str().unwrap();
    assert!(path.contains("progressive=1"), "{path}");
    let query = path.split_once('?').unwrap().1;
    let recorded = Recorded::default();
    let reply = w.block_on(run_streamed(&w.ctx(), live_request(query, &[], false), &recorded));
    assert!(matches!(reply.unwrap().body, Body::Sent));
    assert_eq!(parts(&recorded).len(), 2);
}
