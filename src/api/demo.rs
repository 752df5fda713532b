//! The demo page: `GET /` serves a page that puts signed live URLs in a grid
//! of `<img>` (the way a site embeds them), with two key-less helpers for it,
//! `POST /api/v1/demo/sign` and `GET /api/v1/demo/stats`. All three are bound
//! to the project named by `demo_project_id` and are 404 without it (the
//! route table marks them `Auth::Demo`; `auth` decides).

use super::reply::Reply;
use crate::core::headers;

const PAGE: &str = include_str!("demo.html");

pub fn page<B>() -> Reply<B> {
    Reply::bytes(200, headers::page(), PAGE.as_bytes().to_vec())
}
