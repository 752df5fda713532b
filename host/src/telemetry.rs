//! banatie-host's logs and traces.
//!
//! **Logs** are `tracing` events on stderr, one line each, as text or JSON
//! (`--log-format`), filtered by `RUST_LOG` (default `info`). A request is one
//! `request` event once its answer is done ([`RequestLog`]): method, route
//! kind, status, cache status, time to the head and to the last byte, the
//! component's stage times, bytes sent, request id. The component's stderr
//! lines become `component` events that carry the request's id
//! ([`GuestStderr`]). Never logged: a query (prompts are users' text; keys,
//! signatures and expiries ride in it), a path (a public URL's path carries
//! its prompt: the route kind stands for it), request headers, bodies.
//!
//! **Traces**: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and `OTEL_SDK_DISABLED` is
//! not, as Spin decides (spin v4.0.2 `crates/telemetry/src/env.rs`
//! `otel_tracing_enabled`), spans go to the collector over OTLP/HTTP protobuf
//! (Spin's default protocol; `OTEL_BSP_*` tune the batch). A request is a
//! server span, a child of the client's W3C `traceparent` when it sends one;
//! each outbound call of its component (S3, the provider) is a client span
//! under it, and carries its `traceparent` onward (`outbound`).
//!
//! **Request ids**: a client's `X-Request-Id` is kept when it is 1–64 of
//! `[A-Za-z0-9._-]`, else the host makes one (`TRACEID-SPANID` when tracing);
//! the component gets it in `X-Request-Id` and the answer carries it back.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};

/// The request and answer header of a request's id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Install the log subscriber (stderr, `RUST_LOG`, default `info`).
pub fn init_logs(format: LogFormat) {
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(e) => {
            if std::env::var_os("RUST_LOG").is_some() {
                eprintln!("banatie-host: RUST_LOG not understood ({e}); logging at info");
            }
            tracing_subscriber::EnvFilter::new("info")
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}

/// Whether spans are exported, decided as Spin decides it.
pub fn tracing_enabled() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !set("OTEL_SDK_DISABLED")
}

/// The exporter's HTTP client: requests run on the host's tokio runtime (the
/// SDK's batch processor exports from a thread of its own), 10 s at most,
/// answers read up to 1 MiB.
struct OtlpClient {
    runtime: tokio::runtime::Handle,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<Bytes>,
    >,
}

impl std::fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtlpClient")
    }
}

type HttpError = opentelemetry_http::HttpError;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = request.map(http_body_util::Full::new);
        let exchange = async move {
            let response = client.request(request).await.map_err(|e| Box::new(e) as HttpError)?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, 1 << 20).collect().await?.to_bytes();
            Ok::<_, HttpError>(http::Response::from_parts(parts, body))
        };
        // The timer is made on the runtime, not on the exporter's thread.
        let bounded = async move { tokio::time::timeout(Duration::from_secs(10), exchange).await };
        match self.runtime.spawn(bounded).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(elapsed)) => Err(Box::new(elapsed)),
            Err(join) => Err(Box::new(join)),
        }
    }
}

/// Start exporting spans (when [`tracing_enabled`]): the tracer for requests,
/// and the provider to flush at exit.
pub fn init_traces(
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<Option<(SdkTracer, SdkTracerProvider)>> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    if !tracing_enabled() {
        return Ok(None);
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(crate::outbound::connector());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(OtlpClient { runtime, client })
        .build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("banatie-host");
    }
    let resource =
        resource.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build();
    let provider = SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build();
    Ok(Some((provider.tracer("banatie-host"), provider)))
}

/// A request's id: the client's when it is safe to log, else a new one.
pub fn request_id(headers: &http::HeaderMap, span: Option<&Span>) -> String {
    let given = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok());
    if let Some(id) = given.filter(|id| valid_request_id(id)) {
        return id.to_string();
    }
    match span {
        // The trace and this request's span: one trace (a client's
        // traceparent) holds many requests.
        Some(span) => format!("{}-{}", span.span_context().trace_id(), span.span_context().span_id()),
        None => format!("{:032x}", rand::random::<u128>()),
    }
}

fn valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A request's server span, under the client's `traceparent` if any.
pub fn server_span(tracer: &SdkTracer, req: &http::Request<impl Sized>, route: &'static str) -> Span {
    let parent = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(req.headers()));
    // OpenTelemetry's HTTP conventions: a method outside the known set is `_OTHER`.
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"];
    let method: &'static str = KNOWN.into_iter().find(|m| *m == req.method().as_str()).unwrap_or("_OTHER");
    tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.request.method", method), KeyValue::new("http.route", route)])
        .start_with_context(tracer, &parent)
}

/// What outbound calls are children of: a request's span, by its context.
#[derive(Clone)]
pub struct Parent {
    pub tracer: SdkTracer,
    pub context: Context,
}

impl Parent {
    pub fn of(tracer: &SdkTracer, span: &Span) -> Parent {
        Parent {
            tracer: tracer.clone(),
            context: Context::new().with_remote_span_context(span.span_context().clone()),
        }
    }

    /// A client span for one outbound call; its `traceparent` is written into
    /// the call's headers.
    pub fn outbound(
        &self,
        target: &'static str,
        headers: &mut http::HeaderMap,
        method: &str,
        host: &str,
    ) -> Span {
        let span = self
            .tracer
            .span_builder(format!("{target} {method}"))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("server.address", host.to_string()),
                KeyValue::new("banatie.target", target),
            ])
            .start_with_context(&self.tracer, &self.context);
        let context = Context::new().with_remote_span_context(span.span_context().clone());
        TraceContextPropagator::new()
            .inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
        span
    }
}

/// Close an outbound span with what came back.
pub fn end_outbound(mut span: Span, status: Result<u16, &'static str>) {
    match status {
        Ok(code) => {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
            if code >= 500 {
                span.set_status(Status::error(format!("{code}")));
            }
        }
        Err(kind) => {
            span.set_attribute(KeyValue::new("error.type", kind));
            span.set_status(Status::error(kind));
        }
    }
    span.end();
}

/// One request, logged (and its span ended) when its answer's body is done
/// or dropped.
pub struct RequestLog {
    pub started: Instant,
    pub method: http::Method,
    pub route: &'static str,
    pub request_id: String,
    pub status: u16,
    pub cache: &'static str,
    pub head: Duration,
    pub stages: [Option<f64>; 4],
    pub span: Option<Span>,
    pub bytes: u64,
}

impl RequestLog {
    /// Fill in what the answer's head says.
    pub fn answered<B>(&mut self, response: &hyper::Response<B>) {
        self.status = response.status().as_u16();
        self.cache = crate::ops::cache_status(response);
        self.head = self.started.elapsed();
        for value in response.headers().get_all("server-timing").iter().filter_map(|v| v.to_str().ok()) {
            for (stage, ms) in banatie_core::http::timing::parse(value, &crate::ops::STAGES) {
                if let Some(i) = crate::ops::STAGES.iter().position(|s| *s == stage) {
                    self.stages[i] = Some(ms);
                }
            }
        }
        if let Some(span) = &mut self.span {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(self.status)));
            span.set_attribute(KeyValue::new("banatie.cache_status", self.cache));
            if let Some(scope) = response.headers().get("x-scope").and_then(|v| v.to_str().ok()) {
                span.set_attribute(KeyValue::new("banatie.scope", scope.to_string()));
            }
            if self.status >= 500 {
                span.set_status(Status::error(format!("{}", self.status)));
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        let [kv, s3, provider, derive] = self.stages;
        tracing::info!(
            target: "banatie_host::request",
            method = %self.method,
            route = self.route,
            status = self.status,
            cache = self.cache,
            head_ms = ms(self.head),
            duration_ms = ms(self.started.elapsed()),
            kv_ms = kv,
            s3_ms = s3,
            provider_ms = provider,
            derive_ms = derive,
            bytes = self.bytes,
            request_id = %self.request_id,
            "request"
        );
        if let Some(mut span) = self.span.take() {
            span.set_attribute(KeyValue::new("banatie.bytes_sent", self.bytes as i64));
            span.end();
        }
    }
}

/// An answer's body that counts what it sends and logs the request at its
/// end.
pub struct Logged<B> {
    inner: B,
    log: Option<RequestLog>,
}

impl<B> Logged<B> {
    pub fn new(inner: B, log: RequestLog) -> Logged<B> {
        Logged { inner, log: Some(log) }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Logged<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(log)) = (frame.data_ref(), self.log.as_mut()) {
                    log.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None | Some(Err(_))) => drop(self.log.take()),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Boxed again, as the server's answers are.
pub fn logged(response: crate::server::Response, log: RequestLog) -> crate::server::Response {
    response.map(|body| Logged::new(body, log).boxed_unsync())
}

/// The component's stderr: each line becomes a `component` event (warn)
/// carrying the request's id. Lines are cut at 4 KiB; a write never fails.
#[derive(Clone)]
pub struct GuestStderr(Arc<Mutex<Lines>>);

struct Lines {
    request_id: Arc<str>,
    pending: Vec<u8>,
}

const MAX_LINE: usize = 4096;

impl GuestStderr {
    pub fn new(request_id: Arc<str>) -> GuestStderr {
        GuestStderr(Arc::new(Mutex::new(Lines { request_id, pending: Vec::new() })))
    }

    fn write(&self, mut bytes: &[u8]) {
        let mut lines = crate::sync::lock(&self.0);
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            let room = MAX_LINE.saturating_sub(lines.pending.len());
            lines.pending.extend_from_slice(&bytes[..end.min(room)]);
            lines.emit();
            bytes = &bytes[end + 1..];
        }
        let room = MAX_LINE.saturating_sub(lines.pending.len());
        lines.pending.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl Lines {
    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.pending);
        let line = line.strip_prefix("banatie-live: ").unwrap_or(&line);
        // The component's own mark of the request (`api::log`): the event
        // carries it as a field.
        let mark = format!("[{}] ", self.request_id);
        let line = line.strip_prefix(mark.as_str()).unwrap_or(line);
        tracing::warn!(target: "component", request_id = %self.request_id, "{line}");
        self.pending.clear();
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestStderr {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::OutputStream for GuestStderr {
    fn write(&mut self, bytes: Bytes) -> Result<(), wasmtime_wasi::p2::StreamError> {
        GuestStderr::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), wasmtime_wasi::p2::StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, wasmtime_wasi::p2::StreamError> {
        Ok(64 << 10)
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for GuestStderr {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestStderr {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loggable_request_ids_are_kept() {
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, "abc-123.X_y".parse().unwrap());
        assert_eq!(request_id(&headers, None), "abc-123.X_y");
        for hostile in ["a b", "a\"b", "x".repeat(65).as_str(), "", "é"] {
            if let Ok(value) = hostile.parse() {
                headers.insert(REQUEST_ID_HEADER, value);
            }
            let made = request_id(&headers, None);
            assert_eq!(made.len(), 32, "{hostile:?} replaced by a new id");
            assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
