//! Serve the component like `wasmtime serve` / `spin up`: compile once,
//! pre-instantiate once, a fresh `Store` and instance for every request.
//! The store owns the per-request state; small views borrow it for each WASI
//! interface (`WasiView`, `WasiHttpView`, the KV and config views).
//!
//! The server's bounds are one [`Limits`] (and a request head's size,
//! `MAX_HEAD_BYTES`: 431 beyond it): the instance pool is
//! sized from `max_concurrent_requests` and a request waits at most
//! `queue_timeout` for a slot (then 503 + Retry-After); one client runs at
//! most `max_requests_per_client` of them (then, after the same wait, 429);
//! wasm that computes yields at every epoch tick and, past
//! `fair::HEAVY_AFTER`, computes only under one of `compute_slots` (see
//! `fair`); open connections are capped; a request head must arrive within
//! `header_timeout` (which is also how long an idle keep-alive connection
//! stays); a client that accepts no bytes for `send_timeout` is dropped
//! (nginx's `send_timeout`); a request's component runs at most
//! `request_timeout` (checked at every epoch tick for wasm that computes, a
//! timer for wasm that waits). What the host itself answers is JSON in the
//! component's error shape (see [`error_response`]), never a bare 500.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings;
use crate::config::{ConfigData, ConfigVars};
use crate::fair::{ClientPermit, Compute, Identity, PerClient, Tick, WasmClock};
use crate::kv::{KvAccess, KvData, KvView};
pub use crate::limits::{per_client_default, Limits};
use crate::memory::MemoryWatch;
use crate::outbound::Outbound;

/// What every request's store starts from.
#[derive(Clone)]
pub struct Shared {
    /// The component's variables, fixed before listening (`--dev` fills in
    /// `demo_project_id` first, in `up::run`).
    pub vars: Arc<ConfigVars>,
    pub kv: KvAccess,
    pub outbound: Outbound,
    pub route: Arc<crate::manifest::Manifest>,
    /// What is counted for `--metrics-listen` (`None`: nothing is).
    pub metrics: Option<Arc<crate::ops::Metrics>>,
    /// Spans of requests and their outbound calls, when exported (`telemetry`).
    pub tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
}

pub struct State {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Outbound,
    memory: MemoryWatch,
    clock: WasmClock,
    vars: Arc<ConfigVars>,
    shared: Shared,
    calls: HostCalls,
}

/// What one request asked of the host's stores (`--log-host-calls`).
#[derive(Default)]
struct HostCalls {
    config: u32,
    kv: u32,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Epoch ticks: how often wasm that computes yields, and the deadline's
/// granularity.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What an instance of this component touches on a typical request: its
/// linear memory starts at ~1.4 MiB and a HIT does not grow it.
const KEEP_RESIDENT_MEMORY: usize = 2 << 20;
const KEEP_RESIDENT_TABLE: usize = 64 << 10;
const KEEP_RESIDENT_STACK: usize = 256 << 10;

pub fn engine(limits: &Limits) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    let n = limits.max_concurrent_requests.max(1);
    let mut pool = PoolingAllocationConfig::default();
    // Per component instance: a few core instances (the component and the
    // WASI adapter shims), one memory, a couple of tables, one async stack.
    pool.total_component_instances(n)
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_memory_size(512 << 20)
        // Reuse without the kernel: the low pages of a memory, table and
        // async stack are reset with memset and stay resident instead of
        // being madvise'd away and faulted back in on the next request. At
        // high concurrency the madvise path costs page faults and TLB
        // shootdown IPIs on every core (see docs/benchmarks.md, issue 14).
        .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
        .table_keep_resident(KEEP_RESIDENT_TABLE)
        .async_stack_keep_resident(KEEP_RESIDENT_STACK)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config.epoch_interruption(true);
    // `BANATIE_PROFILE=perfmap`: name the component's compiled functions for
    // `perf` (/tmp/perf-PID.map), as docs/benchmarks.md's profiles do.
    if std::env::var("BANATIE_PROFILE").as_deref() == Ok("perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config)?;
    let ticker = engine.weak();
    std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || loop {
        std::thread::sleep(EPOCH_TICK);
        match ticker.upgrade() {
            Some(engine) => engine.increment_epoch(),
            None => break,
        }
    })?;
    Ok(engine)
}

/// wasmtime has its own error type; bring it into anyhow to add context.
fn wt<T>(result: wasmtime::Result<T>) -> anyhow::Result<T> {
    result.map_err(anyhow::Error::from)
}

pub fn prepare(engine: &Engine, wasm: &std::path::Path) -> anyhow::Result<ProxyPre<State>> {
    let component = wt(Component::from_file(engine, wasm))
        .with_context(|| format!("cannot load component {}", wasm.display()))?;
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::keyvalue::store::add_to_linker::<State, KvData>(&mut linker, kv_view)?;
    bindings::keyvalue::atomics::add_to_linker::<State, KvData>(&mut linker, kv_view)?;
    bindings::keyvalue::batch::add_to_linker::<State, KvData>(&mut linker, kv_view)?;
    bindings::config::store::add_to_linker::<State, ConfigData>(&mut linker, |s| {
        s.calls.config += 1;
        &*s.vars
    })?;
    let pre = wt(linker.instantiate_pre(&component))
        .context("the component imports something this host does not provide")?;
    wt(ProxyPre::new(pre)).context("the component does not export wasi:http/incoming-handler")
}

fn kv_view(state: &mut State) -> KvView<'_> {
    KvView { table: &mut state.table, kv: &state.shared.kv, operations: &mut state.calls.kv }
}

pub struct Server {
    pre: ProxyPre<State>,
    shared: Shared,
    limits: Limits,
    slots: Arc<Semaphore>,
    per_client: Arc<PerClient>,
    compute: Compute,
    identity: Identity,
}

pub type Response = hyper::Response<HyperOutgoingBody>;

/// Largest request head (request line + headers) accepted: hyper's read
/// buffer is capped at it, and a head that hyper parsed whole in one read
/// (it lets one through up to the size of that read) is measured in
/// [`Server::handle`]; either way a 431 before the component runs.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The request head's size as sent: target, and `name: value\r\n` per field.
fn head_bytes<B>(req: &hyper::Request<B>) -> usize {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    target + req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>()
}

/// An answer of the host's own, in the component's error shape:
/// `{"error":{"code","message"}}`, `Cache-Control: no-store`.
pub fn error_response(status: u16, code: &'static str, message: &str, retry_after: Option<u64>) -> Response {
    use http_body_util::BodyExt;
    let json = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let body =
        http_body_util::Full::new(bytes::Bytes::from(json)).map_err(|never| match never {}).boxed_unsync();
    let mut builder = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .header("x-error-code", code)
        .extension(crate::ops::HostAnswer(code));
    if let Some(seconds) = retry_after {
        builder = builder.header("retry-after", seconds.to_string());
    }
    builder.body(body).expect("static response is valid")
}

/// Why a request's component gave no response.
enum Failure {
    /// It ran past `request_timeout`.
    Deadline,
    /// It trapped, or answered with an error code.
    Component(anyhow::Error),
}

impl Server {
    pub fn new(pre: ProxyPre<State>, shared: Shared, limits: Limits) -> Server {
        let slots = Arc::new(Semaphore::new(limits.max_concurrent_requests as usize));
        let per_client = PerClient::new(limits.max_requests_per_client);
        let compute = Compute::new(limits.compute_slots);
        let identity = Identity::from_variables(&shared.vars.0);
        Server { pre, shared, limits, slots, per_client, compute, identity }
    }

    /// Answer a request: its id in and out (`X-Request-Id`), its span when
    /// traces are exported, counted when the operator listener is on, logged
    /// when its body is done (`telemetry`).
    async fn handle(&self, mut req: hyper::Request<hyper::body::Incoming>, peer: SocketAddr) -> Response {
        use crate::telemetry::{self, RequestLog, REQUEST_ID_HEADER};
        let started = Instant::now();
        let route = crate::ops::route_kind(req.uri().path(), req.uri().query());
        let span = self.shared.tracer.as_ref().map(|t| telemetry::server_span(t, &req, route));
        let request_id = telemetry::request_id(req.headers(), span.as_ref());
        let id_value =
            hyper::header::HeaderValue::from_str(&request_id).expect("request ids are token characters");
        req.headers_mut().insert(REQUEST_ID_HEADER, id_value.clone());
        if let (Some(tracer), Some(span)) = (&self.shared.tracer, &span) {
            req.extensions_mut().insert(telemetry::Parent::of(tracer, span));
        }
        let method = req.method().clone();
        let in_flight = self.shared.metrics.as_ref().map(|m| m.start());
        let mut response = self.answer(req, peer).await;
        if let Some(metrics) = &self.shared.metrics {
            metrics.record(route, &response, started.elapsed());
        }
        drop(in_flight);
        response.headers_mut().insert(REQUEST_ID_HEADER, id_value);
        if span.is_none() && !tracing::enabled!(target: "banatie_host::request", tracing::Level::INFO) {
            return response; // neither logged nor traced: nothing to wait for
        }
        let mut log = RequestLog {
            started,
            method,
            route,
            request_id,
            status: 0,
            cache: "none",
            head: Duration::ZERO,
            stages: [None; 4],
            span,
            bytes: 0,
        };
        log.answered(&response);
        telemetry::logged(response, log)
    }

    async fn answer(&self, mut req: hyper::Request<hyper::body::Incoming>, peer: SocketAddr) -> Response {
        if head_bytes(&req) > MAX_HEAD_BYTES {
            let message = format!("the request head is over {MAX_HEAD_BYTES} bytes");
            return error_response(431, "headers_too_large", &message, None);
        }
        // The peer's address, as Spin passes it: appended after whatever the
        // client sent under the same name, so the host's value is the last
        // one (Spin v3.6 `crates/trigger-http/src/headers.rs`
        // `compute_default_headers` adds `spin-client-addr`, and `wasi.rs`
        // puts the headers back with `HeaderMap::extend`, which appends).
        if let Ok(value) = hyper::header::HeaderValue::from_str(&peer.to_string()) {
            req.headers_mut().append(banatie_core::decide::client::CLIENT_ADDR_HEADER, value);
        }
        if req.uri().authority().is_none() && !req.headers().contains_key(hyper::header::HOST) {
            return error_response(400, "bad_request", "the request has no Host header", None);
        }
        if !self.shared.route.route_matches(req.uri().path()) {
            return error_response(404, "not_found", "no such route", None);
        }
        let forwarded: Vec<&str> =
            req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let client = self.identity.client(peer.ip(), &forwarded);
        let started = Instant::now();
        let Some(client) = self.per_client.acquire(&client, self.limits.queue_timeout).await else {
            return error_response(
                429,
                "too_many_requests",
                "too many requests from your address at once; retry shortly",
                Some(1),
            );
        };
        let wait = self.limits.queue_timeout.saturating_sub(started.elapsed());
        let metrics = self.shared.metrics.as_deref();
        if let Some(m) = metrics {
            m.instances_waiting.inc();
        }
        let slot = tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await;
        if let Some(m) = metrics {
            m.instances_waiting.dec();
        }
        let Ok(Ok(slot)) = slot else {
            return error_response(503, "overloaded", "the server is at capacity; retry shortly", Some(1));
        };
        let busy = crate::ops::Held::on(metrics.map(|m| &m.instances_busy));
        match self.run_component(req, (slot, client, busy)).await {
            Ok(response) => response,
            Err(Failure::Deadline) => {
                tracing::warn!("request cut off at --request-timeout ({:?})", self.limits.request_timeout);
                error_response(503, "timeout", "the request took too long; retry later", Some(1))
            }
            Err(Failure::Component(e)) => {
                tracing::error!("component failed: {e:#}");
                error_response(500, "internal_error", "the component failed; see the host's log", None)
            }
        }
    }

    async fn run_component(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        slot: (tokio::sync::OwnedSemaphorePermit, ClientPermit, crate::ops::Held),
    ) -> Result<Response, Failure> {
        let request_id = req.headers().get(crate::telemetry::REQUEST_ID_HEADER).and_then(|v| v.to_str().ok());
        let stderr = crate::telemetry::GuestStderr::new(Arc::from(request_id.unwrap_or("-")));
        let mut hooks = self.shared.outbound.clone();
        hooks.parent = req.extensions().get::<crate::telemetry::Parent>().cloned();
        hooks.handed = Default::default();
        let handed = hooks.handed.clone();
        let state = State {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().inherit_stdout().stderr(stderr).build(),
            http: WasiHttpCtx::new(),
            hooks,
            memory: MemoryWatch::default(),
            clock: WasmClock::new(),
            vars: self.shared.vars.clone(),
            shared: self.shared.clone(),
            calls: HostCalls::default(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        let limit = self.limits.request_timeout;
        // The wasm's own running time: from entering it to the next host
        // call (or its return), and again after each host call returns.
        store.call_hook(|mut store, hook| {
            let clock = &mut store.data_mut().clock;
            match hook {
                wasmtime::CallHook::CallingWasm | wasmtime::CallHook::ReturningFromHost => clock.enter(),
                wasmtime::CallHook::CallingHost | wasmtime::CallHook::ReturningFromWasm => clock.leave(),
            }
            Ok(())
        });
        // At every tick while wasm runs: past the deadline it traps; else it
        // yields to the executor (others run on this worker thread), and once
        // it is heavy it goes on only under a compute slot (`fair`).
        let compute = self.compute.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut store| {
            Ok(match store.data_mut().clock.tick(limit, &compute) {
                Tick::Deadline => wasmtime::UpdateDeadline::Interrupt,
                Tick::Yield => wasmtime::UpdateDeadline::Yield(1),
                Tick::WaitForSlot(wait) => wasmtime::UpdateDeadline::YieldCustom(1, wait),
            })
        });
        let component = |e: wasmtime::Error| Failure::Component(anyhow::Error::from(e));
        // The path only: a query may carry a signature or a prompt.
        let request_line =
            self.limits.log_host_calls.then(|| format!("{} {}", req.method(), req.uri().path()));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(component)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(component)?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            // Wasm that waits (I/O, sleeps) past the deadline is dropped here.
            let run = tokio::time::timeout(limit, async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
            })
            .await;
            crate::memory::record(&store.data().memory);
            if let Some(line) = request_line {
                let calls = &store.data().calls;
                tracing::info!("host calls: {line}: config {}, kv {}", calls.config, calls.kv);
            }
            // The instance goes back to the pool before its slot is freed, so
            // slots never outnumber free instances.
            drop(store);
            drop(slot);
            match run {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e))
                    if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) =>
                {
                    Err(Failure::Deadline)
                }
                Ok(Err(e)) => Err(component(e)),
                Err(_elapsed) => Err(Failure::Deadline),
            }
        });
        match receiver.await {
            // An object the host's cache answered is sent by the host.
            Ok(Ok(response)) => Ok(handed.serve(response)),
            Ok(Err(code)) => {
                Err(Failure::Component(anyhow::anyhow!("component answered with error code {code:?}")))
            }
            Err(_) => match task.await {
                Ok(Ok(())) => Err(Failure::Component(anyhow::anyhow!("component never set a response"))),
                Ok(Err(failure)) => Err(failure),
                Err(e) => Err(Failure::Component(e.into())),
            },
        }
    }
}

/// Accept errors (EMFILE above all) are logged at most once a second, and
/// accepting backs off (10 ms doubling to 1 s) while they last.
struct AcceptErrors {
    backoff: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn new() -> AcceptErrors {
        AcceptErrors { backoff: Duration::ZERO, last_log: None, suppressed: 0 }
    }

    fn failed(&mut self, e: &std::io::Error) -> Duration {
        let now = Instant::now();
        if self.last_log.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            let more = std::mem::take(&mut self.suppressed);
            tracing::warn!("accept failed: {e} ({more} more since the last report); backing off");
            self.last_log = Some(now);
        } else {
            self.suppressed += 1;
        }
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.backoff
    }

    fn succeeded(&mut self) {
        self.backoff = Duration::ZERO;
    }
}

/// Accept connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let connections = Arc::new(Semaphore::new(server.limits.max_connections));
    let mut errors = AcceptErrors::new();
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => return Ok(()),
        };
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => { errors.succeeded(); conn }
                Err(e) => {
                    let pause = errors.failed(&e);
                    tokio::time::sleep(pause).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        // A write that the client leaves pending for `send_timeout` fails the
        // connection: a reader that stopped reading frees its instance.
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(server.limits.send_timeout));
        let stream = Box::pin(stream);
        let server = server.clone();
        let open = crate::ops::Held::on(server.shared.metrics.as_deref().map(|m| &m.connections));
        tokio::spawn(async move {
            let _permit = (permit, open);
            let header_timeout = server.limits.header_timeout;
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req, peer).await) }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .writev(true)
                .max_buf_size(MAX_HEAD_BYTES)
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
