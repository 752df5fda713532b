//! What `banatie-host up` will serve, decided from the options and the files
//! they name before anything starts: the manifest, the variables, the
//! rendered allow-list, the key-value store and the component's own
//! configuration check. Reads files, starts nothing; `up` then serves it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::manifest::{self, Manifest};
use crate::outbound::AllowedHost;
use crate::runtime_config::{self, StoreConfig};
use crate::variables;

/// What a plan is made from besides the files.
pub struct Inputs<'a> {
    pub manifest: &'a Path,
    pub runtime_config_file: Option<&'a Path>,
    pub state_dir: &'a Path,
    /// `--variable` values.
    pub cli: &'a BTreeMap<String, String>,
    /// `SPIN_VARIABLE_*` lookup (empty values count as unset).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// What `--dev` supplies (lowest precedence); empty without `--dev`.
    pub dev: &'a BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct Plan {
    pub manifest: Manifest,
    /// The component's variables, rendered: what `wasi:config` answers.
    pub component_vars: BTreeMap<String, String>,
    pub allowed: Vec<AllowedHost>,
    pub store: StoreConfig,
}

/// `--state-dir`, or `.spin` beside the manifest, as `spin up` does.
pub fn state_dir(manifest: &Path, state_dir: Option<&Path>) -> PathBuf {
    state_dir.map(Path::to_path_buf).unwrap_or_else(|| manifest::manifest_dir(manifest).join(".spin"))
}

impl Plan {
    pub fn from(inputs: &Inputs<'_>) -> anyhow::Result<Plan> {
        let manifest = Manifest::load(inputs.manifest)?;
        let sources = variables::Sources { cli: inputs.cli, env: inputs.env, dev: inputs.dev };
        let values = variables::resolve(&manifest.variables, &sources)?;
        let mut component_vars = BTreeMap::new();
        for (name, template) in &manifest.component_variables {
            let value = variables::render(template, &manifest.variables, &values)
                .with_context(|| format!("component variable {name}"))?;
            component_vars.insert(name.clone(), value);
        }
        check_component_config(&component_vars)?;
        let mut allowed = Vec::new();
        for entry in &manifest.allowed_outbound_hosts {
            let rendered = variables::render(entry, &manifest.variables, &values)?;
            if !rendered.is_empty() {
                // Spin refuses an entry with a path; name what the entry came from.
                allowed.push(
                    AllowedHost::parse(&rendered)
                        .with_context(|| format!("allowed_outbound_hosts entry {entry:?}"))?,
                );
            }
        }
        let store = runtime_config::default_store(inputs.runtime_config_file, inputs.state_dir)?;
        Ok(Plan { manifest, component_vars, allowed, store })
    }
}

/// The component checks its configuration on every request; checking it
/// once here, with the same code (`banatie_core::config::Config::load`),
/// stops a mistake before the host listens.
fn check_component_config(vars: &BTreeMap<String, String>) -> anyhow::Result<()> {
    if let Err(e) = banatie_core::config::Config::load(&|name| Ok(vars.get(name).cloned())) {
        bail!(
            "the component's configuration is invalid: {}",
            e.log_detail().unwrap_or_else(|| e.to_string())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
provider = { default = "gemini" }
gemini_api_key = { required = true, secret = true }
s3_endpoint = { default = "http://127.0.0.1:3900" }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
allowed_outbound_hosts = ["{{ s3_endpoint }}", "https://generativelanguage.googleapis.com"]
[component.c.variables]
provider = "{{ provider }}"
gemini_api_key = "{{ gemini_api_key }}"
s3_endpoint = "{{ s3_endpoint }}"
s3_bucket = "b"
s3_access_key_id = "a"
s3_secret_access_key = "s"
"#;

    fn plan(cli: &[(&str, &str)], dev: &[(&str, &str)]) -> anyhow::Result<Plan> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spin.toml");
        std::fs::write(&path, MANIFEST).unwrap();
        let owned =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (cli, dev) = (owned(cli), owned(dev));
        let state = dir.path().join(".spin");
        Plan::from(&Inputs {
            manifest: &path,
            runtime_config_file: None,
            state_dir: &state,
            cli: &cli,
            env: &|_| None,
            dev: &dev,
        })
    }

    #[test]
    fn variables_render_into_the_component_and_the_allow_list() {
        let p = plan(&[("gemini_api_key", "k"), ("s3_endpoint", "http://127.0.0.1:9000")], &[]).unwrap();
        assert_eq!(p.component_vars["s3_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(p.component_vars["gemini_api_key"], "k");
        assert!(p.allowed[0].allows("http", "127.0.0.1", 9000));
        assert!(
            matches!(p.store, StoreConfig::Sqlite(ref path) if path.ends_with(".spin/sqlite_key_value.db"))
        );
    }

    #[test]
    fn the_user_wins_over_dev_and_dev_fills_the_rest() {
        let p = plan(
            &[("gemini_api_key", "mine")],
            &[("gemini_api_key", "dev"), ("s3_endpoint", "http://127.0.0.1:1")],
        )
        .unwrap();
        assert_eq!(p.component_vars["gemini_api_key"], "mine");
        assert_eq!(p.component_vars["s3_endpoint"], "http://127.0.0.1:1");
    }

    #[test]
    fn a_bad_component_configuration_is_refused_naming_the_variable() {
        let e = plan(&[("gemini_api_key", "k"), ("provider", "dall-e")], &[]).unwrap_err();
        assert!(format!("{e:#}").contains("provider"), "{e:#}");
        let e = plan(&[("gemini_api_key", "")], &[]).unwrap_err();
        assert!(format!("{e:#}").contains("gemini_api_key"), "{e:#}");
        let e = plan(&[("gemini_api_key", "k"), ("s3_endpoint", "http://h/path")], &[]).unwrap_err();
        assert!(format!("{e:#}").contains("s3_endpoint"), "{e:#}");
    }
}
