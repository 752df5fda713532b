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

/// What came back, as far as the parsers care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// `Retry-After` in seconds, if the provider sent one.
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}
