//! Host bindings for what the component imports beyond WASI HTTP:
//! `wasi:keyvalue@0.2.0-draft2` (store + atomics + batch) and
//! `wasi:config/store@0.2.0-draft-2024-09-27`, generated from the same `wit/`
//! the component is built from. Every function is trappable: guest-visible
//! errors live in the returned `result`, host faults trap.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "banatie:live/component",
    imports: { default: trappable },
    with: {
        "wasi:keyvalue/store@0.2.0-draft2.bucket": crate::kv::BucketHandle,
        "wasi:keyvalue/atomics@0.2.0-draft2.cas": crate::kv::CasHandle,
    },
});

// `wit/` also holds the wasmCloud drafts, so bindgen names these modules after
// their versions; one short name each for the rest of the host.
pub use self::wasi::{config0_2_0_draft_2024_09_27 as config, keyvalue0_2_0_draft2 as keyvalue};
