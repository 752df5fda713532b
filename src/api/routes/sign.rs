//! `POST /api/v1/live/sign` (X-API-Key): a signed live URL for `<img src>`,
//! usable without a key. The parameters are validated exactly as the live
//! endpoint will validate them. The caller is authenticated by `api::dispatch`.

use serde_json::json;

use crate::api::reply::Reply;
use crate::core::config::Config;
use crate::core::http::routes::LIVE_PATH;
use crate::core::stored::project::Project;
use crate::core::{decide::signature, http::request, variant, Error};

pub fn sign<B>(
    project: &Project,
    config: &Config,
    body: &[u8],
    now: u64,
    origin: Option<String>,
) -> Result<Reply<B>, Error> {
    let wanted = signature::parse_sign_body(body)?;
    let checked = request::generation_request(&wanted.pairs, config.max_prompt_length)?;
    // An unknown model, or a seed for a model that takes none, is refused
    // now rather than signed into a URL that could only be a 400.
    config.model_for(&checked)?;
    let asked = variant::parse(&wanted.pairs, &config.variant_widths, &config.variant_qualities)?;
    let expires_at = wanted.lifetime_seconds.map(|l| now + l);
    let mut signed_pairs = checked.pairs();
    signed_pairs.push(("project".to_string(), project.id.clone()));
    if let Some(asked) = asked {
        signed_pairs.extend(asked.pairs());
    }
    if request::progressive(&wanted.pairs)? {
        signed_pairs.push(("progressive".to_string(), "1".to_string()));
    }
    if let Some(exp) = expires_at {
        signed_pairs.push(("exp".to_string(), exp.to_string()));
    }
    let path = signature::signed_path(&project.signing_secret, LIVE_PATH, &signed_pairs);
    let url = origin.map(|o| format!("{o}{path}"));
    Ok(Reply::json(200, json!({"path": path, "url": url, "expires_at": expires_at})))
}
