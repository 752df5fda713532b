//! An encoding a variant can have, its media type and default quality.

/// An encoding a variant can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Avif,
    Webp,
    Jpeg,
    Png,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Avif, Format::Webp, Format::Jpeg, Format::Png];

    pub fn name(self) -> &'static str {
        match self {
            Format::Avif => "avif",
            Format::Webp => "webp",
            Format::Jpeg => "jpeg",
            Format::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Avif => "image/avif",
            Format::Webp => "image/webp",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }

    pub fn from_content_type(content_type: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.content_type() == content_type)
    }

    /// The quality a lossy encoding uses when the URL gives no `q` (or no
    /// `variant_qualities` are configured); `None` for lossless PNG. Chosen
    /// so the default is visually clean at 1× (AVIF needs a lower number than
    /// JPEG for the same look).
    pub fn default_quality(self) -> Option<u8> {
        match self {
            Format::Avif => Some(60),
            Format::Webp => Some(80),
            Format::Jpeg => Some(80),
            Format::Png => None,
        }
    }
}
