//! A real Redis server on 127.0.0.1 for one test (Debian's `redis-server`),
//! without persistence, killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// Its port, held while it runs (`crate::port`).
    _reserved: crate::port::Reserved,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let reserved = crate::port::Reserved::new();
        let port = reserved.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian: apt-get install redis-server)");
        let server = RedisServer { child, port, _reserved: reserved };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.command("PING") != "+PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One inline command; the first line of the answer (e.g. `:3`, `$5`).
    pub fn command(&self, command: &str) -> String {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return String::new() };
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if stream.write_all(format!("{command}\r\n").as_bytes()).is_err() {
            return String::new();
        }
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string()
    }

    /// Keys matching a glob pattern.
    pub fn keys(&self, pattern: &str) -> usize {
        self.command(&format!("KEYS {pattern}")).trim_start_matches('*').parse().unwrap_or(0)
    }

    /// One command given as its arguments (binary-safe), and its answer.
    pub fn call(&self, args: &[&[u8]]) -> Resp {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("redis answers");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        stream.write_all(&out).unwrap();
        read_resp(&mut std::io::BufReader::new(stream))
    }

    /// The names of the keys matching a glob pattern.
    pub fn key_names(&self, pattern: &str) -> Vec<String> {
        match self.call(&[b"KEYS", pattern.as_bytes()]) {
            Resp::Array(items) => items
                .into_iter()
                .filter_map(|i| match i {
                    Resp::Bulk(Some(b)) => String::from_utf8(b).ok(),
                    _ => None,
                })
                .collect(),
            other => panic!("KEYS answered {other:?}"),
        }
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.call(&[b"GET", key.as_bytes()]) {
            Resp::Bulk(value) => value,
            other => panic!("GET answered {other:?}"),
        }
    }
}

/// A Redis answer (RESP2).
#[derive(Debug)]
pub enum Resp {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

fn read_resp(r: &mut impl std::io::BufRead) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("redis answers");
    let (kind, rest) = line.trim_end().split_at(1);
    match kind {
        "+" => Resp::Simple(rest.into()),
        "-" => Resp::Error(rest.into()),
        ":" => Resp::Integer(rest.parse().unwrap()),
        "$" => match rest.parse::<i64>().unwrap() {
            -1 => Resp::Bulk(None),
            n => {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf).unwrap();
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
        },
        "*" => Resp::Array((0..rest.parse::<i64>().unwrap().max(0)).map(|_| read_resp(r)).collect()),
        other => panic!("not RESP: {other}{rest}"),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
