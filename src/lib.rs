//! banatie-live: live image generation as a WASI HTTP component.
//!
//! # Layout
//! - [`core`]: pure logic (request parsing, cache key, entries, headers, errors,
//!   single-flight, provider wire formats): the crate `crates/banatie-core`,
//!   which has no spin-sdk or WASI dependency. No I/O; unit-tested natively.
//! - `api`: the service as plain Rust, `api::Request` in, `api::Reply` out:
//!   dispatch over `core::http::routes`, one module per route family, composing
//!   core decisions over the `core::ports` traits. Unit-tested with fakes.
//! - `adapters`: the only code that touches WASI (inbound HTTP and the reply,
//!   `wasi:keyvalue`, `wasi:config`, outbound HTTP, clocks, randomness).
//!   Thin: translate, never decide.
//!
//! See docs/architecture.md. This file is the entry point only: it hands
//! every request to `adapters::inbound`.

mod adapters;
mod api;
#[cfg(test)]
mod graph_tests;
/// The pure logic, its own crate (`crates/banatie-core`), under its old name.
pub use banatie_core as core;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    adapters::inbound::handle(request, response_out).await
}
