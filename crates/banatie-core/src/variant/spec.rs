//! The variant to serve once `Accept` is read: its shape, format and
//! quality, and its suffix (its part of the cache key).

use super::format::Format;
use super::geometry::{Fit, Gravity};
use super::placeholder::Placeholder;

/// `h`, `fit`, `gravity` (`core::variant::geometry`); the default is no height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// A ladder height (`dpr` applied); `None`: the height follows the width.
    pub height: Option<u32>,
    pub fit: Fit,
    pub gravity: Gravity,
}

/// The variant to serve once `Accept` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// A ladder width; `None` keeps the original's width.
    pub width: Option<u32>,
    pub shape: Shape,
    /// `None`: the original's format.
    pub format: Option<Format>,
    /// The lossy encoder's quality (given or the format's default).
    pub quality: Option<u8>,
    /// Chosen from `Accept` (`format=auto`): the answer varies by it.
    pub negotiated: bool,
    /// `format=lqip` or `format=thumbhash` (then no width, format, quality).
    pub placeholder: Option<Placeholder>,
}

impl Variant {
    /// The variant's part of its cache key: `w256.webp.q80`, `w512`, `avif.q60`.
    /// Every field is from a closed set, so no suffix can spell another.
    pub fn suffix(&self) -> String {
        if let Some(p) = self.placeholder {
            return p.name().to_string();
        }
        let mut parts = Vec::new();
        if let Some(w) = self.width {
            parts.push(format!("w{w}"));
        }
        if let Some(h) = self.shape.height {
            parts.push(format!("h{h}"));
            if self.shape.fit != Fit::Contain {
                parts.push(self.shape.fit.name().to_string());
            }
            if self.shape.gravity != Gravity::Center {
                parts.push(self.shape.gravity.name().to_string());
            }
        }
        if let Some(f) = self.format {
            parts.push(f.name().to_string());
        }
        if let Some(q) = self.quality {
            parts.push(format!("q{q}"));
        }
        parts.join(".")
    }

    /// The format of the answer, given the original's.
    pub fn output_format(&self, original: Format) -> Format {
        self.format.unwrap_or(original)
    }
}
