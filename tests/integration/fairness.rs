//! Issue 23: no client can wear the service down. HITs keep their latency
//! while derivations compute; one address's waiters and non-readers never
//! make another client's HIT fail; failures cost the client; hostile
//! provider bytes are never stored; purges and regenerates racing with what
//! makes an image leave rows, objects and stats equal.

use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use testkit::gemini::{Behavior, Gemini};
use testkit::s3;

use crate::support::host::{standard_vars, Host};
use crate::support::http::{send, Reply};
use crate::support::{enc, raw, s3_endpoint, unique};

fn live(prompt: &str) -> String {
    format!("/api/v1/live/generate?prompt={}", enc(prompt))
}

/// A host on the standard variables plus `vars`, with banatie-host's `extra` flags.
fn host(gemini: &Gemini, vars: &[(&str, &str)], extra: &[&str]) -> Host {
    let mut all = standard_vars(s3_endpoint(), &gemini.url);
    for (name, value) in vars {
        all.retain(|(n, _)| n != name);
        all.push((name.to_string(), value.to_string()));
    }
    Host::start_in(std::sync::Arc::new(tempfile::tempdir().unwrap()), &all, extra)
}

/// The per-client share banatie-host has by default on this machine (the
/// tests' hosts otherwise run with a share out of reach: `support::host`).
fn default_share() -> String {
    let limits = banatie_host::server::Limits::default();
    banatie_host::server::per_client_default(limits.max_concurrent_requests).to_string()
}

fn objects(project: &str) -> Vec<String> {
    s3::list(s3_endpoint(), &format!("live/{project}/")).unwrap()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1]
}

/// On main a 200-byte HIT took 21 s while two AVIF derivations ran: wasm
/// that computes held its worker thread. (Run alone: it measures latency.)
pub fn a_hit_stays_fast_while_two_maximal_derivations_run() {
    let gemini = Gemini::start();
    let host = host(&gemini, &[("variant_qualities", "90,100")], &[]);
    let key = host.create_project_with(r#"{"name":"busy","derivations_per_hour":100}"#).api_key;
    let small = live(&unique("a small cached image"));
    assert_eq!(host.get(&small, &key).status, 200);
    gemini.set(Behavior::Noise(1536, 1536));
    let big = live(&unique("a noisy square"));
    assert_eq!(host.get(&big, &key).status, 200);
    // Past the AVIF memory budget: refused before encoding (on main it ran
    // 16 s and trapped: 500), leaving nothing held.
    let refused = host.get(&format!("{big}&w=1536&format=avif&q=100"), &key);
    assert_eq!(refused.status, 422, "{}", String::from_utf8_lossy(&refused.body));
    assert_eq!(refused.json()["error"]["code"], "variant_unavailable");
    assert!(host.held_leases().is_empty(), "{:?}", host.held_leases());
    let hits = |n: usize| -> Vec<Duration> {
        (0..n)
            .map(|_| {
                let started = Instant::now();
                let r = host.get(&small, &key);
                assert_eq!((r.status, r.header("x-cache-status")), (200, Some("HIT")));
                started.elapsed()
            })
            .collect()
    };
    let mut alone = hits(50);
    let (derived, mut during) = std::thread::scope(|s| {
        let derivations: Vec<_> = ["&w=1536&format=avif&q=90", "&w=1024&format=avif&q=90"]
            .into_iter()
            .map(|variant| {
                let (host, key, big) = (&host, &key, &big);
                s.spawn(move || host.get(&format!("{big}{variant}"), key))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let mut during = Vec::new();
        while derivations.iter().any(|d| !d.is_finished()) && during.len() < 400 {
            during.extend(hits(1));
            std::thread::sleep(Duration::from_millis(20));
        }
        (derivations.into_iter().map(|d| d.join().unwrap()).collect::<Vec<Reply>>(), during)
    });
    for r in &derived {
        assert_eq!(r.status, 200, "{}\n{}", String::from_utf8_lossy(&r.body), host.log());
        assert_eq!(r.header("content-type"), Some("image/avif"));
    }
    assert!(during.len() >= 20, "the derivations ended too soon to measure ({} HITs)", during.len());
    let (alone_p99, during_p99) = (percentile(&mut alone, 0.99), percentile(&mut during, 0.99));
    println!(
        "HIT p99 alone {alone_p99:?}, during two AVIF derivations {during_p99:?} ({} HITs)",
        during.len()
    );
    assert!(during_p99 < Duration::from_millis(100), "HIT p99 {during_p99:?} while deriving");
    assert!(host.held_leases().is_empty(), "{:?}", host.held_leases());
}

/// A socket from `source` that sent `request` and never reads.
fn silent(source: Ipv4Addr, to: &str, request: &[u8]) -> TcpStream {
    raw::silent_from(source, to, request).unwrap()
}

/// On main 6 anonymous waiters on one slow public prompt, or 4 clients not
/// reading a 20 MB image, made a keyed HIT answer 503 on a 4-slot pool; the
/// default pool took a few hundred such connections.
pub fn waiters_and_non_readers_of_one_address_never_fail_another_clients_hits() {
    let gemini = Gemini::start();
    let share = default_share();
    let host = host(&gemini, &[], &["--max-requests-per-client", &share]);
    let created = host.admin("POST", "/api/v1/projects", r#"{"name":"crowded"}"#).json();
    let (key, slug) = (created["api_key"].as_str().unwrap(), created["slug"].as_str().unwrap());
    let scope = send(
        "POST",
        &host.url("/api/v1/scopes"),
        &[("x-api-key", key)],
        br#"{"slug":"pub","public":true,"generations_limit":1000}"#,
    );
    assert_eq!(scope.status, 201);
    let small = live(&unique("a keyed image"));
    assert_eq!(host.get(&small, key).status, 200);
    gemini.set(Behavior::Sized(20 << 20));
    let big = live(&unique("twenty megabytes"));
    assert_eq!(host.get(&big, key).status, 200);
    gemini.set(Behavior::Image);
    gemini.set_delay(30_000);
    let slow = format!("/cdn/{slug}/live/pub?prompt={}", enc(&unique("a slow public prompt")));
    let waiters: Vec<TcpStream> = (0..500)
        .map(|_| silent(Ipv4Addr::new(127, 0, 0, 2), &host.base, &raw::get(slow.as_bytes(), &[])))
        .collect();
    let header = format!("x-api-key: {key}");
    let readers: Vec<TcpStream> = (0..500)
        .map(|_| {
            let request = raw::get(big.as_bytes(), &[header.as_bytes()]);
            silent(Ipv4Addr::new(127, 0, 0, 3), &host.base, &request)
        })
        .collect();
    // The waiters are there: one of them owns the slow prompt and is at the
    // provider (the third call, after the two images above; 20 s at most).
    let started = Instant::now();
    while gemini.calls() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no waiter reached the provider: {} calls",
            gemini.calls()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let statuses: Vec<u16> = (0..50)
        .map(|_| {
            let r = host.get(&small, key);
            std::thread::sleep(Duration::from_millis(40));
            r.status
        })
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}\n{}", host.log());
    assert_eq!(gemini.calls(), 3, "one generation for the 500 waiters, none for the HITs");
    drop((waiters, readers));
    gemini.set_delay(0);
}

/// A client that stops reading is dropped once a write has waited
/// `--send-timeout-seconds`, and its instance is freed: on a pool of 4, four
/// silent readers of a 20 MB image take every instance (another client's HIT
/// answers 503 `overloaded`); after their 4 s timeout the same HIT is served while
/// they still hold their sockets, and each of them finds its answer cut short.
pub fn a_client_that_stops_reading_is_dropped_after_the_send_timeout_and_frees_its_instance() {
    use std::io::Read as _;
    let gemini = Gemini::start();
    let flags =
        ["--max-concurrent-requests", "4", "--queue-timeout-ms", "200", "--send-timeout-seconds", "4"];
    let host = host(&gemini, &[], &flags);
    let key = host.admin("POST", "/api/v1/projects", r#"{"name":"silent"}"#).json()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let small = live(&unique("a small image"));
    assert_eq!(host.get(&small, &key).status, 200);
    gemini.set(Behavior::Sized(20 << 20));
    let big = live(&unique("twenty megabytes, unread"));
    assert_eq!(host.get(&big, &key).body.len(), 20 << 20);
    let header = format!("x-api-key: {key}");
    let request = raw::get(big.as_bytes(), &[header.as_bytes()]);
    let started = Instant::now();
    let silent: Vec<TcpStream> =
        (0..4).map(|_| self::silent(Ipv4Addr::new(127, 0, 0, 3), &host.base, &request)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let full = host.get(&small, &key);
    assert_eq!(
        (full.status, full.header("x-error-code")),
        (503, Some("overloaded")),
        "the four hold the pool"
    );
    let served = loop {
        let r = host.get(&small, &key);
        if r.status == 200 {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "still {} after 15 s\n{}", r.status, host.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(served >= Duration::from_secs(3), "served after {served:?}: before the send timeout");
    for mut socket in silent {
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let _ = socket.read_to_end(&mut got); // EOF or a reset: either way the server is gone
        assert!(got.len() < 20 << 20, "a silent reader got the whole image");
    }
}

/// On main every failed generation gave the client's unit back: 22 refused
/// prompts made 22 provider calls against a limit of 3.
pub fn refused_prompts_make_at_most_the_clients_allowance_of_provider_calls() {
    let gemini = Gemini::start();
    gemini.set(Behavior::Refuse);
    let host = host(&gemini, &[("client_misses_per_hour", "3")], &[]);
    let created = host.admin("POST", "/api/v1/projects", r#"{"name":"refused"}"#).json();
    let (key, slug) = (created["api_key"].as_str().unwrap(), created["slug"].as_str().unwrap());
    let scope =
        send("POST", &host.url("/api/v1/scopes"), &[("x-api-key", key)], br#"{"slug":"pub","public":true}"#);
    assert_eq!(scope.status, 201);
    let codes: Vec<String> = (0..22)
        .map(|i| {
            let path = format!("/cdn/{slug}/live/pub?prompt={}", enc(&unique(&format!("refused {i}"))));
            send("GET", &host.url(&path), &[], b"").error_code()
        })
        .collect();
    assert_eq!(gemini.calls(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "prompt_refused").count(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "rate_limited").count(), 19, "{codes:?}");
    let failed = host.kv_keys("failed:");
    assert_eq!(failed.len(), 3, "one failure row per refused generation: {failed:?}");
    assert_eq!(host.kv_keys("expiry:").len(), 4, "the client's counter and the three failures");
}

/// On main an SVG answer was stored and served as `image/svg+xml` from our
/// origin, HTML labelled `image/png` went out without `nosniff`, and a
/// provider's `Retry-After: 99999999999` was passed on.
pub fn hostile_provider_bytes_are_502_and_store_nothing() {
    let gemini = Gemini::start();
    let host = host(&gemini, &[], &[]);
    let p = host.create_project_with(r#"{"name":"hostile"}"#);
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>"#;
    let jpeg = image_bytes(image::ImageFormat::Jpeg);
    for (mime, data) in [
        ("image/svg+xml", svg.to_vec()),
        ("image/png", b"<html><script>alert(document.domain)</script></html>".to_vec()),
        ("image/png", jpeg.clone()),
        ("image/gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
    ] {
        gemini.set(Behavior::Inline { mime: mime.into(), data });
        let r = host.get(&live(&unique("hostile")), &p.api_key);
        assert_eq!((r.status, r.error_code().as_str()), (502, "provider_error"), "{mime}");
    }
    assert!(objects(&p.id).is_empty(), "{:?}", objects(&p.id));
    assert!(host.kv_keys(&format!("live:{}:", p.id)).is_empty());
    assert!(host.held_leases().is_empty());
    // What is stored is served as what its bytes are, never sniffed, never run.
    gemini.set(Behavior::Inline { mime: "image/jpeg".into(), data: jpeg });
    let path = live(&unique("a real jpeg"));
    for r in [host.get(&path, &p.api_key), host.get(&path, &p.api_key)] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("content-security-policy"), Some("default-src 'none'; sandbox"));
    }
    gemini.set(Behavior::BusyFor("99999999999".into()));
    let r = host.get(&live(&unique("busy")), &p.api_key);
    assert_eq!(r.status, 503);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry <= 300, "Retry-After {retry} passed on");
}

fn image_bytes(format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(8, 8, image::Rgb([200, 40, 40])).write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Rows, objects and stats agree: every entry has its object and is counted.
fn assert_consistent(host: &Host, key: &str, project: &str) {
    let entries = host.kv_keys(&format!("live:{project}:"));
    let stats = host.stats(key);
    let counted = stats["entries"].as_i64().unwrap() + stats["variants"].as_i64().unwrap();
    assert_eq!(entries.len() as i64, counted, "rows {entries:?}, stats {stats}");
    assert_eq!(objects(project).len(), entries.len(), "objects {:?}, rows {entries:?}", objects(project));
}

/// On main a purge during a variant's derivation left the variant's entry,
/// its object and `variants: 1`; a regenerate with a DELETE during it left
/// an entry and its object while `entries` said 0; a regenerate left the old
/// variants' objects in S3.
pub fn purges_and_regenerates_racing_with_making_leave_rows_objects_and_stats_equal() {
    let gemini = Gemini::start();
    let host = host(&gemini, &[("variant_qualities", "90")], &[]);
    let p = host.create_project_with(r#"{"name":"races"}"#);
    let key = p.api_key.as_str();
    // 1. A purge while a variant derives.
    gemini.set(Behavior::Noise(1536, 1536));
    let path = live(&unique("purged while deriving"));
    assert_eq!(host.get(&path, key).status, 200);
    let derived = std::thread::scope(|s| {
        let deriving = s.spawn(|| host.get(&format!("{path}&w=1536&format=avif&q=90"), key));
        let started = Instant::now();
        while !host.held_leases().iter().any(|l| l.contains('~')) {
            assert!(started.elapsed() < Duration::from_secs(20), "the derivation never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let purge = send("DELETE", &host.url(&path), &[("x-api-key", key)], b"");
        assert_eq!(purge.status, 204, "{}", String::from_utf8_lossy(&purge.body));
        deriving.join().unwrap()
    });
    assert_eq!(derived.status, 200, "{}\n{}", String::from_utf8_lossy(&derived.body), host.log());
    assert_consistent(&host, key, &p.id);
    assert!(host.kv_keys(&format!("live:{}:", p.id)).is_empty(), "nothing of the purged image is left");
    // 2. A DELETE while a regenerate generates.
    gemini.set(Behavior::Image);
    let path = live(&unique("deleted while regenerating"));
    assert_eq!(host.get(&path, key).status, 200);
    gemini.set_delay(1500);
    let regenerate = path.replace("/generate?", "/regenerate?");
    std::thread::scope(|s| {
        let before = gemini.calls();
        let regenerating = s.spawn(|| send("POST", &host.url(&regenerate), &[("x-api-key", key)], b""));
        // The regenerate holds the original's lease once it is at the provider.
        let started = Instant::now();
        while gemini.calls() == before {
            assert!(started.elapsed() < Duration::from_secs(20), "the regenerate never reached the provider");
            std::thread::sleep(Duration::from_millis(10));
        }
        let purge = send("DELETE", &host.url(&path), &[("x-api-key", key)], b"");
        assert_eq!(purge.status, 204, "the DELETE waits for the regenerate, then removes its image");
        assert_eq!(regenerating.join().unwrap().status, 200);
    });
    gemini.set_delay(0);
    assert_consistent(&host, key, &p.id);
    assert_eq!(host.stats(key)["entries"], 0);
    // 3. A regenerate removes the old image's variants at once.
    let path = live(&unique("regenerated with variants"));
    for variant in ["", "&w=64&format=webp", "&w=128&format=jpeg"] {
        assert_eq!(host.get(&format!("{path}{variant}"), key).status, 200);
    }
    assert_eq!(objects(&p.id).len(), 3);
    assert_eq!(send("POST", &host.url(&regenerate_of(&path)), &[("x-api-key", key)], b"").status, 200);
    assert_eq!(objects(&p.id).len(), 1, "only the new original: {:?}", objects(&p.id));
    assert_consistent(&host, key, &p.id);
}

fn regenerate_of(path: &str) -> String {
    path.replace("/generate?", "/regenerate?")
}

/// RFC 9110 lets a list span fields: two `If-None-Match` fields were a 400;
/// a 70 KB header field was not a 431.
pub fn if_none_match_spans_fields_and_an_oversized_field_is_431() {
    let gemini = Gemini::start();
    let host = host(&gemini, &[], &[]);
    let key = host.create_project("http");
    let path = live(&unique("conditional"));
    let etag = host.get(&path, &key).header("etag").unwrap().to_string();
    let key_line = format!("x-api-key: {key}");
    let first = b"if-none-match: \"0000\"".to_vec();
    let second = format!("if-none-match: {etag}");
    let (status, answer) =
        raw::send(&host.base, &raw::get(path.as_bytes(), &[key_line.as_bytes(), &first, second.as_bytes()]));
    assert_eq!(status, 304, "{answer}");
    let huge = format!("x-padding: {}", "a".repeat(70 * 1024));
    let (status, answer) =
        raw::send(&host.base, &raw::get(path.as_bytes(), &[key_line.as_bytes(), huge.as_bytes()]));
    assert_eq!(status, 431, "{answer}");
}
