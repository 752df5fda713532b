//! The HIT/MISS flow, natively, over in-memory ports, sent through the
//! whole of `api` (routing and authentication included).

use super::*;
use crate::api::fakes::{add_project, body, live_request, Semantics, World, START_UNIX};
use crate::api::kv::slot::Slot;
use crate::api::run;
use crate::core::http::routes::LIVE_PATH;
use crate::core::stored::project;

fn header<'a>(reply: &'a Reply<Vec<u8>>, name: &str) -> Option<&'a str> {
    reply.header(name)
}

/// `n` identical live GETs at once, over one context.
fn concurrently(w: &World, n: usize, query: &str, key: &str) -> Vec<Result<Reply<Vec<u8>>, Error>> {
    let ctx = w.ctx();
    let requests = (0..n).map(|_| live_request(query, &[("x-api-key", key)], false));
    w.block_on(futures::future::join_all(requests.map(|r| run(&ctx, r))))
}

#[test]
fn second_identical_request_is_a_hit_with_the_same_bytes() {
    let w = World::new();
    let miss = w.get("prompt=fox", Some(w.alpha.as_str()), false).unwrap();
    assert_eq!(header(&miss, "x-cache-status"), Some("MISS"));
    assert!(header(&miss, "x-generation-id").is_some());
    let hit = w.get("prompt=+fox+", Some(w.alpha.as_str()), false).unwrap();
    assert_eq!(header(&hit, "x-cache-status"), Some("HIT"));
    assert_eq!(header(&hit, "x-cache-hit-count"), Some("1"));
    assert_eq!(header(&hit, "etag"), header(&miss, "etag"));
    assert_eq!(header(&hit, "x-image-id"), header(&miss, "x-image-id"));
    assert_eq!(body(&hit), body(&miss));
    assert_eq!(w.provider.calls.get(), 1);
    let again = w.get("prompt=fox", Some(w.alpha.as_str()), false).unwrap();
    assert_eq!(header(&again, "x-cache-hit-count"), Some("2"));
}

#[test]
fn projects_never_share_entries() {
    let w = World::new();
    w.get("prompt=fox", Some(w.alpha.as_str()), false).unwrap();
    let b = w.get("prompt=fox", Some(w.beta.as_str()), false).unwrap();
    assert_eq!(header(&b, "x-cache-status"), Some("MISS"));
    assert_eq!(w.provider.calls.get(), 2);
    assert_eq!(w.entries(), 2);
}

#[test]
fn failures_write_nothing() {
    let w = World::new();
    *w.provider.answer.borrow_mut() = Some(Error::PromptRefused("SAFETY".into()));
    assert_eq!(w.get("prompt=fox", Some(w.alpha.as_str()), false).err().unwrap().status(), 422);
    *w.provider.answer.borrow_mut() = None;
    w.store.fail_puts.set(true);
    assert_eq!(w.get("prompt=fox", Some(w.alpha.as_str()), false).err().unwrap().status(), 502);
    assert_eq!(w.entries(), 0);
    assert!(w.store.objects.borrow().is_empty());
}

#[test]
fn bad_input_and_bad_keys_are_refused_before_the_provider() {
    let w = World::new();
    assert_eq!(w.get("prompt=fox", None, false).err().unwrap().status(), 401);
    assert_eq!(w.get("prompt=fox", Some("bl_nope"), false).err().unwrap().status(), 401);
    assert_eq!(w.get("prompt=", Some(w.alpha.as_str()), false).err().unwrap().status(), 400);
    assert_eq!(w.provider.calls.get(), 0);
}

#[test]
fn a_vanished_object_is_regenerated() {
    let w = World::new();
    w.get("prompt=fox", Some(w.alpha.as_str()), false).unwrap();
    w.store.objects.borrow_mut().clear();
    let again = w.get("prompt=fox", Some(w.alpha.as_str()), false).unwrap();
    assert_eq!(header(&again, "x-cache-status"), Some("MISS"));
    assert_eq!(w.store.objects.borrow().len(), 1);
    let hit = w.get("prompt=fox", Some(w.alpha.as_str()), false).unwrap();
    assert_eq!(header(&hit, "x-cache-status"), Some("HIT"));
}

#[test]
fn head_never_generates() {
    let w = World::new();
    let e = w.get("prompt=fox", Some(w.alpha.as_str()), true).err().unwrap();
    assert_eq!(e, Error::NotCached);
    assert_eq!(w.provider.calls.get(), 0);
    w.get("prompt=fox", Some(w.alpha.as_str()), false).unwrap();
    let head = w.get("prompt=fox", Some(w.alpha.as_str()), true).unwrap();
    assert!(body(&head).is_empty());
    assert_eq!(header(&head, "x-cache-hit-count"), Some("0"));
}

#[test]
fn a_kv_failure_after_the_put_still_serves_the_image() {
    let w = World::new();
    w.kv.fail_writes.set(true);
    let miss = w.get("prompt=fox", Some(w.alpha.as_str()), false).unwrap();
    assert_eq!(miss.status, 200);
    assert_eq!(w.entries(), 0);
}

#[test]
fn a_signed_url_needs_no_key_and_any_change_breaks_it() {
    let w = World::new();
    let (_, secret) = add_project(&w.kv, "proj-s", 3, 100);
    let pairs: Vec<(String, String)> = [("prompt", "fox"), ("project", "proj-s")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let path = crate::core::decide::signature::signed_path(&secret, LIVE_PATH, &pairs);
    let query = path.split_once('?').unwrap().1;
    let ok = w.get(query, None, false).unwrap();
    assert_eq!(header(&ok, "x-cache-status"), Some("MISS"));
    let tampered = query.replace("fox", "fax");
    assert_eq!(w.get(&tampered, None, false).err().unwrap(), Error::BadSignature);
    let other_project = query.replace("proj-s", "proj-a");
    assert_eq!(w.get(&other_project, None, false).err().unwrap(), Error::BadSignature);
}

#[test]
fn the_budget_stops_misses_but_never_hits() {
    use crate::core::stored::stats::Counter;
    let w = World::new();
    let (key, _) = add_project(&w.kv, "proj-small", 4, 2);
    let get = |q: &str| w.get(q, Some(key.as_str()), false);
    get("prompt=one").unwrap();
    get("prompt=two").unwrap();
    let e = get("prompt=three").err().unwrap();
    assert_eq!(e.status(), 429);
    assert!(e.retry_after().unwrap() <= 3600);
    assert_eq!(header(&get("prompt=one").unwrap(), "x-cache-status"), Some("HIT"));
    assert_eq!(w.provider.calls.get(), 2);
    assert_eq!(w.counter("proj-small", Counter::Generations), 2);
    assert_eq!(w.counter("proj-small", Counter::Hits), 1);
}

#[test]
fn a_failed_generation_spends_its_budget() {
    let w = World::new();
    let (key, _) = add_project(&w.kv, "proj-one", 5, 1);
    *w.provider.answer.borrow_mut() = Some(Error::Provider("down".into()));
    assert_eq!(w.get("prompt=a", Some(key.as_str()), false).err().unwrap().status(), 502);
    *w.provider.answer.borrow_mut() = None;
    let e = w.get("prompt=a", Some(key.as_str()), false).err().unwrap();
    assert_eq!(e.code(), "budget_exceeded", "the failed call was a call");
    assert_eq!(w.provider.calls.get(), 1);
}

#[test]
fn concurrent_identical_misses_make_one_generation_on_every_runtimes_semantics() {
    use crate::core::stored::stats::Counter;
    for semantics in [Semantics::SpinSqlite, Semantics::SpinRedis, Semantics::WasmCloud] {
        let w = World::on(semantics);
        let replies = concurrently(&w, 5, "prompt=crowd", &w.alpha);
        assert_eq!(w.provider.calls.get(), 1, "{semantics:?}");
        let statuses: Vec<_> = replies
            .iter()
            .map(|r| {
                header(r.as_ref().unwrap_or_else(|e| panic!("{semantics:?}: {e:?}")), "x-cache-status")
                    .unwrap()
            })
            .collect();
        assert_eq!(statuses.iter().filter(|s| **s == "MISS").count(), 1, "{semantics:?}");
        let coalesced =
            replies.iter().filter(|r| header(r.as_ref().unwrap(), "x-cache-coalesced") == Some("true"));
        assert_eq!(coalesced.count(), 4);
        let first = body(replies[0].as_ref().unwrap());
        assert!(replies.iter().all(|r| body(r.as_ref().unwrap()) == first));
        assert_eq!(w.counter("proj-a", Counter::Entries), 1);
        assert!(w.kv.map.borrow().keys().all(|k| !k.starts_with("lease:")), "the lease is released");
        assert!(w.env.elapsed_ms() < 5_000, "{semantics:?}: nobody waited for long");
    }
}

/// Without compare-and-swap (wasmCloud), on a store whose reads see a write
/// only 30 ms after it (every request reads the free lease before any claim
/// shows): claims settle for 100 ms and exactly one owner generates.
#[test]
fn thirty_concurrent_misses_make_one_generation_without_compare_and_swap() {
    use crate::core::stored::stats::Counter;
    let w = World::lagging(Semantics::WasmCloud, 30);
    let replies = concurrently(&w, 30, "prompt=crowd", &w.alpha);
    assert_eq!(w.provider.calls.get(), 1, "one generation");
    let misses = replies.iter().filter(|r| header(r.as_ref().unwrap(), "x-cache-status") == Some("MISS"));
    assert_eq!(misses.count(), 1);
    assert_eq!((w.counter("proj-a", Counter::Entries), w.entries()), (1, 1));
    assert_eq!(w.store.objects.borrow().len(), 1, "no object without an entry");
    assert!(w.kv.map.borrow().keys().all(|k| !k.starts_with("lease:")), "the lease is released");
    assert!(w.env.elapsed_ms() < 2_000, "{} ms", w.env.elapsed_ms());
}

#[test]
fn waiters_share_the_owners_failure_but_newcomers_retry() {
    let w = World::new();
    *w.provider.answer.borrow_mut() = Some(Error::PromptRefused("SAFETY".into()));
    let replies = concurrently(&w, 4, "prompt=nope", &w.alpha);
    assert_eq!(w.provider.calls.get(), 1, "waiters did not retry");
    assert!(replies.iter().all(|r| r.as_ref().err().map(Error::status) == Some(422)));
    *w.provider.answer.borrow_mut() = None;
    assert_eq!(w.get("prompt=nope", Some(&w.alpha), false).unwrap().status, 200, "errors are not cached");
}

#[test]
fn a_dead_owners_lease_is_taken_over_after_it_expires() {
    let w = World::new();
    let (_, request) = crate::core::http::request::parse("prompt=orphan", 100).unwrap();
    let slot = Slot::new(&w.config, "proj-a", &request).unwrap();
    let key = crate::core::stored::keys::lease("proj-a", &slot.hash);
    let dead = crate::core::decide::single_flight::Lease::new(0xdead, START_UNIX * 1000, 2);
    w.kv.set(&key, &dead.encode()).unwrap();
    let reply = w.get("prompt=orphan", Some(&w.alpha), false).unwrap();
    assert_eq!(header(&reply, "x-cache-status"), Some("MISS"));
    assert!(w.env.elapsed_ms() >= 2_000, "it waited for the lease to expire");
    assert_eq!(w.provider.calls.get(), 1);
}

#[test]
fn a_waiter_gives_up_with_503_after_the_coalesce_wait() {
    let mut w = World::new();
    w.config.generation_lease_seconds = 600;
    w.config.coalesce_wait_seconds = 5;
    let (_, request) = crate::core::http::request::parse("prompt=slow", 100).unwrap();
    let slot = Slot::new(&w.config, "proj-a", &request).unwrap();
    let key = crate::core::stored::keys::lease("proj-a", &slot.hash);
    w.kv.set(&key, &crate::core::decide::single_flight::Lease::new(0xb05, START_UNIX * 1000, 600).encode())
        .unwrap();
    let e = w.get("prompt=slow", Some(&w.alpha), false).err().unwrap();
    assert_eq!(e.status(), 503);
    assert!(e.retry_after().is_some());
    assert_eq!(w.provider.calls.get(), 0);
}

#[test]
fn if_none_match_gives_304_without_reading_the_object() {
    let w = World::new();
    let miss = w.get("prompt=tag", Some(&w.alpha), false).unwrap();
    let etag = header(&miss, "etag").unwrap().to_string();
    w.store.objects.borrow_mut().clear(); // a 304 must not need the object
    let r = w.live("prompt=tag", &[("x-api-key", &w.alpha), ("if-none-match", &etag)], false).unwrap();
    assert_eq!(r.status, 304);
    assert!(body(&r).is_empty());
    assert_eq!(header(&r, "etag"), Some(etag.as_str()));
    let other =
        w.live("prompt=tag", &[("x-api-key", &w.alpha), ("if-none-match", "\"nope\"")], false).unwrap();
    assert_eq!(header(&other, "x-cache-status"), Some("MISS"), "no match: the object is read (and healed)");
}

/// Failures and damaged state: corrupt records, refusals, limits.
#[path = "live_failure_tests.rs"]
mod failures;

/// Two owners after all (a lease that expired under a slow generation, or a
/// race between a lookup and a lease): the entry stored first stays, the
/// other is not written, its object is deleted and nothing is counted for it.
#[test]
fn an_entry_stored_meanwhile_by_another_request_stays_and_is_not_counted_twice() {
    use super::make::Made;
    use super::store::{self, Batch, Item, Kind, Replacing, Stored};
    use crate::core::stored::entry::Entry;
    use crate::core::stored::stats::Counter;
    let w = World::new();
    w.get("prompt=race", Some(&w.alpha), false).unwrap();
    let (_, request) = crate::core::http::request::parse("prompt=race", 100).unwrap();
    let slot = Slot::new(&w.config, "proj-a", &request).unwrap();
    let first = Entry::decode(&w.kv.get(&slot.entry_key).unwrap().unwrap()).unwrap();
    let late = |id: &str, size: u64| {
        let entry =
            Entry { image_id: id.into(), object_key: format!("live/{id}.png"), size, ..first.clone() };
        Made { entry, bytes: vec![1; size as usize], timing: None, derive_ms: 0 }
    };
    let ctx = w.ctx();
    let put = |made: &Made, replacing| {
        let item = Item { kind: Kind::Original, slot: &slot, made, replacing, read_under_lease: false };
        w.block_on(store::store(&ctx, Batch { image: item, with: None })).image.unwrap()
    };
    let before = (w.counter("proj-a", Counter::Entries), w.counter("proj-a", Counter::Bytes));
    let second = late("late", 99);
    match put(&second, Replacing::Nothing) {
        Stored::Lost(winner) => assert_eq!(winner.image_id, first.image_id),
        _ => panic!("the late entry overwrote the first"),
    }
    assert_eq!((w.counter("proj-a", Counter::Entries), w.counter("proj-a", Counter::Bytes)), before);
    assert!(!w.store.objects.borrow().contains_key("live/late.png"), "the loser's object is deleted");
    // Replacing the entry that is there is a replacement: counted as one, the old object gone.
    let third = late("third", 99);
    assert!(matches!(put(&third, Replacing::This(&first)), Stored::Written));
    assert_eq!(w.counter("proj-a", Counter::Entries), before.0);
    assert_eq!(w.counter("proj-a", Counter::Bytes), 99);
    assert!(!w.store.objects.borrow().contains_key(&first.object_key));
    // One that vanished meanwhile (purged): a new entry, counted again.
    w.kv.delete(&slot.entry_key).unwrap();
    let fourth = late("fourth", 5);
    assert!(matches!(put(&fourth, Replacing::This(&third.entry)), Stored::Written));
    assert_eq!(w.counter("proj-a", Counter::Entries), before.0 + 1);
}

#[test]
fn a_failing_model_falls_back_within_one_budget_unit_and_says_which_made_it() {
    use crate::core::stored::stats::Counter;
    let w = World::new();
    let (key, _) = add_project(&w.kv, "proj-fb", 6, 1);
    let busy = Error::ProviderBusy { retry_after: 5, detail: "503".into() };
    w.provider.failing.borrow_mut().insert("o".into(), busy);
    let r = w.get("prompt=fox&model=other", Some(key.as_str()), false).unwrap();
    assert_eq!(header(&r, "x-model-used"), Some("gemini"));
    assert_eq!(*w.provider.models.borrow(), ["o", "m"]);
    assert_eq!(w.counter("proj-fb", Counter::Generations), 1, "one budget unit for both calls");
    let hit = w.get("prompt=fox&model=other", Some(key.as_str()), false).unwrap();
    assert_eq!((header(&hit, "x-cache-status"), header(&hit, "x-model-used")), (Some("HIT"), Some("gemini")));
    assert_eq!(w.provider.calls.get(), 2);
}

#[test]
fn a_fallback_that_could_outlast_the_lease_is_not_tried() {
    // The fakes' lease is 120 s and their provider timeout 1 s: a primary
    // that failed 115 s in leaves 5 s, less than a call and storing need.
    let w = World::new();
    let busy = Error::ProviderBusy { retry_after: 5, detail: "503".into() };
    w.provider.failing.borrow_mut().insert("o".into(), busy);
    *w.provider.takes.borrow_mut() = Some((w.env.now_ms.clone(), 115_000));
    let e = w.get("prompt=slow&model=other", Some(w.alpha.as_str()), false).err().unwrap();
    assert_eq!((e.status(), e.code()), (503, "provider_busy"));
    assert_eq!(*w.provider.models.borrow(), ["o"], "no second call");
    assert_eq!(w.entries(), 0);
    // 100 s in, one more call and the store still fit: the fallback is tried.
    *w.provider.takes.borrow_mut() = Some((w.env.now_ms.clone(), 100_000));
    let r = w.get("prompt=quicker&model=other", Some(w.alpha.as_str()), false).unwrap();
    assert_eq!(header(&r, "x-model-used"), Some("gemini"));
}

#[test]
fn a_refusal_or_a_model_without_fallback_does_not_fall_back() {
    let w = World::new();
    let key = Some(w.alpha.as_str());
    w.provider.failing.borrow_mut().insert("o".into(), Error::PromptRefused("SAFETY".into()));
    assert_eq!(w.get("prompt=a&model=other", key, false).err().unwrap().status(), 422);
    w.provider.failing.borrow_mut().insert("o".into(), Error::Provider("500".into()));
    assert_eq!(w.get("prompt=b&model=plain", key, false).err().unwrap().status(), 502);
    assert_eq!(*w.provider.models.borrow(), ["o", "o"], "no second call");
    assert_eq!(w.entries(), 0);
}

#[test]
fn model_seed_and_template_are_checked_and_keyed() {
    let w = World::new();
    let key = Some(w.alpha.as_str());
    let e = w.get("prompt=a&model=nope", key, false).err().unwrap();
    assert_eq!(e.public_message(), "parameter 'model' must be one of gemini, other, plain, seeded");
    let e = w.get("prompt=a&model=plain&seed=1", key, false).err().unwrap();
    assert!(e.public_message().contains("takes no seed"), "{e:?}");
    assert_eq!(w.get("prompt=a&template=baroque", key, false).err().unwrap().status(), 400);
    assert_eq!(w.provider.calls.get(), 0);
    let plain = w.get("prompt=a", key, false).unwrap();
    let seeded = w.get("prompt=a&seed=7", key, false).unwrap();
    let other = w.get("prompt=a&model=plain", key, false).unwrap();
    let framed = w.get("prompt=a&template=sticker", key, false).unwrap();
    let ids: std::collections::BTreeSet<_> = [&plain, &seeded, &other, &framed]
        .iter()
        .map(|r| header(r, "x-image-id").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4, "model, seed and template are each part of the key");
    assert_eq!(w.provider.calls.get(), 4);
    let body = String::from_utf8(body(&framed)).unwrap();
    assert!(body.starts_with("PNG:A die-cut sticker"), "the provider got the framed prompt: {body}");
    assert_eq!(header(&other, "x-model-used"), Some("plain"));
    assert_eq!(header(&plain, "x-model-used"), Some("gemini"));
}

#[test]
fn refs_send_the_referenced_images_and_key_by_their_ids_and_aliases_move() {
    use crate::api::fakes::request;
    use crate::core::http::routes::Method;
    let w = World::new();
    let key = w.alpha.clone();
    let get = |q: &str| w.get(q, Some(key.as_str()), false);
    let a = get("prompt=logo+a").unwrap();
    let b = get("prompt=logo+b").unwrap();
    let (a_id, b_id) =
        (header(&a, "x-image-id").unwrap().to_string(), header(&b, "x-image-id").unwrap().to_string());
    let put = |name: &str, id: &str| {
        let body = format!(r#"{{"image_id":"{id}"}}"#);
        w.request(request(
            Method::Put,
            &format!("/api/v1/aliases/{name}"),
            &[("x-api-key", &key)],
            body.as_bytes(),
        ))
    };
    assert_eq!(put("logo", &a_id).unwrap().status, 200);
    let with_refs = get(&format!("prompt=a+mug&ref=@logo&ref={b_id}")).unwrap();
    let inputs = w.provider.inputs.borrow().last().cloned().unwrap();
    let mut expected = vec![body(&a), body(&b)];
    let mut got = inputs.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "the referenced images' bytes, as the provider receives them");
    assert_eq!(
        header(&get(&format!("prompt=a+mug&ref={b_id}&ref={a_id}")).unwrap(), "x-cache-status"),
        Some("HIT"),
        "an alias is its image; refs are a set"
    );
    assert_eq!(put("logo", &b_id).unwrap().status, 200);
    let moved = get(&format!("prompt=a+mug&ref=@logo&ref={b_id}")).unwrap();
    assert_ne!(
        header(&moved, "x-image-id"),
        header(&with_refs, "x-image-id"),
        "a moved alias is another key"
    );
    // Another project's image, an unknown alias or id: 404, nothing generated.
    let calls = w.provider.calls.get();
    let theirs = header(&w.get("prompt=theirs", Some(w.beta.as_str()), false).unwrap(), "x-image-id")
        .unwrap()
        .to_string();
    for q in [format!("prompt=x&ref={theirs}"), "prompt=x&ref=@nope".into(), "prompt=x&ref=0000".into()] {
        assert_eq!(get(&q).err().unwrap().status(), 404, "{q}");
    }
    assert_eq!(w.provider.calls.get(), calls + 1, "only the other project's own image was generated");
    assert_eq!(put("theirs", &theirs).err().unwrap().status(), 404, "an alias names the project's own image");
    assert_eq!(get("prompt=x&ref=a&ref=b&ref=c&ref=d").err().unwrap().status(), 400, "at most 3");
}

#[test]
fn a_seeded_request_never_falls_back_to_a_model_without_seeds() {
    let w = World::new();
    let key = Some(w.alpha.as_str());
    let busy = Error::ProviderBusy { retry_after: 5, detail: "503".into() };
    w.provider.failing.borrow_mut().insert("s".into(), busy);
    assert_eq!(w.get("prompt=a&model=seeded&seed=3", key, false).err().unwrap().status(), 503);
    assert_eq!(*w.provider.models.borrow(), ["s"], "the fallback takes no seed: not asked");
    let r = w.get("prompt=a&model=seeded", key, false).unwrap();
    assert_eq!(header(&r, "x-model-used"), Some("plain"), "without a seed it falls back");
}
