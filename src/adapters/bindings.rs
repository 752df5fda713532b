//! Bindings for what the component imports beyond WASI HTTP (which spin-sdk
//! brings), generated from `wit/` with the wit-bindgen that spin-sdk re-exports
//! (one bindings runtime in the component). Only called functions become
//! imports. Spin (default): `wasi:keyvalue@0.2.0-draft2` and
//! `wasi:config@0.2.0-draft-2024-09-27`; `--features wasmcloud` (1.x):
//! `wasi:keyvalue@0.2.0-draft` and `wasi:config@0.2.0-draft`;
//! `--features wasmcloud2`: `wasi:keyvalue@0.2.0-draft` and
//! `wasi:config@0.2.0-rc.1`.
#![allow(missing_docs, clippy::all)]

#[cfg(all(feature = "wasmcloud", feature = "wasmcloud2"))]
compile_error!("features wasmcloud and wasmcloud2 are two different builds: choose one");

#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
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

#[cfg(feature = "wasmcloud2")]
spin_sdk::wit_bindgen::generate!({
    world: "wasmcloud2",
    path: "wit",
    runtime_path: "spin_sdk::wit_bindgen::rt",
    generate_all,
});

// wit-bindgen names a package's module after its version when `wit/` holds two
// versions of it; these aliases give the adapters one name for either build.
#[cfg(feature = "wasmcloud")]
pub use self::wasi::{config0_2_0_draft as config, keyvalue0_2_0_draft as keyvalue};
#[cfg(not(any(feature = "wasmcloud", feature = "wasmcloud2")))]
pub use self::wasi::{config0_2_0_draft_2024_09_27 as config, keyvalue0_2_0_draft2 as keyvalue};
#[cfg(feature = "wasmcloud2")]
pub use self::wasi::{config0_2_0_rc_1 as config, keyvalue0_2_0_draft as keyvalue};
