//! A real OCI registry on 127.0.0.1 for one test (Debian's `docker-registry`,
//! the CNCF distribution registry), storing into a temporary directory,
//! killed when dropped: where `spin registry push` puts the app and
//! `spin up --from-registry` (or SpinKube) takes it from.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    /// Its port, held while it runs (`crate::port`).
    _reserved: crate::port::Reserved,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let reserved = crate::port::Reserved::new();
        let port = reserved.port();
        let config = dir.path().join("config.yml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                data.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry runs (Debian: apt-get install docker-registry)");
        let registry = Registry { child, port, _dir: dir, _reserved: reserved };
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("http://127.0.0.1:{port}/v2/");
        while crate::http::agent().get(&url).call().map(|r| r.status()).ok()
            != Some(ureq::http::StatusCode::OK)
        {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// A reference to `name:tag` in this registry.
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("127.0.0.1:{}/{name}:{tag}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
