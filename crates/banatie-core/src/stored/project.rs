//! Projects and their API keys. A key is shown once, at creation, and stored
//! only as its SHA-256; the KV store maps that hash to the project id.
//! Randomness is passed in, so everything here is deterministic under test.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::decide::budget::{DEFAULT_GENERATIONS_PER_HOUR, MAX_GENERATIONS_PER_HOUR};
use crate::decide::cache_key::hex;
use crate::Error;

pub const API_KEY_PREFIX: &str = "bl_";
pub const SIGNING_SECRET_PREFIX: &str = "bls_";
pub const MAX_NAME_CHARS: usize = 100;
/// Variants a project may derive per hour unless it says otherwise: a few
/// dozen pages' worth of `<picture>` sources (each image in 2–3 widths × 2–3
/// formats) per hour, where one derivation costs up to a second of CPU.
pub const DEFAULT_DERIVATIONS_PER_HOUR: u32 = 600;
pub const MAX_DERIVATIONS_PER_HOUR: u32 = 1_000_000;

fn default_derivations_per_hour() -> u32 {
    DEFAULT_DERIVATIONS_PER_HOUR
}

fn is_default_derivations(n: &u32) -> bool {
    *n == DEFAULT_DERIVATIONS_PER_HOUR
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub api_key_sha256: String,
    /// Key of the project's signed URLs. Kept in KV because HMAC needs it.
    pub signing_secret: String,
    pub generations_per_hour: u32,
    /// Variants it may derive per hour (records written before this existed: the default).
    #[serde(default = "default_derivations_per_hour", skip_serializing_if = "is_default_derivations")]
    pub derivations_per_hour: u32,
    pub created_at: u64,
    /// The project's name in public URLs (`/cdn/{slug}/live/{scope}`);
    /// records written before slugs existed have none (their id serves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// A live URL naming a scope that does not exist creates it (not public).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lazy_scopes: bool,
    /// Its MISSes answer progressively (`progressive=1` on every URL of it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub progressive_misses: bool,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("generations_per_hour", &self.generations_per_hour)
            .field("derivations_per_hour", &self.derivations_per_hour)
            .finish_non_exhaustive()
    }
}

impl Project {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a project serialises")
    }

    /// A record to replace one that cannot be read: the id as its name, the
    /// default budget, no key yet (the rotation that repairs it sets one).
    pub fn repaired(id: &str) -> Project {
        Project {
            id: id.to_string(),
            name: id.to_string(),
            api_key_sha256: String::new(),
            signing_secret: String::new(),
            generations_per_hour: crate::decide::budget::DEFAULT_GENERATIONS_PER_HOUR,
            derivations_per_hour: DEFAULT_DERIVATIONS_PER_HOUR,
            created_at: 0,
            slug: None,
            lazy_scopes: false,
            progressive_misses: false,
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Project, Error> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::ProjectUnreadable(format!("unreadable project record: {e}")))
    }

    /// Does this API key belong to the project (after rotation, only the newest does)?
    pub fn has_api_key(&self, api_key: &str) -> bool {
        bool::from(hash_api_key(api_key).as_bytes().ct_eq(self.api_key_sha256.as_bytes()))
    }
}

/// A project just created, with the API key that is shown once.
pub struct Created {
    pub record: Project,
    pub api_key: String,
}

impl Created {
    pub fn new(new: NewProject, id: String, random: [u8; 64], now: u64) -> Created {
        let (api_key, signing_secret) = new_credentials(&id, random);
        let slug = Some(new.slug.unwrap_or_else(|| slug_from(&new.name, &id)));
        let record = Project {
            name: new.name,
            api_key_sha256: hash_api_key(&api_key),
            signing_secret,
            generations_per_hour: new.generations_per_hour,
            derivations_per_hour: new.derivations_per_hour,
            created_at: now,
            slug,
            lazy_scopes: new.lazy_scopes,
            progressive_misses: new.progressive_misses,
            id,
        };
        Created { record, api_key }
    }

    /// The KV writes that store it, in this order: the record first, then the
    /// key and slug indexes, so neither resolves to a project that is not there.
    pub fn writes(&self) -> Vec<(String, Vec<u8>)> {
        let mut w = vec![
            (crate::stored::keys::project(&self.record.id), self.record.encode()),
            (api_key_index(&self.api_key), self.record.id.as_bytes().to_vec()),
        ];
        if let Some(slug) = &self.record.slug {
            w.push((crate::stored::keys::project_slug(slug), self.record.id.as_bytes().to_vec()));
        }
        w
    }
}

/// Fresh credentials of project `id` from 64 random bytes: (API key,
/// signing secret). The key names its project (`bl_{id}.{secret}`), so the
/// project record can be read with the entry a request asks for, in one
/// call (`api::kv::prefetch`); the id is no secret (signed and public URLs carry
/// it), the 32 random bytes are. Keys made before carry no id (`bl_{secret}`:
/// base64url has no `.`) and are found through their hash's index row.
pub fn new_credentials(id: &str, random: [u8; 64]) -> (String, String) {
    let (a, b) = random.split_at(32);
    (
        format!("{API_KEY_PREFIX}{id}.{}", URL_SAFE_NO_PAD.encode(a)),
        format!("{SIGNING_SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(b)),
    )
}

/// The project a key names, for keys that name one (`new_credentials`).
/// Only a claim: the key is checked against that project's record.
pub fn project_of_key(api_key: &str) -> Option<&str> {
    let (id, _) = api_key.strip_prefix(API_KEY_PREFIX)?.split_once('.')?;
    plausible_id(id).then_some(id)
}

/// Whether `id` could be a project's id (ours are UUIDs; `--dev`'s is
/// `dev-…`): at most 64 of `[A-Za-z0-9_-]`. What a claim is checked against
/// before its record is read (no key pattern can come of it).
pub fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// KV key that maps an API key's hash to its project id.
pub fn api_key_index(api_key: &str) -> String {
    crate::stored::keys::api_key(&hash_api_key(api_key))
}

pub fn hash_api_key(api_key: &str) -> String {
    hex(&Sha256::digest(api_key.as_bytes()))
}

/// A key that cannot be one of ours is refused before any KV lookup.
pub fn plausible_api_key(key: &str) -> bool {
    key.starts_with(API_KEY_PREFIX) && key.len() <= 128 && key.is_ascii()
}

/// Whether `s` has the shape of a project id (a hyphenated UUID). A public
/// URL names its project by id or slug, so no slug may look like an id: an
/// id is resolved as an id first (`api::auth`), and a slug of that shape is
/// refused at creation. `slug_from` never makes one (its last group is the
/// 8-character suffix).
pub fn looks_like_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A slug from a project's name (`My Blog!` → `my-blog`), made unique with
/// the start of the id; the id itself when the name has no letters or digits.
pub fn slug_from(name: &str, id: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let base: String = slug.trim_end_matches('-').chars().take(40).collect();
    let suffix: String =
        id.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect::<String>().to_lowercase();
    let slug = if base.is_empty() { suffix } else { format!("{}-{suffix}", base.trim_end_matches('-')) };
    if crate::stored::scope::valid_slug(&slug) {
        slug
    } else {
        "project".into()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    generations_per_hour: Option<u32>,
    derivations_per_hour: Option<u32>,
    slug: Option<String>,
    lazy_scopes: Option<bool>,
    progressive_misses: Option<bool>,
}

/// A validated `POST /api/v1/projects` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProject {
    pub name: String,
    pub generations_per_hour: u32,
    pub derivations_per_hour: u32,
    /// Asked for; `None` derives one from the name.
    pub slug: Option<String>,
    pub lazy_scopes: bool,
    pub progressive_misses: bool,
}

/// Validate the body of `POST /api/v1/projects`.
pub fn parse_create(body: &[u8]) -> Result<NewProject, Error> {
    let parsed: CreateBody = serde_json::from_slice(body).map_err(|e| {
        Error::BadRequest(format!(
            "body must be JSON like {{\"name\":\"...\",\"generations_per_hour\":100}}: {e}"
        ))
    })?;
    let generations_per_hour = parsed.generations_per_hour.unwrap_or(DEFAULT_GENERATIONS_PER_HOUR);
    if generations_per_hour > MAX_GENERATIONS_PER_HOUR {
        return Err(Error::BadRequest(format!(
            "generations_per_hour must be at most {MAX_GENERATIONS_PER_HOUR}"
        )));
    }
    let derivations_per_hour = parsed.derivations_per_hour.unwrap_or(DEFAULT_DERIVATIONS_PER_HOUR);
    if derivations_per_hour > MAX_DERIVATIONS_PER_HOUR {
        return Err(Error::BadRequest(format!(
            "derivations_per_hour must be at most {MAX_DERIVATIONS_PER_HOUR}"
        )));
    }
    let name = parsed.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::BadRequest(format!("name must have 1 to {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::BadRequest("name contains control characters".into()));
    }
    if parsed.slug.as_deref().is_some_and(|s| !crate::stored::scope::valid_slug(s)) {
        return Err(Error::BadRequest(crate::stored::scope::SLUG_RULE.into()));
    }
    if parsed.slug.as_deref().is_some_and(looks_like_id) {
        return Err(Error::BadRequest(
            "a project slug cannot have the shape of a project id (8-4-4-4-12 hex digits)".into(),
        ));
    }
    Ok(NewProject {
        name: name.to_string(),
        generations_per_hour,
        derivations_per_hour,
        slug: parsed.slug,
        lazy_scopes: parsed.lazy_scopes.unwrap_or(false),
        progressive_misses: parsed.progressive_misses.unwrap_or(false),
    })
}

/// Check `Authorization: Bearer <token>` against the admin token in constant
/// time. The scheme is case-insensitive (RFC 7235 §2.1).
pub fn check_admin(authorization: Option<&str>, admin_token: Option<&str>) -> Result<(), Error> {
    let Some(expected) = admin_token else {
        return Err(Error::Forbidden("the admin API is disabled (admin_token is not set)"));
    };
    let given = authorization
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or(Error::Unauthorized("missing admin bearer token"))?;
    // Compare digests so the comparison time does not depend on lengths either.
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    if bool::from(a.ct_eq(&b)) {
        Ok(())
    } else {
        Err(Error::Unauthorized("invalid admin token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_slug_has_the_shape_of_an_id() {
        let id = "2c5e3f6a-9b1d-4e7f-8a2b-3c4d5e6f7a8b";
        assert!(looks_like_id(id));
        assert!(!looks_like_id("my-blog-2c5e3f6a"));
        assert!(!looks_like_id("2c5e3f6a9b1d4e7f8a2b3c4d5e6f7a8b"));
        let e = parse_create(format!(r#"{{"name":"x","slug":"{id}"}}"#).as_bytes()).unwrap_err();
        assert_eq!(e.status(), 400);
        // A name spelled like an id still gets an 8-character suffix.
        assert!(!looks_like_id(&slug_from(id, "0d56ce37-e090-45ee-9f1d-d1cb6c801308")));
    }

    #[test]
    fn slugs_come_from_names_and_old_records_still_read() {
        assert_eq!(slug_from("My Blog!", "3f2a9c1e-77"), "my-blog-3f2a9c1e");
        assert_eq!(slug_from("!!!", "ABCDEF12-x"), "abcdef12");
        let old = br#"{"id":"p","name":"p","api_key_sha256":"","signing_secret":"s","generations_per_hour":1,"created_at":0}"#;
        let p = Project::decode(old).unwrap();
        assert_eq!((p.slug.as_deref(), p.lazy_scopes), (None, false));
        assert_eq!(Project::decode(&p.encode()).unwrap().encode(), old.to_vec(), "written back unchanged");
    }

    #[test]
    fn credentials_are_prefixed_and_keys_hashed() {
        let (key, secret) = new_credentials("3f2a9c1e-77", [7; 64]);
        assert_eq!(key, "bl_3f2a9c1e-77.BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc");
        assert_eq!(project_of_key(&key), Some("3f2a9c1e-77"));
        assert_eq!(project_of_key("bl_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"), None, "a key of before");
        assert_eq!(project_of_key("bl_a/b.x"), None);
        assert_eq!(project_of_key("bl_.x"), None);
        assert!(plausible_id("3f2a9c1e-77") && !plausible_id("*") && !plausible_id("a:b"));
        assert_eq!(secret, "bls_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc");
        assert!(plausible_api_key(&key));
        assert!(!plausible_api_key("sk-other"));
        // sha256("bl_x")
        assert_eq!(api_key_index("bl_x"), format!("apikey:{}", hex(&Sha256::digest(b"bl_x"))));
    }

    #[test]
    fn admin_token_is_checked() {
        assert!(check_admin(Some("Bearer s3cret"), Some("s3cret")).is_ok());
        assert!(check_admin(Some("bearer s3cret"), Some("s3cret")).is_ok(), "RFC 7235: any case");
        assert!(check_admin(Some("BEARER s3cret"), Some("s3cret")).is_ok());
        assert_eq!(check_admin(Some("Basic s3cret"), Some("s3cret")).unwrap_err().status(), 401);
        assert_eq!(check_admin(Some("Bearer nope"), Some("s3cret")).unwrap_err().status(), 401);
        assert_eq!(check_admin(None, Some("s3cret")).unwrap_err().status(), 401);
        assert_eq!(check_admin(Some("s3cret"), Some("s3cret")).unwrap_err().status(), 401);
        assert_eq!(check_admin(Some("Bearer s3cret"), None).unwrap_err().status(), 403);
    }

    #[test]
    fn create_body_is_validated() {
        let p = parse_create(br#"{"name":" shop "}"#).unwrap();
        assert_eq!((p.name.as_str(), p.generations_per_hour), ("shop", 100));
        assert_eq!(
            parse_create(br#"{"name":"a","generations_per_hour":0}"#).unwrap().generations_per_hour,
            0
        );
        assert!(parse_create(br#"{"name":"a","generations_per_hour":-1}"#).is_err());
        assert!(parse_create(br#"{"name":"a","generations_per_hour":2000000}"#).is_err());
        assert!(parse_create(br#"{"name":""}"#).is_err());
        assert!(parse_create(br#"{"name":"a","x":1}"#).is_err());
        assert!(parse_create(b"not json").is_err());
        assert!(parse_create(format!(r#"{{"name":"{}"}}"#, "a".repeat(101)).as_bytes()).is_err());
    }
}
