//! `wasi:config/store` → [`Config`]. Spin feeds it from spin.toml variables;
//! `banatie-host` does the same.

use super::bindings::config::store;
use crate::core::config::Config;
use crate::core::Error;

pub fn load() -> Result<Config, Error> {
    Config::load(&|name: &str| {
        store::get(name).map_err(|e| match e {
            store::Error::Upstream(m) | store::Error::Io(m) => m,
        })
    })
}
