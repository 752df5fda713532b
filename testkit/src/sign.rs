//! The signed-URL algorithm exactly as README documents it, written again
//! here (not imported from the component) so the tests check the document.

use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `/api/v1/live/generate?<sorted, encoded params>&sig=<sig>`.
pub fn signed_path(secret: &str, params: &[(&str, &str)]) -> String {
    let path = "/api/v1/live/generate";
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    sorted.sort();
    let enc = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    let query = sorted.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
    let canonical = format!("banatie-live signed-url v1\n{path}\n{query}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(canonical.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{path}?{query}&sig={sig}")
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
