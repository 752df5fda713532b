//! Outbound HTTP as data: the request the adapters send and the answer they
//! hand back. Built and read by `provider` and `s3`; sent by `adapters::http`.

use std::fmt;

/// A fully built outbound request. `Debug` shows header names only: some
/// values are credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequestSpec {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequestSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "{} {} headers={names:?} body={}B", self.method, self.url, self.body.len())
    }
}

/// The longest `Retry-After` we pass on from upstream (a provider, S3): five
/// minutes. A provider that says "come back in three years" is not repeated
/// to our clients as is.
pub const MAX_RETRY_AFTER: u64 = 300;

/// An upstream `Retry-After` (delta-seconds; an HTTP-date is not used),
/// clamped to [`MAX_RETRY_AFTER`].
pub fn retry_after(header: &str) -> Option<u64> {
    header.trim().parse::<u64>().ok().map(|s| s.min(MAX_RETRY_AFTER))
}

/// What came back, as far as the parsers care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// `Retry-After` in seconds, if the provider sent one ([`retry_after`]).
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_retry_after_is_clamped() {
        assert_eq!(retry_after(" 12 "), Some(12));
        assert_eq!(retry_after("99999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after("-1"), None);
    }
}
