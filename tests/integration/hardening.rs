//! The host as a production server (issue 12): load beyond capacity, slow
//! and idle clients, requests that run too long, hostile queries, corrupt
//! state. Every answer of the host's own is JSON; none is a 500.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::gemini::Gemini;
use crate::support::host::{standard_vars, Host, ADMIN_TOKEN};
use crate::support::http::{send, Reply};
use crate::support::{enc, raw, s3_endpoint, unique, World};

fn live(prompt: &str) -> String {
    format!("/api/v1/live/generate?prompt={}", enc(prompt))
}

fn host_with(gemini: &Gemini, extra: &[&str]) -> Host {
    Host::start_in(Arc::new(tempfile::tempdir().unwrap()), &standard_vars(s3_endpoint(), &gemini.url), extra)
}

fn big_project(host: &Host) -> String {
    host.create_project_with(r#"{"name":"load","generations_per_hour":1000}"#).api_key
}

/// `n` distinct slow misses at once.
fn crowd(host: &Host, key: &str, n: usize) -> Vec<Reply> {
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..n).map(|_| scope.spawn(move || host.get(&live(&unique("crowd")), key))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn assert_json_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.error_code(), code);
}

/// On main the pool held 128 requests (256 tables, two per instance) and the
/// 129th got `500 text/plain`.
pub fn more_concurrent_requests_than_the_old_pool_are_all_served() {
    let gemini = Gemini::start();
    gemini.set_delay(1500);
    let host = host_with(&gemini, &[]); // the default pool, sized for the machine
    let key = big_project(&host);
    let replies = crowd(&host, &key, 140);
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}\n{}", host.log());
    assert_eq!(gemini.calls(), 140);
}

/// 4 slots, 20 distinct misses at once, the provider holding every answer
/// until the crowd is settled: exactly the 4 in the slots are served (one
/// provider call each), and each of the 16 others is a 503 JSON
/// `overloaded` with `Retry-After: 1` after waiting the whole queue timeout
/// (200 ms) for a slot, not refused at once.
pub fn beyond_capacity_requests_queue_then_get_503_json_with_retry_after() {
    const SLOTS: usize = 4;
    const CROWD: usize = 20;
    const QUEUE: Duration = Duration::from_millis(200);
    let gemini = Gemini::start();
    let host = host_with(&gemini, &["--max-concurrent-requests", "4", "--queue-timeout-ms", "200"]);
    let key = big_project(&host);
    gemini.hold();
    let replies: Vec<(Reply, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CROWD)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    let r = host.get(&live(&unique("crowd")), &key);
                    (r, started.elapsed())
                })
            })
            .collect();
        // Until the ones without a slot have had their answer (30 s at
        // most): the ones in the slots are held at the provider meanwhile.
        let started = Instant::now();
        while handles.iter().filter(|h| h.is_finished()).count() < CROWD - SLOTS
            && started.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        gemini.release();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = replies.iter().map(|(r, _)| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        SLOTS,
        "the slots' requests are served: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), CROWD - SLOTS, "{statuses:?}");
    for (r, took) in replies.iter().filter(|(r, _)| r.status == 503) {
        assert_json_error(r, 503, "overloaded");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(*took >= QUEUE, "refused after {took:?}: before the queue timeout");
    }
    assert_eq!(gemini.calls(), SLOTS, "one provider call per request served");
    // Capacity comes back once the crowd is gone.
    assert_eq!(host.get(&live(&unique("after the crowd")), &key).status, 200);
}

/// Reads until the server closes the connection; how long that took. The
/// server sends nothing before it closes.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => Some(started.elapsed()),
        Ok(n) => panic!("an answer before the close: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(started.elapsed()),
        Err(_) => None, // timed out: still open
    }
}

/// One whole answer off a keep-alive connection: its head, and as many
/// bytes of body as its `Content-Length` says (10 s at most).
fn read_answer(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                })
                .map_or(0, |v| v.parse::<usize>().unwrap());
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut buf).unwrap_or_else(|e| panic!("no whole answer ({e}): {text:?}"));
        assert!(n > 0, "closed before the whole answer: {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// `--header-timeout-seconds 1` is the one value: a connection without a
/// whole head is cut off, with nothing sent, no sooner than 1 s after it
/// was opened or after its last request; until then a keep-alive
/// connection answers its next request. (How much later than 1 s it is cut
/// is not timed: the 5 s bound only bounds the test.)
pub fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let w = World::new();
    let host = host_with(&w.gemini, &["--header-timeout-seconds", "1"]);
    let addr = host.base.trim_start_matches("http://").to_string();
    // Slowloris: half a request line, then nothing.
    let connected = Instant::now();
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /api/v1/live/gen").unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(5)).map(|_| connected.elapsed());
    let closed = closed.expect("a half-sent head is cut off");
    assert!(closed >= TIMEOUT, "a half-sent head was cut off after {closed:?}, before the header timeout");
    // Idle keep-alive: an exchange, a second one on the same connection
    // (it is kept alive), then silence.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /api/v1/live/stats HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_answer(&mut idle).starts_with("HTTP/1.1 401"));
    let sent = Instant::now();
    idle.write_all(b"GET /api/v1/live/stats HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_answer(&mut idle).starts_with("HTTP/1.1 401"), "the connection is kept alive");
    let closed = closed_within(&mut idle, Duration::from_secs(5)).map(|_| sent.elapsed());
    let closed = closed.expect("an idle connection is closed");
    assert!(closed >= TIMEOUT, "an idle connection was closed {closed:?} after its last request");
    // Connections that do nothing never stop the others.
    let _silent: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let key = host.create_project("still-served");
    assert_eq!(host.get(&live(&unique("served")), &key).status, 200);
}

/// The slow request is at the provider (not merely sent) when the quick one
/// is made, and still unanswered when the quick one is answered.
pub fn a_request_past_the_request_timeout_is_cut_off_with_503_json() {
    let gemini = Gemini::start();
    gemini.set_delay(8000);
    let host = host_with(&gemini, &["--request-timeout-seconds", "1"]);
    let key = host.create_project("patient");
    let (slow, quick, slow_was_pending) = std::thread::scope(|scope| {
        let slow = scope.spawn(|| host.get(&live(&unique("slow")), &key));
        let started = Instant::now();
        while gemini.calls() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the slow request never reached the provider"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let quick = host.get("/api/v1/live/stats", &key);
        let slow_was_pending = !slow.is_finished();
        (slow.join().unwrap(), quick, slow_was_pending)
    });
    assert_eq!(quick.status, 200, "others are served meanwhile");
    assert!(slow_was_pending, "the quick request was answered while the slow one was in flight");
    assert_json_error(&slow, 503, "timeout");
    assert!(slow.header("retry-after").is_some());
    assert!(host.kv_keys("live:").is_empty(), "nothing cached from a cut-off request");
}

pub fn a_request_without_host_is_400_json() {
    let w = World::new();
    let (status, answer) =
        raw::send(&w.host.base, b"GET /api/v1/live/stats HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains(r#""code":"bad_request""#), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/json"));
}

pub fn a_flood_of_parameter_names_is_a_400_before_anything_else() {
    let w = World::new();
    let names: String = (0..12_000).map(|i| format!("&{i:x}")).collect();
    let path = format!("/api/v1/live/generate?prompt=a{names}");
    assert!(path.len() < 64 * 1024 + 100);
    let r = send("GET", &w.host.url(&path), &[], b"");
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("more than 32 parameters"));
    // And as a signed URL, the same flood is the opaque 403.
    let signed = format!("/api/v1/live/generate?prompt=a&project=p&sig=x{names}");
    assert_eq!(send("GET", &w.host.url(&signed), &[], b"").status, 403);
}

pub fn a_corrupt_entry_is_regenerated_and_delete_always_removes_it() {
    let w = World::new();
    let key = w.host.create_project("corrupt");
    let path = live(&unique("a fragile entry"));
    assert_eq!(w.host.get(&path, &key).header("x-cache-status"), Some("MISS"));
    let entry = w.host.kv_keys("live:")[0].clone();
    let db = w.host.state.path().join("sqlite_key_value.db");
    let corrupt = |value: &[u8]| {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("UPDATE spin_key_value SET value = ?1 WHERE key = ?2", rusqlite::params![value, entry])
            .unwrap();
    };
    corrupt(b"{garbage");
    let healed = w.host.get(&path, &key);
    assert_eq!((healed.status, healed.header("x-cache-status")), (200, Some("MISS")));
    assert_eq!(w.host.get(&path, &key).header("x-cache-status"), Some("HIT"), "the entry was replaced");
    corrupt(br#"{"v":99}"#);
    let head = send("HEAD", &w.host.url(&path), &[("x-api-key", &key)], b"");
    assert_eq!(head.status, 404, "an unreadable entry is not cached");
    let purge = send("DELETE", &w.host.url(&path), &[("x-api-key", &key)], b"");
    assert_eq!(purge.status, 204);
    assert!(w.host.kv_get(&entry).is_none());
    assert_eq!(w.gemini.calls(), 2);
}

pub fn small_things_a_client_would_trip_over() {
    let w = World::new();
    // RFC 7235: the auth scheme is case-insensitive.
    let lower = send(
        "POST",
        &w.host.url("/api/v1/projects"),
        &[("authorization", &format!("bearer {ADMIN_TOKEN}")), ("content-type", "application/json")],
        br#"{"name":"lower"}"#,
    );
    assert_eq!(lower.status, 201, "{}", String::from_utf8_lossy(&lower.body));
    let key = lower.json()["api_key"].as_str().unwrap().to_string();
    // An encoded `sig` name keeps a tampered signed URL opaque.
    let r = send("GET", &w.host.url("/api/v1/live/generate?prompt=%zz&project=p&si%67=x"), &[], b"");
    assert_eq!(r.status, 403);
    // A prompt of invisible characters is empty.
    for invisible in ["%E2%80%8B", "%EF%BB%BF", "%E2%80%8B%EF%BB%BF%E2%81%A0"] {
        let r = w.host.get(&format!("/api/v1/live/generate?prompt={invisible}"), &key);
        assert_eq!(r.status, 400, "{invisible}");
    }
    // NFC and NFD spellings are one prompt and one generation.
    let tag = unique("x");
    let nfc = w.host.get(&format!("{}%20caf%C3%A9", live(&tag)), &key);
    let nfd = w.host.get(&format!("{}%20cafe%CC%81", live(&tag)), &key);
    assert_eq!((nfc.header("x-cache-status"), nfd.header("x-cache-status")), (Some("MISS"), Some("HIT")));
    assert_eq!(w.gemini.calls(), 1);
    // The KV file holds secrets: owner-only.
    use std::os::unix::fs::PermissionsExt;
    let db = w.host.state.path().join("sqlite_key_value.db");
    assert_eq!(std::fs::metadata(db).unwrap().permissions().mode() & 0o777, 0o600);
}

/// The worker threads of a banatie-host started by the tests: tokio's
/// default, `TOKIO_WORKER_THREADS` (which the host inherits) or else the
/// cores this process may use, as `std::thread::available_parallelism`
/// counts them.
fn host_workers() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// KV calls are synchronous (SQLite waits on its lock): they must not hold
/// the async workers, or a stuck store stalls requests that never touch it.
pub fn a_stuck_kv_store_does_not_stall_unrelated_requests() {
    let w = World::new();
    let key = w.host.create_project("stuck");
    let path = live(&unique("a hit while the store is locked"));
    assert_eq!(w.host.get(&path, &key).status, 200);
    let db = w.host.state.path().join("sqlite_key_value.db");
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap(); // every writer now waits
    let (answered_while_locked, hits) = std::thread::scope(|scope| {
        // More blocked writers (each HIT counts itself) than the host has workers.
        let hits: Vec<_> = (0..host_workers() + 2).map(|_| scope.spawn(|| w.host.get(&path, &key))).collect();
        std::thread::sleep(Duration::from_millis(300));
        let unrelated = send("GET", &w.host.url("/no/such/route"), &[], b"");
        // Answered while every HIT was still held by the lock (else the
        // test proves nothing: the HITs were done, or never blocked).
        let answered_while_locked = unrelated.status == 404 && hits.iter().all(|h| !h.is_finished());
        locker.execute_batch("COMMIT").unwrap();
        (answered_while_locked, hits.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>())
    });
    assert!(answered_while_locked, "a request that needs no KV was answered while the store was locked");
    assert!(hits.iter().all(|r| r.status == 200), "the blocked requests finish once the lock is gone");
    assert!(hits.iter().all(|r| r.header("x-cache-status") == Some("HIT")));
}

/// A test-only component whose handler loops forever: made here from a
/// one-function core module and the `wasi:http` WIT that spin-sdk ships.
fn looping_component() -> Vec<u8> {
    let (mut resolve, _) = crate::conformance::spin_world();
    let world = r#"
        package banatie:looping;
        world looping { export wasi:http/incoming-handler@0.2.6; }
    "#;
    let pkg = resolve.push_str(std::path::Path::new("looping.wit"), world).unwrap();
    let world = resolve.select_world(&[pkg], Some("looping")).unwrap();
    let mut module = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "wasi:http/incoming-handler@0.2.6#handle") (param i32 i32)
               (loop $forever (br $forever))))"#,
    )
    .unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}

pub fn a_looping_guest_is_cut_off_at_the_deadline_and_the_host_keeps_serving() {
    let state = Arc::new(tempfile::tempdir().unwrap());
    let wasm = state.path().join("looping.wasm");
    std::fs::write(&wasm, looping_component()).unwrap();
    // banatie-host checks banatie-live's configuration before it listens, so
    // the stand-in component gets a valid one too.
    let vars = standard_vars(s3_endpoint(), "http://127.0.0.1:9");
    let declared: String = vars.iter().map(|(k, v)| format!("{k} = {{ default = {v:?} }}\n")).collect();
    let passed: String = vars.iter().map(|(k, _)| format!("{k} = \"{{{{ {k} }}}}\"\n")).collect();
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"looping\"\n[variables]\n{declared}\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"looping\"\n[component.looping]\nsource = {:?}\n\
         [component.looping.variables]\n{passed}",
        wasm.display().to_string()
    );
    let path = state.path().join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    let host = Host::start_with_manifest(state, &path, &[], &["--request-timeout-seconds", "1"]);
    // Raw requests: this app is not the one docs/openapi.yaml describes.
    // Each is cut off after 1 s of its own; 20 s without an answer is a host
    // that no longer cuts anything off.
    let spin = || raw::send_within(&host.base, &raw::get(b"/spin", &[]), Duration::from_secs(20));
    // More looping requests than the host has workers (and cores): each
    // one spins until its deadline.
    let replies: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..host_workers() + 2).map(|_| scope.spawn(spin)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The host is still there and still cuts the next one off.
    for (status, answer) in replies.iter().chain([spin()].iter()) {
        assert_eq!(*status, 503, "{}", if answer.is_empty() { "no answer within 20 s" } else { answer });
        assert!(answer.contains(r#""code":"timeout""#) && answer.contains("no-store"), "{answer}");
    }
    assert!(host.log().contains("request cut off"), "{}", host.log());
}

/// On main a 100–300 MB inline image made the guest run out of memory and
/// trap: budget unit lost, lease stuck "generating".
pub fn an_oversized_provider_image_is_502_counted_and_releases_the_waiters() {
    let gemini = Gemini::start();
    gemini.set(crate::support::gemini::Behavior::Sized(3 << 20));
    gemini.set_delay(300);
    let mut vars = standard_vars(s3_endpoint(), &gemini.url);
    vars.push(("max_image_bytes".into(), (1u32 << 20).to_string()));
    let host = Host::start(&vars);
    let key = host.create_project_with(r#"{"name":"big","generations_per_hour":2}"#).api_key;
    let path = live(&unique("an enormous picture"));
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3).map(|_| scope.spawn(|| host.get(&path, &key))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &replies {
        assert_eq!((r.status, r.error_code().as_str()), (502, "provider_error"));
    }
    assert_eq!(gemini.calls(), 1, "the waiters shared the owner's failure");
    assert_eq!(host.stats(&key)["budget"]["used"], 1, "the call counts: the provider was called");
    assert!(host.held_leases().is_empty() && host.kv_keys("live:").is_empty());
    gemini.set(crate::support::gemini::Behavior::Image);
    assert_eq!(host.get(&path, &key).status, 200, "the next unit pays for the retry");
}

/// On main every 429 for a distinct prompt left a permanent `lease:` row.
pub fn refused_misses_leave_no_rows_behind() {
    let w = World::new();
    let key = w.host.create_project_with(r#"{"name":"tight","generations_per_hour":1}"#).api_key;
    assert_eq!(w.host.get(&live(&unique("the one")), &key).status, 200);
    for _ in 0..5 {
        assert_eq!(w.host.get(&live(&unique("one too many")), &key).status, 429);
    }
    assert!(w.host.kv_keys("lease:").is_empty(), "{:?}", w.host.kv_keys("lease:"));
    assert!(w.host.kv_keys("failed:").is_empty(), "{:?}", w.host.kv_keys("failed:"));
}

/// On main a corrupt project record was a 503 `kv_unavailable` forever.
pub fn a_corrupt_project_record_is_a_clear_error_and_rotation_repairs_it() {
    let w = World::new();
    let created = w.host.create_project_with(r#"{"name":"fragile"}"#);
    let db = w.host.state.path().join("sqlite_key_value.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE spin_key_value SET value = ?1 WHERE key = ?2",
        rusqlite::params![b"{torn".to_vec(), format!("project:{}", created.id)],
    )
    .unwrap();
    let broken = w.host.get(&live(&unique("a fox")), &created.api_key);
    assert_json_error(&broken, 500, "project_unreadable");
    let rotated = w.host.admin("POST", &format!("/api/v1/projects/{}/rotate", created.id), "");
    assert_eq!(rotated.status, 200, "{}", String::from_utf8_lossy(&rotated.body));
    let new_key = rotated.json()["api_key"].as_str().unwrap().to_string();
    assert_eq!(w.host.get(&live(&unique("a fox")), &new_key).status, 200, "repaired");
}

/// The configuration is read with one `wasi:config` `get-all` per request
/// (it was one `get` per variable), counted by banatie-host's
/// `--log-host-calls`; the key-value operations of a MISS and a HIT are
/// printed beside it.
pub fn a_request_reads_its_configuration_in_one_host_call() {
    let gemini = Gemini::start();
    let host = host_with(&gemini, &["--log-host-calls"]);
    let key = host.create_project("counted");
    let path = live(&unique("counted calls"));
    assert_eq!(host.get(&path, &key).header("x-cache-status"), Some("MISS"));
    assert_eq!(host.get(&path, &key).header("x-cache-status"), Some("HIT"));
    // The line is written once the request's instance is done, just after
    // the answer.
    let started = Instant::now();
    let log = loop {
        let log = host.log();
        if log.matches("host calls: GET /api/v1/live/generate").count() >= 2 {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no host-calls lines:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let calls: Vec<&str> =
        log.lines().filter(|l| l.contains("host calls: GET /api/v1/live/generate")).collect();
    assert_eq!(calls.len(), 2, "{log}");
    println!("{}", calls.join("\n"));
    for line in &calls {
        assert!(line.contains(": config 1,"), "{line}");
    }
}
