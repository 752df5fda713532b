//! A fake warm endpoint on 127.0.0.1 (std only) and a runner of the built
//! `banatie` binary. The fake answers each request as its test scripts it:
//! NDJSON lines, each after its delay, as chunks; or a refusal. It records
//! what it was sent, and stops when dropped. The binary runs with a
//! deadline and is killed past it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What one request was.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub items: Vec<Value>,
    /// When its body had been read.
    pub at: Instant,
    /// When its last line had been written, before the body's end (none
    /// for a refusal).
    pub last_line: Option<Instant>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// How the fake answers a request.
pub enum Answer {
    /// 200 NDJSON: each line after its delay; `complete`: the body ends
    /// properly (else the connection closes mid-body).
    Lines { lines: Vec<(Duration, String)>, complete: bool },
    /// A status and a JSON body.
    Refuse(u16, String),
}

pub type Script = dyn Fn(&[Value]) -> Answer + Send + Sync;

pub struct Fake {
    pub base: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    pub fn start(script: impl Fn(&[Value]) -> Answer + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (received.clone(), stop.clone());
        let script: Arc<Script> = Arc::new(script);
        // A thread per connection, so that a client could send a second
        // request while the first is answered (tests check it does not).
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (script, log) = (script.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &*script, &log));
            }
        });
        Fake { base, received, stop, thread: Some(thread) }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.base.trim_start_matches("http://")); // wakes accept
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, script: &Script, log: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok());
    let mut body = vec![0; length.unwrap_or(0)];
    reader.read_exact(&mut body)?;
    let items: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
    let answer = script(&items);
    let n = {
        let mut log = log.lock().unwrap();
        log.push(Received { path, headers, items, at: Instant::now(), last_line: None });
        log.len() - 1
    };
    let mut out = stream;
    match answer {
        Answer::Refuse(status, body) => write!(
            out,
            "HTTP/1.1 {status} Refused\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        Answer::Lines { lines, complete } => {
            out.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n\
                  transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )?;
            out.flush()?;
            for (delay, line) in lines {
                std::thread::sleep(delay);
                let chunk = format!("{line}\n");
                write!(out, "{:x}\r\n{chunk}\r\n", chunk.len())?;
                out.flush()?;
            }
            log.lock().unwrap()[n].last_line = Some(Instant::now());
            if complete {
                out.write_all(b"0\r\n\r\n")?;
            }
            out.flush()
        }
    }
}

/// An answer line.
pub fn cached(index: usize) -> String {
    format!(r#"{{"image_id":"img-{index}","index":{index},"status":"cached"}}"#)
}

pub fn generated(index: usize) -> String {
    format!(r#"{{"image_id":"img-{index}","index":{index},"status":"generated"}}"#)
}

pub fn failed(index: usize, code: &str, message: &str) -> String {
    serde_json::json!({"index": index, "status": "error", "error": {"code": code, "message": message}})
        .to_string()
}

/// What a run of the binary printed, and when each stdout line came.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<(Instant, String)>,
    pub stderr: String,
}

impl Run {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.iter().map(|(_, l)| l.as_str()).collect()
    }

    /// Everything it printed.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.lines().join("\n"), self.stderr)
    }
}

/// Run `banatie ARGS` with `input` on its standard input and `env` set;
/// killed after 30 s.
pub fn banatie(args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    run(env!("CARGO_BIN_EXE_banatie"), args, env, input)
}

/// Run `banatie ARGS` on a terminal: under util-linux's `script`, which
/// gives it a pseudo-terminal and passes its exit status on (its stdout
/// and stderr both come back as the run's stdout).
pub fn banatie_on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> Run {
    let command = std::iter::once(env!("CARGO_BIN_EXE_banatie"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    run("script", &["-q", "-e", "-c", &command, "/dev/null"], env, "")
}

fn run(program: &str, args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env_remove("BANATIE_API_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        BufReader::new(stdout).lines().map_while(Result::ok).map(|l| (Instant::now(), l)).collect::<Vec<_>>()
    });
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} ran past 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = feeder.join();
    Run { code, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}
