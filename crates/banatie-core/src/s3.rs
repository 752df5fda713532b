//! S3 as data: presigned requests (rusty-s3 signs, SigV4, path-style) and
//! what each answer status means. `adapters::s3` only sends them.

use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::config::S3Config;
use super::http::HttpRequestSpec;
use super::Error;

/// Presigned URLs are used at once; a short lifetime limits their value if logged.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(60);

/// Builds the presigned requests for one bucket.
pub struct Signer {
    bucket: Bucket,
    credentials: Credentials,
}

impl Signer {
    pub fn new(config: &S3Config) -> Result<Signer, Error> {
        let endpoint = config
            .endpoint
            .parse()
            .map_err(|_| Error::Misconfigured("variable s3_endpoint is not a URL".into()))?;
        let bucket = Bucket::new(endpoint, UrlStyle::Path, config.bucket.clone(), config.region.clone())
            .map_err(|e| Error::Misconfigured(format!("variable s3_bucket/s3_endpoint: {e}")))?;
        let credentials =
            Credentials::new(config.access_key_id.clone(), config.secret_access_key.expose().to_string());
        Ok(Signer { bucket, credentials })
    }

    pub fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> HttpRequestSpec {
        let url = self.bucket.put_object(Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let headers = vec![
            ("content-type".to_string(), content_type.to_string()),
            ("content-length".to_string(), bytes.len().to_string()),
        ];
        HttpRequestSpec { method: "PUT", url: url.to_string(), headers, body: bytes }
    }

    pub fn get(&self, key: &str) -> HttpRequestSpec {
        let url = self.bucket.get_object(Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        HttpRequestSpec { method: "GET", url: url.to_string(), headers: Vec::new(), body: Vec::new() }
    }

    pub fn delete(&self, key: &str) -> HttpRequestSpec {
        let url = self.bucket.delete_object(Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        HttpRequestSpec { method: "DELETE", url: url.to_string(), headers: Vec::new(), body: Vec::new() }
    }
}

/// A request that got no answer (the sender's words).
pub fn unreachable(op: &str, detail: impl std::fmt::Display) -> Error {
    Error::Storage(format!("s3 {op}: {detail}"))
}

fn refused(op: &str, status: u16) -> Error {
    unreachable(op, format!("answered HTTP {status}"))
}

/// PUT: stored, or a storage error (502).
pub fn put_result(status: u16) -> Result<(), Error> {
    match status {
        200 | 201 | 204 => Ok(()),
        _ => Err(refused("PUT", status)),
    }
}

/// GET: the object's size when it is there (from `Content-Length`, which the
/// responder passes on), `None` when it is not (the entry is regenerated).
pub fn get_result(status: u16, content_length: Option<&str>) -> Result<Option<u64>, Error> {
    match status {
        200 => content_length
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| unreachable("GET", "no content-length")),
        404 => Ok(None),
        _ => Err(refused("GET", status)),
    }
}

/// DELETE: gone, whether or not it was there.
pub fn delete_result(status: u16) -> Result<(), Error> {
    match status {
        200 | 204 | 404 => Ok(()),
        _ => Err(refused("DELETE", status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config(endpoint: &str) -> S3Config {
        S3Config {
            endpoint: endpoint.into(),
            region: "garage".into(),
            bucket: "images".into(),
            access_key_id: "GKid".into(),
            secret_access_key: Secret("secret".into()),
        }
    }

    #[test]
    fn requests_are_presigned_path_style() {
        let s = Signer::new(&config("http://127.0.0.1:3900")).unwrap();
        let put = s.put("live/p/h/i.png", "image/png", b"abc".to_vec());
        assert_eq!(put.method, "PUT");
        assert!(put.url.starts_with("http://127.0.0.1:3900/images/live/p/h/i.png?"), "{}", put.url);
        assert!(put.url.contains("X-Amz-Signature="));
        assert!(put.url.contains("X-Amz-Expires=60"));
        assert_eq!(put.headers[1], ("content-length".to_string(), "3".to_string()));
        assert_eq!(s.get("k").method, "GET");
        assert_eq!(s.delete("k").method, "DELETE");
        assert!(Signer::new(&config("not a url")).is_err());
    }

    #[test]
    fn statuses_mean_what_s3_says() {
        assert_eq!(put_result(200), Ok(()));
        assert_eq!(put_result(403).unwrap_err().status(), 502);
        assert_eq!(get_result(200, Some("12")), Ok(Some(12)));
        assert_eq!(get_result(200, None).unwrap_err().status(), 502);
        assert_eq!(get_result(404, None), Ok(None));
        assert_eq!(get_result(503, None).unwrap_err().status(), 502);
        assert_eq!(delete_result(404), Ok(()));
        assert_eq!(delete_result(500).unwrap_err().status(), 502);
    }
}
