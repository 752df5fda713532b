//! spin.toml (manifest version 2), the subset this host runs: one HTTP
//! trigger and its component — source, route, variables (defaults, required,
//! secret), key-value store labels, allowed outbound hosts, build command.
//! Fields Spin knows and this host does not use are ignored, as Spin ignores
//! unknown ones; anything it cannot honour is an error before serving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Debug, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Debug, Deserialize)]
struct RawHttpTrigger {
    route: String,
    component: String,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    source: String,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    build: Option<RawBuild>,
}

#[derive(Debug, Deserialize)]
struct RawBuild {
    command: String,
    workdir: Option<String>,
}

/// An application variable as declared in `[variables]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub app_name: String,
    pub component_id: String,
    /// `/...` style route: exact path, or prefix when it ends in `/...`.
    pub route: String,
    pub source: PathBuf,
    pub variables: BTreeMap<String, Variable>,
    /// Component variable name → template over application variables.
    pub component_variables: BTreeMap<String, String>,
    pub allowed_outbound_hosts: Vec<String>,
    pub key_value_stores: Vec<String>,
    /// Build command and the directory to run it in.
    pub build: Option<(String, PathBuf)>,
}

fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The directory a manifest's relative paths are relative to. A bare file
/// name (`spin.toml`, the default) has an empty parent, which is no directory
/// to run a build command in: it is the current directory.
pub fn manifest_dir(manifest: &Path) -> PathBuf {
    match manifest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Manifest {
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Manifest::parse(&text, &manifest_dir(path))
            .with_context(|| format!("invalid manifest {}", path.display()))
    }

    pub fn parse(text: &str, dir: &Path) -> anyhow::Result<Manifest> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.spin_manifest_version != 2 {
            bail!("spin_manifest_version must be 2");
        }
        for (name, var) in &raw.variables {
            if !valid_name(name) {
                bail!("variable name {name:?} must be lower-case letters, digits and _");
            }
            if var.required && var.default.is_some() {
                bail!("variable {name} cannot be both required and have a default");
            }
        }
        let [trigger] = raw.trigger.http.as_slice() else {
            bail!("this host runs exactly one [[trigger.http]]");
        };
        if !trigger.route.starts_with('/') {
            bail!("route {:?} must start with /", trigger.route);
        }
        let component = raw.component.get(&trigger.component).with_context(|| {
            format!("trigger names component {:?}, which is not defined", trigger.component)
        })?;
        for name in component.variables.keys() {
            if !valid_name(name) {
                bail!("component variable name {name:?} must be lower-case letters, digits and _");
            }
        }
        let build = component.build.as_ref().map(|b| {
            let workdir = b.workdir.as_deref().map(|w| dir.join(w)).unwrap_or_else(|| dir.to_path_buf());
            (b.command.clone(), workdir)
        });
        Ok(Manifest {
            app_name: raw.application.name,
            component_id: trigger.component.clone(),
            route: trigger.route.clone(),
            source: dir.join(&component.source),
            variables: raw.variables,
            component_variables: component.variables.clone(),
            allowed_outbound_hosts: component.allowed_outbound_hosts.clone(),
            key_value_stores: component.key_value_stores.clone(),
            build,
        })
    }

    /// Does `path` belong to this app's route?
    pub fn route_matches(&self, path: &str) -> bool {
        match self.route.strip_suffix("/...") {
            Some(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")) || prefix.is_empty(),
            None => path == self.route,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[variables]
token = { required = true, secret = true }
region = { default = "us-east-1" }
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "target/app.wasm"
allowed_outbound_hosts = ["{{ endpoint }}"]
key_value_stores = ["default"]
description = "ignored by this host"
[component.web.variables]
token = "{{ token }}"
[component.web.build]
command = "cargo build"
"#;

    #[test]
    fn reads_what_the_host_needs() {
        let m = Manifest::parse(SAMPLE, Path::new("/app")).unwrap();
        assert_eq!(m.component_id, "web");
        assert_eq!(m.source, Path::new("/app/target/app.wasm"));
        assert!(m.variables["token"].required && m.variables["token"].secret);
        assert_eq!(m.variables["region"].default.as_deref(), Some("us-east-1"));
        assert_eq!(m.key_value_stores, vec!["default"]);
        assert_eq!(m.build, Some(("cargo build".into(), PathBuf::from("/app"))));
        assert!(m.route_matches("/anything/at/all"));
    }

    #[test]
    fn a_bare_manifest_name_is_relative_to_the_current_directory() {
        assert_eq!(manifest_dir(Path::new("spin.toml")), Path::new("."));
        assert_eq!(manifest_dir(Path::new("app/spin.toml")), Path::new("app"));
        assert_eq!(manifest_dir(Path::new("/app/spin.toml")), Path::new("/app"));
    }

    #[test]
    fn contradictions_are_refused() {
        let bad =
            SAMPLE.replace("{ required = true, secret = true }", "{ required = true, default = \"x\" }");
        assert!(Manifest::parse(&bad, Path::new("/")).is_err());
        let bad = SAMPLE.replace("component = \"web\"", "component = \"nope\"");
        assert!(Manifest::parse(&bad, Path::new("/")).is_err());
        let bad = SAMPLE.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(Manifest::parse(&bad, Path::new("/")).is_err());
    }

    #[test]
    fn routes_match_like_spin() {
        let mut m = Manifest::parse(SAMPLE, Path::new("/")).unwrap();
        m.route = "/api/...".into();
        assert!(m.route_matches("/api") && m.route_matches("/api/x"));
        assert!(!m.route_matches("/apix"));
        m.route = "/exact".into();
        assert!(m.route_matches("/exact") && !m.route_matches("/exact/x"));
    }
}
