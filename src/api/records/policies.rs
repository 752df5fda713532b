//! Prompt policies as stored: a project's (`keys::policy`) and a scope's
//! (`keys::scope_policy`), each absent when empty. Read only before a
//! generation (`live::obtain`), never on a HIT; what they decide is
//! `core::decide::policy`.

use crate::core::decide::policy::{Matcher, Policy, PolicyChanges};
use crate::core::ports::KeyValue;
use crate::core::Error;

pub fn load(kv: &impl KeyValue, key: &str) -> Result<Policy, Error> {
    kv.get(key)?.map_or_else(|| Ok(Policy::default()), |b| Policy::decode(&b))
}

/// Change the policy at `key` (validated first: nothing is written when a
/// field is bad); an empty policy is removed. Returns the policy now.
pub fn change(kv: &impl KeyValue, key: &str, changes: &PolicyChanges) -> Result<Policy, Error> {
    changes.validate()?;
    let mut policy = load(kv, key)?;
    if changes.is_empty() {
        return Ok(policy);
    }
    changes.apply(&mut policy);
    match policy.is_empty() {
        true => kv.delete(key)?,
        false => kv.set(key, &policy.encode())?,
    }
    Ok(policy)
}

/// The project's policy narrowed by its scope's, compiled.
pub fn matcher(kv: &impl KeyValue, project: &str, scope: Option<&str>) -> Result<Matcher, Error> {
    use crate::core::stored::keys;
    let project_policy = load(kv, &keys::policy(project))?;
    let scope_policy = match scope {
        Some(slug) => load(kv, &keys::scope_policy(project, slug))?,
        None => Policy::default(),
    };
    Matcher::new(&[&project_policy, &scope_policy])
}
