//! A real browser for the tests: Debian's headless Chromium driven over
//! WebDriver (chromedriver + fantoccini), on 127.0.0.1, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    driver: Child,
    /// chromedriver's port, held while it runs (`crate::port`).
    _reserved: crate::port::Reserved,
    profile: tempfile::TempDir,
    pub runtime: tokio::runtime::Runtime,
    pub client: fantoccini::Client,
}

impl Browser {
    pub fn start() -> Browser {
        let reserved = crate::port::Reserved::new();
        let port = reserved.port();
        let driver = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian: apt-get install chromium chromium-driver)");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = runtime.block_on(async {
            loop {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                let attempt =
                    fantoccini::ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await;
                match attempt {
                    Ok(client) => break client,
                    Err(e) if Instant::now() > deadline => panic!("no WebDriver session: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        Browser { driver, _reserved: reserved, profile, runtime, client }
    }

    pub fn goto(&self, url: &str) {
        self.runtime.block_on(self.client.goto(url)).unwrap();
    }

    pub fn reload(&self) {
        self.runtime.block_on(self.client.refresh()).unwrap();
    }

    /// Run a script in the page (`return ...;`), or an async one calling `arguments[0]`.
    pub fn js(&self, script: &str) -> Value {
        self.runtime.block_on(self.client.execute(script, vec![])).unwrap()
    }

    pub fn js_async(&self, script: &str) -> Value {
        self.runtime.block_on(self.client.execute_async(script, vec![])).unwrap()
    }

    /// Poll a boolean expression until it holds.
    pub fn wait_for(&self, expression: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.js(&format!("return !!({expression});")) != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {expression}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Save a PNG screenshot; returns its path.
    pub fn screenshot(&self, path: &std::path::Path) -> std::path::PathBuf {
        let png = self.runtime.block_on(self.client.screenshot()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        path.to_path_buf()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = &self.profile;
    }
}
