//! What a handler answers, before it reaches a client. This is the only place
//! where a `core::Error` becomes a response (`Reply::error`); the adapter
//! writes the reply out.

use serde_json::json;

use crate::core::headers::{self, Header};
use crate::core::Error;

pub enum Body<B> {
    Empty,
    Bytes(Vec<u8>),
    /// An upstream body, spliced through without entering the component's memory.
    Stream(B),
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

    /// The one mapping from error to response. Internal detail goes to the log
    /// (stderr, which Spin and banatie-host collect), never to the client.
    pub fn error(error: &Error) -> Reply<B> {
        if let Some(detail) = error.log_detail() {
            crate::diag!("{} {}: {detail}", error.status(), error.code());
        }
        let body = json!({"error": {"code": error.code(), "message": error.public_message()}});
        Reply::bytes(
            error.status(),
            headers::error(error),
            serde_json::to_vec(&body).expect("JSON serialises"),
        )
    }

    /// The value of a header, for tests and the adapter.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}
