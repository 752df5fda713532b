//! The per-client miss limit through the real runtime: the peer address
//! comes from the host (banatie-host, or Spin's `spin-client-addr`), never
//! from what the client says.

use std::net::Ipv4Addr;

use crate::support::host::{standard_vars, Host};
use crate::support::http::send;
use crate::support::{gemini::Gemini, raw, s3_endpoint, unique};

fn signed(host: &Host, key: &str, prompt: &str) -> String {
    let body = serde_json::json!({ "prompt": prompt }).to_string();
    let r = send("POST", &host.url("/api/v1/live/sign"), &[("x-api-key", key)], body.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["path"].as_str().unwrap().to_string()
}

/// A GET of `path` from `source`, sending `extra` header lines.
fn get_from(host: &Host, source: Ipv4Addr, path: &str, extra: &[&[u8]]) -> (u16, String) {
    raw::send_from(source, &host.base, &raw::get(path.as_bytes(), extra))
}

pub fn a_client_gets_exactly_its_misses_and_another_client_is_unaffected() {
    let gemini = Gemini::start();
    let mut vars = standard_vars(s3_endpoint(), &gemini.url);
    vars.retain(|(n, _)| n != "client_misses_per_hour");
    vars.push(("client_misses_per_hour".into(), "5".into()));
    let host = Host::start(&vars);
    let key = host.create_project("limits");
    let crowd = unique("crowd");
    let paths: Vec<String> = (0..40).map(|i| signed(&host, &key, &format!("{crowd} {i}"))).collect();
    // Forty new prompts at once from 127.0.0.1, half of them claiming to be
    // someone else in the runtime's own header.
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let forged: &[&[u8]] = if i % 2 == 0 { &[b"spin-client-addr: 198.51.100.99:1"] } else { &[] };
                let host = &host;
                s.spawn(move || get_from(host, Ipv4Addr::LOCALHOST, p, forged))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let count = |status: u16| answers.iter().filter(|(s, _)| *s == status).count();
    assert_eq!((count(200), count(429)), (5, 35), "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    assert_eq!(gemini.calls(), 5, "exactly five generations");
    let (_, refused) = answers.iter().find(|(s, _)| *s == 429).unwrap();
    assert!(refused.contains("\"rate_limited\""), "{refused}");
    assert_eq!(raw::header(refused, "x-ratelimit-remaining"), Some("0"));
    assert!(raw::header(refused, "retry-after").is_some());

    // A HIT is served to the limited client, and costs nothing.
    let (i, _) = answers.iter().enumerate().find(|(_, (s, _))| *s == 200).unwrap();
    let (status, hit) = get_from(&host, Ipv4Addr::LOCALHOST, &paths[i], &[]);
    assert_eq!((status, raw::header(&hit, "x-cache-status")), (200, Some("HIT")));
    assert_eq!(raw::header(&hit, "x-ratelimit-limit"), Some("5"));
    assert_eq!(raw::header(&hit, "x-ratelimit-remaining"), Some("0"));

    // Another peer address has its own allowance, counted exactly.
    let other = Ipv4Addr::new(127, 0, 0, 2);
    for remaining in ["4", "3"] {
        let path = signed(&host, &key, &unique("another client"));
        let (status, answer) = get_from(&host, other, &path, &[]);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(raw::header(&answer, "x-cache-status"), Some("MISS"));
        assert_eq!(raw::header(&answer, "x-ratelimit-remaining"), Some(remaining));
    }
    assert_eq!(gemini.calls(), 7);
}
