//! `banatie-host` command line. See `banatie_host::up` for what `up` does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "banatie-host",
    version,
    about = "Run the banatie-live component like `spin up`, without Spin"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app described by a Spin manifest.
    Up(UpArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// The Spin manifest (spin.toml) to run.
    #[arg(long, short = 'f', value_name = "FILE", default_value = "spin.toml")]
    from: PathBuf,
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Spin runtime config (key-value store backends), e.g. runtime-config.toml.
    #[arg(long, value_name = "FILE")]
    runtime_config_file: Option<PathBuf>,
    /// Directory for state: the SQLite key-value store, --dev's S3 folder.
    /// Default: .spin next to the manifest.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Set an application variable (repeatable). Also read from SPIN_VARIABLE_<NAME>.
    #[arg(long = "variable", value_name = "NAME=VALUE", value_parser = parse_variable)]
    variables: Vec<(String, String)>,
    /// Run the manifest's build command first.
    #[arg(long)]
    build: bool,
    /// Zero-setup local mode: embedded S3 on loopback and a stand-in provider
    /// in OpenAI's shape, with streamed previews (Gemini's in a state dir an
    /// earlier --dev wrote: remembered in its dev-provider file; the real
    /// provider as soon as gemini_api_key or openai_api_key is given); writes a dev project into
    /// the key-value store before listening and serves the demo page for it.
    #[arg(long)]
    dev: bool,
    /// With --dev: how long the stand-in provider takes to answer, as a real
    /// one does (its previews come during the wait); 0 answers at once.
    #[arg(long, value_name = "MS", default_value_t = banatie_host::dev::DEFAULT_WAIT_MS)]
    dev_wait_ms: u64,
    /// Requests whose component runs at once (sizes the instance pool).
    /// Default: 64 per core, at least 64.
    #[arg(long, value_name = "N")]
    max_concurrent_requests: Option<u32>,
    /// How long a request waits for a free slot before it gets 503 + Retry-After.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    queue_timeout_ms: u64,
    /// Open connections at once; beyond it new connections wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_connections: usize,
    /// Time to send a request head; also how long an idle keep-alive connection stays open.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    header_timeout_seconds: u64,
    /// Longest a request's component may run, body included; then 503 (or a cut body).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    request_timeout_seconds: u64,
    /// Requests of one client (its address; behind trusted_proxies, its
    /// X-Forwarded-For hop; IPv6 by client_ipv6_prefix) whose component runs
    /// at once; its others wait --queue-timeout-ms, then 429.
    /// Default: a sixteenth of --max-concurrent-requests, at least 4.
    #[arg(long, value_name = "N")]
    max_requests_per_client: Option<usize>,
    /// Requests whose wasm may compute for long (past 50 ms: a derivation) at
    /// once; the others wait, so HITs keep the remaining cores. Default: half
    /// the cores, at least 1.
    #[arg(long, value_name = "N")]
    compute_slots: Option<usize>,
    /// How long a client may leave a write pending (not reading) before its
    /// connection is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    send_timeout_seconds: u64,
    /// Serve Prometheus metrics (/metrics), /healthz and /readyz on this
    /// address, apart from the public one. Off by default.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Keep the S3 objects the component reads in this directory and answer
    /// its GETs of them from there (objects are immutable: a purge deletes
    /// the key, and drops the copy). For single-machine deployments; off by
    /// default. docs/operations.md says why it never serves a stale image.
    #[arg(long, value_name = "DIR")]
    object_cache: Option<PathBuf>,
    /// The most the object cache keeps (least recently used go first), e.g.
    /// 512MiB, 4GiB. An object over an eighth of it is not kept.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = banatie_host::object_cache::parse_size)]
    object_cache_size: u64,
    /// Log, for each request, how many wasi:config and key-value calls its
    /// component made (method and path only). A diagnostic.
    #[arg(long)]
    log_host_calls: bool,
    /// Log lines (stderr) as text or one JSON object each: one line per
    /// request (method, route kind, status, cache status, durations, bytes,
    /// request id; never a query), the component's diagnostics with the
    /// request id. Levels and targets filter by RUST_LOG (default info).
    /// Traces are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT
    /// is set.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_variable(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    if name.is_empty() {
        return Err("expected NAME=VALUE".into());
    }
    Ok((name.to_string(), value.to_string()))
}

fn limits(args: &UpArgs) -> banatie_host::server::Limits {
    let default = banatie_host::server::Limits::default();
    banatie_host::server::Limits {
        max_concurrent_requests: args
            .max_concurrent_requests
            .unwrap_or(default.max_concurrent_requests)
            .max(1),
        queue_timeout: Duration::from_millis(args.queue_timeout_ms),
        max_connections: args.max_connections.max(1),
        header_timeout: Duration::from_secs(args.header_timeout_seconds.max(1)),
        request_timeout: Duration::from_secs(args.request_timeout_seconds.max(1)),
        max_requests_per_client: args
            .max_requests_per_client
            .unwrap_or_else(|| {
                banatie_host::server::per_client_default(
                    args.max_concurrent_requests.unwrap_or(default.max_concurrent_requests),
                )
            })
            .max(1),
        compute_slots: args.compute_slots.unwrap_or(default.compute_slots).max(1),
        send_timeout: Duration::from_secs(args.send_timeout_seconds.max(1)),
        log_host_calls: args.log_host_calls,
    }
}

fn main() -> std::process::ExitCode {
    use banatie_host::telemetry;
    let cli = Cli::parse();
    let Command::Up(args) = cli.command;
    telemetry::init_logs(match args.log_format {
        LogFormat::Text => telemetry::LogFormat::Text,
        LogFormat::Json => telemetry::LogFormat::Json,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let traces = match telemetry::init_traces(runtime.handle().clone()) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("banatie-host: error: OTLP traces: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let limits = limits(&args);
    let options = banatie_host::up::Options {
        manifest: args.from,
        listen: args.listen,
        runtime_config_file: args.runtime_config_file,
        state_dir: args.state_dir,
        variables: args.variables.into_iter().collect(),
        build: args.build,
        dev: args.dev,
        dev_wait: std::time::Duration::from_millis(args.dev_wait_ms),
        limits,
        metrics_listen: args.metrics_listen,
        object_cache: args.object_cache.map(|dir| (dir, args.object_cache_size)),
        tracer: traces.as_ref().map(|(tracer, _)| tracer.clone()),
        on_ready: None,
    };
    let outcome = runtime.block_on(banatie_host::up::run(options));
    if let Some((_, provider)) = traces {
        // The spans still batched go out before the process ends.
        let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
    }
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("banatie-host: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
