//! Run the real component against Garage and a provider double, each host
//! with its own state dir and port, in the real `banatie-host` binary or —
//! when the test runs on `Runtime::Spin` — in the real `spin up`, with the
//! same arguments (`spin up` takes `--from`, `--listen`, `--state-dir`,
//! `--variable` and `--runtime-config-file` too). The process group is
//! killed when the `Host` is dropped.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::garage::{free_port, BUCKET, KEY_ID, REGION, SECRET};
use super::http::{send, Reply};
use super::runtime::{self, Runtime};

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub struct Host {
    child: Child,
    pub base: String,
    /// Everything the host printed on stdout so far.
    pub stdout: Arc<std::sync::Mutex<Vec<String>>>,
    pub state: Arc<tempfile::TempDir>,
    pub runtime: Runtime,
    args: Vec<String>,
}

/// Variables pointing the component at the shared Garage and at `gemini_url`.
pub fn standard_vars(s3_endpoint: &str, gemini_url: &str) -> Vec<(String, String)> {
    [
        ("s3_endpoint", s3_endpoint),
        ("s3_region", REGION),
        ("s3_bucket", BUCKET),
        ("s3_access_key_id", KEY_ID),
        ("s3_secret_access_key", SECRET),
        ("gemini_api_key", super::gemini::API_KEY),
        ("gemini_base_url", gemini_url),
        ("admin_token", ADMIN_TOKEN),
        // The tests' signed misses all come from 127.0.0.1: the per-client
        // limit is on but out of reach, except where a test sets it.
        ("client_misses_per_hour", "1000000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Host {
    pub fn start(vars: &[(String, String)]) -> Host {
        Host::start_in(Arc::new(tempfile::tempdir().unwrap()), vars, &[])
    }

    pub fn start_in(state: Arc<tempfile::TempDir>, vars: &[(String, String)], extra: &[&str]) -> Host {
        Host::start_with_manifest(state, &repo_root().join("spin.toml"), vars, extra)
    }

    pub fn start_with_manifest(
        state: Arc<tempfile::TempDir>,
        manifest: &Path,
        vars: &[(String, String)],
        extra: &[&str],
    ) -> Host {
        let mut args: Vec<String> = vec![
            "up".into(),
            "--from".into(),
            manifest.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--state-dir".into(),
            state.path().display().to_string(),
        ];
        for (k, v) in vars {
            args.push("--variable".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Host::spawn(state, args)
    }

    fn spawn(state: Arc<tempfile::TempDir>, mut args: Vec<String>) -> Host {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.path().join("host.log"))
            .unwrap();
        let runtime = runtime::current();
        let program = match runtime {
            Runtime::BanatieHost => PathBuf::from(env!("CARGO_BIN_EXE_banatie-host")),
            Runtime::Spin => {
                assert!(!args.iter().any(|a| a == "--dev"), "--dev is banatie-host's");
                // Spin prints the address it was given: give it a real port.
                for a in args.iter_mut().filter(|a| a.as_str() == "127.0.0.1:0") {
                    *a = format!("127.0.0.1:{}", free_port());
                }
                testkit::spin::binary().expect("spin CLI").to_path_buf()
            }
        };
        let mut child = Command::new(&program)
            .args(&args)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // banatie-host: "serving APP on http://ADDR (route …)"; Spin: "Serving http://ADDR".
                let announced =
                    line.split(" on http://").nth(1).or_else(|| line.strip_prefix("Serving http://"));
                if let Some(rest) = announced {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(addr) => addr,
            Err(_) => {
                kill_group(&mut child);
                let log = std::fs::read_to_string(state.path().join("host.log")).unwrap_or_default();
                panic!("{runtime:?} did not start; its log:\n{log}");
            }
        };
        Host { child, base: format!("http://{addr}"), stdout: lines, state, runtime, args }
    }

    /// Stop the process and start it again on the same state dir (and runtime).
    pub fn restart(mut self) -> Host {
        self.kill();
        let (state, args) = (self.state.clone(), self.args.clone());
        runtime::with_current(self.runtime, || Host::spawn(state, args))
    }

    pub fn kill(&mut self) {
        kill_group(&mut self.child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("host.log")).unwrap_or_default()
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    pub fn get(&self, path_and_query: &str, api_key: &str) -> Reply {
        send("GET", &self.url(path_and_query), &[("x-api-key", api_key)], b"")
    }

    /// Create a project through the admin API; returns its API key.
    pub fn create_project(&self, name: &str) -> String {
        self.create_project_with(&format!(r#"{{"name":"{name}"}}"#)).api_key
    }

    /// Create a project from a JSON body; returns all it answered.
    pub fn create_project_with(&self, body: &str) -> Created {
        let r = self.admin("POST", "/api/v1/projects", body);
        assert_eq!(r.status, 201, "create project: {}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        Created {
            id: v["project_id"].as_str().unwrap().into(),
            api_key: v["api_key"].as_str().unwrap().into(),
            signing_secret: v["signing_secret"].as_str().unwrap().into(),
        }
    }

    /// A request with the admin bearer token.
    pub fn admin(&self, method: &str, path: &str, body: &str) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        send(
            method,
            &self.url(path),
            &[("authorization", &auth), ("content-type", "application/json")],
            body.as_bytes(),
        )
    }

    /// The caller's stats document.
    pub fn stats(&self, api_key: &str) -> serde_json::Value {
        let r = self.get("/api/v1/live/stats", api_key);
        assert_eq!(r.status, 200, "stats: {}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// A value straight from the host's SQLite KV file.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        kv_get(&self.state.path().join("sqlite_key_value.db"), key)
    }

    /// KV keys with a prefix.
    pub fn kv_keys(&self, prefix: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.state.path().join("sqlite_key_value.db")).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT key FROM spin_key_value WHERE store = 'default' AND key LIKE ?1 || '%' ORDER BY key",
            )
            .unwrap();
        stmt.query_map([prefix], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }
}

/// What `POST /api/v1/projects` answered.
pub struct Created {
    pub id: String,
    pub api_key: String,
    pub signing_secret: String,
}

/// A shell command run as a user types it (README's commands), in its own
/// process group, killed with everything it started when dropped.
pub struct Shell {
    child: Child,
    stdout: Arc<std::sync::Mutex<Vec<String>>>,
    log: tempfile::NamedTempFile,
}

impl Shell {
    pub fn start(command: &str, dir: &Path) -> Shell {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new("sh")
            .args(["-c", command])
            .current_dir(dir)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .expect("sh");
        let out = child.stdout.take().unwrap();
        let stdout = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Shell { child, stdout, log }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The exit status, once the command has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What it printed on stderr (cargo's output, the host's log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Kill the process and everything it started (`spin up` runs its trigger
/// as a child process).
fn kill_group(child: &mut Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return; // already reaped: its pid may belong to someone else now
    }
    // SAFETY: kill(2) with the negative pid of the group the child leads
    // (`process_group(0)` at spawn); it touches no memory of ours.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
}

pub fn kv_get(db: &Path, key: &str) -> Option<Vec<u8>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1", [key], |r| {
        r.get(0)
    })
    .ok()
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}
