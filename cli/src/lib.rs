//! `banatie`: the operators' command line for a banatie-live deployment.
//!
//! A binary of its own, apart from `banatie-host`: operators of Spin,
//! SpinKube and wasmCloud deployments run the component on those platforms
//! and need these commands without the wasmtime-based host (and its build).
//! It is the seed of one command line for operators, so it is a set of
//! subcommands; `warm` is the first. It talks to the service over HTTP
//! only, as any client would: it reads no store and holds no state.
//!
//! ## Layout
//! - [`args`]: the command line (clap), its help text and exit statuses.
//! - [`warm`]: `banatie warm`: input read into items (`warm::lines`,
//!   `warm::html`, through `warm::url` and `warm::item`), batches
//!   (`warm::batch`), the request and its streamed answer (`warm::client`,
//!   `warm::answer`), what the operator sees (`warm::report`).
//!
//! Secrets: the API key travels in the `X-API-Key` header and nowhere else;
//! it is never printed, not in `Debug`, not in an error message.

#![forbid(unsafe_code)]

pub mod args;
pub mod warm;

use std::process::ExitCode;

/// How a run ended, as the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Everything asked for was done (for `warm`: each item cached or generated).
    Done,
    /// The service answered, and some items failed (each one shown).
    SomeFailed,
    /// A usage error, a request the service refused whole, or a transport
    /// failure (a message says which).
    Trouble,
}

impl Ending {
    pub fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Ending::Done => 0,
            Ending::SomeFailed => 1,
            Ending::Trouble => 2,
        })
    }
}

/// Run the command line `args` (the program's name first).
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> Ending {
    use clap::Parser;
    let cli = match args::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; clap prints each where it belongs.
            let _ = e.print();
            return if e.use_stderr() { Ending::Trouble } else { Ending::Done };
        }
    };
    match cli.command {
        args::Command::Warm(warm) => warm::run(&warm),
    }
}
