//! Who is calling, decided in one place for every route from the kind of
//! credentials `core::http::routes` names for it. Everything that fails here says
//! nothing about which part failed.

use crate::api::records::{projects, scopes};
use crate::core::config::Config;
use crate::core::http::request::{RawQuery, SignedParams};
use crate::core::http::routes::Auth;
use crate::core::ports::KeyValue;
use crate::core::stored::keys;
use crate::core::stored::project::{self, Project};
use crate::core::stored::scope::Scope;
use crate::core::{decide::signature, Error};

/// An authenticated caller.
pub enum Caller {
    Project(Project),
    Admin,
    /// A route that needs no credentials and has no project (`Auth::Open`).
    Anyone,
}

impl Caller {
    /// The project of a caller the table says is one.
    pub fn project(self) -> Project {
        match self {
            Caller::Project(p) => p,
            Caller::Admin | Caller::Anyone => unreachable!("the route table gives this route no project"),
        }
    }
}

/// The credentials a request carries.
pub struct Credentials<'a> {
    pub api_key: Option<&'a str>,
    pub authorization: Option<&'a str>,
    /// The live endpoint's parsed query, which may be a signed URL.
    pub query: Option<&'a RawQuery>,
    /// A public URL's project (slug, or id for projects made before slugs).
    pub cdn_project: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// A request's headers only (every route but the live family's).
    pub fn headers(api_key: Option<&'a str>, authorization: Option<&'a str>) -> Credentials<'a> {
        Credentials { api_key, authorization, query: None, cdn_project: None }
    }
}

pub fn authenticate(
    kv: &impl KeyValue,
    config: &Config,
    auth: Auth,
    path: &str,
    credentials: &Credentials<'_>,
    now: u64,
) -> Result<Caller, Error> {
    let signed = credentials.query.and_then(|q| q.signed.as_ref().map(|s| (q, s)));
    let project = match (auth, signed) {
        (Auth::KeyOrSignature, Some((query, signed))) => project_by_signature(kv, path, query, signed, now)?,
        (Auth::KeyOrSignature, None) => project_by_key(kv, credentials.api_key)?,
        (Auth::Key, Some(_)) => return Err(Error::Forbidden("signed URLs cannot purge; use X-API-Key")),
        (Auth::Key, None) => project_by_key(kv, credentials.api_key)?,
        (Auth::Admin, _) => {
            let admin = config.admin_token.as_ref().map(|t| t.expose());
            project::check_admin(credentials.authorization, admin)?;
            return Ok(Caller::Admin);
        }
        (Auth::KeyOrAdmin, _) if credentials.api_key.is_none() && credentials.authorization.is_some() => {
            let admin = config.admin_token.as_ref().map(|t| t.expose());
            project::check_admin(credentials.authorization, admin)?;
            return Ok(Caller::Admin);
        }
        (Auth::KeyOrAdmin, _) => project_by_key(kv, credentials.api_key)?,
        (Auth::Open, _) => return Ok(Caller::Anyone),
        (Auth::Demo, _) => demo_project(kv, config)?,
        (Auth::Public, _) => project_by_slug(kv, credentials.cdn_project.unwrap_or_default())?,
    };
    Ok(Caller::Project(project))
}

/// The project an `X-API-Key` belongs to (only its newest key, after rotation).
fn project_by_key(kv: &impl KeyValue, api_key: Option<&str>) -> Result<Project, Error> {
    let key = api_key.ok_or(Error::Unauthorized("missing X-API-Key header"))?;
    let unknown = || Error::Unauthorized("unknown API key");
    if !project::plausible_api_key(key) {
        return Err(unknown());
    }
    // A key that names its project is checked against that record; one of
    // before is found through its hash's index row.
    let id = match project::project_of_key(key) {
        Some(id) => id.to_string(),
        None => {
            let id = kv.get(&project::api_key_index(key))?.ok_or_else(unknown)?;
            String::from_utf8(id).map_err(|_| unknown())?
        }
    };
    let project = projects::load(kv, &id)?.ok_or_else(unknown)?;
    if !project.has_api_key(key) {
        return Err(unknown());
    }
    Ok(project)
}

/// The project a request's credentials claim, known before any read (an
/// API key that names it, a signed URL's `project`, a public URL's id):
/// what `api::kv::prefetch` reads with the entry. Only a claim; `authenticate`
/// decides.
pub fn claimed_project<'c>(auth: Auth, credentials: &Credentials<'c>) -> Option<&'c str> {
    let signed = credentials.query.and_then(|q| q.signed.as_ref());
    match (auth, signed) {
        (Auth::KeyOrSignature, Some(signed)) => {
            Some(signed.project.as_str()).filter(|p| project::plausible_id(p))
        }
        (Auth::KeyOrSignature | Auth::Key, None) => credentials.api_key.and_then(project::project_of_key),
        (Auth::Public, _) => credentials.cdn_project.filter(|p| project::looks_like_id(p)),
        _ => None,
    }
}

/// The project whose secret signed this URL.
fn project_by_signature(
    kv: &impl KeyValue,
    path: &str,
    query: &RawQuery,
    signed: &SignedParams,
    now: u64,
) -> Result<Project, Error> {
    let project = projects::load(kv, &signed.project)?.ok_or(Error::BadSignature)?;
    signature::verify(&project.signing_secret, path, &query.pairs, &signed.sig, signed.exp, now)?;
    Ok(project)
}

/// The project a public URL names: by id when it has an id's shape (an id
/// always means its own project, whatever slug another project took before
/// slugs of that shape were refused), else by slug, else by id (projects
/// created before slugs existed have none; `--dev`'s id is not a UUID).
fn project_by_slug(kv: &impl KeyValue, slug: &str) -> Result<Project, Error> {
    let unknown = || Error::NotFound("no such project");
    let by_slug = match crate::core::stored::project::looks_like_id(slug) {
        true => None,
        false => kv.get(&keys::project_slug(slug))?,
    };
    let id = match by_slug {
        Some(id) => String::from_utf8(id).map_err(|_| unknown())?,
        None => slug.to_string(),
    };
    projects::load(kv, &id)?.ok_or_else(unknown)
}

/// A public URL may use a scope only when the scope says `public`; any
/// other (or none at all) needs a key or a signed URL: 401.
pub fn public_scope(kv: &impl KeyValue, project: &Project, slug: &str) -> Result<Scope, Error> {
    match scopes::load(kv, &project.id, slug)? {
        Some(s) if s.public => Ok(s),
        _ => Err(Error::Unauthorized("this scope is not public: use X-API-Key or a signed URL")),
    }
}

/// The demo's project (`demo_project_id`): without that variable the demo
/// routes do not exist (404), as production deployments expect.
fn demo_project(kv: &impl KeyValue, config: &Config) -> Result<Project, Error> {
    let id = config.demo_project_id.as_deref().ok_or(Error::NotFound("no such route"))?;
    projects::load(kv, id)?.ok_or(Error::NotFound("the demo project does not exist"))
}
