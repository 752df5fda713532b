//! Shared fixtures: one Garage per test run, a provider double and a host per
//! test. Everything listens on 127.0.0.1 and is stopped by the run.

pub mod host;
pub mod otlp;
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
/// Clear of the hour's turn once the lock is taken: a test may wait on the
/// lock (for a test that runs alone) past the turn.
pub fn alone_or_together(name: &str, test: impl FnOnce()) {
    // A failed test poisons the lock; the others still run.
    if ALONE.contains(&name) {
        let _alone = TOGETHER.write().unwrap_or_else(|p| p.into_inner());
        clear_of_the_hours_turn();
        test()
    } else {
        let _together = TOGETHER.read().unwrap_or_else(|p| p.into_inner());
        clear_of_the_hours_turn();
        test()
    }
}

/// Budgets and per-client allowances are counted per clock hour
/// (`banatie_core::stored::keys`' hour window), so a test that reads a count it
/// caused would see the next hour's zero if it ran across the hour's turn
/// (fresh-clone CI met it twice). A test does not start in the last two
/// minutes of an hour: it waits (at most that long) for the turn. Tests
/// that may run longer allow for the turn themselves.
fn clear_of_the_hours_turn() {
    const MARGIN: u64 = 120;
    const HOUR: u64 = banatie_core::stored::keys::HOUR_SECONDS;
    let into = sign::now() % HOUR;
    if into >= HOUR - MARGIN {
        std::thread::sleep(std::time::Duration::from_secs(HOUR - into + 1));
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

/// Every line every test's host (banatie-host, Spin, wash) wrote on stderr
/// in this run, for the whole-run check that none holds a credential.
fn suite_log_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("banatie-suite-{}.log", std::process::id()))
}

static SUITE_LOG: OnceLock<std::sync::Mutex<std::fs::File>> = OnceLock::new();

pub fn suite_log(line: &str) {
    use std::io::Write;
    let file = SUITE_LOG.get_or_init(|| {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(suite_log_path());
        std::sync::Mutex::new(file.expect("the run's log file"))
    });
    let _ = writeln!(file.lock().unwrap_or_else(|p| p.into_inner()), "{line}");
}

/// The credentials (of those the tests used) that appear in `log`.
pub fn leaks<'a>(log: &str, secrets: &'a [String]) -> Vec<&'a str> {
    secrets.iter().filter(|s| log.contains(s.as_str())).map(String::as_str).collect()
}

/// The whole run's host logs, checked for every key, token, secret and
/// signature the tests sent or were given: (lines read, secrets checked,
/// those found). The file is removed.
pub fn check_suite_log() -> (usize, usize, Vec<String>) {
    let log = std::fs::read_to_string(suite_log_path()).unwrap_or_default();
    let _ = std::fs::remove_file(suite_log_path());
    let mut secrets = http::secrets();
    secrets.extend(
        [garage::SECRET, gemini::API_KEY, openai::API_KEY, host::ADMIN_TOKEN].iter().map(|s| s.to_string()),
    );
    let found = leaks(&log, &secrets).into_iter().map(str::to_string).collect();
    (log.lines().count(), secrets.len(), found)
}
