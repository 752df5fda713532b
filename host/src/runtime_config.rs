//! Spin's runtime config file (`--runtime-config-file`), the key-value part:
//!
//! ```toml
//! [key_value_store.default]
//! type = "spin"                 # SQLite; `path` relative to this file
//! path = ".spin/sqlite_key_value.db"
//! ```
//!
//! Without a file, or without an entry for a label, the label `default` is
//! SQLite at `STATE_DIR/sqlite_key_value.db`, as with `spin up`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, RawStore>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawStore {
    Spin { path: Option<PathBuf> },
    Redis { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Sqlite(PathBuf),
    Redis(String),
}

/// The backend of the `default` store (the only label the component opens).
pub fn default_store(file: Option<&Path>, state_dir: &Path) -> anyhow::Result<StoreConfig> {
    let fallback = StoreConfig::Sqlite(state_dir.join("sqlite_key_value.db"));
    let Some(file) = file else {
        return Ok(fallback);
    };
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read runtime config {}", file.display()))?;
    let raw: RawRuntimeConfig =
        toml::from_str(&text).with_context(|| format!("invalid runtime config {}", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    if let Some(other) = raw.key_value_store.keys().find(|k| *k != "default") {
        bail!("runtime config: key_value_store.{other}: only the `default` store is used by this app");
    }
    Ok(match raw.key_value_store.get("default") {
        None => fallback,
        Some(RawStore::Spin { path: None }) => fallback,
        Some(RawStore::Spin { path: Some(p) }) => StoreConfig::Sqlite(base.join(p)),
        Some(RawStore::Redis { url }) => StoreConfig::Redis(url.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<StoreConfig> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rc.toml");
        std::fs::write(&file, text).unwrap();
        default_store(Some(&file), Path::new("/state")).map(|s| match s {
            StoreConfig::Sqlite(p) => {
                StoreConfig::Sqlite(p.strip_prefix(dir.path()).unwrap_or(&p).to_path_buf())
            }
            other => other,
        })
    }

    #[test]
    fn spin_format_is_understood() {
        assert_eq!(
            default_store(None, Path::new("/s")).unwrap(),
            StoreConfig::Sqlite("/s/sqlite_key_value.db".into())
        );
        assert_eq!(
            parse("[key_value_store.default]\ntype = \"spin\"\npath = \"kv.db\"").unwrap(),
            StoreConfig::Sqlite("kv.db".into())
        );
        assert_eq!(
            parse("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"").unwrap(),
            StoreConfig::Redis("redis://127.0.0.1:6379".into())
        );
        assert!(parse("[key_value_store.default]\ntype = \"azure_cosmos\"").is_err());
    }
}
