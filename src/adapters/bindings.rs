//! Bindings for what the component imports beyond WASI HTTP (which spin-sdk
//! brings), generated from `wit/` with the wit-bindgen that spin-sdk re-exports
//! (one bindings runtime in the component). Only called functions become
//! imports. Spin (default): `wasi:keyvalue@0.2.0-draft2` and
//! `wasi:config@0.2.0-draft-2024-09-27`; `--features wasmcloud`:
//! `wasi:keyvalue@0.2.0-draft` and `wasi:config@0.2.0-draft`.
#![allow(missing_docs, clippy::all)]

#[cfg(not(feature = "wasmcloud"))]
spin_sdk::wit_bindgen::generate!({
    world: "component",
    path: "wit",
    runtime_path: "spin_sdk::wit_bindgen::rt",
    generate_all,
});

#[cfg(feature = "wasmcloud")]
spin_sdk::wit_bindgen::generate!({
    world: "wasmcloud",
    path: "wit",
    runtime_path: "spin_sdk::wit_bindgen::rt",
    generate_all,
});

// wit-bindgen names a package's module after its version when `wit/` holds two
// versions of it; these aliases give the adapters one name for either build.
#[cfg(feature = "wasmcloud")]
pub use self::wasi::{config0_2_0_draft as config, keyvalue0_2_0_draft as keyvalue};
#[cfg(not(feature = "wasmcloud"))]
pub use self::wasi::{config0_2_0_draft_2024_09_27 as config, keyvalue0_2_0_draft2 as keyvalue};
