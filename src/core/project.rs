//! Projects and their API keys. A key is shown once, at creation, and stored
//! only as its SHA-256; the KV store maps that hash to the project id.
//! Randomness is passed in, so everything here is deterministic under test.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::cache_key::hex;
use super::Error;

pub const API_KEY_PREFIX: &str = "bl_";
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub api_key_sha256: String,
    pub created_at: u64,
}

/// KV key of a project record.
pub fn project_key(id: &str) -> String {
    format!("project:{id}")
}

/// KV key that maps an API key's hash to its project id.
pub fn api_key_index(api_key: &str) -> String {
    format!("apikey:{}", hash_api_key(api_key))
}

pub fn hash_api_key(api_key: &str) -> String {
    hex(&Sha256::digest(api_key.as_bytes()))
}

/// A new API key from 32 random bytes.
pub fn new_api_key(random: [u8; 32]) -> String {
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

/// A key that cannot be one of ours is refused before any KV lookup.
pub fn plausible_api_key(key: &str) -> bool {
    key.starts_with(API_KEY_PREFIX) && key.len() <= 128 && key.is_ascii()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
}

/// Validate the body of `POST /api/v1/projects`; returns the trimmed name.
pub fn parse_create(body: &[u8]) -> Result<String, Error> {
    let parsed: CreateBody = serde_json::from_slice(body).map_err(|e| {
        Error::BadRequest(format!("body must be JSON like {{\"name\":\"...\"}}: {e}"))
    })?;
    let name = parsed.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::BadRequest(format!(
            "name must have 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::BadRequest("name contains control characters".into()));
    }
    Ok(name.to_string())
}

/// Check `Authorization: Bearer <token>` against the admin token in constant time.
pub fn check_admin(authorization: Option<&str>, admin_token: Option<&str>) -> Result<(), Error> {
    let Some(expected) = admin_token else {
        return Err(Error::Forbidden(
            "the admin API is disabled (admin_token is not set)",
        ));
    };
    let given = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
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
    fn api_keys_are_prefixed_and_hashed() {
        let key = new_api_key([7; 32]);
        assert_eq!(key, "bl_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc");
        assert!(plausible_api_key(&key));
        assert!(!plausible_api_key("sk-other"));
        // sha256("bl_x")
        assert_eq!(
            api_key_index("bl_x"),
            format!("apikey:{}", hex(&Sha256::digest(b"bl_x")))
        );
    }

    #[test]
    fn admin_token_is_checked() {
        assert!(check_admin(Some("Bearer s3cret"), Some("s3cret")).is_ok());
        assert_eq!(
            check_admin(Some("Bearer nope"), Some("s3cret"))
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(check_admin(None, Some("s3cret")).unwrap_err().status(), 401);
        assert_eq!(
            check_admin(Some("s3cret"), Some("s3cret"))
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(
            check_admin(Some("Bearer s3cret"), None)
                .unwrap_err()
                .status(),
            403
        );
    }

    #[test]
    fn create_body_is_validated() {
        assert_eq!(parse_create(br#"{"name":" shop "}"#).unwrap(), "shop");
        assert!(parse_create(br#"{"name":""}"#).is_err());
        assert!(parse_create(br#"{"name":"a","x":1}"#).is_err());
        assert!(parse_create(b"not json").is_err());
        assert!(parse_create(format!(r#"{{"name":"{}"}}"#, "a".repeat(101)).as_bytes()).is_err());
    }
}
