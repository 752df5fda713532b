//! The scaffolding of a provider double: an HTTP server on 127.0.0.1 in its
//! own thread that counts calls, can delay every answer, remembers the last
//! JSON request, and asks a wire-format function what to answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// What the double received.
pub struct Seen {
    pub method: hyper::Method,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

pub type Answer<B> = fn(&Seen, &B) -> hyper::Response<Full<Bytes>>;

struct State<B> {
    calls: AtomicUsize,
    delay_ms: AtomicU64,
    behavior: Mutex<B>,
    last_request: Mutex<Option<Value>>,
    /// The path of every request, in order.
    paths: Mutex<Vec<String>>,
    answer: Answer<B>,
}

pub struct Double<B> {
    pub url: String,
    state: Arc<State<B>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<B: Clone + Send + 'static> Double<B> {
    pub fn start(initial: B, answer: Answer<B>) -> Double<B> {
        let state = Arc::new(State {
            calls: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
            behavior: Mutex::new(initial),
            last_request: Mutex::new(None),
            paths: Mutex::new(Vec::new()),
            answer,
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let stream = tokio::select! {
                        a = listener.accept() => match a { Ok((s, _)) => s, Err(_) => continue },
                        _ = &mut stop_rx => break,
                    };
                    let state = serving.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, std::convert::Infallible>(handle(req, &state).await) }
                        });
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        Double { url: format!("http://{addr}"), state, shutdown: Some(stop_tx) }
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Answer every call only after this many milliseconds.
    pub fn set_delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn set(&self, behavior: B) {
        *self.state.behavior.lock().unwrap() = behavior;
    }

    /// Requests whose path contained `needle`.
    pub fn calls_to(&self, needle: &str) -> usize {
        self.state.paths.lock().unwrap().iter().filter(|p| p.contains(needle)).count()
    }

    /// The last request body that was JSON.
    pub fn last_request(&self) -> Option<Value> {
        self.state.last_request.lock().unwrap().clone()
    }
}

impl<B> Drop for Double<B> {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle<B: Clone>(
    req: hyper::Request<hyper::body::Incoming>,
    state: &State<B>,
) -> hyper::Response<Full<Bytes>> {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    state.paths.lock().unwrap().push(req.uri().path().to_string());
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        *state.last_request.lock().unwrap() = Some(v);
    }
    let seen =
        Seen { method: parts.method, path: parts.uri.path().to_string(), headers: parts.headers, body };
    let behavior = state.behavior.lock().unwrap().clone();
    (state.answer)(&seen, &behavior)
}

/// A JSON response.
pub fn reply(status: u16, value: Value) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap()
}

/// A 200 whose body is not the provider's JSON.
pub fn garbage() -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(200)
        .header("content-type", "text/html")
        .body(Full::new(Bytes::from_static(b"<html>502 Bad Gateway</html>")))
        .unwrap()
}

/// `n` bytes that start like a PNG.
pub fn sized_image(seed: &str, n: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(seed.bytes().chain(*b" ").cycle().take(n.saturating_sub(8)));
    bytes
}

/// A small PNG whose colour comes from `seed` and whose shape from the ratio.
pub fn tiny_png(seed: &str, ratio: &str) -> Vec<u8> {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(format!("{seed}|{ratio}").as_bytes());
    let (w, h) =
        match ratio.split_once(':').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        {
            Some((a, b)) if a > 0 && b > 0 => ((16 * a / a.max(b)).max(1), (16 * b / a.max(b)).max(1)),
            _ => (16, 16),
        };
    let pixels: Vec<u8> = (0..w * h).flat_map(|i| [hash[0], hash[1], hash[(i % 32) as usize]]).collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
    out
}

/// Newtype doubles deref to their scaffolding.
macro_rules! double_newtype {
    ($name:ident, $behavior:ty) => {
        pub struct $name(crate::double::Double<$behavior>);
        impl std::ops::Deref for $name {
            type Target = crate::double::Double<$behavior>;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }
    };
}
pub(crate) use double_newtype;
