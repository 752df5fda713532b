//! Shared fixtures: one Garage per test run, a provider double and a host per
//! test. Everything listens on 127.0.0.1 and is stopped by the run.

pub mod host;
pub mod runtime;
pub mod store;
pub mod wash;

pub use testkit::{browser, garage, gemini, http, openai, raw, s3, sign};

use std::sync::OnceLock;

use garage::Garage;
use gemini::Gemini;
use host::Host;

static GARAGE_ENDPOINT: OnceLock<String> = OnceLock::new();

pub fn s3_endpoint() -> &'static str {
    GARAGE_ENDPOINT.get().expect("garage started by main")
}

pub fn set_s3_endpoint(endpoint: String) {
    GARAGE_ENDPOINT.set(endpoint).unwrap();
}

/// The tests that measure latency: each runs alone, the others wait (the
/// rest run side by side, as many as the test threads).
const ALONE: &[&str] = &["fairness::a_hit_stays_fast_while_two_maximal_derivations_run"];

static TOGETHER: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Run the test `name`: alone if it is in [`ALONE`], else beside others.
pub fn alone_or_together(name: &str, test: impl FnOnce()) {
    // A failed test poisons the lock; the others still run.
    if ALONE.contains(&name) {
        let _alone = TOGETHER.write().unwrap_or_else(|p| p.into_inner());
        test()
    } else {
        let _together = TOGETHER.read().unwrap_or_else(|p| p.into_inner());
        test()
    }
}

/// A fresh world for one test: a Gemini double and a host using it.
pub struct World {
    pub gemini: Gemini,
    pub host: Host,
}

impl World {
    pub fn new() -> World {
        let gemini = Gemini::start();
        let host = Host::start(&host::standard_vars(s3_endpoint(), &gemini.url));
        World { gemini, host }
    }
}

/// A prompt no other test uses, so S3 prefixes and counts are per test.
pub fn unique(prompt: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prompt} #{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn start_garage() -> Garage {
    let g = Garage::start();
    set_s3_endpoint(g.endpoint.clone());
    g
}
