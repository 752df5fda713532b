//! The service's HTTP surface, as values: the route table, a live URL's
//! query read into a generation request, which format `Accept` prefers,
//! every response header set, the one error enum and its picture for an
//! `<img>`, `Server-Timing`; and the shapes of an outbound request and its
//! answer (`outbound`), which the providers and S3 are spoken to with.

pub mod accept;
pub mod error;
pub mod error_image;
pub mod headers;
pub mod multipart;
pub mod outbound;
pub mod request;
pub mod routes;
pub mod timing;
pub mod warm;
