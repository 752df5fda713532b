//! Placeholders of a cached image (`format=lqip`, `format=thumbhash`).

/// A placeholder of the cached image, for a page to paint before the image
/// arrives: `format=lqip`, a blurred WebP of at most 1 KB (24 pixels on its
/// long side); `format=thumbhash`, its ThumbHash as JSON with a `data:` URL
/// of the decoded hash. Only of a cached original: one never generates
/// (404 `not_cached`). Derived and cached like any variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Lqip,
    ThumbHash,
}

impl Placeholder {
    pub const ALL: [Placeholder; 2] = [Placeholder::Lqip, Placeholder::ThumbHash];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Lqip => "lqip",
            Placeholder::ThumbHash => "thumbhash",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Placeholder::Lqip => "image/webp",
            Placeholder::ThumbHash => "application/json",
        }
    }
}
