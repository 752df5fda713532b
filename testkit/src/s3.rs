//! Read the test bucket directly (rusty-s3 presigned URLs + ureq), to check
//! what the service stored, or to break things behind its back.

use std::time::Duration;

use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::garage::{BUCKET, KEY_ID, REGION, SECRET};

fn bucket(endpoint: &str) -> (Bucket, Credentials) {
    let bucket = Bucket::new(endpoint.parse().unwrap(), UrlStyle::Path, BUCKET, REGION).unwrap();
    (bucket, Credentials::new(KEY_ID, SECRET))
}

const LIFE: Duration = Duration::from_secs(300);

/// Object keys under `prefix`.
pub fn list(endpoint: &str, prefix: &str) -> Result<Vec<String>, String> {
    let (bucket, creds) = bucket(endpoint);
    let mut action = bucket.list_objects_v2(Some(&creds));
    action.with_prefix(prefix);
    let url = action.sign(LIFE);
    let mut resp = crate::http::agent().get(url.as_str()).call().map_err(|e| e.to_string())?;
    if resp.status() != 200 {
        return Err(format!("list answered {}", resp.status()));
    }
    let body = resp.body_mut().read_to_string().map_err(|e| e.to_string())?;
    let parsed = ListObjectsV2::parse_response(&body).map_err(|e| e.to_string())?;
    Ok(parsed.contents.into_iter().map(|o| o.key).collect())
}

/// An object's bytes, or None when it is not there.
pub fn get(endpoint: &str, key: &str) -> Option<Vec<u8>> {
    let (bucket, creds) = bucket(endpoint);
    let url = bucket.get_object(Some(&creds), key).sign(LIFE);
    let mut resp = crate::http::agent().get(url.as_str()).call().unwrap();
    match resp.status().as_u16() {
        200 => Some(resp.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap()),
        404 => None,
        s => panic!("S3 GET answered {s}"),
    }
}

/// Store `bytes` under `key`.
pub fn put(endpoint: &str, key: &str, bytes: &[u8]) {
    let (bucket, creds) = bucket(endpoint);
    let url = bucket.put_object(Some(&creds), key).sign(LIFE);
    let resp = crate::http::agent().put(url.as_str()).send(bytes).unwrap();
    assert!(resp.status().is_success(), "S3 PUT answered {}", resp.status());
}

/// A presigned GET URL, valid for an hour (for load generators).
pub fn presigned_get(endpoint: &str, key: &str) -> String {
    let (bucket, creds) = bucket(endpoint);
    bucket.get_object(Some(&creds), key).sign(std::time::Duration::from_secs(3600)).to_string()
}

pub fn delete(endpoint: &str, key: &str) {
    let (bucket, creds) = bucket(endpoint);
    let url = bucket.delete_object(Some(&creds), key).sign(LIFE);
    let resp = crate::http::agent().delete(url.as_str()).call().unwrap();
    assert!(resp.status().is_success(), "S3 DELETE answered {}", resp.status());
}
