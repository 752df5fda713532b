//! wasmCloud 2's `wash dev` as a host: a project directory holding only
//! `.wash/config.yaml`, which names the prebuilt `--features wasmcloud2`
//! component, the address, the key-value backend, the component's config
//! (the same variables banatie-host and Spin get) and the outbound hosts it
//! may call — the hosts spin.toml's `allowed_outbound_hosts` is built from.
//! wash reads nothing of the user's: its XDG directories are in `state`.
//! (Options: wasmCloud v2.7.0 `crates/wash/src/config.rs`, `DevConfig`.)

use std::path::Path;
use std::process::Command;

use serde_json::{json, Map, Value};

use super::host::repo_root;
use super::store::Store;

/// The variables that name hosts the component calls (spin.toml's
/// `allowed_outbound_hosts` templates).
const OUTBOUND: [&str; 5] =
    ["s3_endpoint", "gemini_base_url", "openai_base_url", "compat_base_url", "moderation_base_url"];

/// `wash dev` for a host whose state lives in `state`, configured with
/// `vars`, on `store`, listening on `address` (a port the caller holds:
/// `testkit::port`).
pub fn command(state: &Path, vars: &[(String, String)], store: &Store, address: &str) -> Command {
    let project = state.join("wash");
    std::fs::create_dir_all(project.join(".wash")).unwrap();
    let component = repo_root().join("target/wasm32-wasip2/release/banatie_live_wasmcloud2.wasm");
    assert!(component.exists(), "{} is missing: scripts/test.sh builds it", component.display());
    let mut dev = json!({ "address": address });
    match store {
        Store::Redis { server, .. } => dev["wasi_keyvalue_redis_url"] = json!(server.url()),
        Store::Nats(server) => dev["wasi_keyvalue_nats_url"] = json!(server.url()),
        Store::Dir(dir, _) => dev["wasi_keyvalue_path"] = json!(dir),
        Store::Sqlite(_) => panic!("wash has no SQLite store"),
    }
    let config: Map<String, Value> = vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let allowed: Vec<String> =
        vars.iter().filter(|(k, _)| OUTBOUND.contains(&k.as_str())).map(|(_, v)| origin(v)).collect();
    // YAML is a superset of JSON: the file is written as JSON.
    let yaml = json!({
        "build": { "command": "true", "component_path": component },
        "dev": dev,
        "workload": { "config": config, "allowedHosts": allowed },
    });
    std::fs::write(project.join(".wash/config.yaml"), serde_json::to_vec_pretty(&yaml).unwrap()).unwrap();
    let xdg = state.join("xdg");
    let mut command = Command::new(testkit::wash::binary().expect("wash CLI"));
    command
        .arg("--non-interactive")
        .arg("-C")
        .arg(&project)
        .arg("dev")
        .env("XDG_CONFIG_HOME", xdg.join("config"))
        .env("XDG_CACHE_HOME", xdg.join("cache"))
        .env("XDG_DATA_HOME", xdg.join("data"));
    command
}

/// `scheme://host[:port]` of a URL (wash matches allowed hosts exactly).
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest))
}
