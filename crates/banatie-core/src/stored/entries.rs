//! The entries list (`GET /api/v1/live/entries`): a per-project log of new
//! entries, newest first, with cursor pagination over any key-value store.
//!
//! Each new entry appends one record: `entrylog:{project}:{seq}` (seq from the
//! counter `entryseq:{project}`, zero-padded) → `{hash, image_id}`. A record
//! whose entry is gone (purged) or was replaced since (another image id) is
//! skipped, so every entry is listed once, as it is now. Entries made before
//! this log existed are not listed.
//!
//! `last_accessed_at` is coarse on purpose: a HIT writes the current minute
//! (`seen:{project}:{hash}`), one blind write and no read, the only KV
//! operation the list adds to a HIT.

use serde::{Deserialize, Serialize};

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// Log records one page may look at (stale ones included) before it stops.
pub const SCAN_PER_ITEM: usize = 5;

/// The minute a HIT at `now` records.
pub fn minute(now: u64) -> u64 {
    now / 60 * 60
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub hash: String,
    pub image_id: String,
}

impl LogRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serialises")
    }

    pub fn decode(bytes: &[u8]) -> Option<LogRecord> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The query of `GET /api/v1/live/entries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Records below this sequence number (the previous page's `next_cursor`).
    pub before: Option<i64>,
    pub limit: usize,
    pub scope: Option<String>,
}

pub fn parse_page(pairs: &[(String, String)]) -> Result<Page, crate::Error> {
    let bad = |m: &str| crate::Error::BadRequest(m.to_string());
    let mut page = Page { before: None, limit: DEFAULT_PAGE, scope: None };
    for (name, value) in pairs {
        match name.as_str() {
            "cursor" => {
                page.before = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|c| *c > 0)
                        .ok_or_else(|| bad("cursor must be a positive integer"))?,
                )
            }
            "limit" => {
                page.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_PAGE).contains(l))
                    .ok_or_else(|| bad("limit must be from 1 to 100"))?
            }
            "scope" if crate::stored::scope::valid_slug(value) => page.scope = Some(value.clone()),
            "scope" => return Err(bad(crate::stored::scope::SLUG_RULE)),
            other => {
                return Err(crate::Error::BadRequest(format!(
                    "unknown parameter '{}'",
                    other.chars().take(40).collect::<String>()
                )))
            }
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn pages_are_parsed_strictly() {
        assert_eq!(parse_page(&[]).unwrap(), Page { before: None, limit: 20, scope: None });
        let p = parse_page(&pairs(&[("cursor", "41"), ("limit", "5"), ("scope", "hero")])).unwrap();
        assert_eq!(p, Page { before: Some(41), limit: 5, scope: Some("hero".into()) });
        for bad in [("cursor", "0"), ("limit", "101"), ("limit", "x"), ("scope", "Bad"), ("other", "1")] {
            assert!(parse_page(&pairs(&[bad])).is_err(), "{bad:?}");
        }
        assert_eq!(minute(125), 120);
    }
}
