//! The real Spin CLIs for the tests and the benchmark, one per major version
//! the users run: Spin 3 (3.6.0) and Spin 4 (4.0.2, what SpinKube ships).
//! For each: `spin` from PATH when it is that major version, else the
//! prebuilt copy that `../shared/spin{,4}/install.sh` unpacks (into
//! `target/spin-cli/VERSION/`). `None` when neither exists.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A major version of Spin the suite runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spin {
    V3,
    V4,
}

impl Spin {
    pub const ALL: [Spin; 2] = [Spin::V3, Spin::V4];

    fn major(self) -> &'static str {
        match self {
            Spin::V3 => "3",
            Spin::V4 => "4",
        }
    }

    /// The prebuilt copy: its install script and the version it unpacks.
    fn shared(self) -> (&'static str, &'static str) {
        match self {
            Spin::V3 => ("../shared/spin/install.sh", "3.6.0"),
            Spin::V4 => ("../shared/spin4/install.sh", "4.0.2"),
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `BIN --version`'s output, when it runs.
pub fn version_of(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The first `name` on PATH whose `--version` starts with `prefix`.
pub fn on_path(name: &str, prefix: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|bin| bin.is_file() && version_of(bin).is_some_and(|v| v.starts_with(prefix)))
}

/// Run a `../shared/*/install.sh` into `dir`; the binary's path it prints.
pub fn install_shared(script: &str, dir: &Path) -> Option<PathBuf> {
    let install = repo_root().join(script);
    if !install.is_file() {
        return None;
    }
    let out = Command::new("bash").arg(&install).arg(dir).output().ok()?;
    if !out.status.success() {
        eprintln!("{} failed: {}", install.display(), String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    version_of(&bin).is_some().then_some(bin)
}

/// The `spin` binary of this major version, found once per process.
pub fn binary(spin: Spin) -> Option<&'static Path> {
    static BINS: [OnceLock<Option<PathBuf>>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = &BINS[spin as usize];
    slot.get_or_init(|| {
        let (script, version) = spin.shared();
        on_path("spin", &format!("spin {}.", spin.major()))
            .or_else(|| install_shared(script, &repo_root().join("target/spin-cli").join(version)))
    })
    .as_deref()
}

/// `spin --version` of [`binary`].
pub fn version(spin: Spin) -> Option<String> {
    version_of(binary(spin)?)
}
