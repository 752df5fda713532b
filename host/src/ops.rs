//! The operator's listener (`--metrics-listen ADDR`; off by default, never
//! the public port): `GET /metrics` (Prometheus text exposition), `/healthz`
//! (the process serves) and `/readyz` (the component, asked its own health
//! route through the public listener, reaches its KV store and its bucket:
//! so the component instantiates too).
//!
//! What is counted is read off each answer, so the component needs no new
//! interface and stays portable: the status, `X-Cache-Status` and
//! `X-Cache-Coalesced`, and the stage times the component reports in
//! `Server-Timing` (kv, s3, provider, derive). Labels are bounded sets
//! (a route kind, a status, a cache status, a stage, a refusal reason): no
//! project id, no path, no prompt, so cardinality is fixed (docs/operations.md).

use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An answer the host made itself (not the component), and why.
#[derive(Clone, Copy, Debug)]
pub struct HostAnswer(pub &'static str);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
    cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: &'static str,
    cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The stages the component reports in `Server-Timing` that are counted.
const STAGES: [&str; 4] = ["kv", "s3", "provider", "derive"];

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram>,
    stages: Family<StageLabels, Histogram>,
    refusals: Family<ReasonLabels, Counter>,
    in_flight: Gauge<i64, AtomicI64>,
}

fn seconds_histogram() -> Histogram {
    // 0.5 ms … ~65 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("banatie");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route kind, status and cache status",
            requests.clone(),
        );
        let durations =
            Family::<DurationLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to the answer's head, by route kind and cache status",
            durations.clone(),
        );
        let stages =
            Family::<StageLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> Histogram);
        registry.register(
            "stage_duration_seconds",
            "Time a request spent in the KV store, S3, the provider or deriving (its Server-Timing)",
            stages.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "host_refusals",
            "Answers the host made itself: overloaded, timeout, too_many_requests, headers_too_large, internal_error, …",
            refusals.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register("http_requests_in_flight", "Requests being answered now", in_flight.clone());
        Metrics { registry, requests, durations, stages, refusals, in_flight }
    }
}

/// The route kind of a path and query (by the component's route table): a
/// bounded label.
pub fn route_kind(path: &str, query: Option<&str>) -> &'static str {
    use banatie_core::routes::{route, Route};
    let variant =
        query.is_some_and(|q| q.split('&').any(|p| p.starts_with("w=") || p.starts_with("format=")));
    match (route(path), variant) {
        (Some(Route::Live), true) => "live_variant",
        (Some(Route::Live), false) => "live",
        (Some(Route::Cdn { .. }), true) => "cdn_variant",
        (Some(Route::Cdn { .. }), false) => "cdn",
        (Some(Route::Health), _) => "health",
        (Some(_), _) => "api",
        (None, _) => "other",
    }
}

/// Counts a request while it is answered.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

impl Metrics {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(self)
    }

    /// Count an answer (its head) that took `elapsed`.
    pub fn record<B>(&self, route: &'static str, response: &hyper::Response<B>, elapsed: Duration) {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let cache = match (header("x-cache-status"), header("x-cache-coalesced")) {
            (_, Some("true")) => "COALESCED",
            (Some("HIT"), _) => "HIT",
            (Some("MISS"), _) => "MISS",
            _ => "none",
        };
        let status = response.status().as_u16();
        self.requests.get_or_create(&RequestLabels { route, status, cache }).inc();
        self.durations.get_or_create(&DurationLabels { route, cache }).observe(elapsed.as_secs_f64());
        if let Some(HostAnswer(reason)) = response.extensions().get::<HostAnswer>() {
            self.refusals.get_or_create(&ReasonLabels { reason }).inc();
        }
        for timing in response.headers().get_all("server-timing").iter().filter_map(|v| v.to_str().ok()) {
            for (stage, ms) in banatie_core::timing::parse(timing, &STAGES) {
                self.stages.get_or_create(&StageLabels { stage }).observe(ms / 1000.0);
            }
        }
    }

    pub fn exposition(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

type Body = http_body_util::Full<bytes::Bytes>;

fn text(status: u16, content_type: &str, body: String) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Body::from(body))
        .expect("static parts")
}

/// The component's own health answer, asked through the public listener
/// (as a client would; 1 s at most): its status and body.
async fn component_health(public: SocketAddr) -> (u16, String) {
    let target =
        if public.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], public.port())) } else { public };
    let ask = async {
        let mut stream = TcpStream::connect(target).await?;
        let request = "GET /api/v1/health HTTP/1.1\r\nHost: readyz\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        std::io::Result::Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(1), ask).await {
        Ok(Ok(answer)) => {
            let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(503);
            let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
            (status, body)
        }
        Ok(Err(e)) => (503, format!("{{\"status\":\"unavailable\",\"error\":\"{e}\"}}")),
        Err(_) => (503, "{\"status\":\"unavailable\",\"error\":\"no answer within 1 s\"}".into()),
    }
}

/// Serve the operator's listener until the process ends.
pub async fn serve(listener: TcpListener, public: SocketAddr, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let get = req.method() == hyper::Method::GET;
                    let _ = req.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(match (get, path.as_str()) {
                        (true, "/metrics") => text(
                            200,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            metrics.exposition(),
                        ),
                        (true, "/healthz") => text(200, "application/json", "{\"status\":\"ok\"}".into()),
                        (true, "/readyz") => {
                            let (status, body) = component_health(public).await;
                            text(if status == 200 { 200 } else { 503 }, "application/json", body)
                        }
                        (false, "/metrics" | "/healthz" | "/readyz") => {
                            text(405, "application/json", "{\"error\":\"GET only\"}".into())
                        }
                        _ => text(
                            404,
                            "application/json",
                            "{\"error\":\"/metrics, /healthz, /readyz\"}".into(),
                        ),
                    })
                }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_kinds_are_a_bounded_set() {
        assert_eq!(route_kind("/api/v1/live/generate", Some("prompt=a")), "live");
        assert_eq!(route_kind("/api/v1/live/generate", Some("prompt=a&w=256")), "live_variant");
        assert_eq!(route_kind("/cdn/blog/live/hero", Some("format=avif&prompt=a")), "cdn_variant");
        assert_eq!(route_kind("/api/v1/live/stats", None), "api");
        assert_eq!(route_kind("/anything/else", None), "other");
    }

    #[test]
    fn answers_are_counted_by_kind_status_and_cache() {
        let m = Metrics::default();
        let hit = hyper::Response::builder()
            .status(200)
            .header("x-cache-status", "HIT")
            .header("server-timing", "kv;dur=1.000, s3;dur=2.000, provider;dur=0.000")
            .body(())
            .unwrap();
        m.record("live", &hit, Duration::from_millis(3));
        m.record("live", &hit, Duration::from_millis(3));
        let refused =
            hyper::Response::builder().status(503).extension(HostAnswer("overloaded")).body(()).unwrap();
        m.record("live", &refused, Duration::from_millis(1));
        let text = m.exposition();
        assert!(
            text.contains(r#"banatie_http_requests_total{route="live",status="200",cache="HIT"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"banatie_http_requests_total{route="live",status="503",cache="none"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"banatie_host_refusals_total{reason="overloaded"} 1"#), "{text}");
        assert!(text.contains(r#"banatie_stage_duration_seconds_count{stage="s3"} 2"#), "{text}");
        assert!(text.contains("banatie_http_requests_in_flight 0"), "{text}");
    }
}
