//! What an operator reads: banatie-host's request log lines (text or JSON,
//! with the request's id, never a query) and the component's diagnostics
//! beside them; OTLP traces from banatie-host and from the real `spin up`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::gemini::{Behavior, Gemini};
use crate::support::host::{repo_root, standard_vars, Host};
use crate::support::http::send;
use crate::support::otlp::Collector;
use crate::support::runtime::{self, Runtime};
use crate::support::{enc, s3_endpoint, unique};

fn live(prompt: &str) -> String {
    format!("/api/v1/live/generate?prompt={}", enc(prompt))
}

/// The host's log as JSON objects, once `ready` holds of them (10 s at
/// most): the request line is written when its answer's body is done.
fn json_log(host: &Host, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let log = host.log();
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect();
        if ready(&lines) || started.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The request lines with this id.
fn request_lines<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["target"] == "banatie_host::request" && l["request_id"] == id).collect()
}

/// The request's one line (`None` before it is written); a request logged
/// twice fails the test.
fn request_line<'a>(lines: &'a [Value], id: &str) -> Option<&'a Value> {
    match request_lines(lines, id)[..] {
        [] => None,
        [line] => Some(line),
        ref more => panic!("request {id} is logged {} times: {more:#?}", more.len()),
    }
}

/// `--log-format json`: every line is one JSON object; each request is one
/// line with its method, route kind, status, cache status, durations, the
/// bytes it sent and its id (the client's when loggable, else a new one that
/// the answer carries); the component's diagnostic of a failed request
/// carries that request's id; no line holds the prompt, the key or the
/// query.
pub fn every_request_is_one_json_line_with_its_id_and_never_its_query() {
    let gemini = Gemini::start();
    let state = Arc::new(tempfile::tempdir().unwrap());
    let host = Host::start_in(state, &standard_vars(s3_endpoint(), &gemini.url), &["--log-format", "json"]);
    let key = host.create_project("logged");
    let (prompt, refused) = (unique("a fox that is logged"), unique("a fox that fails"));
    let url = host.url(&live(&prompt));
    let miss = send("GET", &url, &[("x-api-key", &key), ("x-request-id", "test-miss-1")], b"");
    assert_eq!((miss.status, miss.header("x-cache-status")), (200, Some("MISS")));
    assert_eq!(miss.header("x-request-id"), Some("test-miss-1"), "a loggable id is kept");
    let hit = send("GET", &url, &[("x-api-key", &key), ("x-request-id", "no spaces, please")], b"");
    let hit_id = hit.header("x-request-id").unwrap().to_string();
    assert!(hit_id.len() == 32 && hit_id.bytes().all(|b| b.is_ascii_hexdigit()), "{hit_id}");
    gemini.set(Behavior::Status(500));
    let failed =
        send("GET", &host.url(&live(&refused)), &[("x-api-key", &key), ("x-request-id", "test-fail-1")], b"");
    assert_eq!(failed.status, 502);
    assert_eq!(failed.header("x-error-code"), Some("provider_error"));

    let ids = ["test-miss-1", hit_id.as_str(), "test-fail-1"];
    json_log(&host, |l| ids.iter().all(|id| !request_lines(l, id).is_empty()));
    // A later request's line, written once theirs are: a second line of
    // any of them would be there by then (`request_line` fails on it).
    send("GET", &host.url("/api/v1/live/stats"), &[("x-api-key", &key), ("x-request-id", "test-last")], b"");
    let lines = json_log(&host, |l| !request_lines(l, "test-last").is_empty());
    let line = request_line(&lines, "test-miss-1").expect("the MISS is logged");
    assert_eq!(
        (&line["method"], &line["route"], &line["status"], &line["cache"]),
        (&Value::from("GET"), &Value::from("live"), &Value::from(200), &Value::from("MISS")),
        "{line}"
    );
    assert_eq!(line["bytes"], miss.body.len(), "{line}");
    assert!(line["duration_ms"].as_f64().unwrap() >= line["head_ms"].as_f64().unwrap(), "{line}");
    assert!(line["provider_ms"].as_f64().unwrap() > 0.0, "{line}");
    assert_eq!(request_line(&lines, &hit_id).unwrap()["cache"], "HIT");
    assert_eq!(request_line(&lines, "test-fail-1").unwrap()["status"], 502);
    let diagnostic = lines
        .iter()
        .find(|l| l["target"] == "component" && l["request_id"] == "test-fail-1")
        .unwrap_or_else(|| panic!("the component's line of the failure: {lines:#?}"));
    assert!(diagnostic["message"].as_str().unwrap().contains("provider_error"), "{diagnostic}");
    let log = host.log();
    for secret in [prompt.as_str(), refused.as_str(), &enc(&prompt), &key, "prompt=", "no spaces"] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
    // The whole-run check (main.rs) knows this key, and would find it.
    let secrets = crate::support::http::secrets();
    assert!(secrets.contains(&key), "the key the test was given is noted");
    assert!(crate::support::leaks(&log, &secrets).is_empty());
    assert_eq!(crate::support::leaks(&format!("{log}\nkey {key}"), &secrets), [key.as_str()]);
}

/// `--log-format text` (the default) is one line per request as well, with
/// the same fields.
pub fn text_logs_are_one_line_per_request() {
    let gemini = Gemini::start();
    let host = Host::start(&standard_vars(s3_endpoint(), &gemini.url));
    let key = host.create_project("text");
    let url = host.url(&live(&unique("a text-logged fox")));
    assert_eq!(send("GET", &url, &[("x-api-key", &key), ("x-request-id", "text-1")], b"").status, 200);
    let wait_for = |id: &str| {
        let started = Instant::now();
        loop {
            let log = host.log();
            if log.contains(&format!("request_id={id}")) {
                return log;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no request line for {id}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("text-1");
    // A later request's line, written once the first one's is: a second
    // line of the first request would be there by then.
    assert_eq!(send("GET", &url, &[("x-api-key", &key), ("x-request-id", "text-2")], b"").status, 200);
    let log = wait_for("text-2");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("request_id=text-1")).collect();
    assert_eq!(lines.len(), 1, "one line per request:\n{log}");
    let line = lines[0];
    for field in [" INFO ", "method=GET", "route=\"live\"", "status=200", "cache=\"MISS\"", "bytes="] {
        assert!(line.contains(field), "{field} in {line}");
    }
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// A MISS under a client's `traceparent`, with `OTEL_EXPORTER_OTLP_ENDPOINT`
/// set: the collector receives the request's server span in the client's
/// trace, its outbound calls (S3, the provider) as children, and the
/// provider received the `traceparent` of its call's span. Under banatie-host
/// the spans are its own (`GET live`, `s3 …`, `provider POST`); under the
/// real `spin up`, they are Spin's, sent to the same collector.
pub fn a_miss_is_one_trace_with_its_outbound_calls() {
    let collector = Collector::start();
    let gemini = Gemini::start();
    let env =
        [("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let state = Arc::new(tempfile::tempdir().unwrap());
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let host = Host::start_with_env(state, &repo_root().join("spin.toml"), &vars, &[], &env);
    let key = host.create_project("traced");
    let (trace, client_span) = (random_hex(16), random_hex(8));
    let traceparent = format!("00-{trace}-{client_span}-01");
    let url = host.url(&live(&unique("a traced fox")));
    let r = send("GET", &url, &[("x-api-key", &key), ("traceparent", &traceparent)], b"");
    assert_eq!((r.status, r.header("x-cache-status")), (200, Some("MISS")));
    let provider_saw: Vec<String> = gemini.traceparents();
    assert_eq!(provider_saw.len(), 1, "{provider_saw:?}");
    assert!(
        provider_saw[0].starts_with(&format!("00-{trace}-")),
        "the provider call is in the trace: {provider_saw:?}"
    );

    let ours = runtime::current() == Runtime::BanatieHost;
    let spans = collector.wait_for(Duration::from_secs(15), |spans| {
        let server = spans.iter().find(|s| s.trace_id == trace && s.parent_span_id == client_span);
        server.is_some_and(|server| {
            let children: Vec<_> = spans.iter().filter(|s| s.parent_span_id == server.span_id).collect();
            !ours
                || (children.iter().any(|s| s.name.starts_with("s3 "))
                    && children.iter().any(|s| s.name == "provider POST"))
        })
    });
    let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let names: Vec<String> = in_trace.iter().map(|s| format!("{} ({})", s.name, s.service)).collect();
    println!("spans of the trace: {names:?}");
    let server = in_trace
        .iter()
        .find(|s| s.parent_span_id == client_span)
        .unwrap_or_else(|| panic!("no span under the client's: {spans:#?}\n{}", host.log()));
    if ours {
        let provider_span = &provider_saw[0][36..52];
        let provider =
            in_trace.iter().find(|s| s.span_id == provider_span).expect("the provider call's span");
        assert_eq!((server.name.as_str(), server.service.as_str()), ("GET live", "banatie-host"));
        assert_eq!(server.attribute("banatie.cache_status"), Some("MISS"));
        assert_eq!(server.attribute("http.response.status_code"), Some("200"));
        assert_eq!(provider.name, "provider POST");
        assert_eq!(provider.parent_span_id, server.span_id);
        assert!(
            in_trace.iter().any(|s| s.name.starts_with("s3 ") && s.parent_span_id == server.span_id),
            "{names:?}"
        );
        for span in &in_trace {
            for (k, v) in &span.attributes {
                assert!(!v.contains("prompt") && !v.contains(&key), "{k}={v} in {}", span.name);
            }
        }
    } else {
        // Spin's own: its request span, the component's execution, and a
        // span for each outbound call and store operation.
        assert_eq!(server.service, "spin", "{names:?}");
        for name in ["execute_wasm_component banatie-live", "POST", "PUT", "wasi_key_value.get"] {
            assert!(in_trace.iter().any(|s| s.name == name), "{name} in {names:?}");
        }
    }
}
