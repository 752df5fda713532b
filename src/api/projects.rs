//! Projects: `POST /api/v1/projects` (admin) and API-key authentication.

use serde_json::json;

use super::respond::Reply;
use crate::core::ports::KeyValue;
use crate::core::project::{self, Project};
use crate::core::Error;

/// Map an `X-API-Key` to its project id.
pub fn authenticate(kv: &impl KeyValue, api_key: Option<&str>) -> Result<String, Error> {
    let key = api_key.ok_or(Error::Unauthorized("missing X-API-Key header"))?;
    let unknown = Error::Unauthorized("unknown API key");
    if !project::plausible_api_key(key) {
        return Err(unknown);
    }
    let id = kv.get(&project::api_key_index(key))?.ok_or(unknown)?;
    String::from_utf8(id).map_err(|_| Error::KeyValue("api key index is not UTF-8".into()))
}

pub struct NewProjectIds {
    pub id: String,
    pub api_key_random: [u8; 32],
    pub now: u64,
}

/// Create a project: admin check, validation, then the record, then the key index
/// (so a key never resolves to a project that is not there).
pub fn create<B>(
    kv: &impl KeyValue,
    admin_token: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
    ids: NewProjectIds,
) -> Result<Reply<B>, Error> {
    project::check_admin(authorization, admin_token)?;
    let name = project::parse_create(body)?;
    let api_key = project::new_api_key(ids.api_key_random);
    let record = Project {
        id: ids.id,
        name,
        api_key_sha256: project::hash_api_key(&api_key),
        created_at: ids.now,
    };
    let encoded = serde_json::to_vec(&record).expect("a project serialises");
    kv.set(&project::project_key(&record.id), &encoded)?;
    kv.set(&project::api_key_index(&api_key), record.id.as_bytes())?;
    Ok(Reply::json(
        201,
        json!({"project_id": record.id, "name": record.name, "api_key": api_key}),
    ))
}
