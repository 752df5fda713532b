//! Derived variants: `w`, `format` and `q` on the live URL ask for the
//! generated image (the *original*) at another width or in another format.
//! The original is generated once under its own, unchanged cache key; each
//! variant is derived from it and cached under the original's key plus the
//! variant's suffix (`w256.webp.q80`).
//!
//! What is decided here, purely: which values are valid, how widths and
//! qualities snap to the configured ladders (so an image has a bounded number
//! of variants), the suffix, and the derived size. How `format=auto` reads
//! `Accept` is `http::accept`'s; the pixels are the `banatie-image` crate's.

pub mod format;
pub mod geometry;
pub mod marking;
pub mod parse;
pub mod placeholder;
pub mod spec;

pub use self::format::Format;
pub use self::parse::{
    parse, parse_ladder, parse_qualities, snap, snap_quality, Asked, Wanted, DEFAULT_AVIF_SPEED,
    DEFAULT_MAX_SOURCE_PIXELS, DEFAULT_WIDTHS, MAX_WIDTH_PARAM, VARIANT_PARAMS,
};
pub use self::placeholder::Placeholder;
pub use self::spec::{Shape, Variant};
