//! The matrix: object sizes × connection counts, each served by
//!
//! - nginx from disk (sendfile): the ceiling of this machine;
//! - Garage directly (a presigned GET): the S3 baseline the goals are set
//!   against; nginx as a reverse proxy in front of Garage: what a mature
//!   proxy costs on the same hop;
//! - banatie-host (in this process) and the real `spin up`, both serving
//!   the same `.wasm` backed by the same Garage;
//! - s3s-fs directly and banatie-host backed by it: a second baseline
//!   without Garage's delayed-ACK stall on small objects.
//!
//! For banatie-host and Spin it also reads their CPU time (user + system,
//! from /proc) per request and their resident memory.

use std::time::Duration;

use testkit::gemini::{Behavior, Gemini};
use testkit::{garage, s3};

use crate::targets::{self, Proc};
use crate::{fetch, ms, procfs, signed_path, wrk};

pub const SIZES: [(&str, usize); 3] = [("10 KB", 10_000), ("200 KB", 200_000), ("2 MB", 2_000_000)];
pub const CONNECTIONS: [u32; 3] = [8, 64, 256];

/// One thing under load: its URL and whose CPU to read (`Some(0)`: this process).
pub(crate) struct Target {
    pub url: String,
    pub cpu_of: Option<u32>,
}

pub(crate) struct Run {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU microseconds per request of the measured server, when read.
    pub cpu_us: Option<f64>,
}

pub(crate) fn measure(target: &Target, connections: u32) -> anyhow::Result<Run> {
    measure_with(target, connections, wrk::run)
}

/// The same, each request with `header` (`Name: value`: an API key).
pub(crate) fn measure_with_header(target: &Target, connections: u32, header: &str) -> anyhow::Result<Run> {
    measure_with(target, connections, |url, c| wrk::run_with_header(url, c, header))
}

fn measure_with(
    target: &Target,
    connections: u32,
    load: impl Fn(&str, u32) -> anyhow::Result<wrk::Figures>,
) -> anyhow::Result<Run> {
    let before = target.cpu_of.map(procfs::cpu_seconds);
    let f = load(&target.url, connections)?;
    let cpu_us = target.cpu_of.zip(before).map(|(pid, b)| {
        // The warm-up second is inside the CPU window: count its requests too.
        let requests = f.requests as f64 * 6.0 / 5.0;
        (procfs::cpu_seconds(pid) - b) * 1e6 / requests
    });
    Ok(Run { rps: f.requests_per_sec, p50: f.p50, p99: f.p99, cpu_us })
}

pub struct Setup<'a> {
    pub garage: &'a garage::Garage,
    pub gemini: &'a Gemini,
    /// banatie-host backed by Garage: its base URL and a project key.
    pub host: (&'a str, &'a str),
    pub spin: &'a Proc,
    pub spin_key: &'a str,
    pub s3fs: &'a Proc,
    /// banatie-host backed by s3s-fs.
    pub host_s3fs: (&'a str, &'a str),
}

fn cpu(r: &Run) -> String {
    r.cpu_us.map_or("—".into(), |us| format!("{us:.0} µs"))
}

pub fn run(setup: &Setup<'_>, report: &mut String) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let statics = work.path().join("static");
    std::fs::create_dir_all(&statics)?;
    let garage_hostport = setup.garage.endpoint.trim_start_matches("http://").to_string();
    let nginx = targets::nginx(&work.path().join("nginx"), &statics, &garage_hostport)?;
    let spin_pid = setup.spin.pid();

    report.push_str(&format!(
        "### HIT throughput by object size and connections\n\n\
         Load: {}. Ratios are against Garage direct unless named. \"added p99\" is \
         banatie-host's p99 minus Garage direct's. CPU is per request, user + system.\n",
        wrk::DESCRIPTION
    ));
    let mut s3fs_rows = String::new();
    for (label, size) in SIZES {
        setup.gemini.set(Behavior::Sized(size));
        let prompt = format!("matrix object of {size} bytes");
        let (base, key) = setup.host;
        let path = signed_path(base, key, &prompt)?;
        let bytes = fetch(&format!("{base}{path}"), "MISS")?;
        let direct_key = format!("bench/matrix-{size}.png");
        s3::put(&setup.garage.endpoint, &direct_key, &bytes);
        s3::put(&setup.s3fs.base, &direct_key, &bytes);
        std::fs::write(statics.join(format!("object-{size}.png")), &bytes)?;
        let garage_url = s3::presigned_get(&setup.garage.endpoint, &direct_key);
        let proxied = garage_url.replacen(&setup.garage.endpoint, &format!("{}/proxy", nginx.base), 1);
        let spin_path = signed_path(&setup.spin.base, setup.spin_key, &prompt)?;
        fetch(&format!("{}{spin_path}", setup.spin.base), "MISS")?;
        let (b_base, b_key) = setup.host_s3fs;
        let b_path = signed_path(b_base, b_key, &prompt)?;
        fetch(&format!("{b_base}{b_path}"), "MISS")?;

        let targets = [
            Target { url: format!("{}/static/object-{size}.png", nginx.base), cpu_of: None },
            Target { url: garage_url.clone(), cpu_of: None },
            Target { url: proxied, cpu_of: None },
            Target { url: format!("{base}{path}"), cpu_of: Some(0) },
            Target { url: format!("{}{spin_path}", setup.spin.base), cpu_of: Some(spin_pid) },
            Target { url: s3::presigned_get(&setup.s3fs.base, &direct_key), cpu_of: None },
            Target { url: format!("{b_base}{b_path}"), cpu_of: Some(0) },
        ];
        report.push_str(&format!(
            "\n#### {label}\n\n\
             | conns | nginx static | Garage direct | nginx→Garage | banatie-host | spin up | host ÷ direct | spin ÷ direct | host ÷ nginx proxy | host ÷ spin | host p50 / p99 | added p99 | host CPU | spin CPU |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        ));
        for c in CONNECTIONS {
            let runs: Vec<Run> = targets.iter().map(|t| measure(t, c)).collect::<anyhow::Result<_>>()?;
            let [stat, direct, proxy, host, spin, s3fs, host_b] = &runs[..] else { unreachable!() };
            report.push_str(&format!(
                "| {c} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | **{:.2}** | {:.2} | {:.2} | {:.2} | {} / {} | {} | {} | {} |\n",
                stat.rps,
                direct.rps,
                proxy.rps,
                host.rps,
                spin.rps,
                host.rps / direct.rps,
                spin.rps / direct.rps,
                host.rps / proxy.rps,
                host.rps / spin.rps,
                ms(host.p50),
                ms(host.p99),
                ms(host.p99.saturating_sub(direct.p99)),
                cpu(host),
                cpu(spin),
            ));
            s3fs_rows.push_str(&format!(
                "| {label} | {c} | {:.0} | {:.0} | **{:.2}** | {} / {} | {} / {} | {} | {} |\n",
                s3fs.rps,
                host_b.rps,
                host_b.rps / s3fs.rps,
                ms(s3fs.p50),
                ms(s3fs.p99),
                ms(host_b.p50),
                ms(host_b.p99),
                ms(host_b.p99.saturating_sub(s3fs.p99)),
                cpu(host_b),
            ));
        }
    }
    report.push_str(
        "\n### HIT against s3s-fs (no delayed-ACK stall): banatie-host backed by s3s-fs vs s3s-fs direct\n\n\
         | object | conns | s3s-fs direct | banatie-host | host ÷ direct | direct p50 / p99 | host p50 / p99 | added p99 | host CPU |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    report.push_str(&s3fs_rows);

    let (base, _) = setup.host;
    let nothing = [
        Target { url: format!("{}/static/nothing-here", nginx.base), cpu_of: None },
        Target { url: format!("{base}/api/v1/bench-route-that-touches-nothing"), cpu_of: Some(0) },
        Target {
            url: format!("{}/api/v1/bench-route-that-touches-nothing", setup.spin.base),
            cpu_of: Some(spin_pid),
        },
    ];
    report.push_str(
        "\n### Per-request overhead: a component route that touches nothing (404 before any KV/S3 call), 64 connections\n\n\
         | server | req/s | p50 | p99 | CPU per request |\n|---|---|---|---|---|\n",
    );
    for (name, t) in ["nginx (404 from disk)", "banatie-host", "spin up"].iter().zip(&nothing) {
        let run = measure_with(t, 64, wrk::run_expecting_errors)?;
        report.push_str(&format!(
            "| {name} | {:.0} | {} | {} | {} |\n",
            run.rps,
            ms(run.p50),
            ms(run.p99),
            cpu(&run)
        ));
    }
    report.push_str(&format!(
        "\n### Resident memory after the matrix\n\n| banatie-host (bench process: host ×2, Gemini double) | spin up (all its processes) |\n|---|---|\n| {:.0} MiB | {:.0} MiB |\n",
        procfs::rss_mib(0),
        procfs::rss_mib(spin_pid)
    ));
    Ok(())
}
