//! `--dev`: zero-setup local mode. Starts an embedded S3 endpoint on loopback
//! (backed by a folder in the state dir) and a stand-in provider that speaks
//! Gemini's REST shape and draws a deterministic picture from the prompt, and
//! supplies the variables that point the component at them. Anything the user
//! sets explicitly wins; with a `gemini_api_key` the real Gemini is used.

pub mod picture;
pub mod project;
pub mod provider;
pub mod s3;

use std::collections::BTreeMap;
use std::path::Path;

pub const DEV_BUCKET: &str = "banatie";
pub const DEV_ACCESS_KEY: &str = "dev-access-key";
pub const DEV_SECRET_KEY: &str = "dev-secret-key";

/// Serve `service` on an ephemeral 127.0.0.1 port in the background; returns
/// `http://ADDR`. The dev S3 endpoint and the stand-in provider both use it.
pub async fn serve_loopback<S, B>(service: S) -> anyhow::Result<String>
where
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let service = service.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

pub struct DevServices {
    pub s3_endpoint: String,
    pub provider_url: String,
}

pub async fn start(state_dir: &Path) -> anyhow::Result<DevServices> {
    let s3_endpoint =
        s3::start(&state_dir.join("dev-s3"), DEV_BUCKET, DEV_ACCESS_KEY, DEV_SECRET_KEY).await?;
    let provider_url = provider::start().await?;
    Ok(DevServices { s3_endpoint, provider_url })
}

/// Variables `--dev` supplies. `use_standin` is false when the user gave a
/// Gemini key: then the real provider is used.
pub fn variables(services: &DevServices, use_standin: bool, admin_token: &str) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("s3_endpoint".into(), services.s3_endpoint.clone());
    v.insert("s3_bucket".into(), DEV_BUCKET.into());
    v.insert("s3_access_key_id".into(), DEV_ACCESS_KEY.into());
    v.insert("s3_secret_access_key".into(), DEV_SECRET_KEY.into());
    v.insert("admin_token".into(), admin_token.into());
    if use_standin {
        v.insert("gemini_base_url".into(), services.provider_url.clone());
        v.insert("gemini_api_key".into(), "dev-stand-in".into());
    }
    v
}
