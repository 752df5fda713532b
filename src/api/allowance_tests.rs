//! The per-client miss limit over fakes: exact under concurrency, per
//! client, HITs free, failures given back, the runtime's address only.

use crate::api::fakes::{add_project, body, live_request, World};
use crate::api::{run, Reply};
use crate::core::routes::LIVE_PATH;
use crate::core::{signature, Error};

/// A world whose per-client limit is `limit`, and a signer for its project.
fn world(limit: u32) -> (World, impl Fn(&str) -> String) {
    let mut w = World::new();
    w.config.client_misses_per_hour = limit;
    let (_, secret) = add_project(&w.kv, "proj-pub", 9, 1000);
    let sign = move |prompt: &str| {
        let pairs =
            vec![("prompt".to_string(), prompt.to_string()), ("project".to_string(), "proj-pub".to_string())];
        let path = signature::signed_path(&secret, LIVE_PATH, &pairs);
        path.split_once('?').unwrap().1.to_string()
    };
    (w, sign)
}

fn from(w: &World, query: &str, addrs: &[&str]) -> Result<Reply<Vec<u8>>, Error> {
    let headers: Vec<(&str, &str)> = addrs.iter().map(|a| ("spin-client-addr", *a)).collect();
    w.live(query, &headers, false)
}

fn limit_header(r: &Reply<Vec<u8>>) -> (Option<&str>, Option<&str>) {
    (r.header("x-ratelimit-limit"), r.header("x-ratelimit-remaining"))
}

#[test]
fn forty_concurrent_new_prompts_from_one_client_make_exactly_its_limit_and_others_are_unaffected() {
    let (w, sign) = world(5);
    let ctx = w.ctx();
    let queries: Vec<String> = (0..40).map(|i| sign(&format!("crowd {i}"))).collect();
    let requests =
        queries.iter().map(|q| live_request(q, &[("spin-client-addr", "203.0.113.1:4000")], false));
    let replies = w.block_on(futures::future::join_all(requests.map(|r| run(&ctx, r))));
    let misses =
        replies.iter().filter(|r| r.as_ref().is_ok_and(|r| r.header("x-cache-status") == Some("MISS")));
    assert_eq!(misses.count(), 5);
    assert_eq!(w.provider.calls.get(), 5);
    let limited = replies.iter().filter(|r| matches!(r, Err(Error::RateLimited { .. })));
    assert_eq!(limited.count(), 35);
    let e = replies.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!((e.status(), e.code()), (429, "rate_limited"));
    assert!(e.retry_after().is_some_and(|s| s <= 3600));
    let other = from(&w, &sign("someone else"), &["198.51.100.2:1"]).unwrap();
    assert_eq!(other.header("x-cache-status"), Some("MISS"), "another client has its own allowance");
    assert_eq!(limit_header(&other), (Some("5"), Some("4")));
}

#[test]
fn the_headers_count_exactly_and_hits_never_count() {
    let (w, sign) = world(3);
    let client = ["192.0.2.7:1"];
    let first = from(&w, &sign("one"), &client).unwrap();
    assert_eq!(limit_header(&first), (Some("3"), Some("2")));
    let hit = from(&w, &sign("one"), &client).unwrap();
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(limit_header(&hit), (Some("3"), Some("2")), "a HIT costs nothing");
    assert_eq!(limit_header(&from(&w, &sign("two"), &client).unwrap()), (Some("3"), Some("1")));
    let reset = first.header("x-ratelimit-reset").unwrap().parse::<u64>().unwrap();
    assert_eq!(reset % 3600, 0);
    // A failed generation gives its unit back.
    *w.provider.answer.borrow_mut() = Some(Error::Provider("down".into()));
    assert_eq!(from(&w, &sign("three"), &client).err().unwrap().status(), 502);
    *w.provider.answer.borrow_mut() = None;
    assert_eq!(limit_header(&from(&w, &sign("three"), &client).unwrap()), (Some("3"), Some("0")));
    let e = from(&w, &sign("four"), &client).err().unwrap();
    assert_eq!(e.code(), "rate_limited");
    let hit = from(&w, &sign("two"), &client).unwrap();
    assert_eq!(hit.header("x-cache-status"), Some("HIT"), "HITs are served over the limit");
    assert!(!body(&hit).is_empty());
}

#[test]
fn only_the_runtimes_address_counts_and_keys_are_exempt() {
    let (w, sign) = world(1);
    // A client-sent spin-client-addr comes first; the runtime's value is last.
    from(&w, &sign("a"), &["10.9.9.9:1", "192.0.2.50:1"]).unwrap();
    let e = from(&w, &sign("b"), &["10.8.8.8:1", "192.0.2.50:2"]).err().unwrap();
    assert_eq!(e.code(), "rate_limited", "forging the header does not buy a new allowance");
    // Requests with the project's API key are the project's own servers: not limited.
    for i in 0..3 {
        let r = w.live(
            &format!("prompt=keyed+{i}"),
            &[("x-api-key", &w.alpha), ("spin-client-addr", "192.0.2.50:3")],
            false,
        );
        assert_eq!(r.unwrap().header("x-ratelimit-limit"), None);
    }
}
