//! The only code that touches WASI. `inbound` turns a WASI HTTP request into
//! an `api::Request` and writes the reply out (`respond`); the others
//! implement the `core::ports` traits over WASI interfaces. They translate
//! types and errors and decide nothing: what an answer means is `core`'s.

pub mod bindings;
pub mod config;
pub mod env;
pub mod http;
pub mod inbound;
pub mod kv;
pub mod provider;
pub mod respond;
pub mod s3;
pub mod streamed;
