//! `--dev`: zero-setup local mode. Starts an embedded S3 endpoint on loopback
//! (backed by a folder in the state dir) and a stand-in provider that speaks
//! OpenAI's and Gemini's REST shapes, draws a deterministic picture from the
//! prompt and answers after a wait (`--dev-wait-ms`), streaming previews when
//! asked, and supplies the variables that point the component at them (the
//! OpenAI shape first, so the demo shows previews). Anything the user sets
//! explicitly wins; with a `gemini_api_key` or an `openai_api_key` the real
//! provider is used.
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

/// `--dev-wait-ms` unless given: a few seconds, as a real provider takes.
pub const DEFAULT_WAIT_MS: u64 = 3000;

pub async fn start(state_dir: &Path, wait: std::time::Duration) -> anyhow::Result<DevServices> {
    let s3_endpoint =
        s3::start(&state_dir.join("dev-s3"), DEV_BUCKET, DEV_ACCESS_KEY, DEV_SECRET_KEY).await?;
    let provider_url = provider::start(wait).await?;
    Ok(DevServices { s3_endpoint, provider_url })
}

/// Start the dev services and return the variables `--dev` supplies (the
/// lowest precedence: anything the user sets wins). With a `gemini_api_key`
/// from the user, the real Gemini is used instead of the stand-in.
pub async fn prepare(
    state_dir: &Path,
    cli: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
    wait: std::time::Duration,
) -> anyhow::Result<BTreeMap<String, String>> {
    let services = start(state_dir, wait).await?;
    let given = |name: &str| cli.contains_key(name) || env(&crate::variables::env_name(name)).is_some();
    let user_gemini = given("gemini_api_key") || given("openai_api_key");
    tracing::info!(
        "--dev: embedded S3 at {} (folder {})",
        services.s3_endpoint,
        state_dir.join("dev-s3").display()
    );
    if user_gemini {
        tracing::info!("--dev: a provider key given: using the real provider");
    } else {
        tracing::info!(
            "--dev: STAND-IN provider at {}: placeholder pictures after {} ms, not real generations",
            services.provider_url,
            wait.as_millis()
        );
    }
    Ok(variables(&services, !user_gemini))
}

/// Variables `--dev` supplies. `use_standin` is false when the user gave a
/// provider key: then the real provider is used.
pub fn variables(services: &DevServices, use_standin: bool) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("s3_endpoint".into(), services.s3_endpoint.clone());
    v.insert("s3_bucket".into(), DEV_BUCKET.into());
    v.insert("s3_access_key_id".into(), DEV_ACCESS_KEY.into());
    v.insert("s3_secret_access_key".into(), DEV_SECRET_KEY.into());
    // The demo page makes signed misses from one browser: room to try it.
    v.insert("client_misses_per_hour".into(), "1000".into());
    if use_standin {
        // OpenAI's shape by default (it streams previews); Gemini's too, for
        // a `models` list that names it.
        v.insert("provider".into(), "openai".into());
        v.insert("openai_base_url".into(), services.provider_url.clone());
        v.insert("openai_api_key".into(), "dev-stand-in".into());
        v.insert("gemini_base_url".into(), services.provider_url.clone());
        v.insert("gemini_api_key".into(), "dev-stand-in".into());
    }
    v
}
