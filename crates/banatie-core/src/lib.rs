//! Pure logic of banatie-live: values in, values or decisions out.
//!
//! Nothing in here performs I/O or touches WASI or spin-sdk (this crate does
//! not depend on them); every decision is a function over data, unit-tested
//! natively. The [`ports`] traits are the only door to the outside world: the
//! component's `adapters` implement them for WASI and its tests in memory.
//! banatie-host uses [`config::Config`] to check the component's variables
//! before it listens; the fuzz targets use the parsers and the signer.
#![forbid(unsafe_code)]

pub mod accept;
pub mod alias;
pub mod budget;
pub mod cache_key;
pub mod client;
pub mod config;
pub mod entries;
pub mod entry;
pub mod error;
pub mod error_image;
pub mod expiry;
pub mod geometry;
pub mod headers;
pub mod http;
pub mod keys;
pub mod marking;
pub mod platform;
pub mod ports;
pub mod project;
pub mod provider;
pub mod request;
pub mod routes;
pub mod s3;
pub mod scope;
pub mod signature;
pub mod single_flight;
pub mod stats;
pub mod template;
pub mod timing;
pub mod variant;

pub use error::Error;
