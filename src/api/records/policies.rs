//! Prompt policies as stored: a project's (`keys::policy`) and a scope's
//! (`keys::scope_policy`), each absent when empty; and moderation's
//! remembered verdicts (`keys::moderation`). Read only before a generation
//! (`live::obtain`), never on a HIT; what they decide is
//! `core::decide::policy` and `core::provider::moderation`.

use crate::core::decide::policy::{Matcher, Policy, PolicyChanges};
use crate::core::ports::KeyValue;
use crate::core::provider::moderation::Verdict;
use crate::core::stored::keys;
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

/// What is known of a prompt before it is generated: the project's policy
/// narrowed by its scope's, compiled, and — when `verdict_of` names the
/// original's hash (moderation is on) — what moderation said of that cache
/// key before (`keys::moderation`).
pub struct Screen {
    pub policy: Matcher,
    pub verdict: Option<Verdict>,
}

pub fn screen(
    kv: &impl KeyValue,
    project: &str,
    scope: Option<&str>,
    verdict_of: Option<&str>,
) -> Result<Screen, Error> {
    // One read each (Spin's Redis store has no working get-many: `kv::prefetch`).
    let project_policy = load(kv, &keys::policy(project))?;
    let scope_policy = match scope {
        Some(slug) => load(kv, &keys::scope_policy(project, slug))?,
        None => Policy::default(),
    };
    let verdict = match verdict_of {
        Some(hash) => kv.get(&keys::moderation(project, hash))?.and_then(|b| Verdict::decode(&b)),
        None => None,
    };
    Ok(Screen { policy: Matcher::new(&[&project_policy, &scope_policy])?, verdict })
}
