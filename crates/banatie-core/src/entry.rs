//! The cache entry stored in KV (JSON, versioned). It describes an image that is
//! already in the object store; the bytes themselves never go into KV.

use serde::{Deserialize, Serialize};

use super::Error;

pub const ENTRY_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub v: u32,
    pub image_id: String,
    pub generation_id: String,
    pub object_key: String,
    pub content_type: String,
    pub size: u64,
    /// Quoted strong ETag, ready for the header.
    pub etag: String,
    /// Unix seconds.
    pub created_at: u64,
    pub prompt: String,
    pub aspect_ratio: String,
    pub provider: String,
    pub model: String,
    /// The image's scope (absent in entries written before scopes existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// With `enhance=true`: the prompt the image was generated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced_prompt: Option<String>,
    /// With `enhance=true`: `applied`, or `failed` (the original prompt was used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhancement: Option<String>,
    /// A derived variant (`core::variant`): the original's image id, which
    /// must still be the original's for the variant to be served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_of: Option<String>,
    /// A derived variant: its cache-key suffix (`w256.webp.q80`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// A derived variant: its size in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an entry always serialises")
    }

    /// Decode an entry read from KV. An unreadable entry is a KV problem, not
    /// the client's: it is reported as such and never served.
    pub fn decode(bytes: &[u8]) -> Result<Entry, Error> {
        let entry: Entry = serde_json::from_slice(bytes)
            .map_err(|e| Error::KeyValue(format!("unreadable cache entry: {e}")))?;
        if entry.v != ENTRY_VERSION {
            return Err(Error::KeyValue(format!("cache entry version {} unknown", entry.v)));
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            v: ENTRY_VERSION,
            image_id: "i".into(),
            generation_id: "g".into(),
            object_key: "live/p/h/i.png".into(),
            content_type: "image/png".into(),
            size: 3,
            etag: "\"abc\"".into(),
            created_at: 1_700_000_000,
            prompt: "a red fox".into(),
            aspect_ratio: "1:1".into(),
            provider: "gemini".into(),
            model: "m".into(),
            scope: None,
            enhanced_prompt: None,
            enhancement: None,
            variant_of: None,
            variant: None,
            width: None,
            height: None,
        }
    }

    #[test]
    fn an_entry_survives_a_round_trip() {
        assert_eq!(Entry::decode(&sample().encode()).unwrap(), sample());
    }

    #[test]
    fn garbage_or_future_versions_are_not_served() {
        assert!(matches!(Entry::decode(b"{"), Err(Error::KeyValue(_))));
        let mut e = sample();
        e.v = 99;
        assert!(matches!(Entry::decode(&e.encode()), Err(Error::KeyValue(_))));
    }
}
