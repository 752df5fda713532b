//! wasmCloud 2's real CLI for the tests: `wash` from PATH when it is 2.x,
//! else the prebuilt 2.7.0 copy that `../shared/wash/install.sh` unpacks
//! (into `target/wash-cli/`). `None` when neither exists. Its `wash dev`
//! runs the prebuilt `--features wasmcloud2` component with wasmCloud 2's
//! host plugins (`tests/integration/support/wash.rs` drives it).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::spin::{install_shared, on_path, version_of};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `wash` binary, found once per process.
pub fn binary() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        on_path("wash", "wash 2.")
            .or_else(|| install_shared("../shared/wash/install.sh", &repo_root().join("target/wash-cli")))
    })
    .as_deref()
}

/// `wash --version` of [`binary`].
pub fn version() -> Option<String> {
    version_of(binary()?)
}
