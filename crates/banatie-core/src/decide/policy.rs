//! A prompt policy: which prompts a project (and, narrower, one of its
//! scopes) lets be generated. Set by `PATCH /api/v1/projects/{id}` and a
//! scope's `PATCH`; checked before a generation is reserved, never on a HIT
//! (what is cached was allowed when it was made; a takedown removes it).
//!
//! - `deny_terms`: words and phrases; one found in the prompt, at word
//!   boundaries, refuses it.
//! - `deny_patterns`: regular expressions (the `regex` crate: linear time,
//!   compiled size-limited); one that matches refuses the prompt.
//! - `allow_patterns` (public URLs only): the prompt must match one of them.
//! - `templates_only` (public URLs only): the URL must name a `template=`.
//!
//! The prompt, the terms and the text patterns are matched after Unicode
//! NFKC normalisation and lower-casing (an approximation of NFKC_Casefold),
//! so `ＦＯＸ`, `Fox` and `fox` are one word; patterns are case-insensitive.
//! An enhanced prompt is checked against the deny lists too.
//!
//! Bounds (each a 400 naming the field when exceeded): [`MAX_TERMS`] terms
//! of at most [`MAX_TERM_CHARS`] characters, [`MAX_PATTERNS`] patterns per
//! list of at most [`MAX_PATTERN_CHARS`], each list compiled within
//! [`MAX_COMPILED_BYTES`]. A check is thus at most `MAX_TERMS` substring
//! searches and two linear-time regex passes over one prompt.

use regex::{RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::Error;

pub const MAX_TERMS: usize = 1_000;
pub const MAX_TERM_CHARS: usize = 100;
pub const MAX_PATTERNS: usize = 32;
pub const MAX_PATTERN_CHARS: usize = 256;
/// A body that sets a policy may be this large (the most terms at their
/// longest, in UTF-8, fit): the routes that take one read this much.
pub const MAX_BODY_BYTES: usize = 512 << 10;
/// The compiled size of one list of patterns (the `regex` crate's size limit).
pub const MAX_COMPILED_BYTES: usize = 1 << 20;

/// One policy, as stored (`keys::policy`, `keys::scope_policy`) and shown.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub deny_terms: Vec<String>,
    pub deny_patterns: Vec<String>,
    pub allow_patterns: Vec<String>,
    pub templates_only: bool,
}

/// The policy fields of a `PATCH` body: each given one replaces the stored one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChanges {
    pub deny_terms: Option<Vec<String>>,
    pub deny_patterns: Option<Vec<String>>,
    pub allow_patterns: Option<Vec<String>>,
    pub templates_only: Option<bool>,
}

impl PolicyChanges {
    pub fn is_empty(&self) -> bool {
        *self == PolicyChanges::default()
    }

    /// Check every given field (400 naming the first bad one).
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(terms) = &self.deny_terms {
            validate_terms(terms)?;
        }
        for (field, list) in
            [("deny_patterns", &self.deny_patterns), ("allow_patterns", &self.allow_patterns)]
        {
            if let Some(list) = list {
                compile(field, list)?;
            }
        }
        Ok(())
    }

    /// `policy` with these changes (validated first).
    pub fn apply(&self, policy: &mut Policy) {
        if let Some(t) = &self.deny_terms {
            policy.deny_terms = t.iter().map(|t| t.trim().to_string()).collect();
        }
        if let Some(p) = &self.deny_patterns {
            policy.deny_patterns = p.clone();
        }
        if let Some(p) = &self.allow_patterns {
            policy.allow_patterns = p.clone();
        }
        if let Some(t) = self.templates_only {
            policy.templates_only = t;
        }
    }
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a policy serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<Policy, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::KeyValue(format!("unreadable policy record: {e}")))
    }
}

fn validate_terms(terms: &[String]) -> Result<(), Error> {
    if terms.len() > MAX_TERMS {
        return Err(Error::BadRequest(format!("deny_terms: at most {MAX_TERMS} terms")));
    }
    for term in terms {
        let chars = term.trim().chars().count();
        if chars == 0 || chars > MAX_TERM_CHARS {
            return Err(Error::BadRequest(format!(
                "deny_terms: each term has 1 to {MAX_TERM_CHARS} characters"
            )));
        }
        if words(term).trim().is_empty() {
            return Err(Error::BadRequest("deny_terms: each term needs a letter or a digit".into()));
        }
    }
    Ok(())
}

/// One list of patterns, compiled (`None` when it is empty).
fn compile(field: &str, patterns: &[String]) -> Result<Option<RegexSet>, Error> {
    if patterns.len() > MAX_PATTERNS {
        return Err(Error::BadRequest(format!("{field}: at most {MAX_PATTERNS} patterns")));
    }
    if let Some(long) = patterns.iter().find(|p| p.is_empty() || p.chars().count() > MAX_PATTERN_CHARS) {
        let shown: String = long.chars().take(40).collect();
        return Err(Error::BadRequest(format!(
            "{field}: each pattern has 1 to {MAX_PATTERN_CHARS} characters ({shown:?}…)"
        )));
    }
    if patterns.is_empty() {
        return Ok(None);
    }
    RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .size_limit(MAX_COMPILED_BYTES)
        .dfa_size_limit(MAX_COMPILED_BYTES)
        .build()
        .map(Some)
        .map_err(|e| {
            let reason = match e {
                regex::Error::CompiledTooBig(_) => "too large once compiled".to_string(),
                e => e.to_string().lines().last().unwrap_or_default().trim().to_string(),
            };
            Error::BadRequest(format!("{field}: a pattern is not a valid regular expression: {reason}"))
        })
}

/// NFKC, lower case, NFKC again: the form prompts and terms are compared in.
pub fn normalise(s: &str) -> String {
    s.nfkc().flat_map(char::to_lowercase).nfkc().collect()
}

/// `s` normalised as words: each run of letters and digits, one space
/// between them and one at each end, so a term is found only whole.
fn words(s: &str) -> String {
    let mut out = String::from(" ");
    for c in normalise(s).chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

/// Which rule refused a prompt (named in the 422, never the term itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    DenyTerms,
    DenyPatterns,
    AllowPatterns,
    TemplatesOnly,
}

impl Rule {
    pub fn field(self) -> &'static str {
        match self {
            Rule::DenyTerms => "deny_terms",
            Rule::DenyPatterns => "deny_patterns",
            Rule::AllowPatterns => "allow_patterns",
            Rule::TemplatesOnly => "templates_only",
        }
    }

    pub fn error(self) -> Error {
        Error::PolicyRefused(self.field())
    }
}

/// A project's policy and its scope's, compiled for one check: a scope
/// narrows its project (both deny lists apply; each allow list that is set
/// must match; either may ask for templates only).
pub struct Matcher {
    terms: Vec<String>,
    deny: Vec<RegexSet>,
    allow: Vec<RegexSet>,
    templates_only: bool,
}

impl Matcher {
    /// Compile `policies` (stored ones were validated as they were written;
    /// one that no longer compiles refuses every prompt it would judge).
    pub fn new(policies: &[&Policy]) -> Result<Matcher, Error> {
        let mut m = Matcher { terms: Vec::new(), deny: Vec::new(), allow: Vec::new(), templates_only: false };
        for p in policies {
            m.terms.extend(p.deny_terms.iter().map(|t| words(t)));
            let broken = |_| Error::Internal("a stored policy does not compile".into());
            m.deny.extend(compile("deny_patterns", &p.deny_patterns).map_err(broken)?);
            m.allow.extend(compile("allow_patterns", &p.allow_patterns).map_err(broken)?);
            m.templates_only |= p.templates_only;
        }
        Ok(m)
    }

    /// Whether nothing can be refused (no check needed).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.deny.is_empty() && self.allow.is_empty() && !self.templates_only
    }

    /// Check the prompt a URL asks for; `public` (a `/cdn` URL) also
    /// applies the allow list and `templates_only`.
    pub fn check(&self, prompt: &str, template: Option<&str>, public: bool) -> Result<(), Rule> {
        self.deny(prompt)?;
        if public {
            if self.templates_only && template.is_none() {
                return Err(Rule::TemplatesOnly);
            }
            let normal = normalise(prompt);
            if !self.allow.iter().all(|set| set.is_match(&normal)) {
                return Err(Rule::AllowPatterns);
            }
        }
        Ok(())
    }

    /// The deny lists alone (an enhanced prompt).
    pub fn deny(&self, prompt: &str) -> Result<(), Rule> {
        if !self.terms.is_empty() {
            let words = words(prompt);
            if self.terms.iter().any(|t| words.contains(t.as_str())) {
                return Err(Rule::DenyTerms);
            }
        }
        if !self.deny.is_empty() {
            let normal = normalise(prompt);
            if self.deny.iter().any(|set| set.is_match(&normal)) {
                return Err(Rule::DenyPatterns);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        let changes: PolicyChanges = serde_json::from_str(json).unwrap();
        changes.validate().unwrap();
        let mut p = Policy::default();
        changes.apply(&mut p);
        p
    }

    fn changes(json: &str) -> Result<(), Error> {
        serde_json::from_str::<PolicyChanges>(json)
            .map_err(|e| Error::BadRequest(e.to_string()))
            .and_then(|c| c.validate())
    }

    #[test]
    fn terms_match_whole_words_after_normalisation() {
        let p = policy(r#"{"deny_terms":["Gore","red wine"]}"#);
        let m = Matcher::new(&[&p]).unwrap();
        for refused in ["GORE", "a ｇｏｒｅ scene", "much gore!", "a glass of Red-Wine", "red\twine"] {
            assert_eq!(m.check(refused, None, false), Err(Rule::DenyTerms), "{refused}");
        }
        for allowed in ["gorecki", "gorest", "red whine", "wine, red", "a fox"] {
            assert_eq!(m.check(allowed, None, false).map_err(|_| allowed), Ok(()), "{allowed}");
        }
        // Al Gore: `gore` is a whole word there.
        assert_eq!(m.check("al gore", None, false), Err(Rule::DenyTerms));
    }

    #[test]
    fn patterns_deny_allow_and_templates_narrow_public_urls() {
        let project = policy(r#"{"deny_patterns":["\\bcelebrit(y|ies)\\b"]}"#);
        let scope = policy(r#"{"allow_patterns":["^(a|an) (shoe|boot)\\b"],"templates_only":true}"#);
        let m = Matcher::new(&[&project, &scope]).unwrap();
        assert_eq!(m.check("A shoe", Some("product"), true), Ok(()));
        assert_eq!(m.check("A SHOE", None, true), Err(Rule::TemplatesOnly));
        assert_eq!(m.check("a hat", Some("product"), true), Err(Rule::AllowPatterns));
        assert_eq!(m.check("a hat", None, false), Ok(()), "a keyed URL is not held to the allow list");
        assert_eq!(m.check("a boot of a Celebrity", Some("product"), true), Err(Rule::DenyPatterns));
        assert_eq!(m.check("a boot of a Celebrity", None, false), Err(Rule::DenyPatterns));
        assert!(Matcher::new(&[]).unwrap().is_empty());
        assert!(!m.is_empty());
    }

    #[test]
    fn bad_policies_are_400s_naming_the_field() {
        let named = |json: &str, field: &str| {
            let e = changes(json).unwrap_err();
            assert_eq!(e.status(), 400, "{json}");
            assert!(e.public_message().contains(field), "{json}: {}", e.public_message());
        };
        named(r#"{"deny_patterns":["(unclosed"]}"#, "deny_patterns");
        named(r#"{"allow_patterns":["a{1000}{1000}"]}"#, "allow_patterns");
        named(&format!(r#"{{"deny_patterns":["{}"]}}"#, "a".repeat(257)), "deny_patterns");
        let many: Vec<String> = (0..10_000).map(|i| format!("term{i}")).collect();
        named(&serde_json::json!({ "deny_terms": many }).to_string(), "deny_terms");
        named(r#"{"deny_terms":["  "]}"#, "deny_terms");
        named(r#"{"deny_terms":["!!!"]}"#, "deny_terms");
        named(r#"{"deny_terms":[],"colour":"red"}"#, "colour");
        assert!(changes(r#"{"deny_terms":["ok"],"deny_patterns":["^a"],"templates_only":false}"#).is_ok());
    }

    #[test]
    fn a_policy_reads_back_and_an_empty_one_is_empty() {
        let p = policy(r#"{"deny_terms":[" fox "],"templates_only":true}"#);
        assert_eq!(p.deny_terms, ["fox"]);
        assert_eq!(Policy::decode(&p.encode()).unwrap(), p);
        assert!(Policy::decode(b"{}").unwrap().is_empty());
    }
}
