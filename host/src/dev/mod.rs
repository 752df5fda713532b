//! `--dev`: zero-setup local mode. Starts an embedded S3 endpoint on loopback
//! (backed by a folder in the state dir) and a stand-in provider that speaks
//! Gemini's REST shape and draws a deterministic picture from the prompt, and
//! supplies the variables that point the component at them. Anything the user
//! sets explicitly wins; with a `gemini_api_key` the real Gemini is used.
//! `project` writes a dev project into the store before the host listens.

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
            // Headers and body go out in separate writes: without NODELAY,
            // Nagle holds the body until the client's delayed ACK (~40 ms).
            let _ = stream.set_nodelay(true);
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

/// Start the dev services and return the variables `--dev` supplies (the
/// lowest precedence: anything the user sets wins). With a `gemini_api_key`
/// from the user, the real Gemini is used instead of the stand-in.
pub async fn prepare(
    state_dir: &Path,
    cli: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let services = start(state_dir).await?;
    let user_gemini =
        cli.contains_key("gemini_api_key") || env(&crate::variables::env_name("gemini_api_key")).is_some();
    tracing::info!(
        "--dev: embedded S3 at {} (folder {})",
        services.s3_endpoint,
        state_dir.join("dev-s3").display()
    );
    if user_gemini {
        tracing::info!("--dev: gemini_api_key given: using the real Gemini API");
    } else {
        tracing::info!(
            "--dev: STAND-IN provider at {}: placeholder pictures, not real generations",
            services.provider_url
        );
    }
    Ok(variables(&services, !user_gemini))
}

/// Variables `--dev` supplies. `use_standin` is false when the user gave a
/// Gemini key: then the real provider is used.
pub fn variables(services: &DevServices, use_standin: bool) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("s3_endpoint".into(), services.s3_endpoint.clone());
    v.insert("s3_bucket".into(), DEV_BUCKET.into());
    v.insert("s3_access_key_id".into(), DEV_ACCESS_KEY.into());
    v.insert("s3_secret_access_key".into(), DEV_SECRET_KEY.into());
    // The demo page makes signed misses from one browser: room to try it.
    v.insert("client_misses_per_hour".into(), "1000".into());
    if use_standin {
        v.insert("gemini_base_url".into(), services.provider_url.clone());
        v.insert("gemini_api_key".into(), "dev-stand-in".into());
    }
    v
}
