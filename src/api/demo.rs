//! The demo page: `GET /` serves a page that puts signed live URLs in a grid
//! of `<img>` (the way a site embeds them), and two key-less helpers for it,
//! `POST /api/v1/demo/sign` and `GET /api/v1/demo/stats`, both bound to the
//! project named by `demo_project_id`. Without that variable all three are
//! 404: production deployments do not expose a demo unless asked to.

use super::auth::load_project;
use super::respond::{Body, Reply};
use crate::core::config::Config;
use crate::core::ports::KeyValue;
use crate::core::project::Project;
use crate::core::Error;

const PAGE: &str = include_str!("demo.html");

/// The demo project, or 404 when the demo is off.
pub fn project(kv: &impl KeyValue, config: &Config) -> Result<Project, Error> {
    let id = config.demo_project_id.as_deref().ok_or(Error::NotFound("no such route"))?;
    load_project(kv, id)?.ok_or(Error::NotFound("the demo project does not exist"))
}

pub fn page<B>() -> Reply<B> {
    Reply {
        status: 200,
        headers: vec![
            ("content-type", "text/html; charset=utf-8".into()),
            ("cache-control", "no-cache".into()),
        ],
        body: Body::Bytes(PAGE.as_bytes().to_vec()),
    }
}
