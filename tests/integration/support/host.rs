//! Run the real component against Garage and a provider double, each host
//! with its own state dir and port, in the real `banatie-host` binary, in
//! the real `spin up` (Spin 3 or 4, with the same arguments: `spin up` takes
//! `--from`, `--listen`, `--state-dir`, `--variable` and
//! `--runtime-config-file` too), or in wasmCloud 2's real `wash dev`
//! (`support::wash` writes its config from the same variables). The process
//! group is killed when the `Host` is dropped.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::garage::{BUCKET, KEY_ID, REGION, SECRET};
use super::http::{send, Reply};
use super::runtime::{self, Runtime};
use super::store::Store;
use testkit::port::Reserved;

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
    /// The key-value store it uses, to look into.
    pub store: Store,
    launch: Launch,
    /// The port Spin or wash was told to listen on, held while it runs
    /// (`testkit::port`; banatie-host binds port 0 and says which it got).
    _port: Option<Reserved>,
}

/// What a host was started with (to start it again).
#[derive(Clone)]
struct Launch {
    /// banatie-host's and Spin's command line.
    args: Vec<String>,
    /// The variables, for wash's config.
    vars: Vec<(String, String)>,
    /// Its environment, beyond the test's.
    env: Vec<(String, String)>,
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
        ("client_derivations_per_hour", "1000000"),
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

    /// The real `spin up` running the app pushed to an OCI registry as
    /// `reference` (`spin registry push`), as SpinKube would pull it; Spin
    /// keeps what it pulls under `XDG_CACHE_HOME`, here in the state dir.
    pub fn start_from_registry(reference: &str, vars: &[(String, String)]) -> Host {
        assert!(matches!(runtime::current(), Runtime::Spin(_)), "only Spin runs apps from a registry");
        let state = Arc::new(tempfile::tempdir().unwrap());
        let mut args: Vec<String> =
            ["up", "--from-registry", reference, "--insecure", "--listen", "127.0.0.1:0"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(["--state-dir".to_string(), state.path().display().to_string()]);
        for (k, v) in vars {
            args.extend(["--variable".to_string(), format!("{k}={v}")]);
        }
        let cache = state.path().join("xdg-cache").display().to_string();
        Host::spawn(
            state,
            Launch { args, vars: vars.to_vec(), env: vec![("XDG_CACHE_HOME".into(), cache)] },
            None,
        )
    }

    /// A host using `store`, which other hosts may share: through the
    /// runtime config for banatie-host and Spin, through its config for wash.
    pub fn start_sharing(store: &Store, vars: &[(String, String)]) -> Host {
        Host::start_sharing_with(store, vars, &[])
    }

    /// As [`Host::start_sharing`], with these flags (banatie-host and Spin).
    pub fn start_sharing_with(store: &Store, vars: &[(String, String)], extra: &[&str]) -> Host {
        let state = Arc::new(tempfile::tempdir().unwrap());
        match store.runtime_config(state.path()) {
            Some(rc) => {
                let rc = rc.display().to_string();
                let mut args = vec!["--runtime-config-file", &rc];
                args.extend_from_slice(extra);
                let mut host = Host::start_in(state, vars, &args);
                host.store = store.clone();
                host
            }
            None => {
                let launch = Launch { args: Vec::new(), vars: vars.to_vec(), env: Vec::new() };
                Host::spawn(state, launch, Some(store.clone()))
            }
        }
    }

    pub fn start_with_manifest(
        state: Arc<tempfile::TempDir>,
        manifest: &Path,
        vars: &[(String, String)],
        extra: &[&str],
    ) -> Host {
        Host::start_with_env(state, manifest, vars, extra, &[])
    }

    /// As [`Host::start_with_manifest`], with these environment variables
    /// (banatie-host and Spin).
    pub fn start_with_env(
        state: Arc<tempfile::TempDir>,
        manifest: &Path,
        vars: &[(String, String)],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Host {
        if let Runtime::Wash(_) = runtime::current() {
            assert!(extra.is_empty(), "{extra:?}: banatie-host's and spin's flags, not wash's");
            assert_eq!(manifest, repo_root().join("spin.toml"), "wash runs the prebuilt wasmcloud2 build");
        }
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
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Host::spawn(state, Launch { args, vars: vars.to_vec(), env }, None)
    }

    /// Start the current runtime; `store`: the one to use (else its own).
    fn spawn(state: Arc<tempfile::TempDir>, launch: Launch, store: Option<Store>) -> Host {
        let log_path = state.path().join("host.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let runtime = runtime::current();
        let mut args = launch.args.clone();
        let store = store.unwrap_or_else(|| match runtime {
            Runtime::Wash(kind) => Store::for_wash(kind, state.path()),
            _ => Store::Sqlite(state.path().join("sqlite_key_value.db")),
        });
        let mut port = None;
        let mut command = match runtime {
            Runtime::BanatieHost => {
                // The tests' requests all come from 127.0.0.1: the per-client
                // share is out of reach, except where a test sets it.
                if args.first().is_some_and(|a| a == "up")
                    && !args.iter().any(|a| a == "--max-requests-per-client")
                {
                    args.extend(["--max-requests-per-client".to_string(), "100000".to_string()]);
                }
                Command::new(env!("CARGO_BIN_EXE_banatie-host"))
            }
            Runtime::Spin(version) => {
                assert!(!args.iter().any(|a| a == "--dev"), "--dev is banatie-host's");
                // Spin prints the address it was given: give it a real port.
                let reserved = Reserved::new();
                for a in args.iter_mut().filter(|a| a.as_str() == "127.0.0.1:0") {
                    *a = reserved.addr();
                }
                port = Some(reserved);
                Command::new(testkit::spin::binary(version).expect("spin CLI"))
            }
            Runtime::Wash(_) => {
                args.clear(); // its command line is all in its config file
                let reserved = Reserved::new();
                let command = super::wash::command(state.path(), &launch.vars, &store, &reserved.addr());
                port = Some(reserved);
                command
            }
        };
        let mut child = command
            .args(&args)
            .envs(launch.env.iter().cloned())
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {runtime:?}: {e}"));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let sink = lines.clone();
        let announce = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = announced(&line) {
                    let _ = announce.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        std::thread::spawn(move || {
            use std::io::Write;
            let mut log = log;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                super::suite_log(&line);
                if let Some(addr) = deployed(&line) {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(addr) => addr,
            Err(_) => {
                kill_group(&mut child);
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("{runtime:?} did not start; its log:\n{log}");
            }
        };
        Host {
            child,
            base: format!("http://{addr}"),
            stdout: lines,
            state,
            runtime,
            store,
            launch,
            _port: port,
        }
    }

    /// Stop the process and start it again on the same state dir, store and runtime.
    pub fn restart(mut self) -> Host {
        self.kill();
        let (state, launch, store) = (self.state.clone(), self.launch.clone(), self.store.clone());
        runtime::with_current(self.runtime, || Host::spawn(state, launch, Some(store)))
    }

    /// The address banatie-host prints for its operator listener
    /// (`--metrics-listen`).
    pub fn operator_base(&self) -> String {
        let started = std::time::Instant::now();
        loop {
            let lines = self.stdout.lock().unwrap().clone();
            if let Some(addr) = lines.iter().find_map(|l| l.split("/readyz on ").nth(1)) {
                return addr.trim().to_string();
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no operator listener printed: {lines:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
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

    /// A value straight from the host's key-value store (a logical key).
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.store.get(key)
    }

    /// The logical keys in the host's key-value store with a prefix.
    pub fn kv_keys(&self, prefix: &str) -> Vec<String> {
        self.store.keys(prefix)
    }

    /// The single-flight leases held now. (A failed owner leaves its lease
    /// expired in place, for its waiters; the next request takes it over.)
    pub fn held_leases(&self) -> Vec<String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        self.kv_keys("lease:")
            .into_iter()
            .filter(|k| {
                let value = self.kv_get(k).unwrap_or_default();
                banatie_core::decide::single_flight::Lease::decode(&value)
                    .is_some_and(|l| u64::from(l.expires_at_s) > now)
            })
            .collect()
    }
}

/// The address a runtime says on stdout it serves on: banatie-host
/// "serving APP on http://ADDR (route …)", Spin "Serving http://ADDR".
fn announced(line: &str) -> Option<String> {
    let rest = line.split(" on http://").nth(1).or_else(|| line.strip_prefix("Serving http://"))?;
    Some(rest.split_whitespace().next().unwrap_or("").to_string())
}

/// wash's log line once the component is deployed (its port opens earlier):
/// "listening for HTTP requests address=http://ADDR".
fn deployed(line: &str) -> Option<String> {
    let rest =
        line.contains("listening for HTTP requests").then(|| line.split("address=http://").nth(1))??;
    Some(rest.split_whitespace().next().unwrap_or("").to_string())
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

/// A key's value in a Spin SQLite store file (`None`: no such key). Loud:
/// a file that is not there, is not Spin's store or cannot be read fails the
/// test, never reads as "no such key".
pub fn kv_get(db: &Path, key: &str) -> Option<Vec<u8>> {
    use rusqlite::OptionalExtension;
    sqlite_store(db)
        .query_row("SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()
        .unwrap_or_else(|e| panic!("reading {key:?} from {}: {e}", db.display()))
}

/// A connection to an existing Spin SQLite store file (never creates one).
pub fn sqlite_store(db: &Path) -> rusqlite::Connection {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(db, flags).unwrap_or_else(|e| panic!("{}: {e}", db.display()))
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}
