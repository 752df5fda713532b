//! `banatie-host up`: read and validate everything, then serve.
//! Every mistake (manifest, variables, runtime config, component imports) is
//! reported before the listener opens.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::TcpListener;

use crate::config::ConfigVars;
use crate::kv::{redis::Redis, sqlite::Sqlite, Backend, KvAccess};
use crate::manifest::Manifest;
use crate::outbound::{pooled_client, AllowList, AllowedHost, Outbound};
use crate::runtime_config::{self, StoreConfig};
use crate::server::{self, Server, Shared};
use crate::{dev, variables};

pub struct Options {
    pub manifest: PathBuf,
    pub listen: SocketAddr,
    pub runtime_config_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub variables: BTreeMap<String, String>,
    pub build: bool,
    pub dev: bool,
    /// Concurrency, queueing and timeouts of the server.
    pub limits: server::Limits,
    /// Called with the bound address once the host listens (embedders, the benchmark).
    pub on_ready: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
}

fn run_build(manifest: &Manifest) -> anyhow::Result<()> {
    let Some((command, dir)) = &manifest.build else {
        bail!("--build: the component has no [component.{}.build] command", manifest.component_id);
    };
    eprintln!("banatie-host: building: {command}");
    let status = std::process::Command::new("sh").arg("-c").arg(command).current_dir(dir).status()?;
    if !status.success() {
        bail!("build command failed ({status})");
    }
    Ok(())
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn run(mut options: Options) -> anyhow::Result<()> {
    let manifest = Manifest::load(&options.manifest)?;
    if options.build {
        run_build(&manifest)?;
    }
    let state_dir = options
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::manifest::manifest_dir(&options.manifest).join(".spin"));
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create state dir {}", state_dir.display()))?;

    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (dev_vars, admin_token) = if options.dev {
        let services = dev::start(&state_dir).await?;
        let user_gemini =
            options.variables.contains_key("gemini_api_key") || env("SPIN_VARIABLE_GEMINI_API_KEY").is_some();
        let user_admin =
            options.variables.get("admin_token").cloned().or_else(|| env("SPIN_VARIABLE_ADMIN_TOKEN"));
        let admin = user_admin.clone().unwrap_or_else(random_token);
        eprintln!(
            "banatie-host --dev: embedded S3 at {} (folder {})",
            services.s3_endpoint,
            state_dir.join("dev-s3").display()
        );
        if user_gemini {
            eprintln!("banatie-host --dev: gemini_api_key given: using the real Gemini API");
        } else {
            eprintln!(
                "banatie-host --dev: STAND-IN provider at {}: placeholder pictures, not real generations",
                services.provider_url
            );
        }
        (dev::variables(&services, !user_gemini, &admin), Some(admin))
    } else {
        (BTreeMap::new(), None)
    };

    let sources = variables::Sources { cli: &options.variables, env: &env, dev: &dev_vars };
    let values = variables::resolve(&manifest.variables, &sources)?;
    let mut component_vars = BTreeMap::new();
    for (name, template) in &manifest.component_variables {
        let value = variables::render(template, &manifest.variables, &values)
            .with_context(|| format!("component variable {name}"))?;
        component_vars.insert(name.clone(), value);
    }
    // The component checks its configuration on every request; checking it
    // once here, with the same code, stops a mistake before the host listens.
    if let Err(e) = banatie_core::config::Config::load(&|name| Ok(component_vars.get(name).cloned())) {
        bail!(
            "the component's configuration is invalid: {}",
            e.log_detail().unwrap_or_else(|| e.to_string())
        );
    }
    let mut allowed = Vec::new();
    for entry in &manifest.allowed_outbound_hosts {
        let rendered = variables::render(entry, &manifest.variables, &values)?;
        if !rendered.is_empty() {
            // Spin refuses an entry with a path; name what the entry came from.
            allowed.push(
                AllowedHost::parse(&rendered)
                    .with_context(|| format!("allowed_outbound_hosts entry {entry:?}"))?,
            );
        }
    }

    let backend: Arc<dyn Backend> =
        match runtime_config::default_store(options.runtime_config_file.as_deref(), &state_dir)? {
            StoreConfig::Sqlite(path) => {
                Arc::new(Sqlite::open(&path).with_context(|| format!("key-value store {}", path.display()))?)
            }
            StoreConfig::Redis(url) => Arc::new(Redis::open(&url).context("key-value store: redis")?),
        };

    let engine = server::engine(&options.limits)?;
    let pre = server::prepare(&engine, &manifest.source)?;
    let shared = Shared {
        vars: Arc::new(std::sync::RwLock::new(Arc::new(ConfigVars(component_vars)))),
        kv: KvAccess { backend, labels: Arc::new(manifest.key_value_stores.clone()) },
        outbound: Outbound { allow: AllowList(Arc::new(allowed)), client: pooled_client() },
        route: Arc::new(manifest.clone()),
    };
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    println!("banatie-host: serving {} on http://{addr} (route {})", manifest.app_name, manifest.route);
    if let Some(ready) = options.on_ready.take() {
        ready(addr);
    }

    if let Some(token) = admin_token {
        let state_dir = state_dir.clone();
        let vars = shared.vars.clone();
        tokio::spawn(async move {
            match dev::project::ensure(addr, &token, &state_dir).await {
                Ok(dev::project::DevProject { id, api_key: key }) => {
                    dev::project::enable_demo(&vars, &id);
                    println!("banatie-host --dev: demo page: http://{addr}/");
                    println!("banatie-host --dev: dev project API key: {key}");
                    println!("  try: curl -sS -D - -o /tmp/img.png -H 'X-API-Key: {key}' 'http://{addr}/api/v1/live/generate?prompt=a+red+fox&aspect_ratio=16:9'");
                }
                Err(e) => eprintln!("banatie-host --dev: could not create the dev project: {e:#}"),
            }
        });
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
    eprintln!("banatie-host: shutting down");
}
