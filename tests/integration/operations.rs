//! Operating the service: the component's health route on every runtime,
//! banatie-host's operator listener (`--metrics-listen`: /metrics, /healthz,
//! /readyz).

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::gemini::Gemini;
use crate::support::host::{standard_vars, Host};
use crate::support::http::send;
use crate::support::{enc, s3_endpoint, unique};
use testkit::port::Reserved;

/// A TCP forwarder to `upstream` on a port of its own, that can be stopped
/// (its connections closed, nothing listening) and started again on the same
/// port: an S3 server going away and coming back. The port is held while it
/// is stopped (`testkit::port`): refused, and nobody else's.
struct Forwarder {
    port: Reserved,
    upstream: String,
    running: Option<Running>,
}

/// A running forwarder: its stop flag, its open connections, its acceptor.
type Running = (Arc<AtomicBool>, Arc<Mutex<Vec<TcpStream>>>, std::thread::JoinHandle<()>);

impl Forwarder {
    fn to(upstream: &str) -> Forwarder {
        let port = Reserved::new();
        let mut f =
            Forwarder { port, upstream: upstream.trim_start_matches("http://").to_string(), running: None };
        f.start();
        f
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.port.addr())
    }

    fn start(&mut self) {
        let listener = self.port.listen().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, open) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (stopping, streams, upstream) = (stop.clone(), open.clone(), self.upstream.clone());
        let accepting = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let mut open = streams.lock().unwrap();
                open.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        self.running = Some((stop, open, accepting));
    }

    /// Nothing listens any more, and every open connection is closed.
    fn stop(&mut self) {
        if let Some((stop, open, accepting)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            accepting.join().unwrap();
            for s in open.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn health(host: &Host) -> (u16, serde_json::Value) {
    let r = send("GET", &host.url("/api/v1/health"), &[], b"");
    let body =
        serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&r.body)));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    (r.status, body)
}

/// The component's readiness, from inside it (so on Spin and wasmCloud
/// too): 200 while its bucket answers, 503 naming S3 (and nothing else: no
/// host, no error text) at the first request after the bucket went away, 200
/// again once it is back. It needs no credentials and writes nothing.
pub fn the_health_route_follows_the_bucket() {
    let gemini = Gemini::start();
    let mut s3 = Forwarder::to(s3_endpoint());
    let host = Host::start(&standard_vars(&s3.endpoint(), &gemini.url));
    let ok = serde_json::json!({ "status": "ok", "kv": "ok", "s3": "ok" });
    assert_eq!(health(&host), (200, ok.clone()), "{}", host.log());
    s3.stop();
    let down = serde_json::json!({ "status": "unavailable", "kv": "ok", "s3": "unavailable" });
    assert_eq!(health(&host), (503, down));
    s3.start();
    assert_eq!(health(&host), (200, ok));
    assert!(host.kv_keys("health").is_empty(), "the probe key is never written");
    assert_eq!(gemini.calls(), 0);
}

/// A GET of the operator listener: not the public API, so not among the
/// exchanges checked against docs/openapi.yaml (`support::http` records
/// those).
pub fn operator_get(url: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut r = agent.get(url).call().unwrap_or_else(|e| panic!("{url}: {e}"));
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
}

/// The value of the sample `name{labels}` in a Prometheus text exposition;
/// a series that is not there fails the test (it never reads as 0).
pub fn sample(text: &str, series: &str) -> f64 {
    sample_if_any(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// The value of the sample `name{labels}`, if the exposition has it.
pub fn sample_if_any(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let value = l.strip_prefix(series)?;
        // The whole series: `name{a="1"}` is not `name{a="1",b="2"}`, nor `name_total`.
        value.starts_with(' ').then(|| value.split_whitespace().next()?.parse().ok())?
    })
}

/// Counted as the stats count: what `/metrics` says of MISSes, HITs and a
/// variant equals `/api/v1/live/stats`; a 429 of the budget is counted by
/// status; /healthz and /readyz answer; the public port has none of it.
pub fn the_operator_listener_counts_what_stats_count_and_answers_health() {
    let gemini = Gemini::start();
    let mut s3 = Forwarder::to(s3_endpoint());
    let vars = standard_vars(&s3.endpoint(), &gemini.url);
    let host =
        Host::start_in(Arc::new(tempfile::tempdir().unwrap()), &vars, &["--metrics-listen", "127.0.0.1:0"]);
    let ops = host.operator_base();
    let key = host.create_project_with(r#"{"name":"counted","generations_per_hour":2}"#).api_key;
    let live = |prompt: &str| format!("/api/v1/live/generate?prompt={}", enc(prompt));
    let (a, b, c) = (live(&unique("a")), live(&unique("b")), live(&unique("c")));
    for path in [&a, &a, &a, &b, &b] {
        assert_eq!(host.get(path, &key).status, 200);
    }
    assert_eq!(host.get(&format!("{a}&w=64&format=webp"), &key).status, 200);
    assert_eq!(host.get(&format!("{a}&w=64&format=webp"), &key).status, 200);
    assert_eq!(host.get(&c, &key).status, 429, "the budget of 2 is spent");
    let stats = host.stats(&key);
    let (status, text) = operator_get(&format!("{ops}/metrics"));
    assert_eq!(status, 200);
    let count = |route: &str, status: u16, cache: &str| {
        sample(
            &text,
            &format!(
                "banatie_http_requests_total{{route=\"{route}\",status=\"{status}\",cache=\"{cache}\"}}"
            ),
        )
    };
    let misses = count("live", 200, "MISS") + count("live_variant", 200, "MISS");
    let hits = count("live", 200, "HIT") + count("live_variant", 200, "HIT");
    assert_eq!(misses, stats["misses"].as_f64().unwrap(), "{text}\n{stats}");
    assert_eq!(hits, stats["hits"].as_f64().unwrap(), "{text}\n{stats}");
    assert_eq!(count("live", 429, "none"), 1.0, "{text}");
    assert!(sample(&text, "banatie_stage_duration_seconds_count{stage=\"s3\"}") >= 7.0, "{text}");
    assert_eq!(sample(&text, "banatie_http_requests_in_flight"), 0.0);
    assert_eq!(operator_get(&format!("{ops}/healthz")).0, 200);
    assert_eq!(operator_get(&format!("{ops}/readyz")).0, 200);
    s3.stop();
    let (status, body) = operator_get(&format!("{ops}/readyz"));
    assert_eq!(status, 503, "{body}");
    assert_eq!(operator_get(&format!("{ops}/healthz")).0, 200, "the process still serves");
    s3.start();
    assert_eq!(operator_get(&format!("{ops}/readyz")).0, 200);
    assert_eq!(send("GET", &host.url("/metrics"), &[], b"").status, 404, "never on the public port");
}

/// A real Prometheus server (Debian's, installed by scripts/setup.sh) for a
/// test: scrapes `target` every second; stopped (its process group
/// killed) when dropped.
struct Prometheus {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
    /// Its port, held while it runs (`testkit::port`).
    _port: Reserved,
}

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

impl Prometheus {
    fn scraping(target: &str) -> Prometheus {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: banatie\n    static_configs: [{{ targets: [\"{target}\"] }}]\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let reserved = Reserved::new();
        let port = reserved.port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = std::process::Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{PROMETHEUS} (scripts/setup.sh installs it): {e}"));
        let p = Prometheus { child, base: format!("http://127.0.0.1:{port}"), _dir: dir, _port: reserved };
        let started = Instant::now();
        while operator_get_maybe(&format!("{}/-/ready", p.base)).0 != 200 {
            assert!(started.elapsed() < Duration::from_secs(30), "prometheus did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// The value of an instant query whose result is one sample (0 when empty).
    fn query(&self, promql: &str) -> f64 {
        let url = format!("{}/api/v1/query?query={}", self.base, crate::support::enc(promql));
        let (status, body) = operator_get(&url);
        assert_eq!(status, 200, "{promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"][0]["value"][1].as_str().map_or(0.0, |s| s.parse().unwrap())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the process group this child leads.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn operator_get_maybe(url: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    match agent.get(url).call() {
        Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// A real Prometheus scraping `--metrics-listen`: after MISS, HIT, variant
/// and 429 traffic, what its query API says equals what
/// `/api/v1/live/stats` says (misses, hits, variants), the 429 is counted by
/// its code, the provider and S3 calls by target; `promtool check metrics`
/// passes on the exposition.
pub fn prometheus_reads_what_stats_count() {
    let gemini = Gemini::start();
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let host =
        Host::start_in(Arc::new(tempfile::tempdir().unwrap()), &vars, &["--metrics-listen", "127.0.0.1:0"]);
    let ops = host.operator_base();
    let prometheus = Prometheus::scraping(ops.trim_start_matches("http://"));
    let key = host.create_project_with(r#"{"name":"scraped","generations_per_hour":2}"#).api_key;
    let live = |prompt: &str| format!("/api/v1/live/generate?prompt={}", enc(prompt));
    let (a, b) = (live(&unique("scraped a")), live(&unique("scraped b")));
    for path in [&a, &a, &a, &b, &b, &format!("{a}&w=64&format=webp"), &format!("{a}&w=64&format=webp")] {
        assert_eq!(host.get(path, &key).status, 200);
    }
    assert_eq!(host.get(&live(&unique("scraped c")), &key).status, 429);
    let stats = host.stats(&key);
    let expect = [
        (
            "sum(banatie_http_requests_total{status=\"200\",cache=\"MISS\"})",
            stats["misses"].as_f64().unwrap(),
        ),
        ("sum(banatie_http_requests_total{status=\"200\",cache=\"HIT\"})", stats["hits"].as_f64().unwrap()),
        ("sum(banatie_http_requests_total{route=\"live_variant\",status=\"200\"})", 2.0),
        ("sum(banatie_errors_total{code=\"budget_exceeded\"})", 1.0),
        ("sum(banatie_outbound_requests_total{target=\"provider\",outcome=\"2xx\"})", gemini.calls() as f64),
        ("up{job=\"banatie\"}", 1.0),
    ];
    assert_eq!((expect[0].1, expect[1].1), (3.0, 4.0), "{stats}");
    // Until a scrape after the traffic has been taken in (a few seconds).
    let started = Instant::now();
    let read = loop {
        let read: Vec<f64> = expect.iter().map(|(q, _)| prometheus.query(q)).collect();
        if read.iter().zip(&expect).all(|(r, (_, e))| r == e) || started.elapsed() > Duration::from_secs(20) {
            break read;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    for ((query, expected), got) in expect.iter().zip(&read) {
        assert_eq!(got, expected, "{query}");
    }
    assert!(prometheus.query("sum(banatie_outbound_requests_total{target=\"s3\"})") >= 4.0);

    let (status, exposition) = operator_get(&format!("{ops}/metrics"));
    assert_eq!(status, 200);
    let mut check = std::process::Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool check metrics: {said}\n{exposition}");
}

/// docs/alerts.yml (the rules docs/operations.md explains) is valid.
pub fn the_documented_alert_rules_pass_promtool() {
    let rules = crate::support::host::repo_root().join("docs/alerts.yml");
    let out = std::process::Command::new(PROMTOOL).arg("check").arg("rules").arg(&rules).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS"), "{said}");
}
