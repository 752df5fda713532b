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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboundLabels {
    target: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: &'static str,
}

/// The stages the component reports in `Server-Timing` that are counted.
pub const STAGES: [&str; 4] = ["kv", "s3", "provider", "derive"];

/// The error codes counted by name (`core::http::error::Error::code`, and the
/// host's own); any other is counted as `other`, so the label stays bounded.
const CODES: [&str; 27] = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "invalid_signature",
    "budget_exceeded",
    "derivations_exceeded",
    "not_found",
    "not_cached",
    "method_not_allowed",
    "payload_too_large",
    "prompt_refused",
    "provider_error",
    "provider_busy",
    "storage_error",
    "kv_unavailable",
    "misconfigured",
    "project_unreadable",
    "busy",
    "internal_error",
    "rate_limited",
    "scope_closed",
    "conflict",
    "variant_unavailable",
    "overloaded",
    "timeout",
    "too_many_requests",
    "headers_too_large",
];

/// An outbound call's outcome label: its status class, or how it failed.
pub fn outcome(status: Result<u16, &'static str>) -> &'static str {
    match status {
        Ok(200..=299) => "2xx",
        Ok(300..=399) => "3xx",
        Ok(400..=499) => "4xx",
        Ok(_) => "5xx",
        Err(kind) => kind,
    }
}

/// The cache status label of an answer.
pub fn cache_status<B>(response: &hyper::Response<B>) -> &'static str {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    match (header("x-cache-status"), header("x-cache-coalesced")) {
        (_, Some("true")) => "COALESCED",
        (Some("HIT"), _) => "HIT",
        (Some("MISS"), _) => "MISS",
        _ => "none",
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram>,
    stages: Family<StageLabels, Histogram>,
    refusals: Family<ReasonLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    outbound: Family<OutboundLabels, Counter>,
    outbound_durations: Family<TargetLabels, Histogram>,
    in_flight: Gauge<i64, AtomicI64>,
    /// Instances running a request, and requests waiting for one.
    pub instances_busy: Gauge<i64, AtomicI64>,
    pub instances_waiting: Gauge<i64, AtomicI64>,
    pub instances_max: Gauge<i64, AtomicI64>,
    pub connections: Gauge<i64, AtomicI64>,
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
        let errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "errors",
            "Error answers by their code (X-Error-Code): budget_exceeded, rate_limited, scope_closed, provider_error, kv_unavailable, storage_error, …",
            errors.clone(),
        );
        let outbound = Family::<OutboundLabels, Counter>::default();
        registry.register(
            "outbound_requests",
            "The component's outbound calls, by target (s3, provider) and outcome (2xx…5xx, timeout, refused, error, denied)",
            outbound.clone(),
        );
        let outbound_durations =
            Family::<TargetLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> Histogram);
        registry.register(
            "outbound_duration_seconds",
            "Time of an outbound call to its answer's head, by target",
            outbound_durations.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register("http_requests_in_flight", "Requests being answered now", in_flight.clone());
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::<i64, AtomicI64>::default();
            registry.register(name, help, g.clone());
            g
        };
        let instances_busy = gauge(&mut registry, "instances_busy", "Component instances running a request");
        let instances_waiting = gauge(
            &mut registry,
            "instances_waiting",
            "Requests waiting for a free instance (--queue-timeout-ms)",
        );
        let instances_max =
            gauge(&mut registry, "instances_max", "The instance pool's size (--max-concurrent-requests)");
        let connections =
            gauge(&mut registry, "connections_open", "Open client connections (--max-connections)");
        Metrics {
            registry,
            requests,
            durations,
            stages,
            refusals,
            errors,
            outbound,
            outbound_durations,
            in_flight,
            instances_busy,
            instances_waiting,
            instances_max,
            connections,
        }
    }
}

/// The route kind of a path and query (by the component's route table): a
/// bounded label.
pub fn route_kind(path: &str, query: Option<&str>) -> &'static str {
    use banatie_core::http::routes::{route, Route};
    let variant = query.is_some_and(|q| {
        q.split('&').any(|p| ["w=", "h=", "dpr=", "format="].iter().any(|v| p.starts_with(v)))
    });
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

/// A gauge held up by one while this lives (an open connection, a busy
/// instance); nothing without the operator listener.
pub struct Held(Option<Gauge<i64, AtomicI64>>);

impl Held {
    pub fn on(gauge: Option<&Gauge<i64, AtomicI64>>) -> Held {
        let gauge = gauge.cloned();
        if let Some(g) = &gauge {
            g.inc();
        }
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(g) = &self.0 {
            g.dec();
        }
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
        let cache = cache_status(response);
        if let Some(code) = response.headers().get("x-error-code").and_then(|v| v.to_str().ok()) {
            let code = CODES.iter().find(|c| **c == code).copied().unwrap_or("other");
            self.errors.get_or_create(&CodeLabels { code }).inc();
        }
        let status = response.status().as_u16();
        self.requests.get_or_create(&RequestLabels { route, status, cache }).inc();
        self.durations.get_or_create(&DurationLabels { route, cache }).observe(elapsed.as_secs_f64());
        if let Some(HostAnswer(reason)) = response.extensions().get::<HostAnswer>() {
            self.refusals.get_or_create(&ReasonLabels { reason }).inc();
        }
        for timing in response.headers().get_all("server-timing").iter().filter_map(|v| v.to_str().ok()) {
            for (stage, ms) in banatie_core::http::timing::parse(timing, &STAGES) {
                self.stages.get_or_create(&StageLabels { stage }).observe(ms / 1000.0);
            }
        }
    }

    /// Count one outbound call (`elapsed`: to its answer's head, if it was sent).
    pub fn outbound(&self, target: &'static str, outcome: &'static str, elapsed: Option<Duration>) {
        self.outbound.get_or_create(&OutboundLabels { target, outcome }).inc();
        if let Some(elapsed) = elapsed {
            self.outbound_durations.get_or_create(&TargetLabels { target }).observe(elapsed.as_secs_f64());
        }
    }

    /// The OpenMetrics exposition (what Prometheus asks for first).
    pub fn exposition(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }

    /// The Prometheus text format 0.0.4, for clients that do not ask for
    /// OpenMetrics (`promtool check metrics`, curl): a counter family is
    /// named with its `_total` in HELP and TYPE, and there is no `# EOF`.
    pub fn exposition_text(&self) -> String {
        let open = self.exposition();
        let counters: std::collections::HashSet<&str> =
            open.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
        let mut out = String::with_capacity(open.len() + 16 * counters.len());
        for line in open.lines().filter(|l| *l != "# EOF") {
            let meta = ["# HELP ", "# TYPE "].into_iter().find(|p| line.starts_with(p));
            match meta.and_then(|p| line[p.len()..].split_once(' ').map(|(name, rest)| (p, name, rest))) {
                Some((prefix, name, rest)) if counters.contains(name) => {
                    out.push_str(&format!("{prefix}{name}_total {rest}\n"));
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
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
                    let accept = req.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok());
                    let openmetrics = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
                    let _ = req.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(match (get, path.as_str()) {
                        (true, "/metrics") if openmetrics => text(
                            200,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            metrics.exposition(),
                        ),
                        (true, "/metrics") => {
                            text(200, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition_text())
                        }
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
        assert_eq!(route_kind("/api/v1/live/generate", Some("prompt=a&h=64&fit=cover")), "live_variant");
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
