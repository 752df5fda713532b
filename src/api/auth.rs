//! Who is calling: a project, by `X-API-Key` or by a signed URL. Everything
//! that fails here says nothing about which part failed.

use crate::core::ports::KeyValue;
use crate::core::project::{self, Project};
use crate::core::request::{RawQuery, SignedParams};
use crate::core::{signature, Error};

pub fn load_project(kv: &impl KeyValue, id: &str) -> Result<Option<Project>, Error> {
    kv.get(&project::project_key(id))?.map(|b| Project::decode(&b)).transpose()
}

/// The project an `X-API-Key` belongs to (only its newest key, after rotation).
pub fn project_by_key(kv: &impl KeyValue, api_key: Option<&str>) -> Result<Project, Error> {
    let key = api_key.ok_or(Error::Unauthorized("missing X-API-Key header"))?;
    let unknown = || Error::Unauthorized("unknown API key");
    if !project::plausible_api_key(key) {
        return Err(unknown());
    }
    let id = kv.get(&project::api_key_index(key))?.ok_or_else(unknown)?;
    let id = String::from_utf8(id).map_err(|_| unknown())?;
    let project = load_project(kv, &id)?.ok_or_else(unknown)?;
    if !project.has_api_key(key) {
        return Err(unknown());
    }
    Ok(project)
}

/// The project whose secret signed this URL.
pub fn project_by_signature(
    kv: &impl KeyValue,
    path: &str,
    query: &RawQuery,
    signed: &SignedParams,
    now: u64,
) -> Result<Project, Error> {
    let project = load_project(kv, &signed.project)?.ok_or(Error::BadSignature)?;
    signature::verify(&project.signing_secret, path, &query.pairs, &signed.sig, signed.exp, now)?;
    Ok(project)
}

/// A signed URL needs no key; anything else needs `X-API-Key`.
pub fn caller(
    kv: &impl KeyValue,
    path: &str,
    query: &RawQuery,
    api_key: Option<&str>,
    now: u64,
) -> Result<Project, Error> {
    match &query.signed {
        Some(signed) => project_by_signature(kv, path, query, signed, now),
        None => project_by_key(kv, api_key),
    }
}
