//! banatie-host: runs the banatie-live component the way `spin up` does,
//! without Spin: reads spin.toml, resolves variables, provides
//! `wasi:keyvalue` (SQLite or Redis), `wasi:config` and `wasi:http` with Spin's
//! outbound allow-list, and serves HTTP with a fresh instance per request.
//!
//! # Layout
//! - `plan`: options + files → what to serve (manifest, variables, allow-list,
//!   store, the component's configuration check): fails before listening.
//! - `up`: the command: plan, `--dev`'s services and project, then serve.
//! - `manifest`, `variables`, `runtime_config`: reading what the user wrote.
//! - `server`: engine, linker, `ProxyPre`, a `Store` per request; timeouts and
//!   the host's own answers (503, 431). `limits`: every limit and its default.
//!   `fair`: a client's share of instances, compute slots, epoch yielding.
//!   `memory`: per-instance linear memory watch.
//! - `bindings`: the WIT worlds the host links (`wasi:keyvalue`, `wasi:config`).
//!   `kv` (Spin's key-value semantics, SQLite or Redis), `config`: those
//!   interfaces.
//! - `outbound`: the allow-list hook and the pooled client; `object_cache`:
//!   `--object-cache`, answered through the outbound hook, its bytes handed
//!   to the client past the component (docs/object-cache.md).
//! - `ops`: the operator listener (`--metrics-listen`): metrics, health.
//! - `telemetry`: logs (`--log-format`, `RUST_LOG`), request ids, OTLP traces.
//! - `dev`: `--dev`'s embedded S3, stand-in provider and dev project.
//! - `private_file`: state files that hold secrets are created owner-only.
//! - `sync`: the one way a lock is taken.

pub mod bindings;
pub mod config;
pub mod dev;
pub mod fair;
pub mod kv;
pub mod limits;
pub mod manifest;
pub mod memory;
pub mod object_cache;
pub mod ops;
pub mod outbound;
pub mod plan;
pub mod private_file;
pub mod runtime_config;
pub mod server;
pub mod sync;
pub mod telemetry;
pub mod up;
pub mod variables;
