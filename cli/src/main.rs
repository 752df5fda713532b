//! The `banatie` binary: the command line in `banatie_cli`, and nothing else.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    banatie_cli::run(std::env::args_os()).code()
}
