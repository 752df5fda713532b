//! A real Garage S3 server on 127.0.0.1 for the test run: single node,
//! SQLite metadata, one key, one bucket. Started once per test binary and
//! killed at the end of the run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::port::Reserved;

pub const BUCKET: &str = "images";
pub const KEY_ID: &str = "GK0123456789abcdef01234567";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const REGION: &str = "garage";

pub struct Garage {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
    /// Its S3, RPC and admin ports, held while it runs (`crate::port`).
    _ports: [Reserved; 3],
}

fn garage_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GARAGE_BIN") {
        return p.into();
    }
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let candidate = cargo_home.join("bin/garage");
    if candidate.exists() {
        candidate
    } else {
        "garage".into()
    }
}

fn cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(garage_bin())
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("garage binary runs (install it with `cargo install garage --locked --version 2.5.0` or set GARAGE_BIN)");
    assert!(out.status.success(), "garage {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Garage {
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let ports = [Reserved::new(), Reserved::new(), Reserved::new()];
        let [s3, rpc, admin] = [ports[0].port(), ports[1].port(), ports[2].port()];
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"
[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                d = dir.path().display(),
                secret = SECRET,
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(&config)
            .arg("server")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start garage");
        let mut garage =
            Garage { child, endpoint: format!("http://127.0.0.1:{s3}"), _dir: dir, _ports: ports };
        let deadline = Instant::now() + Duration::from_secs(30);
        let node = loop {
            let out = Command::new(garage_bin())
                .arg("-c")
                .arg(&config)
                .args(["node", "id", "-q"])
                .output()
                .unwrap();
            if out.status.success() {
                break String::from_utf8_lossy(&out.stdout).split('@').next().unwrap().trim().to_string();
            }
            assert!(Instant::now() < deadline, "garage did not start");
            std::thread::sleep(Duration::from_millis(200));
        };
        // `node id` reads the key from disk and can answer before the RPC
        // port listens: the first RPC call waits for the server.
        loop {
            let out = Command::new(garage_bin())
                .arg("-c")
                .arg(&config)
                .args(["layout", "assign", "-z", "dc1", "-c", "1G", &node])
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "garage layout assign: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        cli(&config, &["layout", "apply", "--version", "1"]);
        cli(&config, &["key", "import", "--yes", "-n", "tests", KEY_ID, SECRET]);
        cli(&config, &["bucket", "create", BUCKET]);
        cli(&config, &["bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "tests"]);
        garage.wait_ready();
        garage
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if crate::s3::list(&self.endpoint, "").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("garage S3 API never became ready");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
