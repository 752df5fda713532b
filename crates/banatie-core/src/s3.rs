//! S3 as data: presigned requests (rusty-s3 signs, SigV4, path-style) and
//! what each answer status means. `adapters::s3` only sends them. The time a
//! request is signed at is the caller's (`Env::now_unix`): nothing here reads
//! a clock, so a signature has a known answer.

use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::config::S3Config;
use crate::http::outbound::HttpRequestSpec;
use crate::Error;

/// Presigned URLs are used at once; a short lifetime limits their value if logged.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(60);

/// Builds the presigned requests for one bucket.
pub struct Signer {
    bucket: Bucket,
    credentials: Credentials,
}

/// `unix` seconds as rusty-s3's timestamp (a time before 1970 or past 9999
/// cannot come from a clock; it signs as the epoch).
fn timestamp(unix: u64) -> jiff::Timestamp {
    i64::try_from(unix).ok().and_then(|s| jiff::Timestamp::from_second(s).ok()).unwrap_or_default()
}

impl Signer {
    pub fn new(config: &S3Config) -> Result<Signer, Error> {
        Signer::with_style(config, UrlStyle::Path)
    }

    fn with_style(config: &S3Config, style: UrlStyle) -> Result<Signer, Error> {
        let endpoint = config
            .endpoint
            .parse()
            .map_err(|_| Error::Misconfigured("variable s3_endpoint is not a URL".into()))?;
        let bucket = Bucket::new(endpoint, style, config.bucket.clone(), config.region.clone())
            .map_err(|e| Error::Misconfigured(format!("variable s3_bucket/s3_endpoint: {e}")))?;
        let credentials =
            Credentials::new(config.access_key_id.clone(), config.secret_access_key.expose().to_string());
        Ok(Signer { bucket, credentials })
    }

    /// A PUT of `bytes`, signed at `now` (Unix seconds).
    pub fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>, now: u64) -> HttpRequestSpec {
        let action = self.bucket.put_object(Some(&self.credentials), key);
        let url = action.sign_with_time(SIGNATURE_LIFETIME, &timestamp(now));
        let headers = vec![
            ("content-type".to_string(), content_type.to_string()),
            ("content-length".to_string(), bytes.len().to_string()),
        ];
        HttpRequestSpec { method: "PUT", url: url.to_string(), headers, body: bytes }
    }

    pub fn get(&self, key: &str, now: u64) -> HttpRequestSpec {
        let url = self.get_url(key, now, SIGNATURE_LIFETIME);
        HttpRequestSpec { method: "GET", url, headers: Vec::new(), body: Vec::new() }
    }

    fn get_url(&self, key: &str, now: u64, lifetime: Duration) -> String {
        let action = self.bucket.get_object(Some(&self.credentials), key);
        action.sign_with_time(lifetime, &timestamp(now)).to_string()
    }

    /// The object key of `url` when it is a presigned GET of this bucket's
    /// object that this signer would have signed (its credentials, the
    /// signing time and lifetime the URL states) and it is valid at `now`:
    /// what `banatie-host`'s object cache may answer from its copy, since S3
    /// would have answered it. Anything else — another bucket or endpoint, a
    /// signature by other credentials, expired, a URL this signer does not
    /// spell that way — is `None` (the request goes to S3 as it is).
    pub fn verify_get(&self, url: &str, now: u64) -> Option<String> {
        self.signed_get(url).filter(|g| g.valid_at(now)).map(|g| g.key)
    }

    /// The signature check of [`Signer::verify_get`] without the clock: the
    /// object and the time the URL is valid for, when this signer signed it.
    /// The same URL always gives the same answer, so a caller may keep it
    /// (the host's object cache does, by URL) and check only the time again.
    pub fn signed_get(&self, url: &str) -> Option<SignedGet> {
        use subtle::ConstantTimeEq;
        let parsed = url::Url::parse(url).ok()?;
        let key = self.key_in(&parsed)?;
        let param = |name: &str| parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let signed_at = parse_amz_date(&param("X-Amz-Date")?)?;
        let lifetime: u64 = param("X-Amz-Expires")?.parse().ok()?;
        // SigV4's longest presigned lifetime is 7 days.
        if lifetime > 7 * 24 * 3600 {
            return None;
        }
        let expected = self.get_url(&key, signed_at, Duration::from_secs(lifetime));
        (expected.len() == url.len() && bool::from(expected.as_bytes().ct_eq(url.as_bytes())))
            .then_some(SignedGet { key, signed_at, expires_at: signed_at + lifetime })
    }

    /// The object key a URL of this bucket names (path style), decoded; `None`
    /// for any other URL. Not a check of the signature ([`Signer::verify_get`]).
    pub fn key_of(&self, url: &str) -> Option<String> {
        self.key_in(&url::Url::parse(url).ok()?)
    }

    fn key_in(&self, url: &url::Url) -> Option<String> {
        let base = self.bucket.base_url();
        let same = url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default();
        let encoded = url.path().strip_prefix(base.path()).filter(|k| same && !k.is_empty())?;
        percent_encoding::percent_decode_str(encoded).decode_utf8().ok().map(|k| k.into_owned())
    }

    pub fn delete(&self, key: &str, now: u64) -> HttpRequestSpec {
        let action = self.bucket.delete_object(Some(&self.credentials), key);
        let url = action.sign_with_time(SIGNATURE_LIFETIME, &timestamp(now));
        HttpRequestSpec { method: "DELETE", url: url.to_string(), headers: Vec::new(), body: Vec::new() }
    }
}

/// A presigned GET this signer made: [`Signer::signed_get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedGet {
    /// The object it names.
    pub key: String,
    /// Its `X-Amz-Date` and the end of its `X-Amz-Expires`, Unix seconds.
    pub signed_at: u64,
    pub expires_at: u64,
}

impl SignedGet {
    /// S3 would answer it at `now`: not expired, and not signed more than a
    /// minute ahead of this clock (then it is not one of ours).
    pub fn valid_at(&self, now: u64) -> bool {
        now <= self.expires_at && self.signed_at <= now + 60
    }
}

/// `X-Amz-Date`'s `YYYYMMDD'T'HHMMSS'Z'` as Unix seconds.
fn parse_amz_date(s: &str) -> Option<u64> {
    let dt = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", s).ok()?;
    u64::try_from(dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_second()).ok()
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
        let put = s.put("live/p/h/i.png", "image/png", b"abc".to_vec(), 1_700_000_000);
        assert_eq!(put.method, "PUT");
        assert!(put.url.starts_with("http://127.0.0.1:3900/images/live/p/h/i.png?"), "{}", put.url);
        assert!(put.url.contains("X-Amz-Signature="));
        assert!(put.url.contains("X-Amz-Expires=60"));
        assert_eq!(put.headers[1], ("content-length".to_string(), "3".to_string()));
        assert!(put.url.contains("X-Amz-Date=20231114T221320Z"), "signed at the given time: {}", put.url);
        assert_eq!(s.get("k", 0).method, "GET");
        assert_eq!(s.delete("k", 0).method, "DELETE");
        assert!(Signer::new(&config("not a url")).is_err());
    }

    /// AWS's published example of a presigned GET ("Authenticating Requests:
    /// Using Query Parameters (AWS Signature Version 4)", Amazon S3 API
    /// Reference): examplebucket/test.txt at 20130524T000000Z for 86400 s.
    #[test]
    fn a_presigned_get_has_aws_published_signature() {
        let example = S3Config {
            endpoint: "https://s3.amazonaws.com".into(),
            region: "us-east-1".into(),
            bucket: "examplebucket".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
        };
        let s = Signer::with_style(&example, UrlStyle::VirtualHost).unwrap();
        let url = s.get_url("test.txt", 1_369_353_600, Duration::from_secs(86400));
        assert!(url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"), "{url}");
        assert!(url.contains("X-Amz-Date=20130524T000000Z"), "{url}");
        assert!(
            url.ends_with("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
            "{url}"
        );
    }

    /// What the host's object cache relies on: only a URL this signer made,
    /// for this bucket and still valid, names an object.
    #[test]
    fn only_its_own_unexpired_gets_verify() {
        let s = Signer::new(&config("http://127.0.0.1:3900")).unwrap();
        let at = 1_700_000_000;
        let url = s.get("live/p/h/a b+c.png", at).url;
        assert_eq!(s.verify_get(&url, at + 30).as_deref(), Some("live/p/h/a b+c.png"));
        assert_eq!(s.verify_get(&url, at + 61), None, "expired");
        assert_eq!(s.verify_get(&url, at - 120), None, "signed in the future");
        let signed = s.signed_get(&url).unwrap();
        assert_eq!((signed.signed_at, signed.expires_at), (at, at + 60));
        assert!(signed.valid_at(at + 60) && !signed.valid_at(at + 61) && !signed.valid_at(at - 61));
        let mut other = config("http://127.0.0.1:3900");
        other.secret_access_key = Secret("another".into());
        assert_eq!(Signer::new(&other).unwrap().verify_get(&url, at), None, "other credentials");
        let tampered = url.replace("live/p/h/a", "live/p/h/b");
        assert_eq!(s.verify_get(&tampered, at), None, "another key under the same signature");
        let unsigned = url.split_once('?').unwrap().0;
        assert_eq!(s.verify_get(unsigned, at), None);
        let mut bucket = config("http://127.0.0.1:3900");
        bucket.bucket = "other".into();
        assert_eq!(Signer::new(&bucket).unwrap().verify_get(&url, at), None, "another bucket");
        assert_eq!(s.verify_get(&s.delete("k", at).url, at), None, "a DELETE's signature is no GET's");
        assert_eq!(s.key_of(&s.delete("x/y", at).url).as_deref(), Some("x/y"));
        assert_eq!(s.key_of("http://127.0.0.1:3901/images/x"), None);
        assert_eq!(parse_amz_date("20231114T221320Z"), Some(1_700_000_000));
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
