//! Progressive MISSes through HTTP, on every runtime of the matrix: the
//! waiting frame reaches each client while the provider still holds its
//! answer, one generation for ten clients, the image last (the bytes a HIT
//! serves), the error frame for a refusal, and a client that hangs up does
//! not stop the image.

use std::time::{Duration, Instant};

use crate::support::gemini::Behavior;
use crate::support::{enc, unique, World};
use testkit::stream::{self, Until};

const ACCEPT: &str = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";

fn url(w: &World, prompt: &str) -> String {
    w.host.url(&format!("/api/v1/live/generate?prompt={}&progressive=1", enc(prompt)))
}

fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[1..4], b"PNG", "a PNG part");
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// Wait until `done` holds, for at most `limit`.
fn until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn ten_concurrent_progressive_misses_make_one_generation_and_each_client_paints_before_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let w = World::new();
    w.gemini.set(Behavior::Picture);
    w.gemini.hold();
    let key = w.host.create_project("progressive");
    let url = url(&w, &unique("ten at once"));
    let seen: Vec<Arc<AtomicUsize>> = (0..10).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let clients: Vec<_> = seen
        .iter()
        .map(|parts| {
            let (url, key, parts) = (url.clone(), key.clone(), parts.clone());
            std::thread::spawn(move || {
                stream::get_counting(&url, &[("x-api-key", &key), ("accept", ACCEPT)], &parts)
            })
        })
        .collect();
    // Every client has its first part while the provider holds the image.
    until(Duration::from_secs(60), "each client's first part before the image", || {
        seen.iter().all(|parts| parts.load(Ordering::SeqCst) >= 1)
    });
    // The frame goes out before the provider is asked: the call may come after it.
    until(Duration::from_secs(30), "the owner's provider call", || w.gemini.calls() >= 1);
    assert!(seen.iter().all(|parts| parts.load(Ordering::SeqCst) == 1), "only the first part, so far");
    assert_eq!(w.gemini.calls(), 1, "one generation for ten clients");
    w.gemini.release();
    let done: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let hit = w.host.get(&url.replace(&w.host.base, ""), &key);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(hit.header("cache-control"), Some("public, max-age=31536000, immutable"));
    for got in &done {
        assert_eq!(got.status, 200);
        assert_eq!(got.header("cache-control"), Some("no-store"));
        assert_eq!(got.header("x-cache-status"), Some("MISS"));
        assert!(got
            .header("content-type")
            .is_some_and(|t| t.starts_with("multipart/x-mixed-replace; boundary=")));
        assert!(got.closed, "a whole multipart answer");
        let (frame_at, frame) = &got.parts[0];
        eprintln!(
            "first part after {} ms, last after {} ms",
            frame_at.as_millis(),
            got.parts.last().unwrap().0.as_millis()
        );
        assert_eq!(png_size(frame), (1024, 1024), "the waiting frame at the final size");
        let last = &got.parts.last().unwrap().1;
        assert!(
            *last == hit.body,
            "every client gets the bytes a HIT serves ({} bytes): {}",
            last.len(),
            w.host.log()
        );
    }
    assert_eq!(w.gemini.calls(), 1);
}

pub fn a_refused_progressive_miss_ends_with_the_error_frame_and_stores_nothing() {
    let w = World::new();
    w.gemini.set(Behavior::Refuse);
    let key = w.host.create_project("refused");
    let got = stream::get(&url(&w, &unique("nope")), &[("x-api-key", &key), ("accept", ACCEPT)], Until::End);
    assert_eq!(got.status, 200, "the status went out with the first part");
    assert!(got.closed, "and the answer is whole");
    assert_eq!(got.parts.len(), 2, "the waiting frame, then the error frame");
    let (frame, error) = (&got.parts[0].1, &got.parts[1].1);
    assert_eq!(png_size(error), png_size(frame), "the error frame at the final size");
    assert_ne!(error, frame);
    assert!(w.host.kv_keys("live:").is_empty(), "nothing cached");
    assert_eq!(w.host.stats(&key)["budget"]["used"], 1, "a refusal costs what it costs unstreamed");
    assert!(w.host.held_leases().is_empty());
}

pub fn a_client_that_hangs_up_after_the_first_part_does_not_stop_the_image() {
    let w = World::new();
    w.gemini.set(Behavior::Picture);
    w.gemini.hold();
    let key = w.host.create_project("hang-up");
    let url = url(&w, &unique("left early"));
    let gone = stream::get(&url, &[("x-api-key", &key), ("accept", ACCEPT)], Until::FirstPart);
    assert_eq!(gone.parts.len(), 1);
    drop(gone); // hung up while the provider still holds the image
    until(Duration::from_secs(30), "the owner's call at the provider", || w.gemini.calls() == 1);
    let (url2, key2) = (url.clone(), key.clone());
    let other = std::thread::spawn(move || {
        stream::get(&url2, &[("x-api-key", &key2), ("accept", ACCEPT)], Until::End)
    });
    std::thread::sleep(Duration::from_millis(300));
    w.gemini.release();
    let other = other.join().unwrap();
    assert!(other.closed);
    until(Duration::from_secs(30), "the image stored", || w.host.kv_keys("live:").len() == 1);
    let hit = w.host.get(&url.replace(&w.host.base, ""), &key);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(other.parts.last().unwrap().1, hit.body, "the other client got the image");
    assert_eq!(w.gemini.calls(), 1, "the generation went on after its client left");
}

/// OpenAI streams its previews (`partial_images`, 2 by default): each is a
/// part as it arrives, between the waiting frame and the image. They are
/// PNGs of about 2 MB, more than one write to the client takes (wasmtime's
/// body stream takes 1 MiB at a time), as OpenAI's are.
pub fn openais_previews_reach_the_client_as_they_stream() {
    use crate::support::host::{standard_vars, Host};
    let openai = testkit::openai::OpenAi::start();
    openai.set(testkit::openai::Behavior::Stream { every_ms: 1_000 });
    let gemini = crate::support::gemini::Gemini::start();
    let mut vars = standard_vars(crate::support::s3_endpoint(), &gemini.url);
    vars.extend([
        ("provider".to_string(), "openai".to_string()),
        ("openai_api_key".to_string(), testkit::openai::API_KEY.to_string()),
        ("openai_base_url".to_string(), openai.url.clone()),
    ]);
    let host = Host::start(&vars);
    let key = host.create_project("previews");
    let path = format!("/api/v1/live/generate?prompt={}&progressive=1", enc(&unique("a fox in previews")));
    let got = stream::get(&host.url(&path), &[("x-api-key", &key), ("accept", ACCEPT)], Until::End);
    assert_eq!(got.status, 200);
    assert!(got.closed, "a whole multipart answer");
    let sent = openai.last_request().unwrap();
    assert_eq!((&sent["stream"], &sent["partial_images"]), (&serde_json::json!(true), &serde_json::json!(2)));
    let parts: Vec<&Vec<u8>> = got.parts.iter().map(|(_, bytes)| bytes).collect();
    assert_eq!(parts.len(), 4, "the waiting frame, two previews, the image: {:?}", host.log());
    assert!(parts.iter().all(|p| png_size(p) == (1024, 1024)));
    assert!(parts[1].len() > 1 << 20 && parts[2].len() > 1 << 20, "previews larger than one write");
    let distinct: std::collections::HashSet<&Vec<u8>> = parts.iter().copied().collect();
    assert_eq!(distinct.len(), 4, "four different pictures");
    // The provider sends an event each second: each preview came when it
    // was sent, not with the next part.
    let at: Vec<Duration> = got.parts.iter().map(|(at, _)| *at).collect();
    assert!(
        at[2] - at[1] > Duration::from_millis(200) && at[3] - at[2] > Duration::from_millis(200),
        "{at:?}"
    );
    let hit = host.get(&path, &key);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(*parts[3], hit.body, "the image is what a HIT serves");
    assert_eq!(openai.calls(), 1);
}
