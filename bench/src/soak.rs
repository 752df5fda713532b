//! `cargo run --profile host -p bench -- soak`: the host under abuse, on
//! 127.0.0.1, bounded in time (about five minutes):
//!
//! 1. 1,000 concurrent keep-alive connections doing signed HITs for 60 s
//!    (wrk, a Lua script counting every status): no 500, no connection error;
//!    whatever is beyond capacity is 503 with Retry-After.
//! 2. 1,000 idle and 1,000 slowloris sockets held while a normal client keeps
//!    asking: its p50/p99, how many of the 2,000 the server closed after its
//!    header timeout, and the host's CPU meanwhile.
//! 3. RSS of the process (host and bench) before and after 10,000 distinct misses.
//! 4. A normal client's HITs alone, then while two clients derive AVIFs of a
//!    noisy 1536² original back to back (every width of the ladder) and 500 sockets from another address
//!    asked for a 20 MB image and never read it: p50/p99, every status.
//!
//! (A looping guest cut off at the deadline is an integration test:
//! `hardening::a_looping_guest_is_cut_off_at_the_deadline_and_the_host_keeps_serving`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::Context;

use testkit::gemini::{Behavior, Gemini};

use crate::{agent, ms, signed_path};

const STATUS_SCRIPT: &str = r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %d %d\n", k, v)) end
  io.write(string.format("p50us %d\np99us %d\np999us %d\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"#;

fn cpu_seconds() -> f64 {
    crate::procfs::cpu_seconds(0)
}

fn rss_mib() -> f64 {
    crate::procfs::rss_mib(0)
}

pub fn run(base: &str, key: &str, gemini: &Gemini, report: &mut String) -> anyhow::Result<()> {
    let path = signed_path(base, key, "a soak test picture")?;
    let url = format!("{base}{path}");
    crate::fetch(&url, "MISS")?;
    keep_alive_crowd(&url, report)?;
    idle_and_slowloris(base, &url, report)?;
    misses_and_rss(base, key, report)?;
    derivations_and_slow_readers(base, key, &url, gemini, report)?;
    Ok(())
}

fn keep_alive_crowd(url: &str, report: &mut String) -> anyhow::Result<()> {
    let script = std::env::temp_dir().join(format!("banatie-soak-{}.lua", std::process::id()));
    std::fs::write(&script, STATUS_SCRIPT)?;
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c1000", "-d60s", "--timeout", "10s", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .context("running wrk")?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix)).map(str::trim);
    let statuses: Vec<String> =
        text.lines().filter_map(|l| l.strip_prefix("status ")).map(|s| s.replace(' ', ": ")).collect();
    let us = |name: &str| {
        value(name).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_micros).unwrap_or_default()
    };
    let socket_errors = value("Socket errors:").unwrap_or("none");
    report.push_str(&format!(
        "### Soak 1: 1,000 keep-alive connections doing signed HITs for 60 s (wrk -t2 -c1000)\n\n\
         | requests/s | statuses | socket errors | p50 | p99 | p99.9 |\n|---|---|---|---|---|---|\n\
         | {} | {} | {} | {} | {} | {} |\n\n",
        value("Requests/sec:").unwrap_or("?"),
        statuses.join(", "),
        socket_errors,
        ms(us("p50us")),
        ms(us("p99us")),
        ms(us("p999us")),
    ));
    Ok(())
}

fn idle_and_slowloris(base: &str, url: &str, report: &mut String) -> anyhow::Result<()> {
    let addr = base.trim_start_matches("http://").to_string();
    let mut idle: Vec<TcpStream> = (0..1000).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
    let mut slow: Vec<TcpStream> = (0..1000).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
    for s in &mut slow {
        let _ = s.write_all(b"GET /api/v1/live/generate?prompt=slow HTTP/1.1\r\nX-Slow: ");
    }
    let opened = idle.len() + slow.len();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let client = agent();
    let mut latencies = Vec::new();
    // A normal client keeps asking for 15 s, past the 10 s header timeout.
    while started.elapsed() < Duration::from_secs(15) {
        let t = Instant::now();
        let mut r = client.get(url).call()?;
        let _ = r.body_mut().read_to_vec()?;
        anyhow::ensure!(r.status() == 200, "normal client got {}", r.status());
        latencies.push(t.elapsed());
        // The slowloris sockets keep dribbling.
        for s in &mut slow {
            let _ = s.write_all(b"a");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu = cpu_seconds() - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let closed = idle.iter_mut().chain(slow.iter_mut()).map(closed_by_server).filter(|c| *c).count();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    report.push_str(&format!(
        "### Soak 2: 1,000 idle + 1,000 slowloris sockets, a normal client asking meanwhile (15 s)\n\n\
         | sockets opened | closed by the server by the end | normal client requests | p50 | p99 | process CPU |\n\
         |---|---|---|---|---|---|\n| {opened} | {closed} | {} | {} | {} | {:.2} s in {:.0} s ({:.0}% of one core) |\n\n",
        latencies.len(),
        ms(p(0.5)),
        ms(p(0.99)),
        cpu,
        wall,
        cpu / wall * 100.0
    ));
    Ok(())
}

fn closed_by_server(s: &mut TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // e.g. a 408/400 before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn misses_and_rss(base: &str, key: &str, report: &mut String) -> anyhow::Result<()> {
    let before = rss_mib();
    let mut after = Vec::new();
    for batch in 0..2 {
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let workers: Vec<_> = (0..16)
                .map(|w| {
                    scope.spawn(move || -> anyhow::Result<()> {
                        let client = agent();
                        for i in 0..(5000 / 16 + 1) {
                            let prompt = format!("soak miss {batch}-{w}-{i} {}", std::process::id());
                            let url =
                                format!("{base}/api/v1/live/generate?prompt={}", prompt.replace(' ', "+"));
                            let mut r = client.get(&url).header("x-api-key", key).call()?;
                            let _ = r.body_mut().read_to_vec()?;
                            anyhow::ensure!(r.status() == 200, "miss got {}", r.status());
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| w.join().expect("worker"))
        })?;
        after.push(rss_mib());
    }
    report.push_str(&format!(
        "### Soak 3: RSS of the process (host + bench) around 10,000 distinct misses\n\n\
         | before | after 5,000 | after 10,000 |\n|---|---|---|\n| {before:.1} MiB | {:.1} MiB | {:.1} MiB |\n\n",
        after[0], after[1]
    ));
    Ok(())
}

/// A keyed live URL's path for `prompt`, fetched once (a MISS).
fn keyed(base: &str, key: &str, prompt: &str) -> anyhow::Result<String> {
    let path = format!("/api/v1/live/generate?prompt={}", prompt.replace(' ', "+"));
    let mut r = agent().get(&format!("{base}{path}")).header("x-api-key", key).call()?;
    let _ = r.body_mut().with_config().limit(64 << 20).read_to_vec()?;
    anyhow::ensure!(r.status() == 200, "{prompt}: {}", r.status());
    Ok(path)
}

/// HITs of `url`, 20 ms apart, until `until`: (latencies, non-200 statuses).
fn hits_for(url: &str, until: impl Fn() -> bool) -> anyhow::Result<(Vec<Duration>, Vec<u16>)> {
    let client = agent();
    let (mut latencies, mut others) = (Vec::new(), Vec::new());
    while !until() {
        let t = Instant::now();
        let mut r = client.get(url).call()?;
        let _ = r.body_mut().read_to_vec()?;
        latencies.push(t.elapsed());
        if r.status() != 200 {
            others.push(r.status().as_u16());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    latencies.sort();
    Ok((latencies, others))
}

fn percentiles(latencies: &[Duration]) -> (Duration, Duration) {
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    (p(0.5), p(0.99))
}

fn derivations_and_slow_readers(
    base: &str,
    key: &str,
    url: &str,
    gemini: &Gemini,
    report: &mut String,
) -> anyhow::Result<()> {
    gemini.set(Behavior::Noise(1536, 1536));
    let noisy = keyed(base, key, &format!("soak noise {}", std::process::id()))?;
    gemini.set(Behavior::Sized(20 << 20));
    let big = keyed(base, key, &format!("soak twenty megabytes {}", std::process::id()))?;
    gemini.set(Behavior::Image);
    let started = Instant::now();
    let (alone, alone_errors) = hits_for(url, || started.elapsed() > Duration::from_secs(10))?;
    let addr = base.trim_start_matches("http://");
    let request = format!("GET {big} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\r\n");
    let readers: Vec<TcpStream> = (0..500)
        .filter_map(|_| testkit::raw::silent_from([127, 0, 0, 3].into(), base, request.as_bytes()).ok())
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let cpu_before = cpu_seconds();
    let busy_started = Instant::now();
    let (during, derived) = std::thread::scope(|s| -> anyhow::Result<_> {
        // Two clients, each deriving AVIFs of the noisy original one after
        // another: every (w, q) is new, so each is a full encode.
        let derivers: Vec<_> = (0..2u32)
            .map(|d| {
                let (noisy, done) = (&noisy, &done);
                s.spawn(move || -> Vec<(u16, Duration)> {
                    let client = agent();
                    let mut out = Vec::new();
                    // q is the format's default (no `variant_qualities`): every
                    // width once, split between the two clients.
                    let widths: &[u32] = if d == 0 { &[1536, 768, 384, 128] } else { &[1024, 512, 256, 64] };
                    for &w in widths {
                        if done.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let t = Instant::now();
                        let variant = format!("{base}{noisy}&w={w}&format=avif");
                        let status = match client.get(&variant).header("x-api-key", key).call() {
                            Ok(mut r) => {
                                let _ = r.body_mut().read_to_vec();
                                r.status().as_u16()
                            }
                            Err(_) => 0,
                        };
                        out.push((status, t.elapsed()));
                    }
                    out
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let during = hits_for(url, || {
            derivers.iter().all(|d| d.is_finished()) || busy_started.elapsed() > Duration::from_secs(120)
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let derived: Vec<(u16, Duration)> =
            derivers.into_iter().flat_map(|d| d.join().expect("deriver")).collect();
        Ok((during?, derived))
    })?;
    let cpu = cpu_seconds() - cpu_before;
    let wall = busy_started.elapsed().as_secs_f64();
    let held = readers.len();
    drop(readers);
    let ((a50, a99), (d50, d99)) = (percentiles(&alone), percentiles(&during.0));
    let statuses = |errors: &[u16], n: usize| {
        if errors.is_empty() {
            format!("{n} × 200")
        } else {
            format!("{} × 200, others: {errors:?}", n - errors.len())
        }
    };
    let derive_statuses: Vec<String> =
        derived.iter().map(|(status, took)| format!("{status} in {:.1} s", took.as_secs_f64())).collect();
    report.push_str(&format!(
        "### Soak 4: a client's HITs while two clients derive AVIFs of a noisy 1536² original and 500 sockets never read a 20 MB image\n\n\
         | | HITs | p50 | p99 |\n|---|---|---|---|\n\
         | alone (10 s) | {} | {} | {} |\n\
         | during ({wall:.0} s, {held} non-reading sockets, process CPU {:.0}% of one core) | {} | {} | {} |\n\n\
         Derivations (AVIF at w=1536, 1024, … 64, two at a time): {}.\n",
        statuses(&alone_errors, alone.len()),
        ms(a50),
        ms(a99),
        cpu / wall * 100.0,
        statuses(&during.1, during.0.len()),
        ms(d50),
        ms(d99),
        derive_statuses.join(", "),
    ));
    Ok(())
}
