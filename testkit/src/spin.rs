//! The real Spin CLI for the tests and the benchmark: `spin` from PATH when
//! there is one, else the prebuilt 3.6.0 copy that `../shared/spin/install.sh`
//! unpacks (into `target/spin-cli/`). `None` when neither exists.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn works(bin: &Path) -> bool {
    Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("spin")).find(|bin| bin.is_file() && works(bin))
}

fn shared_copy() -> Option<PathBuf> {
    let install = repo_root().join("../shared/spin/install.sh");
    if !install.is_file() {
        return None;
    }
    let dir = repo_root().join("target/spin-cli");
    let out = Command::new("bash").arg(&install).arg(&dir).output().ok()?;
    if !out.status.success() {
        eprintln!("spin: {} failed: {}", install.display(), String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    works(&bin).then_some(bin)
}

/// The `spin` binary to run, found once per process.
pub fn binary() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| on_path().or_else(shared_copy)).as_deref()
}

/// `spin --version` of [`binary`].
pub fn version() -> Option<String> {
    let out = Command::new(binary()?).arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
