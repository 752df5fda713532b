//! Derived variants (issue 16), on banatie-host with Garage and the Gemini
//! double answering 1024×1024 PNG pictures:
//!
//! - what a derivation costs inside the component (the `derive` part of
//!   `Server-Timing`) and the component's linear memory when it finished,
//!   for w=256 and w=768 in JPEG, WebP and AVIF, over `ORIGINALS` originals;
//! - the bytes of each variant against the original's;
//! - a variant HIT against the HIT of an original of the same size (the
//!   variant path's own cost: one more KV read), with wrk, on the host backed
//!   by s3s-fs (Garage's 44 ms delayed-ACK stall on small objects would hide
//!   any difference: see the matrix).

use std::time::Duration;

use anyhow::Context;
use testkit::gemini::{Behavior, Gemini};

use crate::{agent, fetch, ms, wrk};

const ORIGINALS: usize = 20;
const CELLS: [(u32, &str); 6] =
    [(256, "jpeg"), (256, "webp"), (256, "avif"), (768, "jpeg"), (768, "webp"), (768, "avif")];

/// A signed live URL's path for `prompt` with these extra sign-API fields.
fn signed(base: &str, key: &str, prompt: &str, extra: serde_json::Value) -> anyhow::Result<String> {
    let mut body = serde_json::json!({ "prompt": prompt });
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let mut r =
        agent().post(&format!("{base}/api/v1/live/sign")).header("x-api-key", key).send(&body.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    Ok(v["path"].as_str().context("no path")?.to_string())
}

struct Derivation {
    took: Duration,
    memory: u64,
    bytes: usize,
}

/// A variant MISS: its `derive;dur` and `derive-memory` from Server-Timing.
fn derive(url: &str) -> anyhow::Result<Derivation> {
    let mut r = agent().get(url).call()?;
    let timing = r.headers().get("server-timing").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let status = r.headers().get("x-cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = r.body_mut().with_config().limit(64 << 20).read_to_vec()?;
    anyhow::ensure!(r.status() == 200 && status == "MISS", "{url}: {} {status}", r.status());
    let part = |name: &str| timing.split(", ").find_map(|p| p.strip_prefix(name)).map(str::to_string);
    let took = part("derive;dur=").and_then(|v| v.parse::<f64>().ok()).context("no derive;dur")?;
    let memory = part("derive-memory;desc=").and_then(|v| v.trim_matches('"').parse::<u64>().ok());
    Ok(Derivation {
        took: Duration::from_secs_f64(took / 1000.0),
        memory: memory.context("no derive-memory")?,
        bytes: body.len(),
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// `garage`: banatie-host on Garage (derivations); `s3fs`: on s3s-fs (HITs).
pub fn run(
    garage: (&str, &str),
    s3fs: (&str, &str),
    gemini: &Gemini,
    report: &mut String,
) -> anyhow::Result<()> {
    let (base, key) = garage;
    gemini.set(Behavior::Picture);
    let pid = std::process::id();
    let mut originals = Vec::new();
    let mut cells: Vec<Vec<Derivation>> = CELLS.iter().map(|_| Vec::new()).collect();
    for i in 0..ORIGINALS {
        let prompt = format!("a variant bench picture {i} {pid}");
        originals.push(
            fetch(&format!("{base}{}", signed(base, key, &prompt, serde_json::json!({}))?), "MISS")?.len(),
        );
        for (cell, (w, format)) in cells.iter_mut().zip(CELLS) {
            let path = signed(base, key, &prompt, serde_json::json!({ "w": w, "format": format }))?;
            cell.push(derive(&format!("{base}{path}"))?);
        }
    }
    originals.sort();
    let original = originals[ORIGINALS / 2];
    report.push_str(&format!(
        "\n### Derived variants: the cost of a derivation in the component\n\n\
         {ORIGINALS} originals, each a 1024×1024 PNG picture (the Gemini double's; median {:.0} KB); each variant \
         derived once from each (decode, Lanczos3, encode; AVIF at rav1e speed 8, one thread). Time is the \
         component's own (`Server-Timing: derive`); memory is the instance's linear memory when the derivation \
         finished (its peak: an instance's memory only grows; the instance starts at ~1.4 MiB).\n\n\
         | variant | p50 | p99 | peak linear memory (max) | bytes (median) | of the original |\n|---|---|---|---|---|---|\n",
        original as f64 / 1000.0
    ));
    for (cell, (w, format)) in cells.iter().zip(CELLS) {
        let mut took: Vec<Duration> = cell.iter().map(|d| d.took).collect();
        took.sort();
        let mut bytes: Vec<usize> = cell.iter().map(|d| d.bytes).collect();
        bytes.sort();
        let memory = cell.iter().map(|d| d.memory).max().unwrap_or(0);
        let median = bytes[bytes.len() / 2];
        report.push_str(&format!(
            "| w={w} {format} | {} | {} | {:.1} MiB | {:.1} KB | {:.2}% |\n",
            ms(percentile(&took, 0.5)),
            ms(percentile(&took, 0.99)),
            memory as f64 / 1048576.0,
            median as f64 / 1000.0,
            100.0 * median as f64 / original as f64
        ));
    }

    // A variant HIT against an original HIT of the same size, on s3s-fs.
    let (base, key) = s3fs;
    let prompt = format!("a variant HIT bench picture {pid}");
    fetch(&format!("{base}{}", signed(base, key, &prompt, serde_json::json!({}))?), "MISS")?;
    let variant =
        format!("{base}{}", signed(base, key, &prompt, serde_json::json!({ "w": 768, "format": "jpeg" }))?);
    fetch(&variant, "MISS")?;
    let size = fetch(&variant, "HIT")?.len();
    gemini.set(Behavior::Sized(size));
    let same = format!(
        "{base}{}",
        signed(base, key, &format!("an original of {size} bytes {pid}"), serde_json::json!({}))?
    );
    fetch(&same, "MISS")?;
    report.push_str(&format!(
        "\n### Derived variants: a variant HIT against an original HIT of the same size\n\n\
         The w=768 JPEG variant ({:.1} KB) and an original of exactly its size, on banatie-host backed by s3s-fs. \
         {}. A variant HIT also reads its original's entry (it serves only variants of the current original).\n\n\
         | connections | original HIT req/s | variant HIT req/s | variant / original | original p50 / p99 | variant p50 / p99 |\n\
         |---|---|---|---|---|---|\n",
        size as f64 / 1000.0,
        wrk::DESCRIPTION
    ));
    for connections in [8, 64] {
        let o = wrk::run(&same, connections)?;
        let v = wrk::run(&variant, connections)?;
        report.push_str(&format!(
            "| {connections} | {:.0} | {:.0} | **{:.2}** | {} / {} | {} / {} |\n",
            o.requests_per_sec,
            v.requests_per_sec,
            v.requests_per_sec / o.requests_per_sec,
            ms(o.p50),
            ms(o.p99),
            ms(v.p50),
            ms(v.p99)
        ));
    }
    Ok(())
}
