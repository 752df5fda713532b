//! Serve the component like `wasmtime serve` / `spin up`: compile once,
//! pre-instantiate once, a fresh `Store` and instance for every request.
//! The store owns the per-request state; small views borrow it for each WASI
//! interface (`WasiView`, `WasiHttpView`, the KV and config views).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
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
use crate::kv::{KvAccess, KvData, KvView};
use crate::memory::MemoryWatch;
use crate::outbound::Outbound;

/// What every request's store starts from.
#[derive(Clone)]
pub struct Shared {
    /// The component's variables. Each request takes a snapshot; `--dev`
    /// replaces it once the dev project exists (to turn the demo on).
    pub vars: Arc<std::sync::RwLock<Arc<ConfigVars>>>,
    pub kv: KvAccess,
    pub outbound: Outbound,
    pub route: Arc<crate::manifest::Manifest>,
}

pub struct State {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Outbound,
    memory: MemoryWatch,
    vars: Arc<ConfigVars>,
    shared: Shared,
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

pub fn engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(256).total_memories(256).total_tables(256).max_memory_size(512 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
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
    bindings::config::store::add_to_linker::<State, ConfigData>(&mut linker, |s| &s.vars)?;
    let pre = wt(linker.instantiate_pre(&component))
        .context("the component imports something this host does not provide")?;
    wt(ProxyPre::new(pre)).context("the component does not export wasi:http/incoming-handler")
}

fn kv_view(state: &mut State) -> KvView<'_> {
    KvView { table: &mut state.table, kv: &state.shared.kv }
}

pub struct Server {
    pre: ProxyPre<State>,
    shared: Shared,
}

type Response = hyper::Response<HyperOutgoingBody>;

/// Largest request head (request line + headers) accepted; beyond it hyper
/// answers 431 before the component runs.
const MAX_HEAD_BYTES: usize = 64 * 1024;

fn plain(status: u16, text: &'static str) -> Response {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(bytes::Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .expect("static response is valid")
}

impl Server {
    pub fn new(pre: ProxyPre<State>, shared: Shared) -> Server {
        Server { pre, shared }
    }

    async fn handle(&self, req: hyper::Request<hyper::body::Incoming>) -> Response {
        if !self.shared.route.route_matches(req.uri().path()) {
            return plain(404, "not found\n");
        }
        match self.run_component(req).await {
            Ok(response) => response,
            Err(e) => {
                eprintln!("banatie-host: component failed: {e:#}");
                plain(500, "internal error\n")
            }
        }
    }

    async fn run_component(&self, req: hyper::Request<hyper::body::Incoming>) -> anyhow::Result<Response> {
        let state = State {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().inherit_stdout().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            hooks: self.shared.outbound.clone(),
            memory: MemoryWatch::default(),
            vars: self.shared.vars.read().map(|v| v.clone()).unwrap_or_default(),
            shared: self.shared.clone(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            let result = proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await;
            crate::memory::record(&store.data().memory);
            result
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => anyhow::bail!("component answered with error code {code:?}"),
            Err(_) => match task.await {
                Ok(Ok(())) => anyhow::bail!("component never set a response"),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// Accept connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => { eprintln!("banatie-host: accept failed: {e}"); continue; }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
