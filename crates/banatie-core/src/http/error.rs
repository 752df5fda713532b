//! The one error type of the service. Each variant knows its HTTP status, its
//! stable code, the message a client may see and whether it is worth a log line.
//! Internal detail (status codes of upstreams, parse errors) is kept for the log
//! and never reaches a client. Rendering to a response happens in `api::reply` (the body) and
//! `headers::error` (the headers).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request is malformed; the message is safe to show.
    BadRequest(String),
    /// No API key, or one that belongs to no project.
    Unauthorized(&'static str),
    /// A signed URL whose signature is missing, wrong or expired (opaque on purpose).
    BadSignature,
    /// The project's generation budget for this window is spent.
    BudgetExceeded { retry_after: u64 },
    /// The project's derivations for this hour are spent.
    DerivationsExceeded { retry_after: u64 },
    /// The caller is known but may not do this (e.g. the admin API is disabled).
    Forbidden(&'static str),
    /// No such route or resource (unknown project, nothing to purge).
    NotFound(&'static str),
    /// HEAD for something that is not cached (HEAD never generates).
    NotCached,
    /// The route exists but not for this method; carries the allowed methods.
    MethodNotAllowed(String),
    /// The request body is larger than the route accepts.
    PayloadTooLarge,
    /// The provider refused the prompt (safety); the reason is the provider's label.
    PromptRefused(String),
    /// The project's (or scope's) prompt policy refuses the prompt; names the
    /// rule (`decide::policy::Rule`), never the term.
    PolicyRefused(&'static str),
    /// The image was taken down (`POST /api/v1/images/{id}/block`): never
    /// served or generated again.
    Blocked,
    /// Moderation flagged the prompt (or a reference image): the categories
    /// it named, which the JSON error lists.
    Flagged(Vec<String>),
    /// Moderation could not be asked and `moderation_fail = closed`
    /// (internal detail kept for the log).
    ModerationUnavailable { retry_after: u64, detail: String },
    /// The provider failed or answered something unusable (internal detail).
    Provider(String),
    /// The provider is rate limiting us; retry after this many seconds.
    ProviderBusy { retry_after: u64, detail: String },
    /// The object store failed (internal detail).
    Storage(String),
    /// The key-value store failed (internal detail).
    KeyValue(String),
    /// A variable is missing or invalid; names the variable, never its value.
    Misconfigured(String),
    /// Nobody answered in time: a coalesced request waited too long.
    Busy { retry_after: u64 },
    /// Another request's failure, shared with the requests that waited on it.
    Shared(SharedFailure),
    /// A project record that cannot be decoded (internal detail); an admin
    /// repairs it by rotating the project's key.
    ProjectUnreadable(String),
    /// A bug of ours (e.g. a response header the host refused): 500.
    Internal(String),
    /// This client has caused its hour's share of new generations.
    RateLimited { allowance: crate::decide::client::Allowance, retry_after: u64 },
    /// The scope takes no new generations (switched off, or its limit reached).
    ScopeClosed(&'static str),
    /// A name that is taken (a scope slug).
    Conflict(&'static str),
    /// No variant can be derived from this original (too many pixels for
    /// `max_source_pixels`, or not decodable); the message is safe to show.
    VariantUnavailable(String),
}

/// The client-visible part of an error, as stored in a failed lease so that
/// the requests that waited on a generation get exactly the same answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) | Error::BadSignature => 403,
            Error::BudgetExceeded { .. }
            | Error::DerivationsExceeded { .. }
            | Error::RateLimited { .. }
            | Error::ScopeClosed(_) => 429,
            Error::Conflict(_) => 409,
            Error::Blocked => 451,
            Error::NotFound(_) | Error::NotCached => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::PayloadTooLarge => 413,
            Error::PromptRefused(_)
            | Error::PolicyRefused(_)
            | Error::Flagged(_)
            | Error::VariantUnavailable(_) => 422,
            Error::Provider(_) | Error::Storage(_) => 502,
            Error::ProviderBusy { .. } | Error::KeyValue(_) | Error::ModerationUnavailable { .. } => 503,
            Error::Misconfigured(_) | Error::ProjectUnreadable(_) | Error::Internal(_) => 500,
            Error::Busy { .. } => 503,
            Error::Shared(f) => f.status,
        }
    }

    /// Stable machine-readable code for the JSON body.
    pub fn code(&self) -> &str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::BadSignature => "invalid_signature",
            Error::BudgetExceeded { .. } => "budget_exceeded",
            Error::DerivationsExceeded { .. } => "derivations_exceeded",
            Error::NotFound(_) => "not_found",
            Error::NotCached => "not_cached",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::PayloadTooLarge => "payload_too_large",
            Error::PromptRefused(_) | Error::PolicyRefused(_) | Error::Flagged(_) => "prompt_refused",
            Error::ModerationUnavailable { .. } => "moderation_unavailable",
            Error::Blocked => "blocked",
            Error::Provider(_) => "provider_error",
            Error::ProviderBusy { .. } => "provider_busy",
            Error::Storage(_) => "storage_error",
            Error::KeyValue(_) => "kv_unavailable",
            Error::Misconfigured(_) => "misconfigured",
            Error::ProjectUnreadable(_) => "project_unreadable",
            Error::Busy { .. } => "busy",
            Error::Internal(_) => "internal_error",
            Error::RateLimited { .. } => "rate_limited",
            Error::ScopeClosed(_) => "scope_closed",
            Error::Conflict(_) => "conflict",
            Error::VariantUnavailable(_) => "variant_unavailable",
            Error::Shared(f) => &f.code,
        }
    }

    /// The message a client sees. Never contains internal detail.
    pub fn public_message(&self) -> String {
        match self {
            Error::BadRequest(m) => m.clone(),
            Error::Unauthorized(m) | Error::Forbidden(m) | Error::NotFound(m) => (*m).to_string(),
            Error::ScopeClosed(m) => format!("{m}; cached images are still served"),
            Error::Conflict(m) => (*m).to_string(),
            Error::VariantUnavailable(m) => format!("{m}; the original is served without w and format"),
            Error::BadSignature => "invalid or expired signature".into(),
            Error::BudgetExceeded { .. } => {
                "the project's generation budget for this hour is spent; cached images are still served"
                    .into()
            }
            Error::DerivationsExceeded { .. } => {
                "the project's variants for this hour are spent; cached images and variants are still served"
                    .into()
            }
            Error::NotCached => "no cached image for these parameters".into(),
            Error::MethodNotAllowed(allow) => format!("method not allowed; allowed: {allow}"),
            Error::PayloadTooLarge => "request body too large".into(),
            Error::PromptRefused(reason) => {
                format!("the provider refused to generate this prompt ({reason})")
            }
            Error::PolicyRefused(rule) => {
                format!("this prompt is not allowed here (the policy's {rule}); nothing was generated")
            }
            Error::Blocked => "this image was taken down and is not generated again".into(),
            Error::Flagged(_) => "moderation flagged this prompt; nothing was generated".into(),
            Error::ModerationUnavailable { .. } => {
                "the moderation service cannot be reached; nothing was generated; retry later".into()
            }
            Error::Provider(_) => "the image provider failed".into(),
            Error::ProviderBusy { .. } => "the image provider is busy; retry later".into(),
            Error::Storage(_) => "the object store failed".into(),
            Error::KeyValue(_) => "the key-value store is unavailable".into(),
            Error::Misconfigured(_) => "the service is misconfigured".into(),
            Error::ProjectUnreadable(_) => {
                "the project's record cannot be read; an admin can repair it by rotating the project's key"
                    .into()
            }
            Error::Busy { .. } => "the image is still being generated; retry shortly".into(),
            Error::Internal(_) => "internal error".into(),
            Error::RateLimited { allowance, .. } => format!(
                "this client may cause {} new images an hour; cached images are still served",
                allowance.limit
            ),
            Error::Shared(f) => f.message.clone(),
        }
    }

    /// Seconds after which a retry may succeed, for errors that say so.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::ProviderBusy { retry_after, .. }
            | Error::BudgetExceeded { retry_after }
            | Error::DerivationsExceeded { retry_after }
            | Error::Busy { retry_after }
            | Error::ModerationUnavailable { retry_after, .. }
            | Error::RateLimited { retry_after, .. } => Some(*retry_after),
            Error::Shared(f) => f.retry_after,
            _ => None,
        }
    }

    /// What goes into the log line, if anything: server-side failures only.
    pub fn log_detail(&self) -> Option<String> {
        match self {
            Error::Provider(d) | Error::Storage(d) | Error::KeyValue(d) => Some(d.clone()),
            Error::ProviderBusy { detail, .. } | Error::ModerationUnavailable { detail, .. } => {
                Some(detail.clone())
            }
            Error::Misconfigured(d) | Error::ProjectUnreadable(d) | Error::Internal(d) => Some(d.clone()),
            _ => None,
        }
    }
}

impl Error {
    pub fn share(&self) -> SharedFailure {
        SharedFailure {
            status: self.status(),
            code: self.code().to_string(),
            message: self.public_message(),
            retry_after: self.retry_after(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.code())?;
        if let Some(detail) = self.log_detail() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

pub fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_public_message() {
        let e = Error::Storage("PUT http://10.0.0.1/bucket answered 403".into());
        assert_eq!(e.status(), 502);
        assert!(!e.public_message().contains("10.0.0.1"));
        assert!(e.to_string().contains("403"));
    }

    #[test]
    fn a_shared_failure_renders_like_the_original() {
        for e in [
            Error::PromptRefused("SAFETY".into()),
            Error::ProviderBusy { retry_after: 9, detail: "x".into() },
            Error::Provider("secret detail".into()),
        ] {
            let shared = Error::Shared(e.share());
            assert_eq!(shared.status(), e.status());
            assert_eq!(shared.code(), e.code());
            assert_eq!(shared.public_message(), e.public_message());
            assert_eq!(shared.retry_after(), e.retry_after());
            assert!(!format!("{:?}", e.share()).contains("secret detail"));
        }
    }

    #[test]
    fn busy_provider_says_when_to_retry() {
        let e = Error::ProviderBusy { retry_after: 7, detail: "429".into() };
        assert_eq!(e.status(), 503);
        assert_eq!(e.retry_after(), Some(7));
    }
}
