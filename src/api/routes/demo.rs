//! The demo page: `GET /` serves a page that puts signed live URLs in a grid
//! of `<img>` (the way a site embeds them), with two key-less helpers for it,
//! `POST /api/v1/demo/sign` and `GET /api/v1/demo/stats`. All three are bound
//! to the project named by `demo_project_id` and are 404 without it (the
//! route table marks them `Auth::Demo`; `auth` decides).

use crate::api::reply::Reply;
use crate::core::config::Config;
use crate::core::http::headers;

const PAGE: &str = include_str!("demo.html");

/// The page, its model picker filled with the configured models' names
/// (`[a-z0-9._-]`, so they need no escaping), hidden when there is one.
pub fn page<B>(config: &Config) -> Reply<B> {
    let options: String = config.models.iter().map(|m| format!("<option>{}</option>", m.name)).collect();
    let mut page = PAGE.replace("<!--MODELS-->", &options);
    if config.models.len() < 2 {
        page = page.replace("<select id=\"model\"", "<select hidden id=\"model\"");
    }
    Reply::bytes(200, headers::page(), page.into_bytes())
}
