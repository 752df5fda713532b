//! The cache entry stored in KV (JSON, versioned). It describes an image that is
//! already in the object store; the bytes themselves never go into KV.

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::decide::cache_key::hex;
use crate::http::request::GenerationRequest;
use crate::stored::keys;
use crate::Error;

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
    /// The name (`models`) of the model that made the original (a variant
    /// keeps its original's): the one asked for, or its fallback. Absent in
    /// entries written before models had names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_used: Option<String>,
}

/// What a new image's entry is made of, besides its bytes.
pub struct Made<'a> {
    pub project: &'a str,
    /// The hash its object is stored under: the original's, for a variant too.
    pub image_hash: &'a str,
    pub image_id: String,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
    pub now: u64,
}

impl Entry {
    /// The model that made it as answers say it (`X-Model-Used`, the entries
    /// list): its name, or its id when it was cached before models had names.
    pub fn model_used(&self) -> &str {
        self.model_used.as_deref().unwrap_or(&self.model)
    }

    /// The entry of an original the provider just generated for `request`.
    /// (The one place originals' entries are built; `variant` builds the others.)
    pub fn original(
        made: Made<'_>,
        generation_id: String,
        request: &GenerationRequest,
        (provider, model): (&str, &str),
    ) -> Entry {
        Entry {
            v: ENTRY_VERSION,
            object_key: keys::object(made.project, made.image_hash, &made.image_id, made.content_type),
            image_id: made.image_id,
            generation_id,
            content_type: made.content_type.to_string(),
            size: made.bytes.len() as u64,
            etag: etag_for(made.bytes),
            created_at: made.now,
            prompt: request.prompt.clone(),
            aspect_ratio: request.aspect_ratio.clone(),
            provider: provider.to_string(),
            model: model.to_string(),
            scope: request.scope.clone(),
            enhanced_prompt: None,
            enhancement: None,
            variant_of: None,
            variant: None,
            width: None,
            height: None,
            model_used: None,
        }
    }

    /// The entry of a variant just derived from `source` (named `suffix`,
    /// `width`×`height` pixels): the original's prompt and generation, its own bytes.
    pub fn variant(made: Made<'_>, source: &Entry, suffix: String, (width, height): (u32, u32)) -> Entry {
        Entry {
            v: ENTRY_VERSION,
            object_key: keys::object(made.project, made.image_hash, &made.image_id, made.content_type),
            image_id: made.image_id,
            generation_id: source.generation_id.clone(),
            content_type: made.content_type.to_string(),
            size: made.bytes.len() as u64,
            etag: etag_for(made.bytes),
            created_at: made.now,
            variant_of: Some(source.image_id.clone()),
            variant: Some(suffix),
            width: Some(width),
            height: Some(height),
            ..source.clone()
        }
    }

    /// Whether this variant was derived from `original` as it is now.
    pub fn made_from(&self, original: &Entry) -> bool {
        self.variant_of.as_deref() == Some(original.image_id.as_str())
    }

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

/// Strong ETag over the image bytes: the first 128 bits of their SHA-256.
pub fn etag_for(bytes: &[u8]) -> String {
    format!("\"{}\"", &hex(&Sha256::digest(bytes))[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_a_quoted_content_hash() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(etag_for(b"abc"), "\"ba7816bf8f01cfea414140de5dae2223\"");
    }

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
            model_used: None,
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
