//! The route table: every path the component answers, the methods each
//! takes, who may call it, how its query is read and whether the per-client
//! limits apply. `api::dispatch` reads this table and nothing else to decide
//! 404, 405, which credentials a request must carry and what the live
//! pipeline is told.

use crate::Error;

/// Where the live endpoint lives (keyed, signed and purge requests alike).
pub const LIVE_PATH: &str = "/api/v1/live/generate";

/// Request methods the table names; anything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Other,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Other => "",
        }
    }
}

/// Who may call a route with a given method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `X-API-Key`, or a signed URL instead of it (the URL is the credential).
    KeyOrSignature,
    /// `X-API-Key` only. A signed URL is refused with 403: it was handed to a
    /// page to show an image, not to delete one.
    Key,
    /// `Authorization: Bearer <admin_token>`.
    Admin,
    /// `X-API-Key` (its project), or the admin's bearer token naming the
    /// project in `?project=` (a takedown: the route answers for one project).
    KeyOrAdmin,
    /// No credentials: bound to the project named by `demo_project_id`, and
    /// 404 when that variable is not set.
    Demo,
    /// No credentials: a hand-written URL naming a project (by slug) and one
    /// of its scopes, which must be `public` (401 otherwise).
    Public,
    /// No credentials and no project: an answer that tells a caller nothing
    /// of anyone's data (the health route).
    Open,
}

/// How a route's query is read, before authentication (a signed URL is its
/// own credential).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// Not before authentication (a handler may read its own parameters).
    Later,
    /// The live endpoint's: generation parameters, and a signature if any
    /// (`request::parse_query`).
    Live,
    /// A hand-written public URL's: generation and variant parameters; no
    /// signature, no `scope` (it is in the path): `request::parse_public_query`.
    Public,
}

/// When a request is held to the per-client hourly limits (`core::decide::client`;
/// only where the runtime says who the client is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientLimits {
    Never,
    /// A signed URL (no API key: the page's visitor is the client).
    WhenSigned,
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Live,
    Sign,
    Stats,
    Projects,
    /// `/api/v1/images/{image_id}/block`: a takedown, read, lifted.
    ImageBlock(String),
    /// `/api/v1/blocks`: a project's takedowns.
    Blocks,
    /// `/api/v1/projects/{id}`: a project's settings (its prompt policy).
    Project(String),
    Rotate(String),
    DemoPage,
    DemoSign,
    DemoStats,
    Entries,
    Scopes,
    Scope(String),
    Regenerate,
    /// `/api/v1/health`: a readiness probe.
    Health,
    /// `/api/v1/aliases`, `/api/v1/aliases/{name}`.
    Aliases,
    Alias(String),
    /// `/api/v1/live/warm`: make many images ahead of their first visitor.
    Warm,
    /// `/cdn/{project}/live/{scope}`.
    Cdn {
        project: String,
        scope: String,
    },
}

/// A project id as the admin API names it.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Path → route.
pub fn route(path: &str) -> Option<Route> {
    match path {
        LIVE_PATH => Some(Route::Live),
        "/api/v1/live/sign" => Some(Route::Sign),
        "/api/v1/live/stats" => Some(Route::Stats),
        "/api/v1/projects" => Some(Route::Projects),
        "/" => Some(Route::DemoPage),
        "/api/v1/demo/sign" => Some(Route::DemoSign),
        "/api/v1/demo/stats" => Some(Route::DemoStats),
        "/api/v1/scopes" => Some(Route::Scopes),
        "/api/v1/live/entries" => Some(Route::Entries),
        "/api/v1/live/regenerate" => Some(Route::Regenerate),
        "/api/v1/live/warm" => Some(Route::Warm),
        "/api/v1/health" => Some(Route::Health),
        "/api/v1/blocks" => Some(Route::Blocks),
        "/api/v1/aliases" => Some(Route::Aliases),
        _ if path.starts_with("/api/v1/aliases/") => {
            let name = &path["/api/v1/aliases/".len()..];
            crate::stored::scope::valid_slug(name).then(|| Route::Alias(name.to_string()))
        }
        _ if path.starts_with("/api/v1/images/") => {
            let id = path["/api/v1/images/".len()..].strip_suffix("/block")?;
            is_id(id).then(|| Route::ImageBlock(id.to_string()))
        }
        _ if path.starts_with("/api/v1/scopes/") => {
            let slug = &path["/api/v1/scopes/".len()..];
            crate::stored::scope::valid_slug(slug).then(|| Route::Scope(slug.to_string()))
        }
        _ if path.starts_with("/cdn/") => {
            let (project, scope) = path["/cdn/".len()..].split_once("/live/")?;
            let ok = |s: &str| crate::stored::scope::valid_slug(s) || is_id(s);
            (ok(project) && crate::stored::scope::valid_slug(scope))
                .then(|| Route::Cdn { project: project.to_string(), scope: scope.to_string() })
        }
        _ => {
            let rest = path.strip_prefix("/api/v1/projects/")?;
            match rest.strip_suffix("/rotate") {
                Some(id) => is_id(id).then(|| Route::Rotate(id.to_string())),
                None => is_id(rest).then(|| Route::Project(rest.to_string())),
            }
        }
    }
}

impl Route {
    /// The table: each method the route answers and who may call it with it.
    pub fn methods(&self) -> &'static [(Method, Auth)] {
        use Auth::*;
        use Method::*;
        match self {
            Route::Live => &[(Get, KeyOrSignature), (Head, KeyOrSignature), (Delete, Key)],
            Route::Sign => &[(Post, Key)],
            Route::Stats => &[(Get, Key)],
            Route::Projects | Route::Rotate(_) => &[(Post, Admin)],
            Route::Project(_) => &[(Patch, Admin)],
            Route::DemoPage => &[(Get, Demo), (Head, Demo)],
            Route::DemoSign => &[(Post, Demo)],
            Route::DemoStats => &[(Get, Demo)],
            Route::Entries => &[(Get, Key)],
            Route::Scopes => &[(Get, Key), (Post, Key)],
            Route::Scope(_) => &[(Get, Key), (Patch, Key), (Delete, Key)],
            Route::Regenerate => &[(Post, Key)],
            Route::Warm => &[(Post, Key)],
            Route::Cdn { .. } => &[(Get, Public), (Head, Public)],
            Route::Health => &[(Get, Open), (Head, Open)],
            Route::ImageBlock(_) => &[(Post, KeyOrAdmin), (Get, KeyOrAdmin), (Delete, KeyOrAdmin)],
            Route::Blocks => &[(Get, KeyOrAdmin)],
            Route::Aliases => &[(Get, Key)],
            Route::Alias(_) => &[(Get, Key), (Put, Key), (Delete, Key)],
        }
    }

    /// How the query is read before authentication.
    pub fn query(&self) -> Query {
        match self {
            Route::Live | Route::Regenerate => Query::Live,
            Route::Cdn { .. } => Query::Public,
            _ => Query::Later,
        }
    }

    /// When the per-client limits apply.
    pub fn client_limits(&self) -> ClientLimits {
        match self {
            Route::Live => ClientLimits::WhenSigned,
            Route::Cdn { .. } => ClientLimits::Always,
            _ => ClientLimits::Never,
        }
    }

    /// Whether the route answers with an image through the live pipeline
    /// (`api::live::get`).
    pub fn is_live(&self) -> bool {
        matches!(self, Route::Live | Route::Regenerate | Route::Cdn { .. })
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> String {
        self.methods().iter().map(|(m, _)| m.name()).collect::<Vec<_>>().join(", ")
    }

    /// Who may call this route with `method`; 405 when it is not answered.
    pub fn auth(&self, method: Method) -> Result<Auth, Error> {
        self.methods()
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, auth)| *auth)
            .ok_or_else(|| Error::MethodNotAllowed(self.allow()))
    }
}

/// Path and method → the route and who may call it: 404 or 405 otherwise.
pub fn resolve(path: &str, method: Method) -> Result<(Route, Auth), Error> {
    let route = route(path).ok_or(Error::NotFound("no such route"))?;
    let auth = route.auth(method)?;
    Ok((route, auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(route("/api/v1/live/generate"), Some(Route::Live));
        assert_eq!(route("/api/v1/live/stats"), Some(Route::Stats));
        assert_eq!(route("/api/v1/projects/ab-12/rotate"), Some(Route::Rotate("ab-12".into())));
        assert_eq!(route("/api/v1/projects//rotate"), None);
        assert_eq!(route("/api/v1/projects/ab-12"), Some(Route::Project("ab-12".into())));
        assert_eq!(route("/api/v1/projects/ab/12"), None);
        assert_eq!(route("/api/v1/projects/a/b/rotate"), None);
        assert_eq!(route(&format!("/api/v1/projects/{}/rotate", "a".repeat(65))), None);
        assert_eq!(route("/api/v1/live/generate/"), None);
        assert_eq!(route("/"), Some(Route::DemoPage));
        assert_eq!(route("/index.html"), None);
    }

    #[test]
    fn each_method_has_its_credentials() {
        assert_eq!(resolve(LIVE_PATH, Method::Get), Ok((Route::Live, Auth::KeyOrSignature)));
        assert_eq!(resolve(LIVE_PATH, Method::Head), Ok((Route::Live, Auth::KeyOrSignature)));
        // Signed URLs may read but never purge.
        assert_eq!(resolve(LIVE_PATH, Method::Delete), Ok((Route::Live, Auth::Key)));
        assert_eq!(resolve("/api/v1/live/sign", Method::Post), Ok((Route::Sign, Auth::Key)));
        assert_eq!(resolve("/api/v1/live/stats", Method::Get), Ok((Route::Stats, Auth::Key)));
        assert_eq!(resolve("/api/v1/projects", Method::Post), Ok((Route::Projects, Auth::Admin)));
        assert_eq!(
            resolve("/api/v1/projects/p/rotate", Method::Post),
            Ok((Route::Rotate("p".into()), Auth::Admin))
        );
        assert_eq!(
            resolve("/api/v1/projects/p", Method::Patch),
            Ok((Route::Project("p".into()), Auth::Admin))
        );
        assert_eq!(resolve("/", Method::Head), Ok((Route::DemoPage, Auth::Demo)));
        assert_eq!(resolve("/api/v1/demo/sign", Method::Post), Ok((Route::DemoSign, Auth::Demo)));
        assert_eq!(resolve("/api/v1/demo/stats", Method::Get), Ok((Route::DemoStats, Auth::Demo)));
        assert_eq!(resolve("/api/v1/scopes", Method::Post), Ok((Route::Scopes, Auth::Key)));
        assert_eq!(
            resolve("/api/v1/scopes/hero", Method::Patch),
            Ok((Route::Scope("hero".into()), Auth::Key))
        );
        assert_eq!(resolve("/api/v1/live/regenerate", Method::Post), Ok((Route::Regenerate, Auth::Key)));
        assert_eq!(resolve("/api/v1/health", Method::Get), Ok((Route::Health, Auth::Open)));
        assert_eq!(
            resolve("/api/v1/images/0d56ce37-e090/block", Method::Post),
            Ok((Route::ImageBlock("0d56ce37-e090".into()), Auth::KeyOrAdmin))
        );
        assert_eq!(route("/api/v1/images/a/b/block"), None);
        assert_eq!(resolve("/api/v1/blocks", Method::Get), Ok((Route::Blocks, Auth::KeyOrAdmin)));
        let cdn = Route::Cdn { project: "my-blog".into(), scope: "hero".into() };
        assert_eq!(resolve("/cdn/my-blog/live/hero", Method::Get), Ok((cdn, Auth::Public)));
        assert_eq!(route("/cdn/my-blog/live/Hero"), None);
        assert_eq!(route("/cdn/my-blog/hero"), None);
        assert_eq!(route("/api/v1/scopes/Bad_Slug"), None);
    }

    #[test]
    fn the_table_says_how_queries_are_read_and_who_is_held_to_client_limits() {
        let cdn = Route::Cdn { project: "p".into(), scope: "s".into() };
        assert_eq!(
            (Route::Live.query(), Route::Live.client_limits()),
            (Query::Live, ClientLimits::WhenSigned)
        );
        assert_eq!(
            (Route::Regenerate.query(), Route::Regenerate.client_limits()),
            (Query::Live, ClientLimits::Never)
        );
        assert_eq!((cdn.query(), cdn.client_limits()), (Query::Public, ClientLimits::Always));
        assert_eq!(
            (Route::Entries.query(), Route::Entries.client_limits()),
            (Query::Later, ClientLimits::Never)
        );
        assert!(cdn.is_live() && Route::Regenerate.is_live() && !Route::Sign.is_live());
    }

    #[test]
    fn unknown_paths_are_404_and_unanswered_methods_405_with_allow() {
        assert_eq!(resolve("/nope", Method::Get), Err(Error::NotFound("no such route")));
        assert_eq!(
            resolve(LIVE_PATH, Method::Post),
            Err(Error::MethodNotAllowed("GET, HEAD, DELETE".into()))
        );
        assert_eq!(resolve("/api/v1/live/stats", Method::Other), Err(Error::MethodNotAllowed("GET".into())));
        assert_eq!(resolve("/", Method::Delete), Err(Error::MethodNotAllowed("GET, HEAD".into())));
        assert_eq!(resolve("/api/v1/projects", Method::Get), Err(Error::MethodNotAllowed("POST".into())));
    }
}
