//! `POST /api/v1/live/warm` over the fakes: one line per item as each
//! completes, at most `warm_concurrency` at a time, budgets and bad items
//! per item, a departed client stops what has not begun.

use serde_json::Value;

use crate::api::fakes::{add_project, request, Recorded, World};
use crate::api::run_streamed;
use crate::core::http::routes::Method;
use crate::core::ports::{KeyValue, Respond};

fn warm(w: &World, key: &str, body: &str, client: &Recorded) -> Result<(), crate::core::Error> {
    let req = request(Method::Post, "/api/v1/live/warm", &[("x-api-key", key)], body.as_bytes());
    w.block_on(run_streamed(&w.ctx(), req, client)).map(drop)
}

fn lines(client: &Recorded) -> Vec<Value> {
    let body = client.body();
    let text = String::from_utf8(body).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn prompts(range: std::ops::Range<usize>) -> String {
    let items: Vec<String> = range.map(|i| format!(r#"{{"prompt":"warm {i}"}}"#)).collect();
    format!("[{}]", items.join(","))
}

#[test]
fn thirty_prompts_ten_cached_make_twenty_generations_two_at_a_time_one_line_each_as_it_completes() {
    let w = World::new();
    *w.provider.takes.borrow_mut() = Some((w.env.now_ms.clone(), 1_000));
    for i in 0..10 {
        w.get(&format!("prompt=warm+{i}"), Some(&w.alpha), false).unwrap();
    }
    let calls_before = w.provider.calls.get();
    w.provider.most_in_flight.set(0);
    let client = Recorded::timed(w.env.now_ms.clone());
    warm(&w, &w.alpha, &prompts(0..30), &client).unwrap();
    assert_eq!(client.header("content-type").as_deref(), Some("application/x-ndjson"));
    let lines = lines(&client);
    assert_eq!(lines.len(), 30);
    let mut indexes: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    indexes.sort();
    assert_eq!(indexes, (0..30).collect::<Vec<_>>());
    let status = |i: u64| lines.iter().find(|l| l["index"] == i).unwrap()["status"].clone();
    assert!((0..10).all(|i| status(i) == "cached"));
    assert!((10..30).all(|i| status(i) == "generated"));
    assert!(lines.iter().all(|l| l["image_id"].is_string()));
    assert_eq!(w.provider.calls.get() - calls_before, 20);
    assert_eq!(w.provider.most_in_flight.get(), 2, "warm_concurrency at a time");
    // Each line as its item completed: the generated ones over time, not at the end.
    let at = client.at.borrow().clone();
    assert!(at.windows(2).all(|p| p[0] <= p[1]));
    assert!(at.first() < at.last(), "the lines came as their items completed: {at:?}");
}

#[test]
fn a_budget_that_runs_out_halfway_refuses_the_rest_and_spends_nothing_more() {
    let w = World::new();
    let (key, _) = add_project(&w.kv, "proj-w", 4, 5);
    let client = Recorded::default();
    warm(&w, &key, &prompts(0..12), &client).unwrap();
    let lines = lines(&client);
    assert_eq!(lines.len(), 12);
    let generated = lines.iter().filter(|l| l["status"] == "generated").count();
    let refused = lines.iter().filter(|l| l["error"]["code"] == "budget_exceeded").count();
    assert_eq!((generated, refused), (5, 7));
    assert_eq!(w.provider.calls.get(), 5);
}

#[test]
fn a_bad_item_is_its_own_error_line_and_a_bad_body_a_400() {
    let w = World::new();
    let client = Recorded::default();
    let body = r#"[{"prompt":"good"},{"prompt":"bad","w":"wide"},{"nope":1},{"prompt":"fine","aspect_ratio":"16:9"}]"#;
    warm(&w, &w.alpha, body, &client).unwrap();
    let lines = lines(&client);
    let by_index = |i: u64| lines.iter().find(|l| l["index"] == i).unwrap().clone();
    assert_eq!(by_index(0)["status"], "generated");
    assert_eq!(by_index(1)["error"]["code"], "bad_request");
    assert_eq!(by_index(2)["error"]["code"], "bad_request");
    assert_eq!(by_index(3)["status"], "generated");
    assert_eq!(w.provider.calls.get(), 2);
    for bad in ["not json", "{}", "[]", &prompts(0..101)] {
        let client = Recorded::default();
        let e = warm(&w, &w.alpha, bad, &client).expect_err("refused");
        assert_eq!(e.status(), 400, "{bad:.40}");
        assert!(!client.begun(), "refused before the answer began");
    }
    let huge = format!(r#"[{{"prompt":"{}"}}]"#, "x".repeat(2 << 20));
    assert_eq!(warm(&w, &w.alpha, &huge, &Recorded::default()).err().map(|e| e.status()), Some(413));
    assert_eq!(w.provider.calls.get(), 2, "nothing generated for bad bodies");
}

#[test]
fn a_client_that_leaves_after_five_lines_stops_what_has_not_begun_and_leaves_no_lease() {
    let w = World::new();
    let client = Recorded::default();
    client.leaves_after.set(Some(5));
    warm(&w, &w.alpha, &prompts(0..20), &client).unwrap();
    assert_eq!(lines(&client).len(), 5);
    // The five, and at most the two under way when it left: nothing more began.
    let calls = w.provider.calls.get();
    assert!((5..=7).contains(&calls), "{calls} generated");
    let now = w.env.now_ms.get();
    let held = w.kv.keys_with_prefix("lease:").into_iter().filter(|k| {
        matches!(
            crate::core::decide::single_flight::observe(now, w.kv.get(k).unwrap()),
            crate::core::decide::single_flight::Seen::Held(_)
        )
    });
    assert_eq!(held.count(), 0, "no lease left held");
    // A prompt it never reached generates at once.
    let started = w.env.now_ms.get();
    let miss = w.get("prompt=warm+19", Some(&w.alpha), false).unwrap();
    assert_eq!(miss.header("x-cache-status"), Some("MISS"));
    assert_eq!(w.env.now_ms.get(), started, "no lease to wait out");
}
