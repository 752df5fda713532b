//! The key-value store a test's host uses, read from outside the way an
//! operator would: Spin's SQLite file, a Redis server, a NATS JetStream
//! bucket, or wash's directory of files. Tests name logical keys
//! (`core::stored::keys`); this module spells them as the runtime's build does
//! (`core::stored::platform::Flavour::store_key`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use banatie_core::stored::platform::Flavour;
use testkit::nats::NatsServer;
use testkit::redis::RedisServer;

use super::runtime::{self, Runtime, WashStore};

/// wasmCloud 2's bucket (`src/adapters/kv.rs`, `STORE`).
pub const BUCKET: &str = "banatie";

#[derive(Clone)]
pub enum Store {
    /// Spin's SQLite store (`spin_key_value` table, store `default`).
    Sqlite(PathBuf),
    /// A Redis server; wash prefixes keys with `BUCKET:`, Spin does not.
    Redis { server: Arc<RedisServer>, prefix: &'static str },
    /// NATS JetStream: wash's bucket is the stream `KV_banatie`.
    Nats(Arc<NatsServer>),
    /// wash's directory store: the bucket is a directory, a key a file
    /// (and, kept alive with it, the directory it lives in when it owns it).
    Dir(PathBuf, #[allow(dead_code)] Option<Arc<tempfile::TempDir>>),
}

impl Store {
    /// A new store of the kind the current runtime uses, for hosts that share
    /// it: Redis for banatie-host and Spin (through their runtime config),
    /// the trial's own backend for wash.
    pub fn shared() -> Store {
        match runtime::current() {
            Runtime::BanatieHost | Runtime::Spin(_) => {
                Store::Redis { server: Arc::new(RedisServer::start()), prefix: "" }
            }
            Runtime::Wash(WashStore::Dir) => {
                let dir = Arc::new(tempfile::tempdir().unwrap());
                Store::Dir(dir.path().join("kv"), Some(dir))
            }
            Runtime::Wash(kind) => Store::for_wash(kind, Path::new("/nonexistent")),
        }
    }

    /// A fresh backend for one wash host; a directory store lives in `dir`.
    pub fn for_wash(kind: WashStore, dir: &Path) -> Store {
        match kind {
            WashStore::Redis => Store::Redis { server: Arc::new(RedisServer::start()), prefix: "banatie:" },
            WashStore::Nats => Store::Nats(Arc::new(NatsServer::start())),
            WashStore::Dir => Store::Dir(dir.join("kv"), None),
        }
    }

    fn flavour(&self) -> Flavour {
        match self {
            Store::Redis { prefix: "", .. } | Store::Sqlite(_) => Flavour::Spin,
            _ => Flavour::WasmCloud2,
        }
    }

    /// The logical keys that start with `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let flavour = self.flavour();
        let stored: Vec<String> = match self {
            Store::Sqlite(db) => {
                let conn = super::host::sqlite_store(db);
                let mut stmt = conn
                    .prepare("SELECT key FROM spin_key_value WHERE store = 'default' ORDER BY key")
                    .unwrap();
                stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
            }
            Store::Redis { server, prefix: p } => server
                .key_names(&format!("{p}*"))
                .into_iter()
                .filter_map(|k| k.strip_prefix(p).map(str::to_string))
                .collect(),
            Store::Nats(server) => server.kv_keys(BUCKET),
            Store::Dir(root, _) => match std::fs::read_dir(root.join(BUCKET)) {
                Ok(files) => files.map(|f| f.unwrap().file_name().to_string_lossy().into_owned()).collect(),
                Err(_) => Vec::new(),
            },
        };
        let mut keys: Vec<String> = stored
            .iter()
            .filter(|k| !k.ends_with(".down") || flavour == Flavour::Spin)
            .filter_map(|k| flavour.logical_key(k))
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort();
        keys
    }

    /// A logical key's value (`None`: no such key; a store that cannot be
    /// read fails the test).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let stored = self.flavour().store_key(key).into_owned();
        match self {
            Store::Sqlite(db) => super::host::kv_get(db, key),
            Store::Redis { server, prefix } => server.get(&format!("{prefix}{stored}")),
            Store::Nats(server) => server.kv_get(BUCKET, &stored),
            Store::Dir(root, _) => match std::fs::read(root.join(BUCKET).join(&stored)) {
                Ok(value) => Some(value),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => panic!("reading {stored:?} from {}: {e}", root.display()),
            },
        }
    }

    /// A runtime config file pointing banatie-host or Spin at this store
    /// (Redis only; `None` for wash's backends, which its config names).
    pub fn runtime_config(&self, dir: &Path) -> Option<PathBuf> {
        let Store::Redis { server, prefix: "" } = self else { return None };
        let rc = dir.join("runtime-config.toml");
        std::fs::write(
            &rc,
            format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n", server.url()),
        )
        .unwrap();
        Some(rc)
    }
}
