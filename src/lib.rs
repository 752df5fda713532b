//! banatie-live: live image generation as a WASI HTTP component.
//!
//! # Layout
//! - [`core`]: pure logic (request parsing, cache key, entries, headers, errors,
//!   single-flight, provider wire formats): the crate `crates/banatie-core`,
//!   which has no spin-sdk or WASI dependency. No I/O; unit-tested natively.
//! - `adapters`: the only code that touches WASI (`wasi:keyvalue`, `wasi:config`,
//!   outbound HTTP, S3 signing). Thin: translate, never decide.
//! - `api`: the route table and one module per route family, composing the two.
//!
//! This file is the entry point only: it hands every request to `api::handle`.

mod adapters;
mod api;
/// The pure logic, its own crate (`crates/banatie-core`), under its old name.
pub use banatie_core as core;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    api::handle(request, response_out).await
}
