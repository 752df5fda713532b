//! `cargo run --profile host -p bench -- object-cache`: HITs with
//! banatie-host's `--object-cache`, in one run and side by side:
//!
//! - 200 KB and 2 MB signed HITs at 64 and 256 connections, served by nginx
//!   from disk (sendfile), Garage directly (a presigned GET), and three
//!   banatie-hosts in this process on the same Garage: without the cache (as
//!   before), with a cache too small to keep these objects (every GET checked,
//!   then sent to S3: what a cache miss costs), and with a warm cache;
//! - the first HIT of 20 new images (each one a fill) with and without the
//!   cache: what filling costs a HIT;
//! - the process's resident memory before and after the warm runs;
//! - the key-value and `wasi:config` calls of a keyed, a variant and a signed
//!   HIT, as `--log-host-calls` counts them in banatie-host's KV layer.
//!
//! Printed as Markdown.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::gemini::{Behavior, Gemini};
use testkit::{garage, s3};

use crate::matrix::{measure, Target};
use crate::{agent, create_project, fetch, ms, procfs, signed_path, start_host_with, targets, Flags};

const CONNECTIONS: [u32; 2] = [64, 256];
const SIZES: [(&str, usize); 2] = [("200 KB", 200_000), ("2 MB", 2_000_000)];

pub fn run(root: &Path) -> anyhow::Result<()> {
    let (calls, lines) = capture_host_calls()?;
    let garage = garage::Garage::start();
    let gemini = Gemini::start();
    let manifest = root.join("spin.toml");
    let work = tempfile::tempdir()?;
    let statics = work.path().join("static");
    std::fs::create_dir_all(&statics)?;
    let nginx =
        targets::nginx(&work.path().join("nginx"), &statics, garage.endpoint.trim_start_matches("http://"))?;
    let dir = |name: &str| -> anyhow::Result<std::path::PathBuf> {
        let p = work.path().join(name);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    };
    let (s3, g) = (garage.endpoint.as_str(), gemini.url.as_str());
    let plain =
        format!("http://{}", start_host_with(&manifest, s3, g, &dir("plain")?, &[], &Flags::default())?);
    // 1 MiB: an object over 128 KiB is never kept.
    let cold = format!(
        "http://{}",
        start_host_with(&manifest, s3, g, &dir("cold")?, &[], &cached(dir("cold-cache")?, 1 << 20))?
    );
    let warm_size = 1u64 << 30;
    let warm_dir = dir("warm-cache")?;
    let warm = format!(
        "http://{}",
        start_host_with(&manifest, s3, g, &dir("warm")?, &[], &cached(warm_dir.clone(), warm_size))?
    );
    let hosts = [&plain, &cold, &warm];
    let keys: Vec<String> = hosts.iter().map(|h| create_project(h)).collect::<anyhow::Result<_>>()?;

    println!(
        "Date: {}. Machine: {}. Signed HITs, wrk as in the matrix ({}). CPU is this process's (the \
         three hosts; only one is under load at a time) per request.\n",
        crate::today(),
        crate::machine(),
        crate::wrk::DESCRIPTION
    );
    let rss_before = procfs::rss_mib(0);
    for (label, size) in SIZES {
        gemini.set(Behavior::Sized(size));
        let prompt = format!("object cache bench of {size} bytes");
        let mut urls = Vec::new();
        for (host, key) in hosts.iter().zip(&keys) {
            let url = format!("{host}{}", signed_path(host, key, &prompt)?);
            let bytes = fetch(&url, "MISS")?;
            fetch(&url, "HIT")?;
            urls.push((url, bytes));
        }
        // The warm host's copy is kept just after its first HIT.
        std::thread::sleep(Duration::from_millis(300));
        let direct_key = format!("bench/objcache-{size}.png");
        s3::put(&garage.endpoint, &direct_key, &urls[0].1);
        std::fs::write(statics.join(format!("object-{size}.png")), &urls[0].1)?;
        let targets = [
            Target { url: format!("{}/static/object-{size}.png", nginx.base), cpu_of: None },
            Target { url: s3::presigned_get(&garage.endpoint, &direct_key), cpu_of: None },
            Target { url: urls[0].0.clone(), cpu_of: Some(0) },
            Target { url: urls[1].0.clone(), cpu_of: Some(0) },
            Target { url: urls[2].0.clone(), cpu_of: Some(0) },
        ];
        println!(
            "#### {label}\n\n\
             | conns | nginx static | Garage direct | banatie-host | cache cold | cache warm | warm ÷ direct | warm ÷ nginx static | cold ÷ no cache | CPU no cache / cold / warm | warm p50 / p99 |\n\
             |---|---|---|---|---|---|---|---|---|---|---|"
        );
        for c in CONNECTIONS {
            let runs: Vec<_> = targets.iter().map(|t| measure(t, c)).collect::<anyhow::Result<_>>()?;
            let [stat, direct, none, cold, warm] = &runs[..] else { unreachable!() };
            let cpu = |r: &crate::matrix::Run| r.cpu_us.map_or("—".into(), |us| format!("{us:.0}"));
            println!(
                "| {c} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | **{:.2}** | **{:.2}** | {:.2} | {} / {} / {} µs | {} / {} |",
                stat.rps,
                direct.rps,
                none.rps,
                cold.rps,
                warm.rps,
                warm.rps / direct.rps,
                warm.rps / stat.rps,
                cold.rps / none.rps,
                cpu(none),
                cpu(cold),
                cpu(warm),
                ms(warm.p50),
                ms(warm.p99),
            );
        }
        println!();
    }
    let rss_after = procfs::rss_mib(0);
    let kept: u64 = std::fs::read_dir(warm_dir.join("objects"))?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "Resident memory of the process (three hosts, the bench): {rss_before:.0} MiB before the runs, \
         {rss_after:.0} MiB after; the warm cache holds {:.1} MiB on disk (of {} MiB allowed).\n",
        kept as f64 / 1048576.0,
        warm_size >> 20
    );

    // The first HIT of new images: each one a fill on the warm host.
    gemini.set(Behavior::Sized(200_000));
    println!("| first HIT of 20 new 200 KB images (sequential) | p50 | p90 |\n|---|---|---|");
    for (name, host, key) in [("no cache", &plain, &keys[0]), ("cache (each one a fill)", &warm, &keys[2])] {
        let mut took: Vec<Duration> = (0..20)
            .map(|i| {
                let url = format!("{host}{}", signed_path(host, key, &format!("first hit {i}"))?);
                fetch(&url, "MISS")?;
                let started = Instant::now();
                fetch(&url, "HIT")?;
                Ok(started.elapsed())
            })
            .collect::<anyhow::Result<_>>()?;
        took.sort();
        println!("| {name} | {} | {} |", ms(took[10]), ms(took[18]));
    }
    println!();

    // Host calls per HIT, counted by banatie-host's KV layer (a picture
    // the variant can be derived from).
    gemini.set(Behavior::Picture);
    let counted = format!(
        "http://{}",
        start_host_with(
            &manifest,
            s3,
            g,
            &dir("counted")?,
            &[],
            &Flags { log_host_calls: true, ..Default::default() }
        )?
    );
    let key = create_project(&counted)?;
    calls.modify(|f| *f = tracing_subscriber::EnvFilter::new("banatie_host=info"))?;
    let keyed = |query: &str| -> anyhow::Result<()> {
        let url = format!("{counted}/api/v1/live/generate?{query}");
        let mut r = agent().get(&url).header("x-api-key", &key).call()?;
        r.body_mut().read_to_vec()?;
        Ok(())
    };
    let signed = format!("{counted}{}", signed_path(&counted, &key, "counted signed")?);
    println!("| HIT (hot: past its 32nd) | key-value calls | wasi:config calls |\n|---|---|---|");
    let cases: [(&str, &dyn Fn() -> anyhow::Result<()>); 3] = [
        ("keyed", &|| keyed("prompt=counted")),
        ("keyed variant (w=256&format=jpeg)", &|| keyed("prompt=counted&w=256&format=jpeg")),
        ("signed, per-client limit on", &|| agent().get(&signed).call().map(drop).map_err(Into::into)),
    ];
    for (name, ask) in cases {
        for _ in 0..40 {
            ask()?;
        }
        lines.lock().unwrap().clear();
        ask()?;
        let started = Instant::now();
        let line = loop {
            if let Some(l) = lines.lock().unwrap().iter().find(|l| l.contains("host calls:")).cloned() {
                break l;
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(10), "no host-calls line");
            std::thread::sleep(Duration::from_millis(10));
        };
        let count = |what: &str| {
            line.split(&format!("{what} "))
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .unwrap_or("?")
                .to_string()
        };
        println!("| {name} | {} | {} |", count("kv"), count("config"));
    }
    Ok(())
}

fn cached(dir: std::path::PathBuf, size: u64) -> Flags {
    Flags { object_cache: Some((dir, size)), ..Default::default() }
}

type Switch = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Log lines of this process (the hosts' `--log-host-calls`), kept in
/// memory once switched on (off while wrk runs: every request logs a line).
fn capture_host_calls() -> anyhow::Result<(Switch, Arc<Mutex<Vec<String>>>)> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Lines(lines.clone());
    let (filter, switch) = tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || sink.clone()))
        .try_init()?;
    Ok((switch, lines))
}

#[derive(Clone)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.lock().unwrap().extend(text.lines().map(str::to_string));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
