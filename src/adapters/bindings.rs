//! `wasi:keyvalue@0.2.0-draft2` and `wasi:config@0.2.0-draft-2024-09-27`
//! bindings, generated from `wit/` with the wit-bindgen that spin-sdk re-exports
//! (one bindings runtime in the component). Only called functions become imports.
#![allow(missing_docs, clippy::all)]

spin_sdk::wit_bindgen::generate!({
    world: "component",
    path: "wit",
    runtime_path: "spin_sdk::wit_bindgen::rt",
    generate_all,
});
