//! A takedown: the cache key of an image that must never be served or
//! generated again (`keys::blocked`), with who blocked it, when and why;
//! the project's index of blocks maps each blocked original's image id to
//! its cache key (`keys::blocks`), so a block can be listed and lifted by
//! the id the answers named (`X-Image-Id`) after the image itself is gone.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The longest `reason` a block keeps.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub image_id: String,
    /// The original's cache key.
    pub hash: String,
    #[serde(default)]
    pub reason: String,
    pub blocked_at: u64,
    /// `key` (the project's API key) or `admin`.
    pub by: String,
}

impl Block {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a block serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<Block, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::KeyValue(format!("unreadable block record: {e}")))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    reason: Option<String>,
}

/// The reason in a `POST …/block` body (`{"reason":"…"}`, or no body).
pub fn parse_reason(body: &[u8]) -> Result<String, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    let b: Body = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("body must be JSON like {{\"reason\":\"…\"}}: {e}")))?;
    let reason = b.reason.unwrap_or_default().trim().to_string();
    if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!(
            "reason: at most {MAX_REASON_CHARS} characters, no control characters"
        )));
    }
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_optional_and_bounded() {
        assert_eq!(parse_reason(b"").unwrap(), "");
        assert_eq!(parse_reason(br#"{"reason":" DMCA 42 "}"#).unwrap(), "DMCA 42");
        assert_eq!(parse_reason(br#"{"why":"x"}"#).unwrap_err().status(), 400);
        let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(501));
        assert_eq!(parse_reason(long.as_bytes()).unwrap_err().status(), 400);
        let b = Block {
            image_id: "i".into(),
            hash: "h".into(),
            reason: "r".into(),
            blocked_at: 1,
            by: "key".into(),
        };
        assert_eq!(Block::decode(&b.encode()).unwrap(), b);
    }
}
