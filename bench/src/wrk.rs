//! `wrk` as the load generator: run it against a URL and read requests/s and
//! the latency percentiles from its `--latency` report.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

pub const DESCRIPTION: &str = "wrk, 1 thread, C connections, 5 s per measurement, after a 1 s warm-up";

pub struct Figures {
    pub requests_per_sec: f64,
    /// Requests completed in the measured 5 s.
    pub requests: u64,
    pub p50: Duration,
    pub p99: Duration,
}

pub fn check_installed() -> anyhow::Result<()> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!("wrk is not installed (Debian: apt-get install -y wrk)"),
    }
}

fn wrk(
    url: &str,
    connections: u32,
    seconds: u32,
    errors_expected: bool,
    header: Option<&str>,
) -> anyhow::Result<String> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--timeout", "10s", "--latency"])
        .args(header.map(|h| ["-H", h]).into_iter().flatten())
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if (!errors_expected && text.contains("Non-2xx or 3xx responses")) || text.contains("Socket errors") {
        bail!("wrk saw errors against {url}:\n{text}");
    }
    Ok(text)
}

/// Load `url` with `connections`; every answer must be 2xx/3xx.
pub fn run(url: &str, connections: u32) -> anyhow::Result<Figures> {
    measure(url, connections, false, None)
}

/// The same, each request with `header` (`Name: value`).
pub fn run_with_header(url: &str, connections: u32, header: &str) -> anyhow::Result<Figures> {
    measure(url, connections, false, Some(header))
}

/// Load a `url` that answers 4xx on purpose (a route that touches nothing).
pub fn run_expecting_errors(url: &str, connections: u32) -> anyhow::Result<Figures> {
    measure(url, connections, true, None)
}

fn measure(
    url: &str,
    connections: u32,
    errors_expected: bool,
    header: Option<&str>,
) -> anyhow::Result<Figures> {
    wrk(url, connections, 1, errors_expected, header)?;
    let text = wrk(url, connections, 5, errors_expected, header)?;
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse::<u64>().ok())
        .context("no request count in wrk output")?;
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .context("no Requests/sec in wrk output")?;
    let percentile = |p: &str| -> anyhow::Result<Duration> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .with_context(|| format!("no {p} line in wrk output"))?;
        parse_duration(line.split_whitespace().nth(1).unwrap_or(""))
    };
    Ok(Figures { requests_per_sec: rps, requests, p50: percentile("50%")?, p99: percentile("99%")? })
}

/// `812.00us`, `1.23ms`, `2.01s` as wrk prints them.
fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let (number, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        bail!("unknown wrk duration {s:?}")
    };
    Ok(Duration::from_secs_f64(number.parse::<f64>()? * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_in_every_unit() {
        assert_eq!(parse_duration("812.00us").unwrap(), Duration::from_micros(812));
        assert_eq!(parse_duration("1.50ms").unwrap(), Duration::from_micros(1500));
        assert_eq!(parse_duration("2.00s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("3x").is_err());
    }
}
