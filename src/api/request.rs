//! A request as the handlers see it, and the one way to read its body.

use crate::core::http::routes::Method;
use crate::core::Error;

/// Largest request body any route reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request as the handlers see it.
pub struct Request<B> {
    pub method: Method,
    pub path: String,
    /// The raw query, without the `?` (empty when there is none).
    pub query: String,
    /// Every header field, names in lower case, a repeated field once per value.
    pub headers: Vec<(String, Vec<u8>)>,
    /// `scheme://authority`, when the host says it.
    pub origin: Option<String>,
    pub body: B,
}

/// A request body, read only by the routes that take one.
#[allow(async_fn_in_trait)] // single-threaded wasm executor
pub trait RequestBody {
    /// The whole body, or 413 once it passes `max_bytes`.
    async fn read(self, max_bytes: usize) -> Result<Vec<u8>, Error>;
}

impl RequestBody for Vec<u8> {
    async fn read(self, max_bytes: usize) -> Result<Vec<u8>, Error> {
        if self.len() > max_bytes {
            return Err(Error::PayloadTooLarge);
        }
        Ok(self)
    }
}

impl<B> Request<B> {
    /// Every value of a header, in the order received.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let values = self.headers.iter().filter(|(n, _)| n == name);
        values.filter_map(|(_, v)| std::str::from_utf8(v).ok()).collect()
    }

    /// A list header's values across all its fields, joined with `, ` (RFC
    /// 9110 §5.3: the same as one field); `None` when absent.
    pub fn header_list(&self, name: &str) -> Option<String> {
        let values = self.header_values(name);
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// The single value of a header; a repeated header is a 400.
    pub fn header(&self, name: &str) -> Result<Option<&str>, Error> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(one), None) => std::str::from_utf8(one)
                .map(Some)
                .map_err(|_| Error::BadRequest(format!("header {name} is not UTF-8"))),
            (Some(_), Some(_)) => Err(Error::BadRequest(format!("header {name} given more than once"))),
        }
    }
}
