//! `banatie-host up`: `plan::Plan` decides what to serve from the options
//! and the files; `run` starts `--dev`'s services, opens the store and serves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::TcpListener;

use crate::config::ConfigVars;
use crate::dev;
use crate::kv::{redis::Redis, sqlite::Sqlite, Backend, KvAccess};
use crate::manifest::Manifest;
use crate::outbound::{AllowList, Outbound};
use crate::plan::{self, Inputs, Plan};
use crate::runtime_config::StoreConfig;
use crate::server::{self, Server, Shared};

pub struct Options {
    pub manifest: PathBuf,
    pub listen: SocketAddr,
    pub runtime_config_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub variables: BTreeMap<String, String>,
    pub build: bool,
    pub dev: bool,
    /// How long `--dev`'s stand-in provider takes to answer.
    pub dev_wait: std::time::Duration,
    /// Concurrency, queueing and timeouts of the server.
    pub limits: server::Limits,
    /// The operator's listener (`/metrics`, `/healthz`, `/readyz`), if any.
    pub metrics_listen: Option<SocketAddr>,
    /// `--object-cache DIR` and its size in bytes (`object_cache`).
    pub object_cache: Option<(PathBuf, u64)>,
    /// Where request spans go (`telemetry::init_traces`), if anywhere.
    pub tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
    /// Called with the bound address once the host listens (embedders, the benchmark).
    pub on_ready: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
}

fn run_build(manifest: &Manifest) -> anyhow::Result<()> {
    let Some((command, dir)) = &manifest.build else {
        bail!("--build: the component has no [component.{}.build] command", manifest.component_id);
    };
    tracing::info!("building: {command}");
    let status = std::process::Command::new("sh").arg("-c").arg(command).current_dir(dir).status()?;
    if !status.success() {
        bail!("build command failed ({status})");
    }
    Ok(())
}

/// Plan, then serve: every mistake (manifest, variables, runtime config, the
/// component's configuration, its imports) is reported before the listener
/// opens, and `--dev`'s services and project exist before it does.
pub async fn run(mut options: Options) -> anyhow::Result<()> {
    let state_dir = plan::state_dir(&options.manifest, options.state_dir.as_deref());
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create state dir {}", state_dir.display()))?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let dev_vars = match options.dev {
        true => dev::prepare(&state_dir, &options.variables, &env, options.dev_wait).await?,
        false => BTreeMap::new(),
    };
    let mut plan = Plan::from(&Inputs {
        manifest: &options.manifest,
        runtime_config_file: options.runtime_config_file.as_deref(),
        state_dir: &state_dir,
        cli: &options.variables,
        env: &env,
        dev: &dev_vars,
    })?;
    if options.build {
        run_build(&plan.manifest)?;
    }
    let backend = open_store(&plan.store)?;
    let dev_project = match options.dev {
        true => Some(dev::project::ensure(&*backend, &state_dir)?),
        false => None,
    };
    if let Some(project) = &dev_project {
        // The demo page signs for the dev project unless the user named one.
        let demo = plan.component_vars.entry("demo_project_id".into()).or_default();
        if demo.trim().is_empty() {
            *demo = project.id.clone();
        }
    }
    let on_ready = options.on_ready.take();
    serve(plan, backend, &options, dev_project, on_ready).await
}

fn open_store(store: &StoreConfig) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match store {
        StoreConfig::Sqlite(path) => {
            Arc::new(Sqlite::open(path).with_context(|| format!("key-value store {}", path.display()))?)
        }
        StoreConfig::Redis(url) => Arc::new(Redis::open(url).context("key-value store: redis")?),
    })
}

async fn serve(
    plan: Plan,
    backend: Arc<dyn Backend>,
    options: &Options,
    dev_project: Option<dev::project::DevProject>,
    on_ready: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
) -> anyhow::Result<()> {
    let engine = server::engine(&options.limits)?;
    let pre = server::prepare(&engine, &plan.manifest.source)?;
    let metrics = options.metrics_listen.map(|_| Arc::new(crate::ops::Metrics::default()));
    if let Some(m) = &metrics {
        m.instances_max.set(i64::from(options.limits.max_concurrent_requests));
    }
    let s3_endpoint = plan.component_vars.get("s3_endpoint").map(String::as_str);
    let objects = match &options.object_cache {
        Some((dir, size)) => {
            let vars = &plan.component_vars;
            let config =
                banatie_core::config::Config::load(&|name| Ok(vars.get(name).cloned())).map_err(|e| {
                    anyhow::anyhow!("--object-cache: {}", e.log_detail().unwrap_or_else(|| e.to_string()))
                })?;
            Some(Arc::new(crate::object_cache::ObjectCache::open(dir, *size, &config.s3)?))
        }
        None => None,
    };
    let outbound = Outbound::new(AllowList(Arc::new(plan.allowed)), s3_endpoint, metrics.clone(), objects);
    let shared = Shared {
        vars: Arc::new(ConfigVars(plan.component_vars)),
        kv: KvAccess { backend, labels: Arc::new(plan.manifest.key_value_stores.clone()) },
        outbound,
        route: Arc::new(plan.manifest.clone()),
        metrics,
        tracer: options.tracer.clone(),
    };
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let manifest = &plan.manifest;
    println!("banatie-host: serving {} on http://{addr} (route {})", manifest.app_name, manifest.route);
    if let (Some(at), Some(metrics)) = (options.metrics_listen, &shared.metrics) {
        let ops = TcpListener::bind(at)
            .await
            .with_context(|| format!("cannot listen on {at} (--metrics-listen)"))?;
        println!("banatie-host: metrics, /healthz and /readyz on http://{}", ops.local_addr()?);
        tokio::spawn(crate::ops::serve(ops, addr, metrics.clone()));
    }
    if let Some(ready) = on_ready {
        ready(addr);
    }
    if let Some(dev::project::DevProject { api_key: key, .. }) = dev_project {
        println!("banatie-host --dev: demo page: http://{addr}/");
        println!("banatie-host --dev: dev project API key: {key}");
        println!("  try: curl -sS -D - -o /tmp/img.png -H 'X-API-Key: {key}' 'http://{addr}/api/v1/live/generate?prompt=a+red+fox&aspect_ratio=16:9'");
    }
    let server = Arc::new(Server::new(pre, shared, options.limits.clone()));
    server::serve(listener, server, shutdown_signal()).await
}

async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}
