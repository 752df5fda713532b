//! The component's configuration: defaults → load → validate.
//!
//! Values come from a lookup function (in production `wasi:config`, fed by the
//! Spin variables of spin.toml); this module only decides what is valid.
//! Errors name the variable, never its value. Secrets are redacted in `Debug`.

use std::fmt;

use crate::decide::single_flight::{DEFAULT_COALESCE_WAIT_SECONDS, DEFAULT_LEASE_SECONDS};
use crate::Error;

pub const DEFAULT_GEMINI_TEXT_MODEL: &str = "gemini-2.5-flash";
pub const DEFAULT_OPENAI_TEXT_MODEL: &str = "gpt-4o-mini";

pub const DEFAULT_PROVIDER_TIMEOUT_MS: u64 = 60_000;
/// What a generation keeps of its lease for storing its image (S3 PUT, entry
/// write) after its last provider call: [`Config::fallback_fits`].
pub const STORE_MARGIN_MS: u64 = 5_000;
/// Largest image a provider may answer (32 MiB); a larger one is a 502.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 32 << 20;

pub const DEFAULT_S3_REGION: &str = "us-east-1";
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.5-flash-image";
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com";
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-image-1";
pub const DEFAULT_MAX_PROMPT_LENGTH: usize = 2000;
/// No prompt may be longer than this, whatever `max_prompt_length` says.
pub const HARD_MAX_PROMPT_LENGTH: usize = 32_000;

/// `moderation_model` unless set.
pub const DEFAULT_MODERATION_MODEL: &str = "omni-moderation-latest";
/// `moderation_timeout_ms` unless set.
pub const DEFAULT_MODERATION_TIMEOUT_MS: u64 = 10_000;

/// The moderation endpoint (`moderation = openai`; its wire format is
/// `core::provider::moderation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderation {
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    /// `moderation_fail = open`: an outage lets the generation go on.
    pub fail_open: bool,
    pub timeout_ms: u64,
}

/// `provider_safety`: what the providers' own safety settings are set to
/// (on the wire: `core::provider::moderation::{gemini_safety, openai_safety}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Safety {
    /// Nothing is sent: each provider's defaults.
    #[default]
    Default,
    Strict,
    Relaxed,
}

impl Safety {
    pub fn parse(value: &str) -> Option<Safety> {
        match value {
            "default" => Some(Safety::Default),
            "strict" => Some(Safety::Strict),
            "relaxed" => Some(Safety::Relaxed),
            _ => None,
        }
    }
}

/// A secret string: compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderConfig {
    Gemini { api_key: Secret, base_url: String, model: String },
    OpenAi { api_key: Secret, base_url: String, model: String },
}

impl ProviderConfig {
    /// Provider name as it enters the cache key.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderConfig::Gemini { .. } => "gemini",
            ProviderConfig::OpenAi { .. } => "openai",
        }
    }

    pub fn model(&self) -> &str {
        match self {
            ProviderConfig::Gemini { model, .. } | ProviderConfig::OpenAi { model, .. } => model,
        }
    }
}

/// A named model (`models`): what `model=NAME` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub name: String,
    /// `gemini`, `openai` or `compat` (an OpenAI-compatible images API at
    /// `compat_base_url`): the provider's name in the cache key and entries.
    pub kind: &'static str,
    pub provider: ProviderConfig,
    /// The model tried when this one fails for a reason that is the
    /// provider's (timeout, 429, 5xx, unreachable), never on a refusal.
    pub fallback: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub s3: S3Config,
    /// The default model's provider (the first of `models`): also the one
    /// whose text model enhances prompts.
    pub provider: ProviderConfig,
    /// Every model a URL may name, the default first (`models`; without it,
    /// one, named after `provider`).
    pub models: Vec<Model>,
    /// `None` disables the admin API.
    pub admin_token: Option<Secret>,
    pub max_prompt_length: usize,
    /// How long a generation lease lives before others may take it over.
    pub generation_lease_seconds: u64,
    /// How long a coalesced request waits for another's generation.
    pub coalesce_wait_seconds: u64,
    /// How long a lease claim settles on stores without compare-and-swap
    /// (wasmCloud; `core::decide::single_flight`). Every instance must use the same.
    pub lease_settle_ms: u64,
    /// How long a provider call may take before it counts as failed (503).
    pub provider_timeout_ms: u64,
    /// Largest image a provider may answer; the answer is read no further.
    pub max_image_bytes: usize,
    /// The project the demo page (`/`) signs for; `None` turns the demo off.
    pub demo_project_id: Option<String>,
    /// New generations one client may cause per hour through URLs that carry
    /// no API key (signed URLs); 0 turns the limit off.
    pub client_misses_per_hour: u32,
    /// The bits of an IPv6 client address that name the client for the
    /// per-client limits (`core::decide::client::client_id`).
    pub client_ipv6_prefix: u8,
    /// Proxies whose `X-Forwarded-For` is believed (see `core::decide::client`).
    pub trusted_proxies: Vec<crate::decide::client::Net>,
    /// The provider's text model, for `enhance=true`.
    pub text_model: String,
    /// The widths a variant's `w` snaps up to (ascending).
    pub variant_widths: Vec<u32>,
    /// The qualities a variant's `q` snaps up to (ascending; empty: each
    /// format's default only).
    pub variant_qualities: Vec<u8>,
    /// New variants one client may cause per hour through URLs that carry
    /// no API key; 0 turns the limit off.
    pub client_derivations_per_hour: u32,
    /// Largest original (pixels) a variant is derived from.
    pub max_source_pixels: u64,
    /// rav1e's speed for AVIF variants (1 slowest … 10 fastest).
    pub avif_speed: u8,
    /// Errors of image GETs that prefer an image are answered as one
    /// (`core::http::error_image`).
    pub error_images: bool,
    /// Previews OpenAI streams to a progressive MISS (1–3).
    pub openai_partial_images: u8,
    /// Items the warm endpoint makes at a time.
    pub warm_concurrency: u32,
    /// Moderation before the provider (`moderation = openai`); `None`: off.
    pub moderation: Option<Moderation>,
    /// The providers' own safety settings (`provider_safety`).
    pub provider_safety: Safety,
}

/// `openai_partial_images` unless set.
pub const DEFAULT_PARTIAL_IMAGES: u8 = 2;
/// `warm_concurrency` unless set: two generations in flight per warm call.
pub const DEFAULT_WARM_CONCURRENCY: u32 = 2;
/// The largest `warm_concurrency`.
pub const MAX_WARM_CONCURRENCY: u32 = 8;

/// A `true`/`false` variable.
fn switch(lookup: Lookup, name: &str, default: bool) -> Result<bool, Error> {
    match get(lookup, name)?.as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(Error::Misconfigured(format!("variable {name}: {other:?} is not true or false"))),
    }
}

/// Reads one variable; `Ok(None)` when it is unset or empty.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Result<Option<String>, String>;

fn get(lookup: Lookup, name: &str) -> Result<Option<String>, Error> {
    match lookup(name) {
        Ok(Some(v)) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) => Err(Error::Misconfigured(format!("variable {name}: {e}"))),
    }
}

fn required(lookup: Lookup, name: &str) -> Result<String, Error> {
    get(lookup, name)?.ok_or_else(|| Error::Misconfigured(format!("variable {name} is not set")))
}

fn number(lookup: Lookup, name: &str, default: u64, min: u64, max: u64) -> Result<u64, Error> {
    match get(lookup, name)? {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Error::Misconfigured(format!("variable {name} must be a number from {min} to {max}"))),
        },
    }
}

/// An `http(s)://host[:port]` URL. No path, query or credentials: these
/// variables also fill spin.toml's `allowed_outbound_hosts`, and Spin refuses
/// an entry with a path (`crates/outbound-networking-config/src/allowed_hosts.rs`:
/// "has a path but is not allowed to"), so every outbound call would fail.
fn http_url(name: &str, value: String) -> Result<String, Error> {
    let value = value.trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()));
    let Some(url) = parsed else {
        return Err(Error::Misconfigured(format!("variable {name} must be an http(s) URL")));
    };
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !bare || !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Misconfigured(format!(
            "variable {name} must be scheme://host[:port] with no path (Spin's allowed_outbound_hosts takes no path)"
        )));
    }
    Ok(value)
}

/// `moderation = openai|off` and its variables: the endpoint
/// (`moderation_base_url`, default OpenAI's), its key (`moderation_api_key`,
/// else `openai_api_key`), `moderation_model`, `moderation_fail`
/// (`closed`, the default, or `open`) and `moderation_timeout_ms`.
fn moderation(lookup: Lookup) -> Result<Option<Moderation>, Error> {
    match get(lookup, "moderation")?.as_deref() {
        None | Some("off") => return Ok(None),
        Some("openai") => {}
        Some(_) => return Err(Error::Misconfigured("variable moderation must be openai or off".into())),
    }
    let base_url = get(lookup, "moderation_base_url")?.unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.into());
    let api_key = match get(lookup, "moderation_api_key")? {
        Some(key) => key,
        None => get(lookup, "openai_api_key")?.ok_or_else(|| {
            Error::Misconfigured("variable moderation_api_key (or openai_api_key) is not set".into())
        })?,
    };
    let fail_open = match get(lookup, "moderation_fail")?.as_deref() {
        None | Some("closed") => false,
        Some("open") => true,
        Some(_) => {
            return Err(Error::Misconfigured("variable moderation_fail must be closed or open".into()))
        }
    };
    Ok(Some(Moderation {
        base_url: http_url("moderation_base_url", base_url)?,
        api_key: Secret(api_key),
        model: get(lookup, "moderation_model")?.unwrap_or_else(|| DEFAULT_MODERATION_MODEL.into()),
        fail_open,
        timeout_ms: number(lookup, "moderation_timeout_ms", DEFAULT_MODERATION_TIMEOUT_MS, 100, 120_000)?,
    }))
}

/// One provider's configuration, its key and base URL from its variables.
fn provider_config(lookup: Lookup, kind: &str, model: Option<String>) -> Result<ProviderConfig, Error> {
    let base = |var: &str, default: &str| -> Result<String, Error> {
        http_url(var, get(lookup, var)?.unwrap_or_else(|| default.into()))
    };
    Ok(match kind {
        "gemini" => ProviderConfig::Gemini {
            api_key: Secret(required(lookup, "gemini_api_key")?),
            base_url: base("gemini_base_url", DEFAULT_GEMINI_BASE_URL)?,
            model: model.or(get(lookup, "gemini_model")?).unwrap_or_else(|| DEFAULT_GEMINI_MODEL.into()),
        },
        "openai" => ProviderConfig::OpenAi {
            api_key: Secret(required(lookup, "openai_api_key")?),
            base_url: base("openai_base_url", DEFAULT_OPENAI_BASE_URL)?,
            model: model.or(get(lookup, "openai_model")?).unwrap_or_else(|| DEFAULT_OPENAI_MODEL.into()),
        },
        "compat" => ProviderConfig::OpenAi {
            api_key: Secret(required(lookup, "compat_api_key")?),
            base_url: http_url("compat_base_url", required(lookup, "compat_base_url")?)?,
            model: model
                .ok_or_else(|| Error::Misconfigured("variable models: compat needs a model".into()))?,
        },
        _ => unreachable!("kinds are checked by the caller"),
    })
}

fn kind_name(kind: &str) -> Option<&'static str> {
    ["gemini", "openai", "compat"].into_iter().find(|k| *k == kind)
}

/// `models`: `NAME=PROVIDER:MODEL[>FALLBACK]`, comma-separated, the default
/// first; PROVIDER is `gemini`, `openai` or `compat`. At most 16.
fn models(lookup: Lookup, text: &str) -> Result<Vec<Model>, Error> {
    let bad = |m: String| Error::Misconfigured(format!("variable models: {m}"));
    let mut out: Vec<Model> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, rest) =
            item.split_once('=').ok_or_else(|| bad(format!("{item:?} is not NAME=PROVIDER:MODEL")))?;
        let (target, fallback) = match rest.split_once('>') {
            Some((t, f)) => (t, Some(f.trim().to_string())),
            None => (rest, None),
        };
        let (kind, model) =
            target.split_once(':').ok_or_else(|| bad(format!("{item:?} is not NAME=PROVIDER:MODEL")))?;
        let (name, kind, model) = (name.trim(), kind.trim(), model.trim());
        if !crate::http::request::valid_model_name(name) {
            return Err(bad(format!("{name:?}: a name is 1-32 of a-z, 0-9, '.', '_', '-'")));
        }
        let kind = kind_name(kind)
            .ok_or_else(|| bad(format!("{kind:?}: the providers are gemini, openai, compat")))?;
        if model.is_empty() || model.contains(['/', '?', '#', ' ']) {
            return Err(bad(format!("{name}: {model:?} is not a model id")));
        }
        if out.iter().any(|m| m.name == name) {
            return Err(bad(format!("{name} is named twice")));
        }
        let provider = provider_config(lookup, kind, Some(model.to_string()))?;
        out.push(Model { name: name.to_string(), kind, provider, fallback });
    }
    if out.is_empty() || out.len() > 16 {
        return Err(bad("from 1 to 16 models".into()));
    }
    for m in &out {
        if let Some(f) = &m.fallback {
            if *f == m.name || !out.iter().any(|o| o.name == *f) {
                return Err(bad(format!("{}'s fallback {f:?} is not another of the models", m.name)));
            }
        }
    }
    Ok(out)
}

impl Config {
    /// The model `model=` names (`None`: the default); an unknown name is a
    /// 400 that names the allowed ones.
    pub fn model(&self, name: Option<&str>) -> Result<&Model, Error> {
        match name {
            None => Ok(&self.models[0]),
            Some(n) => self.models.iter().find(|m| m.name == n).ok_or_else(|| {
                let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
                Error::BadRequest(format!("parameter 'model' must be one of {}", names.join(", ")))
            }),
        }
    }

    /// The model a request asks for, checked: a known name, and a seed only
    /// for a model that takes one (Gemini's; OpenAI's images API has none).
    pub fn model_for(&self, request: &crate::http::request::GenerationRequest) -> Result<&Model, Error> {
        let model = self.model(request.model.as_deref())?;
        if request.seed.is_some() && !matches!(model.provider, ProviderConfig::Gemini { .. }) {
            return Err(Error::BadRequest(format!(
                "model {} takes no seed (only the gemini provider's models do)",
                model.name
            )));
        }
        Ok(model)
    }

    /// The model tried when `model` fails for the provider's reasons.
    pub fn fallback_of(&self, model: &Model) -> Option<&Model> {
        let name = model.fallback.as_deref()?;
        self.models.iter().find(|m| m.name == name)
    }

    /// Whether a fallback call, `elapsed_ms` into a generation, still ends
    /// inside the generation's lease: its whole `provider_timeout_ms` and
    /// [`STORE_MARGIN_MS`] for storing the image must fit in
    /// `generation_lease_seconds`. The lease is never renewed, so a call past
    /// it could overlap a second owner's generation of the same key. With the
    /// defaults (120 s lease, 60 s timeout) a primary that failed within
    /// 55 s falls back and one that timed out does not.
    pub fn fallback_fits(&self, elapsed_ms: u64) -> bool {
        elapsed_ms + self.provider_timeout_ms + STORE_MARGIN_MS <= self.generation_lease_seconds * 1000
    }

    pub fn load(lookup: Lookup) -> Result<Config, Error> {
        let s3 = S3Config {
            endpoint: http_url("s3_endpoint", required(lookup, "s3_endpoint")?)?,
            region: get(lookup, "s3_region")?.unwrap_or_else(|| DEFAULT_S3_REGION.into()),
            bucket: required(lookup, "s3_bucket")?,
            access_key_id: required(lookup, "s3_access_key_id")?,
            secret_access_key: Secret(required(lookup, "s3_secret_access_key")?),
        };
        let models = match get(lookup, "models")? {
            Some(text) => models(lookup, &text)?,
            None => {
                let kind = match get(lookup, "provider")?.as_deref().unwrap_or("gemini") {
                    "gemini" => "gemini",
                    "openai" => "openai",
                    _ => {
                        return Err(Error::Misconfigured(
                            "variable provider must be one of: gemini, openai".into(),
                        ))
                    }
                };
                let provider = provider_config(lookup, kind, None)?;
                vec![Model { name: kind.to_string(), kind, provider, fallback: None }]
            }
        };
        let provider = models[0].provider.clone();
        let text_model = match &provider {
            ProviderConfig::Gemini { .. } => {
                get(lookup, "gemini_text_model")?.unwrap_or_else(|| DEFAULT_GEMINI_TEXT_MODEL.into())
            }
            ProviderConfig::OpenAi { .. } => {
                get(lookup, "openai_text_model")?.unwrap_or_else(|| DEFAULT_OPENAI_TEXT_MODEL.into())
            }
        };
        let max_prompt_length = number(
            lookup,
            "max_prompt_length",
            DEFAULT_MAX_PROMPT_LENGTH as u64,
            1,
            HARD_MAX_PROMPT_LENGTH as u64,
        )? as usize;
        Ok(Config {
            s3,
            provider,
            models,
            admin_token: get(lookup, "admin_token")?.map(Secret),
            max_prompt_length,
            generation_lease_seconds: number(
                lookup,
                "generation_lease_seconds",
                DEFAULT_LEASE_SECONDS,
                1,
                3600,
            )?,
            coalesce_wait_seconds: number(
                lookup,
                "coalesce_wait_seconds",
                DEFAULT_COALESCE_WAIT_SECONDS,
                1,
                3600,
            )?,
            lease_settle_ms: number(
                lookup,
                "lease_settle_ms",
                crate::decide::single_flight::DEFAULT_SETTLE_MS,
                10,
                10_000,
            )?,
            demo_project_id: get(lookup, "demo_project_id")?,
            client_misses_per_hour: number(
                lookup,
                "client_misses_per_hour",
                crate::decide::client::DEFAULT_MISSES_PER_HOUR as u64,
                0,
                1_000_000,
            )? as u32,
            text_model,
            client_ipv6_prefix: number(
                lookup,
                "client_ipv6_prefix",
                crate::decide::client::DEFAULT_IPV6_PREFIX.into(),
                16,
                128,
            )? as u8,
            trusted_proxies: crate::decide::client::parse_trusted(
                &get(lookup, "trusted_proxies")?.unwrap_or_default(),
            )
            .map_err(|e| Error::Misconfigured(format!("variable trusted_proxies: {e}")))?,
            variant_widths: match get(lookup, "variant_widths")? {
                None => crate::variant::DEFAULT_WIDTHS.to_vec(),
                Some(text) => crate::variant::parse_ladder(&text)
                    .map_err(|e| Error::Misconfigured(format!("variable variant_widths: {e}")))?,
            },
            variant_qualities: match get(lookup, "variant_qualities")? {
                None => Vec::new(),
                Some(text) => crate::variant::parse_qualities(&text)
                    .map_err(|e| Error::Misconfigured(format!("variable variant_qualities: {e}")))?,
            },
            client_derivations_per_hour: number(
                lookup,
                "client_derivations_per_hour",
                crate::decide::client::DEFAULT_DERIVATIONS_PER_HOUR as u64,
                0,
                1_000_000,
            )? as u32,
            avif_speed: number(lookup, "avif_speed", crate::variant::DEFAULT_AVIF_SPEED.into(), 1, 10)? as u8,
            error_images: switch(lookup, "error_images", true)?,
            openai_partial_images: number(
                lookup,
                "openai_partial_images",
                DEFAULT_PARTIAL_IMAGES.into(),
                1,
                3,
            )? as u8,
            warm_concurrency: number(
                lookup,
                "warm_concurrency",
                DEFAULT_WARM_CONCURRENCY.into(),
                1,
                MAX_WARM_CONCURRENCY.into(),
            )? as u32,
            max_source_pixels: number(
                lookup,
                "max_source_pixels",
                crate::variant::DEFAULT_MAX_SOURCE_PIXELS,
                1,
                1 << 28,
            )?,
            max_image_bytes: number(lookup, "max_image_bytes", DEFAULT_MAX_IMAGE_BYTES, 1024, 256 << 20)?
                as usize,
            provider_timeout_ms: number(
                lookup,
                "provider_timeout_ms",
                DEFAULT_PROVIDER_TIMEOUT_MS,
                100,
                600_000,
            )?,
            moderation: moderation(lookup)?,
            provider_safety: match get(lookup, "provider_safety")? {
                None => Default::default(),
                Some(v) => Safety::parse(&v).ok_or_else(|| {
                    Error::Misconfigured("variable provider_safety must be default, strict or relaxed".into())
                })?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load(&move |name: &str| Ok(map.get(name).cloned()))
    }

    const MINIMAL: &[(&str, &str)] = &[
        ("s3_endpoint", "http://127.0.0.1:3900/"),
        ("s3_bucket", "images"),
        ("s3_access_key_id", "GK1"),
        ("s3_secret_access_key", "very-secret"),
        ("gemini_api_key", "AIza-secret"),
    ];

    #[test]
    fn defaults_fill_what_is_not_set() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.s3.region, "us-east-1");
        assert_eq!(c.s3.endpoint, "http://127.0.0.1:3900");
        assert_eq!(c.provider.model(), DEFAULT_GEMINI_MODEL);
        assert_eq!(c.max_prompt_length, 2000);
        assert_eq!(c.admin_token, None);
        assert_eq!(
            (c.generation_lease_seconds, c.coalesce_wait_seconds, c.provider_timeout_ms),
            (120, 60, 60_000)
        );
        assert_eq!(c.variant_widths, crate::variant::DEFAULT_WIDTHS.to_vec());
        assert_eq!(c.max_source_pixels, 1 << 24);
    }

    #[test]
    fn the_variant_ladder_and_source_limit_are_read_and_checked() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("variant_widths", "320, 640,1280"));
        pairs.push(("max_source_pixels", "1000000"));
        let c = load(&pairs).unwrap();
        assert_eq!((c.variant_widths, c.max_source_pixels), (vec![320, 640, 1280], 1_000_000));
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("variant_widths", "640,320"));
        assert!(load(&pairs).unwrap_err().to_string().contains("variant_widths"));
    }

    #[test]
    fn openai_is_chosen_by_the_provider_variable() {
        let mut pairs: Vec<_> = MINIMAL.iter().filter(|(k, _)| *k != "gemini_api_key").copied().collect();
        pairs.push(("provider", "openai"));
        assert_eq!(
            load(&pairs).unwrap_err(),
            Error::Misconfigured("variable openai_api_key is not set".into())
        );
        pairs.push(("openai_api_key", "sk-x"));
        let c = load(&pairs).unwrap();
        assert_eq!((c.provider.name(), c.provider.model()), ("openai", "gpt-image-1"));
        pairs.push(("provider", "midjourney"));
        let mut bad = pairs.clone();
        bad.retain(|(k, v)| *k != "provider" || *v == "midjourney");
        assert!(load(&bad).unwrap_err().to_string().contains("gemini, openai"));
    }

    #[test]
    fn models_are_read_checked_and_their_fallbacks_resolved() {
        let with = |models: &str| {
            let mut pairs = MINIMAL.to_vec();
            pairs.extend([("openai_api_key", "sk-1"), ("models", models)]);
            load(&pairs)
        };
        let c = with("flash=gemini:gemini-2.5-flash-image>gpt, gpt=openai:gpt-image-1").unwrap();
        let names: Vec<_> = c.models.iter().map(|m| (m.name.as_str(), m.provider.model())).collect();
        assert_eq!(names, [("flash", "gemini-2.5-flash-image"), ("gpt", "gpt-image-1")]);
        assert_eq!(c.model(None).unwrap().name, "flash", "the first is the default");
        assert_eq!(c.fallback_of(&c.models[0]).map(|m| m.name.as_str()), Some("gpt"));
        assert_eq!(c.fallback_of(&c.models[1]), None);
        let refused = |models: &str, says: &str| {
            let e = with(models).unwrap_err().to_string();
            assert!(e.contains("models") && e.contains(says), "{models:?}: {e}");
        };
        refused("a=gemini:m, a=openai:n", "named twice");
        refused("a=gemini:m>a", "not another of the models");
        refused("a=gemini:m>b", "not another of the models");
        refused("a=dalle:m", "the providers are");
        refused("a=gemini:models/x", "not a model id");
        refused("a:gemini:m", "NAME=PROVIDER:MODEL");
        refused("Big Name=gemini:m", "a name is");
        let seventeen: Vec<String> = (0..17).map(|i| format!("m{i}=gemini:x")).collect();
        refused(&seventeen.join(","), "from 1 to 16");
        // A compat model needs its own key and base URL.
        assert!(with("local=compat:my-model").unwrap_err().to_string().contains("compat_"));
        let mut pairs = MINIMAL.to_vec();
        pairs.extend([
            ("models", "local=compat:my-model"),
            ("compat_api_key", "k"),
            ("compat_base_url", "http://127.0.0.1:9000"),
        ]);
        assert_eq!(load(&pairs).unwrap().models[0].provider.model(), "my-model");
    }

    /// With the defaults a provider that failed quickly falls back and one
    /// that used its whole timeout does not (`Config::fallback_fits`).
    #[test]
    fn a_fallback_fits_only_while_the_lease_has_room_for_it() {
        let c = load(MINIMAL).unwrap();
        assert!(c.fallback_fits(0) && c.fallback_fits(55_000));
        assert!(!c.fallback_fits(55_001) && !c.fallback_fits(60_000));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let pairs: Vec<_> = MINIMAL.iter().filter(|(k, _)| *k != "s3_bucket").copied().collect();
        let e = load(&pairs).unwrap_err();
        assert_eq!(e, Error::Misconfigured("variable s3_bucket is not set".into()));
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = load(MINIMAL).unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("very-secret") && !printed.contains("AIza-secret"));
    }

    #[test]
    fn invalid_values_are_refused_with_the_variable_name() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("max_prompt_length", "lots"));
        assert!(load(&pairs).unwrap_err().to_string().contains("max_prompt_length"));
        let mut pairs = MINIMAL.to_vec();
        pairs[0] = ("s3_endpoint", "ftp://x");
        assert!(load(&pairs).unwrap_err().to_string().contains("s3_endpoint"));
    }

    #[test]
    fn url_variables_with_a_path_are_refused_as_spin_refuses_them() {
        for (name, value) in [
            ("s3_endpoint", "https://s3.example.com/prefix"),
            ("gemini_base_url", "https://proxy.example.com/gemini/"),
            ("s3_endpoint", "http://user:pw@127.0.0.1:3900"),
            ("gemini_base_url", "https://g.example.com?x=1"),
        ] {
            let mut pairs = MINIMAL.to_vec();
            pairs.retain(|(n, _)| *n != name);
            pairs.push((name, value));
            let e = load(&pairs).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains("no path"), "{value}: {e}");
        }
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("gemini_base_url", "https://g.example.com:8443/"));
        let ProviderConfig::Gemini { base_url, .. } = load(&pairs).unwrap().provider else { panic!() };
        assert_eq!(base_url, "https://g.example.com:8443");
    }
}
