//! The scaffolding of a provider double: an HTTP server on 127.0.0.1 in its
//! own thread that counts calls, can delay every answer (or hold them until
//! released), remembers the last JSON request, and asks a wire-format
//! function what to answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// Calls being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    most_at_once: AtomicUsize,
    delay_ms: AtomicU64,
    /// While set, every call waits (after its delay) until it is cleared.
    held: AtomicBool,
    released: tokio::sync::Notify,
    behavior: Mutex<B>,
    last_request: Mutex<Option<Value>>,
    /// The path of every request, in order.
    paths: Mutex<Vec<String>>,
    /// The W3C `traceparent` of every request that carried one.
    traceparents: Mutex<Vec<String>>,
    /// The last request's `content-type` and body, whatever they were.
    last_raw: Mutex<Option<(String, Bytes)>>,
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
            in_flight: AtomicUsize::new(0),
            most_at_once: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
            held: AtomicBool::new(false),
            released: tokio::sync::Notify::new(),
            behavior: Mutex::new(initial),
            last_request: Mutex::new(None),
            paths: Mutex::new(Vec::new()),
            traceparents: Mutex::new(Vec::new()),
            last_raw: Mutex::new(None),
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

    /// The most calls it was answering at once (from their arrival to their
    /// answer, the delay included).
    pub fn most_at_once(&self) -> usize {
        self.state.most_at_once.load(Ordering::SeqCst)
    }

    /// Answer every call only after this many milliseconds.
    pub fn set_delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Hold every answer (those being delayed, and every later call) until
    /// [`Double::release`], or [`HOLD_AT_MOST`] at most: a test that must
    /// know the calls are in flight while it does something else.
    pub fn hold(&self) {
        self.state.held.store(true, Ordering::SeqCst);
    }

    /// Answer the calls held by [`Double::hold`], and hold no more.
    pub fn release(&self) {
        self.state.held.store(false, Ordering::SeqCst);
        self.state.released.notify_waiters();
    }

    pub fn set(&self, behavior: B) {
        *self.state.behavior.lock().unwrap() = behavior;
    }

    /// Requests whose path contained `needle`.
    pub fn calls_to(&self, needle: &str) -> usize {
        self.state.paths.lock().unwrap().iter().filter(|p| p.contains(needle)).count()
    }

    /// The `traceparent` headers received, in order.
    pub fn traceparents(&self) -> Vec<String> {
        self.state.traceparents.lock().unwrap().clone()
    }

    /// The last request's `content-type` and body.
    pub fn last_raw(&self) -> Option<(String, Bytes)> {
        self.state.last_raw.lock().unwrap().clone()
    }

    /// The last request body that was JSON.
    pub fn last_request(&self) -> Option<Value> {
        self.state.last_request.lock().unwrap().clone()
    }
}

/// How long a held call waits for [`Double::release`] at most (a test that
/// failed before releasing still ends).
pub const HOLD_AT_MOST: std::time::Duration = std::time::Duration::from_secs(60);

impl<B> Drop for Double<B> {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A response header an answer function sets to have its body sent as
/// Server-Sent Events, one event every this many milliseconds (the header
/// itself is not sent): a provider that streams.
pub const PACED_MS: &str = "x-double-paced-ms";

/// The body a double answers: whole, or paced event by event.
pub type DoubleBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

async fn handle<B: Clone>(
    req: hyper::Request<hyper::body::Incoming>,
    state: &State<B>,
) -> hyper::Response<DoubleBody> {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_at_once.fetch_max(now, Ordering::SeqCst);
    let response = answer_call(req, state).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    paced(response).await
}

/// `response` as it goes out: a paced one split at its events' blank lines,
/// each event sent `PACED_MS` after the one before.
async fn paced(response: hyper::Response<Full<Bytes>>) -> hyper::Response<DoubleBody> {
    let (mut parts, body) = response.into_parts();
    let pace = parts.headers.remove(PACED_MS).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let Some(every) = pace else {
        return hyper::Response::from_parts(parts, Full::new(bytes).boxed());
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let events: Vec<Bytes> = text.split_inclusive("\n\n").map(|e| Bytes::from(e.to_string())).collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        for event in events {
            tokio::time::sleep(std::time::Duration::from_millis(every)).await;
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    hyper::Response::from_parts(parts, Paced(rx).boxed())
}

/// A body of the events a channel carries, as they come.
struct Paced(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Paced {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|event| event.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}

async fn answer_call<B: Clone>(
    req: hyper::Request<hyper::body::Incoming>,
    state: &State<B>,
) -> hyper::Response<Full<Bytes>> {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let _ = tokio::time::timeout(HOLD_AT_MOST, async {
        loop {
            // Made before the flag is read: `notify_waiters` reaches it.
            let released = state.released.notified();
            if !state.held.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
    })
    .await;
    state.paths.lock().unwrap().push(req.uri().path().to_string());
    if let Some(tp) = req.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
        state.traceparents.lock().unwrap().push(tp.to_string());
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        *state.last_request.lock().unwrap() = Some(v);
    }
    let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    *state.last_raw.lock().unwrap() = Some((content_type.to_string(), body.clone()));
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
    rgb_png(w, h, &pixels)
}

/// A `w`×`h` PNG of pure noise seeded by `seed`.
pub fn noise_png(seed: &str, w: u32, h: u32) -> Vec<u8> {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(seed.as_bytes());
    let mut x = u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]) | 1;
    let pixels: Vec<u8> = (0..w as usize * h as usize * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    rgb_png(w, h, &pixels)
}

/// 8-bit RGB pixels as a PNG.
fn rgb_png(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(pixels).unwrap();
    out
}

/// The size Gemini 2.5 Flash Image answers for each aspect ratio
/// (ai.google.dev/gemini-api/docs/image-generation, "aspect ratios").
pub fn gemini_size(ratio: &str) -> (u32, u32) {
    match ratio {
        "2:3" => (832, 1248),
        "3:2" => (1248, 832),
        "3:4" => (864, 1184),
        "4:3" => (1184, 864),
        "4:5" => (896, 1152),
        "5:4" => (1152, 896),
        "9:16" => (768, 1344),
        "16:9" => (1344, 768),
        "21:9" => (1536, 672),
        _ => (1024, 1024),
    }
}

/// A picture of the provider's real size for `ratio`: soft gradients, a few
/// shapes and fine grain from `seed`, so codecs meet what a photo gives them
/// (a flat test card would flatter every encoder).
pub fn picture(seed: &str, ratio: &str) -> Vec<u8> {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(seed.as_bytes());
    let (w, h) = gemini_size(ratio);
    let mut noise = u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]) | 1;
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    let (cx, cy) = (w as f32 * (0.3 + hash[4] as f32 / 640.0), h as f32 * (0.3 + hash[5] as f32 / 640.0));
    for y in 0..h {
        for x in 0..w {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let grain = (noise % 17) as f32 - 8.0;
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / w as f32;
            let sun = (1.0 - d * 3.0).max(0.0) * 120.0;
            let wave = ((fx * 9.0 + hash[6] as f32 / 40.0).sin() * (fy * 7.0).cos()) * 30.0;
            let r = 40.0 + fy * 120.0 + sun + wave + grain + hash[7] as f32 / 8.0;
            let g = 60.0 + fx * 80.0 + sun * 0.8 - wave + grain;
            let b = 140.0 - fy * 90.0 + wave * 0.5 + grain + hash[8] as f32 / 10.0;
            pixels.extend([r, g, b].map(|c| c.clamp(0.0, 255.0) as u8));
        }
    }
    rgb_png(w, h, &pixels)
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
