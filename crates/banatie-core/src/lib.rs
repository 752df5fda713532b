//! Pure logic of banatie-live: values in, values or decisions out.
//!
//! Nothing in here performs I/O or touches WASI or spin-sdk (this crate does
//! not depend on them); every decision is a function over data, unit-tested
//! natively. The [`ports`] traits are the only door to the outside world: the
//! component's `adapters` implement them for WASI and its tests in memory.
//! banatie-host uses [`config::Config`] to check the component's variables
//! before it listens; the fuzz targets use the parsers and the signer.
//!
//! # Layout
//! Folders by role; no module uses another in a cycle (the component's
//! `graph_tests` reads the code and fails on one):
//! - [`http`]: the HTTP surface — routes, a live URL's query, `Accept`,
//!   response headers, the one [`Error`] and its picture, `Server-Timing`,
//!   the shapes of outbound requests.
//! - [`stored`]: every stored name (`keys`) and record (entry, entries log,
//!   project, scope, alias, stats, expiring rows), and each runtime's store
//!   semantics (`platform`).
//! - [`decide`]: cache key, URL signatures, the single-flight lease,
//!   budgets, clients and their allowances, prompt templates.
//! - [`variant`]: derived variants — format, placeholder, the URL's
//!   parameters, geometry, AI-content marking.
//! - [`config`]: the component's variables, defaults → load → validate.
//! - [`provider`]: Gemini's and OpenAI's wire formats, and what an answer means.
//! - [`s3`]: S3 presigning and what each S3 status means.
//! - [`ports`]: the traits the component's adapters implement.
#![forbid(unsafe_code)]

pub mod config;
pub mod decide;
pub mod http;
pub mod ports;
pub mod provider;
pub mod s3;
pub mod stored;
pub mod variant;

pub use http::error::Error;
