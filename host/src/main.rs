//! `banatie-host` command line. See `banatie_host::up` for what `up` does.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// (real Gemini as soon as gemini_api_key is given); creates a dev project.
    #[arg(long)]
    dev: bool,
}

fn parse_variable(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    if name.is_empty() {
        return Err("expected NAME=VALUE".into());
    }
    Ok((name.to_string(), value.to_string()))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let Command::Up(args) = cli.command;
    let options = banatie_host::up::Options {
        manifest: args.from,
        listen: args.listen,
        runtime_config_file: args.runtime_config_file,
        state_dir: args.state_dir,
        variables: args.variables.into_iter().collect(),
        build: args.build,
        dev: args.dev,
        on_ready: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(banatie_host::up::run(options)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("banatie-host: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
