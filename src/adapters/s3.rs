//! S3 through presigned URLs (rusty-s3 signs, SigV4, path-style) and the one
//! outbound HTTP helper. GET hands back the response so its body can be
//! streamed to the client without holding the object in memory.

use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use spin_sdk::http::IncomingResponse;

use super::http;
use crate::core::config::S3Config;
use crate::core::ports::{ObjectStore, StoredObject};
use crate::core::provider::HttpRequestSpec;
use crate::core::timing::{Kind, Timings};
use crate::core::Error;

/// Presigned URLs are used at once; a short lifetime limits their value if logged.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(60);

pub struct S3<'t> {
    bucket: Bucket,
    credentials: Credentials,
    timings: &'t Timings,
}

impl<'t> S3<'t> {
    pub fn new(config: &S3Config, timings: &'t Timings) -> Result<S3<'t>, Error> {
        let endpoint = config
            .endpoint
            .parse()
            .map_err(|_| Error::Misconfigured("variable s3_endpoint is not a URL".into()))?;
        let bucket = Bucket::new(endpoint, UrlStyle::Path, config.bucket.clone(), config.region.clone())
            .map_err(|e| Error::Misconfigured(format!("variable s3_bucket/s3_endpoint: {e}")))?;
        let credentials =
            Credentials::new(config.access_key_id.clone(), config.secret_access_key.expose().to_string());
        Ok(S3 { bucket, credentials, timings })
    }

    fn spec(
        method: &'static str,
        url: url::Url,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> HttpRequestSpec {
        HttpRequestSpec { method, url: url.to_string(), headers, body }
    }
}

fn failed(op: &str, detail: impl std::fmt::Display) -> Error {
    Error::Storage(format!("s3 {op}: {detail}"))
}

impl S3<'_> {
    async fn buffered(&self, op: &str, spec: HttpRequestSpec) -> Result<u16, Error> {
        let start = Instant::now();
        let answer = http::send_buffered(spec).await;
        self.timings.add(Kind::S3, start.elapsed().as_micros() as u64);
        answer.map(|a| a.status).map_err(|e| failed(op, e))
    }
}

impl ObjectStore for S3<'_> {
    type Body = IncomingResponse;

    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), Error> {
        let url = self.bucket.put_object(Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let headers = vec![
            ("content-type".to_string(), content_type.to_string()),
            ("content-length".to_string(), bytes.len().to_string()),
        ];
        match self.buffered("PUT", Self::spec("PUT", url, headers, bytes)).await? {
            200 | 201 | 204 => Ok(()),
            status => Err(failed("PUT", format!("answered HTTP {status}"))),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject<IncomingResponse>>, Error> {
        let url = self.bucket.get_object(Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let start = Instant::now();
        let response = http::send_streaming(Self::spec("GET", url, Vec::new(), Vec::new())).await;
        self.timings.add(Kind::S3, start.elapsed().as_micros() as u64);
        let response = response.map_err(|e| failed("GET", e))?;
        match response.status() {
            200 => {
                let size = http::header(&response, "content-length")
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| failed("GET", "no content-length"))?;
                Ok(Some(StoredObject { size, body: response }))
            }
            404 => Ok(None),
            status => Err(failed("GET", format!("answered HTTP {status}"))),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let url = self.bucket.delete_object(Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        match self.buffered("DELETE", Self::spec("DELETE", url, Vec::new(), Vec::new())).await? {
            200 | 204 | 404 => Ok(()),
            status => Err(failed("DELETE", format!("answered HTTP {status}"))),
        }
    }
}
