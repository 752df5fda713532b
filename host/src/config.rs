//! `wasi:config/store` for the component: its variables, resolved from
//! spin.toml (see `manifest`). Read-only.

use std::collections::BTreeMap;

use crate::bindings::config::store::{Error, Host};

/// The component's resolved variables, as the guest sees them.
#[derive(Clone, Default)]
pub struct ConfigVars(pub BTreeMap<String, String>);

impl std::fmt::Debug for ConfigVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: names only.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Host for &ConfigVars {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, Error>> {
        Ok(Ok(self.0.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, Error>> {
        Ok(Ok(self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }
}

/// `HasData` marker: the config interface is implemented on a shared borrow.
pub struct ConfigData;
impl wasmtime::component::HasData for ConfigData {
    type Data<'a> = &'a ConfigVars;
}
