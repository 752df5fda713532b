//! `cargo run --profile host -p bench`: measures, in one run and side by side,
//!
//! - HIT through the component vs a direct S3 GET of the same bytes (the
//!   baseline) for 10 KB, 200 KB and 2 MB objects: requests/s, p50, p99 and the
//!   ratio component/direct, with `wrk` as the load generator;
//! - MISS overhead beyond the provider's own latency (the double waits 200 ms);
//! - per-request host overhead on a component route that touches nothing;
//! - peak linear memory of an instance serving a 20 MB HIT.
//!
//! Everything runs on 127.0.0.1: Garage, a Gemini double, and banatie-host
//! in this process (`host` profile: optimised for speed). Needs `wrk`
//! (Debian: `apt-get install wrk`).
//! Prints a Markdown report (also written to `target/benchmarks.md`).
//!
//! `cargo run --profile host -p bench -- soak` runs the soak scenarios
//! instead (see `soak.rs`; report in `target/soak.md`).

mod soak;
mod wrk;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use testkit::gemini::{Behavior, Gemini};
use testkit::{garage, s3};

const ADMIN: &str = "bench-admin-token";
const PROVIDER_DELAY_MS: u64 = 200;

fn main() -> anyhow::Result<()> {
    wrk::check_installed()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    build_component(&root)?;
    let garage = garage::Garage::start();
    let gemini = Gemini::start();
    let state = tempfile::tempdir()?;
    let addr = start_host(&root, &garage.endpoint, &gemini.url, state.path())?;
    let base = format!("http://{addr}");
    let key = create_project(&base)?;

    if std::env::args().nth(1).as_deref() == Some("soak") {
        let mut report = format!("Machine: {}\n\n", machine());
        soak::run(&base, &key, &mut report)?;
        println!("{report}");
        let out = root.join("target/soak.md");
        std::fs::write(&out, &report)?;
        eprintln!("bench: soak report written to {}", out.display());
        return Ok(());
    }

    let mut report = String::new();
    let machine = machine();
    report.push_str(&format!("Machine: {machine}\n\nLoad: {}\n\n", wrk::DESCRIPTION));
    report.push_str("### HIT through the component vs direct S3 GET (same bytes, same Garage)\n\n");
    report.push_str("| object | component req/s | direct req/s | ratio | component p50 | direct p50 | component p99 | direct p99 | added p99 |\n");
    report.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for (label, size) in [("10 KB", 10_000), ("200 KB", 200_000), ("2 MB", 2_000_000)] {
        gemini.set(Behavior::Sized(size));
        let path = signed_path(&base, &key, &format!("bench object of {size} bytes"))?;
        let bytes = fetch(&format!("{base}{path}"), "MISS")?;
        let direct_key = format!("bench/direct-{size}.png");
        s3::put(&garage.endpoint, &direct_key, &bytes);
        let direct_url = s3::presigned_get(&garage.endpoint, &direct_key);
        let component = wrk::run(&format!("{base}{path}"))?;
        let direct = wrk::run(&direct_url)?;
        report.push_str(&format!(
            "| {label} | {:.0} | {:.0} | **{:.2}** | {} | {} | {} | {} | {} |\n",
            component.requests_per_sec,
            direct.requests_per_sec,
            component.requests_per_sec / direct.requests_per_sec,
            ms(component.p50),
            ms(direct.p50),
            ms(component.p99),
            ms(direct.p99),
            ms(component.p99.saturating_sub(direct.p99)),
        ));
    }

    gemini.set(Behavior::Image);
    gemini.set_delay(PROVIDER_DELAY_MS);
    let mut overheads: Vec<Duration> = (0..20)
        .map(|i| {
            let path = signed_path(&base, &key, &format!("a fresh miss {i} {}", std::process::id()))?;
            let start = Instant::now();
            fetch(&format!("{base}{path}"), "MISS")?;
            Ok(start.elapsed().saturating_sub(Duration::from_millis(PROVIDER_DELAY_MS)))
        })
        .collect::<anyhow::Result<_>>()?;
    gemini.set_delay(0);
    overheads.sort();
    report.push_str(&format!(
        "\n### MISS overhead beyond the provider (double answers after {PROVIDER_DELAY_MS} ms; 20 sequential misses)\n\n\
         | p50 | p90 | max |\n|---|---|---|\n| {} | {} | {} |\n",
        ms(overheads[10]),
        ms(overheads[18]),
        ms(overheads[19])
    ));

    let nothing = wrk::run_expecting_errors(&format!("{base}/api/v1/bench-route-that-touches-nothing"))?;
    report.push_str(&format!(
        "\n### Host overhead: a component route that touches nothing (404 before any KV/S3 call)\n\n\
         | req/s | p50 | p99 |\n|---|---|---|\n| {:.0} | {} | {} |\n",
        nothing.requests_per_sec,
        ms(nothing.p50),
        ms(nothing.p99)
    ));

    let size = 20_000_000;
    gemini.set(Behavior::Sized(size));
    let path = signed_path(&base, &key, "a 20 MB object")?;
    fetch(&format!("{base}{path}"), "MISS")?;
    banatie_host::memory::reset();
    let hit = fetch(&format!("{base}{path}"), "HIT")?;
    anyhow::ensure!(hit.len() == size, "20 MB HIT returned {} bytes", hit.len());
    let (peak, growth) = banatie_host::memory::report();
    report.push_str(&format!(
        "\n### Linear memory of one instance serving a 20 MB HIT\n\n\
         | peak linear memory | growth over the initial size | goal |\n|---|---|---|\n| {:.2} MiB | {:.2} MiB | < 4 MiB growth |\n",
        peak as f64 / 1048576.0,
        growth as f64 / 1048576.0
    ));
    let wasm = root.join("target/wasm32-wasip2/release/banatie_live.wasm");
    let wasm_size = std::fs::metadata(&wasm)?.len();
    report.push_str(&format!(
        "\n### Component size\n\n`banatie_live.wasm` (release): {:.0} KB (goal: under 1.5 MB)\n",
        wasm_size as f64 / 1000.0
    ));

    println!("{report}");
    let out = root.join("target/benchmarks.md");
    std::fs::write(&out, &report)?;
    eprintln!("bench: report written to {}", out.display());
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}

fn build_component(root: &std::path::Path) -> anyhow::Result<()> {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p", "banatie-live"])
        .current_dir(root)
        .status()?;
    anyhow::ensure!(status.success(), "building the component failed");
    Ok(())
}

/// banatie-host in this process, on its own runtime, as `up` runs it.
fn start_host(
    root: &std::path::Path,
    s3: &str,
    gemini: &str,
    state: &std::path::Path,
) -> anyhow::Result<SocketAddr> {
    let vars = [
        ("s3_endpoint", s3),
        ("s3_region", garage::REGION),
        ("s3_bucket", garage::BUCKET),
        ("s3_access_key_id", garage::KEY_ID),
        ("s3_secret_access_key", garage::SECRET),
        ("gemini_api_key", testkit::gemini::API_KEY),
        ("gemini_base_url", gemini),
        ("admin_token", ADMIN),
    ];
    let (tx, rx) = std::sync::mpsc::channel();
    let options = banatie_host::up::Options {
        manifest: root.join("spin.toml"),
        listen: "127.0.0.1:0".parse()?,
        runtime_config_file: None,
        limits: Default::default(),
        state_dir: Some(state.to_path_buf()),
        variables: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        build: false,
        dev: false,
        on_ready: Some(Box::new(move |addr| {
            let _ = tx.send(addr);
        })),
    };
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        if let Err(e) = runtime.block_on(banatie_host::up::run(options)) {
            eprintln!("bench: host stopped: {e:#}");
        }
    });
    rx.recv_timeout(Duration::from_secs(120)).context("banatie-host did not start")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
}

fn create_project(base: &str) -> anyhow::Result<String> {
    let mut r = agent()
        .post(&format!("{base}/api/v1/projects"))
        .header("authorization", &format!("Bearer {ADMIN}"))
        .send(r#"{"name":"bench","generations_per_hour":1000000}"#)?;
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    Ok(v["api_key"].as_str().context("no api_key")?.to_string())
}

/// A signed live URL's path and query for `prompt`.
fn signed_path(base: &str, key: &str, prompt: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "prompt": prompt }).to_string();
    let mut r = agent().post(&format!("{base}/api/v1/live/sign")).header("x-api-key", key).send(&body)?;
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    Ok(v["path"].as_str().context("no path")?.to_string())
}

/// GET and check the cache status; returns the body.
fn fetch(url: &str, expected: &str) -> anyhow::Result<Vec<u8>> {
    let mut r = agent().get(url).call()?;
    let status = r.headers().get("x-cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = r.body_mut().with_config().limit(64 << 20).read_to_vec()?;
    if r.status() != 200 || status != expected {
        bail!(
            "{url}: {} {status}, expected 200 {expected}: {}",
            r.status(),
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    Ok(body)
}
