//! `cargo run --profile host -p bench -- hit-cpu BEFORE.wasm`: the CPU a
//! 200 KB keyed HIT (`X-API-Key`) and a signed one cost, for the component as
//! it is and for `BEFORE.wasm`
//! (another build of it, e.g. the commit before a change), under
//! banatie-host (in this process) and under `spin up` 3.6 and 4.0.2, in one run:
//! wrk with 8 connections for 5 s each, alternating before/now three times,
//! the lowest kept; every runtime's state in /dev/shm. Printed as a Markdown table.

use std::path::Path;

use anyhow::Context;
use testkit::garage;
use testkit::gemini::{Behavior, Gemini};

use crate::{
    create_project, fetch, host_vars, matrix, signed_path, start_host_from, start_host_with, targets,
};

/// A copy of spin.toml whose component is `wasm` (an absolute path).
fn manifest_for(root: &Path, wasm: &Path, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let manifest = std::fs::read_to_string(root.join("spin.toml"))?;
    let source = "source = \"target/wasm32-wasip2/release/banatie_live.wasm\"";
    anyhow::ensure!(manifest.contains(source), "spin.toml names another source");
    let wasm = wasm.canonicalize().with_context(|| format!("{}", wasm.display()))?;
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest.replace(source, &format!("source = {:?}", wasm.display().to_string())))?;
    Ok(path)
}

/// CPU µs per HIT of `url` at 8 connections, read from `pid`'s CPU time;
/// with `key`, each request sends it as `X-API-Key`.
fn cpu_per_hit(url: &str, key: Option<&str>, pid: u32) -> anyhow::Result<f64> {
    let target = matrix::Target { url: url.to_string(), cpu_of: Some(pid) };
    let run = match key {
        Some(key) => matrix::measure_with_header(&target, 8, &format!("x-api-key: {key}"))?,
        None => matrix::measure(&target, 8)?,
    };
    Ok(run.cpu_us.expect("the CPU of a process is read"))
}

/// Requests per second and CPU µs per request of `url` at `connections`.
fn load(url: &str, pid: u32, connections: u32) -> anyhow::Result<(f64, f64)> {
    let run = matrix::measure(&matrix::Target { url: url.to_string(), cpu_of: Some(pid) }, connections)?;
    Ok((run.rps, run.cpu_us.expect("the CPU of a process is read")))
}

/// A keyed and a signed URL of a new 200 KB image on `base` (its project's
/// key for the first), each fetched once (a MISS).
fn hit_urls(base: &str, gemini: &Gemini) -> anyhow::Result<[(String, Option<String>); 2]> {
    let key = create_project(base)?;
    let keyed = format!("{base}/api/v1/live/generate?prompt=hit+cpu+keyed");
    gemini.set(Behavior::Sized(200_000));
    let mut r = crate::agent().get(&keyed).header("x-api-key", &key).call()?;
    anyhow::ensure!(
        r.headers().get("x-cache-status").is_some_and(|v| v == "MISS"),
        "the keyed URL was no MISS"
    );
    r.body_mut().read_to_vec()?;
    let signed = signed_hit(base, &key, gemini)?;
    Ok([(keyed, Some(key)), (signed, None)])
}

/// A signed URL of a new 200 KB image on `base`, fetched once (a MISS): wrk
/// sends no headers, and a signed URL is how pages ask.
fn hit_url(base: &str, gemini: &Gemini) -> anyhow::Result<String> {
    signed_hit(base, &create_project(base)?, gemini)
}

/// The signed URL of a new 200 KB image of `key`'s project, after its MISS.
fn signed_hit(base: &str, key: &str, gemini: &Gemini) -> anyhow::Result<String> {
    gemini.set(Behavior::Sized(200_000));
    let url = format!("{base}{}", signed_path(base, key, "hit cpu")?);
    fetch(&url, "MISS")?;
    Ok(url)
}

pub fn run(root: &Path, before: &Path) -> anyhow::Result<()> {
    use testkit::spin::Spin;
    let garage = garage::Garage::start();
    let gemini = Gemini::start();
    let now = root.join("target/wasm32-wasip2/release/banatie_live.wasm");
    let vars = host_vars(&garage.endpoint, &gemini.url);
    // (label, [banatie-host, spin 3.6, spin 4.0.2] × [keyed, signed] URLs, their pids)
    let mut rows = Vec::new();
    let mut keep = Vec::new();
    for (label, wasm) in [("before", before), ("now", now.as_path())] {
        // The state (each runtime's SQLite key-value file) in memory: Spin's
        // store commits every write with fsync (rusqlite's defaults: a
        // rollback journal, synchronous=FULL; spin crates/key-value-spin
        // `create_connection`), and on a disk that moves a HIT's CPU by a
        // third between runs. What is measured is the runtimes' and the
        // component's work, not the disk's.
        let dir = match std::path::Path::new("/dev/shm").is_dir() {
            true => tempfile::tempdir_in("/dev/shm")?,
            false => tempfile::tempdir()?,
        };
        let manifest = manifest_for(root, wasm, dir.path())?;
        let state = |name: &str| -> anyhow::Result<std::path::PathBuf> {
            let p = dir.path().join(name);
            std::fs::create_dir_all(&p)?;
            Ok(p)
        };
        let host = format!(
            "http://{}",
            start_host_from(&manifest, &garage.endpoint, &gemini.url, &state("host")?, &[])?
        );
        let spin3 = targets::spin_version_from(Spin::V3, &manifest, &vars, &state("spin3")?)?;
        let spin4 = targets::spin_version_from(Spin::V4, &manifest, &vars, &state("spin4")?)?;
        let urls =
            [hit_urls(&host, &gemini)?, hit_urls(&spin3.base, &gemini)?, hit_urls(&spin4.base, &gemini)?];
        rows.push((label, urls, [0, spin3.pid(), spin4.pid()]));
        keep.push((dir, spin3, spin4));
    }
    // best[row][kind][runtime]
    let mut best = vec![[[f64::MAX; 3]; 2]; rows.len()];
    for _round in 0..3 {
        for (i, (_, urls, pids)) in rows.iter().enumerate() {
            for r in 0..3 {
                for (k, (url, key)) in urls[r].iter().enumerate() {
                    best[i][k][r] = best[i][k][r].min(cpu_per_hit(url, key.as_deref(), pids[r])?);
                }
            }
        }
    }
    println!("| 200 KB HIT, 8 connections | banatie-host CPU per request | spin up 3.6 CPU per request | spin up 4.0.2 CPU per request |");
    println!("|---|---|---|---|");
    for (k, kind) in ["keyed", "signed"].iter().enumerate() {
        for ((label, ..), b) in rows.iter().zip(&best) {
            println!("| {kind}, {label} | {:.0} µs | {:.0} µs | {:.0} µs |", b[k][0], b[k][1], b[k][2]);
        }
        let ratio = |r: usize| best[1][k][r] / best[0][k][r];
        println!("| {kind}, now ÷ before | {:.2} | {:.2} | {:.2} |", ratio(0), ratio(1), ratio(2));
    }
    drop(keep);
    Ok(())
}

/// `-- metrics-cost`: the 200 KB signed HIT at 64 connections on two
/// banatie-hosts in this process, one with `--metrics-listen` (counting
/// every answer) and one without, and the counted one again with its request
/// log lines on (JSON, written to a file, as `--log-format json` writes
/// them to stderr); alternated three times, the best of each kept. Printed
/// as a Markdown table.
pub fn metrics_cost(root: &Path) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let logs = tempfile::tempdir()?;
    let file = std::fs::File::create(logs.path().join("requests.log"))?;
    let (filter, switch) = tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(std::sync::Mutex::new(file)),
        )
        .try_init()?;
    let garage = garage::Garage::start();
    let gemini = Gemini::start();
    let manifest = root.join("spin.toml");
    let (off_state, on_state) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let flags = crate::Flags::default();
    let off = start_host_with(&manifest, &garage.endpoint, &gemini.url, off_state.path(), &[], &flags)?;
    let on = start_host_with(
        &manifest,
        &garage.endpoint,
        &gemini.url,
        on_state.path(),
        &[],
        &crate::Flags { metrics_listen: Some("127.0.0.1:0".parse()?), ..Default::default() },
    )?;
    let urls = [hit_url(&format!("http://{off}"), &gemini)?, hit_url(&format!("http://{on}"), &gemini)?];
    // (url, request logs on)
    let rows = [(&urls[0], false), (&urls[1], false), (&urls[1], true)];
    let mut best = [(0.0f64, f64::MAX); 3];
    for _round in 0..3 {
        for (i, (url, logged)) in rows.iter().enumerate() {
            let level = if *logged { "info" } else { "off" };
            switch.modify(|f| *f = tracing_subscriber::EnvFilter::new(level))?;
            let (rps, cpu) = load(url, 0, 64)?;
            best[i] = (best[i].0.max(rps), best[i].1.min(cpu));
        }
    }
    switch.modify(|f| *f = tracing_subscriber::EnvFilter::new("off"))?;
    let lines = std::fs::read_to_string(logs.path().join("requests.log"))?.lines().count();
    println!("| 200 KB signed HIT, 64 connections | requests/s | CPU per request |");
    println!("|---|---|---|");
    println!("| without --metrics-listen, no request log | {:.0} | {:.0} µs |", best[0].0, best[0].1);
    println!("| with --metrics-listen | {:.0} | {:.0} µs |", best[1].0, best[1].1);
    println!("| with --metrics-listen and JSON request logs | {:.0} | {:.0} µs |", best[2].0, best[2].1);
    println!("| metrics ÷ neither | {:.3} | {:.3} |", best[1].0 / best[0].0, best[1].1 / best[0].1);
    println!("| metrics and logs ÷ neither | {:.3} | {:.3} |", best[2].0 / best[0].0, best[2].1 / best[0].1);
    println!("({lines} request lines written)");
    Ok(())
}
