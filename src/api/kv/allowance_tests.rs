//! The per-client miss limit over fakes: exact under concurrency, per
//! client, HITs free, failures given back, the runtime's address only.

use crate::api::fakes::{add_project, body, live_request, World};
use crate::api::{run, Reply};
use crate::core::http::routes::LIVE_PATH;
use crate::core::{decide::signature, Error};

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
    // A failed generation costs its unit, as it cost the provider a call.
    *w.provider.answer.borrow_mut() = Some(Error::Provider("down".into()));
    assert_eq!(from(&w, &sign("three"), &client).err().unwrap().status(), 502);
    *w.provider.answer.borrow_mut() = None;
    let e = from(&w, &sign("four"), &client).err().unwrap();
    assert_eq!(e.code(), "rate_limited");
    assert_eq!(w.provider.calls.get(), 3);
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

#[test]
fn refused_prompts_cost_the_client_as_they_cost_the_provider() {
    let (w, sign) = world(3);
    let client = ["192.0.2.8:1"];
    *w.provider.answer.borrow_mut() = Some(Error::PromptRefused("SAFETY".into()));
    let codes: Vec<String> = (0..22)
        .map(|i| from(&w, &sign(&format!("refused {i}")), &client).err().unwrap().code().to_string())
        .collect();
    assert_eq!(w.provider.calls.get(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "prompt_refused").count(), 3);
    assert_eq!(codes.iter().filter(|c| *c == "rate_limited").count(), 19);
    // Each refusal left its failure and its lease, noted to go with the hour.
    let failures = w.kv.keys_with_prefix("failed:");
    assert_eq!(failures.len(), 3);
}

/// The writes among `ops` (what a request changed in the store).
fn writes(ops: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let reads = ["get", "counter", "get_many"];
    ops.iter().filter(|(op, _)| !reads.contains(op)).cloned().collect()
}

#[test]
fn a_hit_from_a_new_client_writes_no_client_row() {
    let (w, sign) = world(3);
    from(&w, &sign("one"), &["192.0.2.9:1"]).unwrap();
    w.kv.take_ops();
    for n in 0..20 {
        let hit = from(&w, &sign("one"), &[&format!("198.51.100.{n}:1")]).unwrap();
        assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    }
    let ops = w.kv.take_ops();
    let rows: Vec<_> = writes(&ops).into_iter().filter(|(_, k)| k.starts_with("clientmiss:")).collect();
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(w.kv.keys_with_prefix("clientmiss:").len(), 1);
}

#[test]
fn client_rows_go_once_their_hour_is_over() {
    let (w, sign) = world(3);
    for n in 0..5 {
        from(&w, &sign(&format!("hour one {n}")), &[&format!("198.51.100.{n}:1")]).unwrap();
    }
    assert_eq!(w.kv.keys_with_prefix("clientmiss:").len(), 5);
    assert_eq!(w.kv.keys_with_prefix("expiry:").len(), 5);
    // An hour later the first reservation sweeps the hour before.
    w.env.now_ms.set(w.env.now_ms.get() + 3_600_000);
    from(&w, &sign("hour two"), &["203.0.113.50:1"]).unwrap();
    let left = w.kv.keys_with_prefix("clientmiss:");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("203.0.113.50"));
    assert_eq!(w.kv.keys_with_prefix("expiry:").len(), 1);
    assert_eq!(w.kv.keys_with_prefix("expiryseq:").len(), 1);
}

#[test]
fn six_addresses_of_one_ipv6_prefix_are_one_client() {
    let (w, sign) = world(2);
    let codes: Vec<String> = (1..=6)
        .map(|n| match from(&w, &sign(&format!("v6 {n}")), &[&format!("[2001:db8:0:7::{n:x}]:443")]) {
            Ok(r) => r.header("x-cache-status").unwrap().to_string(),
            Err(e) => e.code().to_string(),
        })
        .collect();
    assert_eq!(codes, ["MISS", "MISS", "rate_limited", "rate_limited", "rate_limited", "rate_limited"]);
    assert_eq!(w.provider.calls.get(), 2);
    // Another /64 is another client.
    assert!(from(&w, &sign("v6 other"), &["[2001:db8:0:8::1]:443"]).is_ok());
}
