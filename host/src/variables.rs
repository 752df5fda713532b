//! Resolve application variables and render the component's templates, as
//! Spin does: `--variable` > `SPIN_VARIABLE_<NAME>` > (`--dev` values) >
//! the manifest default. A required variable with no value stops the host
//! before it serves, naming the variable. Templates are `{{ name }}`.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

use crate::manifest::Variable;

/// Where a value may come from, highest precedence first.
pub struct Sources<'a> {
    pub cli: &'a BTreeMap<String, String>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub dev: &'a BTreeMap<String, String>,
}

pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Values of all application variables that have one.
pub fn resolve(
    declared: &BTreeMap<String, Variable>,
    sources: &Sources,
) -> anyhow::Result<BTreeMap<String, String>> {
    if let Some(unknown) = sources.cli.keys().find(|k| !declared.contains_key(*k)) {
        bail!("--variable {unknown}: the manifest declares no such variable");
    }
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, var) in declared {
        let value = sources
            .cli
            .get(name)
            .cloned()
            .or_else(|| (sources.env)(&env_name(name)))
            .or_else(|| sources.dev.get(name).cloned())
            .or_else(|| var.default.clone());
        match value {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None if var.required => missing.push(name.as_str()),
            None => {}
        }
    }
    if !missing.is_empty() {
        let how: Vec<String> =
            missing.iter().map(|n| format!("--variable {n}=VALUE or {}", env_name(n))).collect();
        bail!(
            "required variable{} not set: {} (set with {})",
            if missing.len() == 1 { " is" } else { "s are" },
            missing.join(", "),
            how.join("; ")
        );
    }
    Ok(values)
}

/// Render `{{ name }}` placeholders; unknown names are an error, unset optional
/// variables render as empty.
pub fn render(
    template: &str,
    declared: &BTreeMap<String, Variable>,
    values: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").context("unclosed {{ in template")? + start;
        let name = rest[start + 2..end].trim();
        if !declared.contains_key(name) {
            bail!("template {template:?} names undeclared variable {name:?}");
        }
        out.push_str(values.get(name).map(String::as_str).unwrap_or(""));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> BTreeMap<String, Variable> {
        let mut d = BTreeMap::new();
        d.insert("token".into(), Variable { required: true, ..Default::default() });
        d.insert("region".into(), Variable { default: Some("us-east-1".into()), ..Default::default() });
        d.insert("opt".into(), Variable::default());
        d
    }

    #[test]
    fn precedence_is_cli_then_env_then_dev_then_default() {
        let cli: BTreeMap<_, _> = [("token".to_string(), "cli".to_string())].into();
        let dev: BTreeMap<_, _> =
            [("region".to_string(), "dev".to_string()), ("token".to_string(), "dev".to_string())].into();
        let env = |n: &str| (n == "SPIN_VARIABLE_REGION").then(|| "env".to_string());
        let v = resolve(&declared(), &Sources { cli: &cli, env: &env, dev: &dev }).unwrap();
        assert_eq!(v["token"], "cli");
        assert_eq!(v["region"], "env");
        assert!(!v.contains_key("opt"));
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        let none = BTreeMap::new();
        let e = resolve(&declared(), &Sources { cli: &none, env: &|_| None, dev: &none }).unwrap_err();
        assert!(e.to_string().contains("required variable is not set: token"), "{e}");
        assert!(e.to_string().contains("SPIN_VARIABLE_TOKEN"));
        let cli: BTreeMap<_, _> = [("nope".to_string(), "1".to_string())].into();
        assert!(resolve(&declared(), &Sources { cli: &cli, env: &|_| None, dev: &none }).is_err());
    }

    #[test]
    fn templates_render_and_refuse_unknown_names() {
        let values: BTreeMap<_, _> = [("region".to_string(), "eu".to_string())].into();
        assert_eq!(render("https://{{ region }}.x/{{opt}}", &declared(), &values).unwrap(), "https://eu.x/");
        assert!(render("{{ nope }}", &declared(), &values).is_err());
        assert!(render("{{ region", &declared(), &values).is_err());
    }
}
