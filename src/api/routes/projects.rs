//! Projects (admin): `POST /api/v1/projects`,
//! `PATCH /api/v1/projects/{id}` (its prompt policy) and
//! `POST /api/v1/projects/{id}/rotate`. Credentials are shown once; the API
//! key is stored only as its SHA-256.

use serde_json::json;

use crate::api::kv::counters;
use crate::api::records::{policies, projects};
use crate::api::reply::Reply;
use crate::core::decide::policy::PolicyChanges;
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::keys;
use crate::core::stored::project::{self, Project};
use crate::core::Error;

/// Create a project (`core::stored::project::Created` says in which order it is stored).
pub fn create<B>(kv: &impl KeyValue, body: &[u8], env: &impl Env) -> Result<Reply<B>, Error> {
    let new = project::parse_create(body)?;
    let created = project::Created::new(new, env.new_id(), env.random_bytes64(), env.now_unix());
    if let Some(slug) = &created.record.slug {
        if kv.get(&keys::project_slug(slug))?.is_some() {
            return Err(Error::Conflict("a project with this slug exists"));
        }
    }
    for (key, value) in created.writes() {
        kv.set(&key, &value)?;
    }
    counters::create_project_counters(kv, &created.record.id)?;
    let record = &created.record;
    Ok(Reply::json(
        201,
        json!({
            "project_id": record.id,
            "name": record.name,
            "api_key": created.api_key,
            "signing_secret": record.signing_secret,
            "generations_per_hour": record.generations_per_hour,
            "derivations_per_hour": record.derivations_per_hour,
            "slug": record.slug,
            "lazy_scopes": record.lazy_scopes,
        }),
    ))
}

/// New API key and signing secret; the old ones stop working at once (the
/// record names only the newest key, and the old index is removed).
///
/// A record that cannot be decoded is repaired here: rebuilt with the
/// project's id as its name and the default budget (its old key stops
/// working, as after any rotation; its cached images stay).
pub fn rotate<B>(kv: &impl KeyValue, id: &str, random: [u8; 64]) -> Result<Reply<B>, Error> {
    let mut record = match projects::load(kv, id) {
        Ok(record) => record.ok_or(Error::NotFound("no such project"))?,
        Err(Error::ProjectUnreadable(detail)) => {
            crate::diag!("repairing project {id}: {detail}");
            Project::repaired(id)
        }
        Err(e) => return Err(e),
    };
    let old_index = keys::api_key(&record.api_key_sha256);
    let (api_key, signing_secret) = project::new_credentials(&record.id, random);
    record.api_key_sha256 = project::hash_api_key(&api_key);
    record.signing_secret = signing_secret.clone();
    kv.set(&project::api_key_index(&api_key), record.id.as_bytes())?;
    kv.set(&keys::project(&record.id), &record.encode())?;
    kv.delete(&old_index)?;
    Ok(Reply::json(
        200,
        json!({"project_id": record.id, "api_key": api_key, "signing_secret": signing_secret}),
    ))
}

/// Change a project's settings: its prompt policy (`core::decide::policy`;
/// each field given replaces the stored one). A bad field is a 400 naming
/// it, and nothing is changed (`policies::change` validates before writing).
pub fn update<B>(kv: &impl KeyValue, id: &str, body: &[u8]) -> Result<Reply<B>, Error> {
    let changes: PolicyChanges = serde_json::from_slice(body).map_err(|e| {
        Error::BadRequest(format!(
            "body must be JSON like {{\"deny_terms\":[\"gore\"],\"deny_patterns\":[],\"allow_patterns\":[],\"templates_only\":false}}: {e}"
        ))
    })?;
    let record = projects::load(kv, id)?.ok_or(Error::NotFound("no such project"))?;
    let policy = policies::change(kv, &keys::policy(id), &changes)?;
    Ok(Reply::json(
        200,
        json!({
            "project_id": record.id,
            "name": record.name,
            "slug": record.slug,
            "generations_per_hour": record.generations_per_hour,
            "derivations_per_hour": record.derivations_per_hour,
            "lazy_scopes": record.lazy_scopes,
            "progressive_misses": record.progressive_misses,
            "policy": policy,
        }),
    ))
}
