//! `wasi:config/store` → [`Config`]. Spin feeds it from spin.toml variables;
//! `banatie-host` does the same. One `get-all` per request: one host call,
//! where a `get` per variable made one each (on Spin each resolves a
//! variable, through its provider: Spin v3.6 `crates/factor-variables/src/host.rs` `get_all`
//! resolves the component's variables in one `resolve_all`).

use std::collections::BTreeMap;

use super::bindings::config::store;
use crate::core::config::Config;
use crate::core::Error;

pub fn load() -> Result<Config, Error> {
    let all: BTreeMap<String, String> = store::get_all()
        .map_err(|e| match e {
            store::Error::Upstream(m) | store::Error::Io(m) => {
                Error::Misconfigured(format!("the variables cannot be read: {m}"))
            }
        })?
        .into_iter()
        .collect();
    Config::load(&|name: &str| Ok(all.get(name).cloned()))
}
