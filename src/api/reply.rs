//! What a handler answers, before it reaches a client. This is the only place
//! where a `core::Error` becomes a response (`Reply::error`); the adapter
//! writes the reply out.

use serde_json::json;

use crate::core::http::headers::{self, Header};
use crate::core::Error;

pub enum Body<B> {
    Empty,
    Bytes(Vec<u8>),
    /// An upstream body, spliced through without entering the component's memory.
    Stream(B),
    /// Already sent, part by part, through `core::ports::Respond` (a
    /// progressive MISS, the warm endpoint's lines).
    Sent,
}

pub struct Reply<B> {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: Body<B>,
}

impl<B> Reply<B> {
    pub fn json(status: u16, value: serde_json::Value) -> Reply<B> {
        Reply::bytes(status, headers::json(), serde_json::to_vec(&value).expect("JSON value serialises"))
    }

    pub fn bytes(status: u16, headers: Vec<Header>, bytes: Vec<u8>) -> Reply<B> {
        Reply { status, headers, body: Body::Bytes(bytes) }
    }

    pub fn empty(status: u16, headers: Vec<Header>) -> Reply<B> {
        Reply { status, headers, body: Body::Empty }
    }

    /// The answer went out through `core::ports::Respond`: nothing is left
    /// to write but what it queued.
    pub fn sent() -> Reply<B> {
        Reply { status: 200, headers: Vec::new(), body: Body::Sent }
    }

    /// The one mapping from error to response. Internal detail goes to the log
    /// (stderr, which Spin and banatie-host collect), never to the client.
    pub fn error(error: &Error) -> Reply<B> {
        let body = Reply::<B>::logged(error);
        Reply::bytes(
            error.status(),
            headers::error(error),
            serde_json::to_vec(&body).expect("JSON serialises"),
        )
    }

    /// The same error as an image, for a request that prefers one
    /// (`core::http::error_image`): same status and headers, the JSON in `X-Error`.
    pub fn error_image(error: &Error) -> Reply<B> {
        let body = Reply::<B>::logged(error);
        let svg = crate::core::http::error_image::svg(error);
        Reply::bytes(error.status(), headers::error_image(error, &body), svg.into_bytes())
    }

    /// The error's JSON body, its detail logged.
    fn logged(error: &Error) -> serde_json::Value {
        if let Some(detail) = error.log_detail() {
            crate::diag!("{} {}: {detail}", error.status(), error.code());
        }
        let mut body = json!({"error": {"code": error.code(), "message": error.public_message()}});
        if let Error::Flagged(categories) = error {
            body["error"]["categories"] = json!(categories);
        }
        body
    }

    /// The value of a header, for tests and the adapter.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}
