//! A client of streamed answers (a progressive MISS, the warm endpoint's
//! lines) that notes when each piece arrives: the head, each part of a
//! `multipart/x-mixed-replace` body (a part is complete once the next
//! delimiter has arrived, as a browser sees it), each NDJSON line. It can
//! hang up after the first part. Bounded in time; 127.0.0.1 only.

use std::io::Read;
use std::time::{Duration, Instant};

/// A streamed answer, and when each piece of it arrived (from the request).
#[derive(Debug, Default)]
pub struct Streamed {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub head_at: Duration,
    /// Each part of a multipart body, when it was complete.
    pub parts: Vec<(Duration, Vec<u8>)>,
    /// Each line of an NDJSON body, when it arrived.
    pub lines: Vec<(Duration, String)>,
    /// The multipart body ended with its closing delimiter.
    pub closed: bool,
    /// The whole body as it arrived.
    pub body: Vec<u8>,
}

impl Streamed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn boundary(&self) -> Option<String> {
        let ct = self.header("content-type")?;
        ct.strip_prefix("multipart/x-mixed-replace; boundary=").map(str::to_string)
    }
}

/// When to stop reading.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The whole answer.
    End,
    /// Hang up once the first part has arrived.
    FirstPart,
}

/// `method` `url` with `headers` (and `body`), read as it arrives.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8], until: Until) -> Streamed {
    read(method, url, headers, body, until, None)
}

/// A GET of `url` read to its end, adding 1 to `parts` as each part arrives
/// (another thread can see how far it has come).
pub fn get_counting(url: &str, headers: &[(&str, &str)], parts: &std::sync::atomic::AtomicUsize) -> Streamed {
    read("GET", url, headers, b"", Until::End, Some(parts))
}

fn read(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    until: Until,
    counted: Option<&std::sync::atomic::AtomicUsize>,
) -> Streamed {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent();
    let started = Instant::now();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let response = agent.run(req.body(body.to_vec()).expect("a valid request")).expect("an answer");
    let mut streamed = Streamed {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        head_at: started.elapsed(),
        ..Streamed::default()
    };
    crate::http::observe(method, url, streamed.status, headers, body);
    let boundary = streamed.boundary();
    let ndjson = streamed.header("content-type") == Some("application/x-ndjson");
    let mut reader = response.into_body().into_reader();
    let mut buf = [0u8; 64 * 1024];
    let (mut parsed_to, mut line_from) = (0, 0);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let fresh = streamed.body.len();
        streamed.body.extend_from_slice(&buf[..n]);
        let at = started.elapsed();
        if let Some(b) = &boundary {
            let before = streamed.parts.len();
            parsed_to = parts_so_far(&mut streamed, b, parsed_to, fresh, at);
            if let Some(counted) = counted {
                counted.fetch_add(streamed.parts.len() - before, std::sync::atomic::Ordering::SeqCst);
            }
            if until == Until::FirstPart && !streamed.parts.is_empty() {
                return streamed;
            }
        }
        if ndjson {
            while let Some(end) = streamed.body[line_from..].iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&streamed.body[line_from..line_from + end]).into_owned();
                streamed.lines.push((at, line));
                line_from += end + 1;
            }
        }
    }
    streamed
}

/// A GET of `url`, read as it arrives.
pub fn get(url: &str, headers: &[(&str, &str)], until: Until) -> Streamed {
    request("GET", url, headers, b"", until)
}

/// The parts completed since `from` (a byte offset into the body): each is
/// followed by the next delimiter and its empty header block, the last by
/// the closing delimiter; only what arrived since `fresh` is searched (a
/// delimiter may straddle it). Returns where the next part begins.
fn parts_so_far(
    streamed: &mut Streamed,
    boundary: &str,
    mut from: usize,
    fresh: usize,
    at: Duration,
) -> usize {
    let body = &streamed.body;
    if from == 0 {
        let head = format!("--{boundary}\r\n");
        if body.len() < head.len() {
            return 0;
        }
        let Some(blank) = find(body, b"\r\n\r\n", head.len() - 2) else { return 0 };
        from = blank + 4;
    }
    let next = format!("\r\n--{boundary}\r\n\r\n");
    let close = format!("\r\n--{boundary}--\r\n");
    loop {
        let body = &streamed.body;
        let scan = from.max(fresh.saturating_sub(next.len()));
        match (find(body, next.as_bytes(), scan), find(body, close.as_bytes(), scan)) {
            (Some(n), c) if c.is_none_or(|c| n < c) => {
                streamed.parts.push((at, body[from..n].to_vec()));
                from = n + next.len();
            }
            (_, Some(c)) => {
                streamed.parts.push((at, body[from..c].to_vec()));
                streamed.closed = true;
                return body.len();
            }
            _ => return from,
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}
