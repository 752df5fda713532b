//! `cargo run --profile host -p bench -- progressive`: what a visitor waits
//! for on a MISS, plain against progressive, with the provider double taking
//! 5 s (a real image model's time): the time to the answer's first byte and
//! to its first painted part (the part and the next delimiter arrived, as a
//! browser needs to show it), for banatie-host (in this process) and
//! `spin up` 4.0.2, in one run. Each row is 20 MISSes of new prompts, one at
//! a time; p50 and p99 (with 20, the worst) printed as a Markdown table.

use std::path::Path;
use std::time::Duration;

use testkit::gemini::{Behavior, Gemini};
use testkit::stream::{self, Until};
use testkit::{garage, spin::Spin};

use crate::{create_project, host_vars, start_host_from, targets};

const DELAY_MS: u64 = 5_000;
const MISSES: usize = 20;

fn percentile(mut ms: Vec<f64>, p: f64) -> f64 {
    ms.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
    ms[rank.clamp(1, ms.len()) - 1]
}

/// (first byte, first painted part) of `MISSES` MISSes on `base`, in ms.
fn misses(base: &str, key: &str, progressive: bool, label: &str) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (mut first_byte, mut painted) = (Vec::new(), Vec::new());
    for n in 0..MISSES {
        let query = format!("prompt=progressive+bench+{label}+{n}&progressive={}", u8::from(progressive));
        let url = format!("{base}/api/v1/live/generate?{query}");
        let accept = "image/avif,image/webp,image/*,*/*;q=0.8";
        let got = stream::get(&url, &[("x-api-key", key), ("accept", accept)], Until::End);
        anyhow::ensure!(got.status == 200, "{label}: {} for {url}", got.status);
        anyhow::ensure!(got.header("x-cache-status") == Some("MISS"), "{label}: not a MISS");
        first_byte.push(got.head_at.as_secs_f64() * 1000.0);
        // A plain answer is painted when it has all arrived: the whole image.
        let at = match got.parts.first() {
            Some((at, _)) => *at,
            None => got.head_at.max(Duration::from_millis(1)),
        };
        painted.push(at.as_secs_f64() * 1000.0);
    }
    Ok((first_byte, painted))
}

pub fn run(root: &Path) -> anyhow::Result<()> {
    let garage = garage::Garage::start();
    let gemini = Gemini::start();
    gemini.set(Behavior::Picture);
    gemini.set_delay(DELAY_MS);
    let manifest = root.join("spin.toml");
    let dir = tempfile::tempdir()?;
    let host =
        format!("http://{}", start_host_from(&manifest, &garage.endpoint, &gemini.url, dir.path(), &[])?);
    let vars = host_vars(&garage.endpoint, &gemini.url);
    let spin_state = tempfile::tempdir()?;
    let spin4 = targets::spin_version_from(Spin::V4, &manifest, &vars, spin_state.path())?;
    println!("| MISS, provider takes {DELAY_MS} ms, {MISSES} each | first byte p50 | p99 | first painted part p50 | p99 |");
    println!("|---|---|---|---|---|");
    for (runtime, base) in [("banatie-host", host.as_str()), ("spin up 4.0.2", spin4.base.as_str())] {
        let key = create_project(base)?;
        for progressive in [false, true] {
            let label = format!("{}-{}", runtime.replace(' ', "-"), u8::from(progressive));
            let (first_byte, painted) = misses(base, &key, progressive, &label)?;
            let kind = if progressive { "progressive=1" } else { "plain" };
            println!(
                "| {runtime}, {kind} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
                percentile(first_byte.clone(), 50.0),
                percentile(first_byte, 99.0),
                percentile(painted.clone(), 50.0),
                percentile(painted, 99.0),
            );
        }
    }
    drop(spin4);
    Ok(())
}
