//! What a handler works with: the configuration and the four ports, and the
//! parts of the client's request the live pipeline looks at.

use crate::core::config::Config;
use crate::core::stored::scope::Scope;

/// Everything a request talks to. The adapters build it over WASI for each
/// request; tests build it over in-memory fakes (borrowed, so they can look
/// inside afterwards).
pub struct Context<K, S, P, E> {
    pub config: Config,
    pub kv: K,
    pub store: S,
    pub provider: P,
    pub env: E,
}

/// What the client sent that the live pipeline looks at.
pub struct Incoming {
    /// Every `If-None-Match` value, joined (a list may span fields, RFC 9110 §5.3).
    pub if_none_match: Option<String>,
    pub head: bool,
    /// Every `Accept` value, joined (read only when a progressive answer is
    /// asked for: `core::http::accept::takes_images`).
    pub accept: String,
    /// The per-client limits, for requests they apply to.
    pub client: Option<Client>,
    /// The scope `auth` already found for a public URL (read once).
    pub public_scope: Option<Scope>,
    /// Replace the cached image, if any, with a new generation.
    pub regenerate: bool,
}

/// A client's hourly allowances: new generations and new variants (each
/// `None` when its limit is off).
pub struct Client {
    pub misses: Option<ClientLimit>,
    pub derivations: Option<ClientLimit>,
}

/// One client's hourly counter of new images of a kind, and its limit.
pub struct ClientLimit {
    pub key: String,
    pub limit: u32,
}
