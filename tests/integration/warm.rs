//! `POST /api/v1/live/warm` through HTTP: one NDJSON line per item as each
//! completes, `warm_concurrency` at a time at the provider, a budget that
//! runs out halfway, bad input, and a client that hangs up.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::host::{standard_vars, Host};
use crate::support::{enc, s3_endpoint, unique, World};
use testkit::gemini::Gemini;
use testkit::stream::{self, Until};

fn items(prefix: &str, n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| format!(r#"{{"prompt":"{prefix} {i}"}}"#)).collect();
    format!("[{}]", items.join(","))
}

fn warm(host: &Host, key: &str, body: &str) -> stream::Streamed {
    let headers = [("x-api-key", key), ("content-type", "application/json")];
    stream::request("POST", &host.url("/api/v1/live/warm"), &headers, body.as_bytes(), Until::End)
}

fn lines(got: &stream::Streamed) -> Vec<(Duration, Value)> {
    got.lines.iter().map(|(at, l)| (*at, serde_json::from_str(l).unwrap())).collect()
}

pub fn thirty_prompts_ten_cached_make_twenty_generations_two_at_a_time_each_line_as_it_completes() {
    let w = World::new();
    w.gemini.set_delay(300);
    let key = w.host.create_project("warm");
    let prefix = unique("warm");
    for i in 0..10 {
        let r = w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(&format!("{prefix} {i}"))), &key);
        assert_eq!(r.header("x-cache-status"), Some("MISS"));
    }
    let before = w.gemini.calls();
    let got = warm(&w.host, &key, &items(&prefix, 30));
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(got.header("cache-control"), Some("no-store"));
    let lines = lines(&got);
    assert_eq!(lines.len(), 30);
    let mut indexes: Vec<u64> = lines.iter().map(|(_, l)| l["index"].as_u64().unwrap()).collect();
    indexes.sort();
    assert_eq!(indexes, (0..30).collect::<Vec<_>>());
    let status = |i: u64| lines.iter().find(|(_, l)| l["index"] == i).unwrap().1["status"].clone();
    assert!((0..10).all(|i| status(i) == "cached"));
    assert!((10..30).all(|i| status(i) == "generated"));
    assert_eq!(w.gemini.calls() - before, 20);
    assert_eq!(w.gemini.most_at_once(), 2, "warm_concurrency (2) at the provider at once");
    // Written as each item completed: over the ten 300 ms rounds, not at the end.
    let (first, last) = (lines[0].0, lines[29].0);
    assert!(last - first >= Duration::from_millis(2_000), "lines spread over {:?}", last - first);
    for i in 10..30 {
        let r = w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(&format!("{prefix} {i}"))), &key);
        assert_eq!(r.header("x-cache-status"), Some("HIT"), "item {i} is cached");
    }
}

pub fn a_budget_that_runs_out_halfway_refuses_the_rest_and_spends_nothing_more() {
    let w = World::new();
    let created = w.host.create_project_with(r#"{"name":"warm-budget","generations_per_hour":6}"#);
    let got = warm(&w.host, &created.api_key, &items(&unique("budget"), 12));
    let lines = lines(&got);
    assert_eq!(lines.len(), 12);
    let generated = lines.iter().filter(|(_, l)| l["status"] == "generated").count();
    let refused = lines.iter().filter(|(_, l)| l["error"]["code"] == "budget_exceeded").count();
    assert_eq!((generated, refused), (6, 6));
    assert_eq!(w.gemini.calls(), 6);
}

pub fn bad_warm_input_is_a_clear_4xx_and_makes_nothing() {
    let w = World::new();
    let key = w.host.create_project("warm-bad");
    for (body, status) in [
        ("not json".to_string(), 400),
        ("{}".to_string(), 400),
        ("[]".to_string(), 400),
        (items("many", 101), 400),
    ] {
        let r = crate::support::http::send(
            "POST",
            &w.host.url("/api/v1/live/warm"),
            &[("x-api-key", &key), ("content-type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, status, "{:.60}", body);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // 10 MB: refused as it arrives (the client may not even finish sending).
    let huge = format!(r#"[{{"prompt":"{}"}}]"#, "x".repeat(10 << 20));
    let head = format!(
        "POST /api/v1/live/warm HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\ncontent-type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        huge.len()
    );
    let (status, answer) =
        crate::support::raw::send(&w.host.base, &[head.as_bytes(), huge.as_bytes()].concat());
    assert_eq!(status, 413, "{}", answer.lines().next().unwrap_or(""));
    assert!(answer.contains("payload_too_large"), "{answer:.300}");
    // A bad item is its own line; the others proceed.
    let got = warm(&w.host, &key, r#"[{"prompt":"warm good"},{"prompt":"x","w":"wide"},{"nope":1}]"#);
    let lines = lines(&got);
    let line = |i: u64| lines.iter().find(|(_, l)| l["index"] == i).unwrap().1.clone();
    assert_eq!(line(0)["status"], "generated");
    assert_eq!(line(1)["error"]["code"], "bad_request");
    assert_eq!(line(2)["error"]["code"], "bad_request");
    assert_eq!(w.gemini.calls(), 1);
    // A bad progressive value is a 400 too.
    for bad in ["2", "yes"] {
        let r = w.host.get(&format!("/api/v1/live/generate?prompt=x&progressive={bad}"), &key);
        assert_eq!((r.status, r.error_code()), (400, "bad_request".to_string()));
    }
    assert_eq!(w.host.kv_keys("live:").len(), 1, "only the good item was stored");
}

pub fn a_client_that_hangs_up_after_five_lines_leaves_no_lease() {
    let gemini = Gemini::start();
    gemini.set_delay(400);
    let host = Host::start(&standard_vars(s3_endpoint(), &gemini.url));
    let key = host.create_project("warm-gone");
    let prefix = unique("gone");
    let addr = host.base.trim_start_matches("http://").to_string();
    let body = items(&prefix, 20);
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    let request = format!(
        "POST /api/v1/live/warm HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\ncontent-type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&seen).matches("\"index\"").count() < 5 {
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "the answer ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    drop(socket);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.held_leases().is_empty() {
        assert!(Instant::now() < deadline, "leases left: {:?}", host.held_leases());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(gemini.calls() < 20, "the rest were not begun: {} calls", gemini.calls());
    // A held lease would make this wait, then answer 503 busy.
    let miss = host.get(&format!("/api/v1/live/generate?prompt={}", enc(&format!("{prefix} 19"))), &key);
    assert_eq!((miss.status, miss.header("x-cache-status")), (200, Some("MISS")));
}
