//! Scopes: named groups of a project's live images (`hero`, `blog`), each
//! with its own cap on new generations and a switch, and — when `public` —
//! reachable by hand-written URLs with no key (`/cdn/{project}/live/{scope}`).
//! The scope is part of the cache key (`cache_key`, v2).

use serde::{Deserialize, Serialize};

use crate::decide::policy::PolicyChanges;
use crate::Error;

/// New generations a scope allows unless it says otherwise.
pub const DEFAULT_GENERATIONS_LIMIT: u32 = 30;
pub const MAX_GENERATIONS_LIMIT: u32 = 1_000_000;
pub const SLUG_RULE: &str =
    "a scope or project slug is 1 to 64 characters of a-z, 0-9 and '-', not starting or ending with '-'";

pub fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub slug: String,
    pub generations_limit: u32,
    pub allow_new_generations: bool,
    /// Hand-writable URLs without key or signature may use it.
    pub public: bool,
    pub created_at: u64,
    /// Its MISSes answer progressively (`progressive=1` on every URL of it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub progressive_misses: bool,
}

impl Scope {
    /// A scope with the defaults (created lazily, on first use).
    pub fn lazy(slug: &str, now: u64) -> Scope {
        Scope {
            slug: slug.into(),
            generations_limit: DEFAULT_GENERATIONS_LIMIT,
            allow_new_generations: true,
            public: false,
            created_at: now,
            progressive_misses: false,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a scope serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<Scope, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::KeyValue(format!("unreadable scope record: {e}")))
    }

    /// May this scope take one more new generation, having made `used`?
    pub fn check_new_generation(&self, used: i64) -> Result<(), Error> {
        if !self.allow_new_generations {
            return Err(Error::ScopeClosed("new generations are switched off for this scope"));
        }
        if used >= self.generations_limit as i64 {
            return Err(Error::ScopeClosed("this scope's generations_limit is reached"));
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    slug: Option<String>,
    generations_limit: Option<u32>,
    allow_new_generations: Option<bool>,
    public: Option<bool>,
    progressive_misses: Option<bool>,
    deny_terms: Option<Vec<String>>,
    deny_patterns: Option<Vec<String>>,
    allow_patterns: Option<Vec<String>>,
    templates_only: Option<bool>,
}

/// What `POST` (create: `slug` required) or `PATCH` (update: no `slug`) asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub slug: Option<String>,
    pub generations_limit: Option<u32>,
    pub allow_new_generations: Option<bool>,
    pub public: Option<bool>,
    pub progressive_misses: Option<bool>,
    /// The scope's prompt policy (stored apart: `keys::scope_policy`).
    pub policy: PolicyChanges,
}

pub fn parse_body(body: &[u8], creating: bool) -> Result<Changes, Error> {
    let b: Body = serde_json::from_slice(body).map_err(|e| {
        Error::BadRequest(format!(
            "body must be JSON like {{\"slug\":\"hero\",\"generations_limit\":30,\"allow_new_generations\":true,\"public\":false}}: {e}"
        ))
    })?;
    match (&b.slug, creating) {
        (None, true) => return Err(Error::BadRequest("'slug' is required".into())),
        (Some(_), false) => return Err(Error::BadRequest("a scope's slug cannot be changed".into())),
        (Some(s), true) if !valid_slug(s) => return Err(Error::BadRequest(SLUG_RULE.into())),
        _ => {}
    }
    if b.generations_limit.is_some_and(|l| l > MAX_GENERATIONS_LIMIT) {
        return Err(Error::BadRequest(format!("generations_limit must be at most {MAX_GENERATIONS_LIMIT}")));
    }
    let policy = PolicyChanges {
        deny_terms: b.deny_terms,
        deny_patterns: b.deny_patterns,
        allow_patterns: b.allow_patterns,
        templates_only: b.templates_only,
    };
    policy.validate()?;
    Ok(Changes {
        slug: b.slug,
        generations_limit: b.generations_limit,
        allow_new_generations: b.allow_new_generations,
        public: b.public,
        progressive_misses: b.progressive_misses,
        policy,
    })
}

/// A new scope's body: its slug, and the rest of its settings.
pub fn parse_create(body: &[u8]) -> Result<(String, Changes), Error> {
    let changes = parse_body(body, true)?;
    let slug = changes.slug.clone().ok_or_else(|| Error::BadRequest("'slug' is required".into()))?;
    Ok((slug, changes))
}

impl Changes {
    pub fn apply(&self, scope: &mut Scope) {
        if let Some(l) = self.generations_limit {
            scope.generations_limit = l;
        }
        if let Some(a) = self.allow_new_generations {
            scope.allow_new_generations = a;
        }
        if let Some(p) = self.public {
            scope.public = p;
        }
        if let Some(p) = self.progressive_misses {
            scope.progressive_misses = p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_with_dashes() {
        for ok in ["hero", "blog-2025", "a", &"x".repeat(64)] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in ["", "Hero", "-a", "a-", "a_b", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn a_closed_or_spent_scope_refuses_new_generations() {
        let mut s = Scope::lazy("hero", 0);
        s.generations_limit = 2;
        assert!(s.check_new_generation(1).is_ok());
        let e = s.check_new_generation(2).unwrap_err();
        assert_eq!((e.status(), e.code()), (429, "scope_closed"));
        s.allow_new_generations = false;
        assert!(s.public_message_of(0).contains("switched off"));
    }

    #[test]
    fn bodies_create_and_update() {
        let c = parse_body(br#"{"slug":"hero","public":true}"#, true).unwrap();
        let mut s = Scope::lazy("hero", 0);
        c.apply(&mut s);
        assert!(s.public && s.allow_new_generations && s.generations_limit == DEFAULT_GENERATIONS_LIMIT);
        assert!(parse_body(br#"{"public":true}"#, true).is_err());
        assert!(parse_body(br#"{"slug":"x"}"#, false).is_err());
        assert!(parse_body(br#"{"slug":"Bad"}"#, true).is_err());
        assert!(parse_body(br#"{"slug":"a","other":1}"#, true).is_err());
        assert_eq!(parse_body(br#"{"generations_limit":2}"#, false).unwrap().generations_limit, Some(2));
    }

    impl Scope {
        fn public_message_of(&self, used: i64) -> String {
            self.check_new_generation(used).unwrap_err().public_message()
        }
    }
}
