//! The only code that touches WASI. Each adapter translates types and errors
//! between a `core::ports` trait and a WASI interface; none decides anything.

pub mod bindings;
pub mod clock;
pub mod config;
pub mod http;
pub mod kv;
pub mod provider;
pub mod random;
pub mod s3;
