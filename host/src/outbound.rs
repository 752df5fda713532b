//! The outbound allow-list, as Spin enforces `allowed_outbound_hosts`: every
//! request the component sends is checked in the `wasi:http` send hook and
//! refused with `HttpRequestDenied` unless its scheme, host and port match an
//! entry. Entries are `scheme://host[:port]` where scheme, host and port may be
//! `*` and a host may be `*.suffix`; a missing port is the scheme's default.
//! Allowed requests go through one pooled keep-alive client per process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Suffix(String),
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    pub fn parse(entry: &str) -> anyhow::Result<AllowedHost> {
        let (scheme, rest) = entry
            .split_once("://")
            .with_context(|| format!("allowed outbound host {entry:?} needs a scheme, like https://host"))?;
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            bail!("allowed outbound host {entry:?} must not have a path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
        };
        let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
        let port = match port {
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().with_context(|| format!("bad port in {entry:?}"))?),
            None => match scheme.as_deref().map(default_port) {
                Some(Some(p)) => Some(p),
                _ => bail!("allowed outbound host {entry:?} needs a port for its scheme"),
            },
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostPattern::Suffix(format!(".{suffix}"))
        } else if host.is_empty() {
            bail!("allowed outbound host {entry:?} has no host");
        } else {
            HostPattern::Exact(host)
        };
        Ok(AllowedHost { scheme, host, port })
    }

    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => *h == host,
                HostPattern::Suffix(s) => host.ends_with(s.as_str()),
            }
    }
}

/// The policy the host applies to every outbound request of the component.
#[derive(Debug, Clone, Default)]
pub struct AllowList(pub Arc<Vec<AllowedHost>>);

impl AllowList {
    pub fn allows_uri(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let Some(port) = uri.port_u16().or_else(|| default_port(scheme)) else {
            return false;
        };
        self.0.iter().any(|a| a.allows(scheme, host, port))
    }
}

/// One pooled keep-alive HTTP(S) client per host process: the component's
/// outbound requests (S3 above all) reuse connections instead of opening one
/// per request.
pub type PooledClient = Client<HttpsConnector<HttpConnector>, WasiBody>;

pub fn pooled_client() -> PooledClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build(connector())
}

/// HTTP and HTTPS (rustls, webpki roots): the component's calls and the OTLP
/// exporter's.
pub fn connector() -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    // The provider is named, not guessed: feature unification in a workspace
    // can enable more than one rustls backend.
    HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .expect("ring supports the default TLS versions")
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// The `wasi:http` hooks of every request's store: allow-list, then the pool;
/// each call counted (`--metrics-listen`) and traced (under the request's
/// span) by its target.
#[derive(Clone)]
pub struct Outbound {
    pub allow: AllowList,
    pub client: PooledClient,
    /// `host:port` of the configured S3 endpoint: calls to it are `s3`,
    /// every other call is `provider` (image and text models).
    pub s3_authority: Option<String>,
    pub metrics: Option<Arc<crate::ops::Metrics>>,
    /// The request's span, set per request when traces are exported.
    pub parent: Option<crate::telemetry::Parent>,
    /// `--object-cache`: GETs of the bucket's objects answered from disk.
    pub objects: Option<Arc<crate::object_cache::ObjectCache>>,
    /// The copies handed to this request's component (set per request).
    pub handed: crate::object_cache::Handed,
}

impl Outbound {
    pub fn new(
        allow: AllowList,
        s3_endpoint: Option<&str>,
        metrics: Option<Arc<crate::ops::Metrics>>,
        objects: Option<Arc<crate::object_cache::ObjectCache>>,
    ) -> Outbound {
        let s3_authority = s3_endpoint
            .and_then(|e| e.parse::<http::Uri>().ok())
            .and_then(|u| Some(authority_with_port(u.scheme_str()?, u.host()?, u.port_u16())));
        let handed = Default::default();
        Outbound { allow, client: pooled_client(), s3_authority, metrics, parent: None, objects, handed }
    }

    fn target(&self, uri: &http::Uri) -> &'static str {
        let authority =
            uri.scheme_str().zip(uri.host()).map(|(s, h)| authority_with_port(s, h, uri.port_u16()));
        match (authority, &self.s3_authority) {
            (Some(a), Some(s3)) if a == *s3 => "s3",
            _ => "provider",
        }
    }
}

fn authority_with_port(scheme: &str, host: &str, port: Option<u16>) -> String {
    let port = port.or_else(|| default_port(scheme)).unwrap_or(0);
    format!("{}:{port}", host.to_ascii_lowercase())
}

type IoFuture = Box<dyn std::future::Future<Output = Result<(), Error>> + Send>;
type SendFuture =
    Box<dyn std::future::Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        _ = fut;
        let target = self.target(request.uri());
        let metrics = self.metrics.clone();
        if !self.allow.allows_uri(request.uri()) {
            let uri = request.uri();
            tracing::warn!(
                "outbound request to {}://{} denied: not in allowed_outbound_hosts",
                uri.scheme_str().unwrap_or("?"),
                uri.authority().map(|a| a.as_str()).unwrap_or("?")
            );
            if let Some(m) = &metrics {
                m.outbound(target, "denied", None);
            }
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let mut fill = None;
        // A DELETE or PUT drops the copy before it goes, and again once S3
        // has answered (a fill that raced with it is not kept either way).
        let mut forget_after = None;
        if let (Some(objects), "s3") = (&self.objects, target) {
            use crate::object_cache::Lookup;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            match *request.method() {
                http::Method::GET => match objects.lookup(&request, now.as_secs()) {
                    Lookup::Hit(meta, bytes) => {
                        if let Some(m) = &metrics {
                            m.outbound(target, "cached", None);
                        }
                        let token = self.handed.hand(bytes.clone());
                        let response = crate::object_cache::response(&meta, bytes, &token);
                        return Box::new(async { Ok((response, Box::new(async { Ok(()) }) as IoFuture)) });
                    }
                    Lookup::Miss(f) => fill = Some(f),
                    Lookup::Pass => {}
                },
                http::Method::HEAD => {}
                _ => {
                    objects.forget(request.uri());
                    forget_after = Some((objects.clone(), request.uri().clone()));
                }
            }
        }
        let span = self.parent.as_ref().map(|p| {
            let (method, host) =
                (request.method().to_string(), request.uri().host().unwrap_or("").to_string());
            p.outbound(target, request.headers_mut(), &method, &host)
        });
        let client = self.client.clone();
        let first_byte = options.and_then(|o| o.first_byte_timeout).unwrap_or(Duration::from_secs(600));
        Box::new(async move {
            let started = std::time::Instant::now();
            let answer = tokio::time::timeout(first_byte, client.request(request)).await;
            let outcome = match &answer {
                Err(_) => Err("timeout"),
                Ok(Err(e)) if e.is_connect() => Err("refused"),
                Ok(Err(_)) => Err("error"),
                Ok(Ok(response)) => Ok(response.status().as_u16()),
            };
            if let Some(m) = &metrics {
                m.outbound(target, crate::ops::outcome(outcome), Some(started.elapsed()));
            }
            if let Some(span) = span {
                crate::telemetry::end_outbound(span, outcome);
            }
            if let Some((objects, uri)) = forget_after {
                objects.forget(&uri);
            }
            let response = match answer {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Err(e)) if e.is_connect() => return Err(Error::ConnectionRefused),
                Ok(Err(_)) => return Err(Error::HttpProtocolError),
                Ok(Ok(response)) => response,
            };
            let response = response.map(|body| body.map_err(Error::Hyper).boxed_unsync());
            let response = match fill {
                Some(fill) => fill.wrap(response),
                None => response,
            };
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList(Arc::new(entries.iter().map(|e| AllowedHost::parse(e).unwrap()).collect()))
    }

    fn allowed(l: &AllowList, uri: &str) -> bool {
        l.allows_uri(&uri.parse().unwrap())
    }

    #[test]
    fn exact_entries_match_scheme_host_and_port() {
        let l = list(&["http://127.0.0.1:3900", "https://generativelanguage.googleapis.com"]);
        assert!(allowed(&l, "http://127.0.0.1:3900/bucket/key?x=1"));
        assert!(!allowed(&l, "http://127.0.0.1:3901/"));
        assert!(!allowed(&l, "https://127.0.0.1:3900/"));
        assert!(allowed(&l, "https://generativelanguage.googleapis.com/v1beta/x"));
        assert!(allowed(&l, "https://GenerativeLanguage.googleapis.com:443/"));
        assert!(!allowed(&l, "http://generativelanguage.googleapis.com/"));
        assert!(!allowed(&l, "https://evil.example/"));
    }

    #[test]
    fn wildcards_work_like_spin() {
        let l = list(&["https://*.example.com", "*://localhost:*"]);
        assert!(allowed(&l, "https://a.example.com/"));
        assert!(!allowed(&l, "https://example.com.evil/"));
        assert!(allowed(&l, "http://localhost:1234/"));
        assert!(allowed(&list(&["*://*:*"]), "http://anything:9/"));
    }

    #[test]
    fn malformed_entries_are_refused() {
        assert!(AllowedHost::parse("example.com").is_err());
        assert!(AllowedHost::parse("https://example.com/path").is_err());
        assert!(AllowedHost::parse("ftp://example.com").is_err());
        assert!(AllowedHost::parse("http://h:port").is_err());
    }
}
