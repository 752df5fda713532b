//! Raw HTTP/1.1 over TCP, for requests a well-behaved client refuses to send
//! (invalid UTF-8, odd methods, oversized headers). Bounded in time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Send `request` as is; returns the status code and the whole answer.
pub fn send(base: &str, request: &[u8]) -> (u16, String) {
    exchange(TcpStream::connect(base.trim_start_matches("http://")).unwrap(), request)
}

/// [`send`], giving up on the answer after `limit` without a byte (then
/// the status is 0 and the answer what came).
pub fn send_within(base: &str, request: &[u8], limit: Duration) -> (u16, String) {
    exchange_within(TcpStream::connect(base.trim_start_matches("http://")).unwrap(), request, limit)
}

/// Write `request`, read the whole answer (bounded in time).
fn exchange(stream: TcpStream, request: &[u8]) -> (u16, String) {
    exchange_within(stream, request, Duration::from_secs(60))
}

fn exchange_within(mut stream: TcpStream, request: &[u8], limit: Duration) -> (u16, String) {
    stream.set_read_timeout(Some(limit)).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// A GET with `Connection: close` and the given extra header lines.
pub fn get(target: &[u8], headers: &[&[u8]]) -> Vec<u8> {
    let mut r = b"GET ".to_vec();
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for h in headers {
        r.extend_from_slice(h);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r
}

/// Like [`send`], from the local address `source` (any of 127.0.0.0/8 is
/// this machine: a second "client" with a peer address of its own).
pub fn send_from(source: std::net::Ipv4Addr, base: &str, request: &[u8]) -> (u16, String) {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect_timeout(&addr.into(), Duration::from_secs(10)).unwrap();
    exchange(socket.into(), request)
}

/// A socket from `source` that sent `request` to `base` and never reads
/// (a 4 KB receive buffer): a client that stopped reading its answer.
pub fn silent_from(source: std::net::Ipv4Addr, base: &str, request: &[u8]) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr =
        base.trim_start_matches("http://").parse().map_err(std::io::Error::other)?;
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_recv_buffer_size(4096)?;
    socket.bind(&std::net::SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(&addr.into(), Duration::from_secs(10))?;
    let mut stream: TcpStream = socket.into();
    stream.write_all(request)?;
    Ok(stream)
}

/// The value of `name` in a raw answer's head (case-insensitive).
pub fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
