//! `--dev`: zero-setup local mode. Starts an embedded S3 endpoint on loopback
//! (backed by a folder in the state dir) and a stand-in provider that speaks
//! OpenAI's and Gemini's REST shapes, draws a deterministic picture from the
//! prompt and answers after a wait (`--dev-wait-ms`), streaming previews when
//! asked, and supplies the variables that point the component at them (the
//! OpenAI shape in a new state dir, so the demo shows previews; Gemini's in
//! one an earlier `--dev` wrote: [`standin_provider`]). Anything the user sets
//! explicitly wins; with a `gemini_api_key` or an `openai_api_key` the real
//! provider is used.
//! `project` writes a dev project into the store before the host listens.

pub mod picture;
pub mod project;
pub mod provider;
pub mod s3;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

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
    let standin = standin_provider(state_dir)?;
    let services = start(state_dir, wait).await?;
    let given = |name: &str| cli.contains_key(name) || env(&crate::variables::env_name(name)).is_some();
    let user_key = given("gemini_api_key") || given("openai_api_key");
    tracing::info!(
        "--dev: embedded S3 at {} (folder {})",
        services.s3_endpoint,
        state_dir.join("dev-s3").display()
    );
    if user_key {
        tracing::info!("--dev: a provider key given: using the real provider");
    } else {
        tracing::info!(
            "--dev: STAND-IN provider at {} in {}'s shape (this state dir's dev-provider): placeholder pictures after {} ms, not real generations",
            services.provider_url,
            standin.name(),
            wait.as_millis()
        );
    }
    Ok(variables(&services, (!user_key).then_some(standin)))
}

/// The shape the stand-in is used in, remembered per state dir in
/// `dev-provider`: OpenAI's for a new state dir (it streams previews, so the
/// demo shows them), Gemini's for one an earlier `--dev` wrote before the
/// stand-in spoke OpenAI (found by its `dev-s3` folder). The provider is in
/// every cache key (`core::decide::cache_key`), and a state dir's stored
/// images are a contract: they keep being HITs after an upgrade. Called
/// before the embedded S3 creates `dev-s3`.
pub fn standin_provider(state_dir: &Path) -> anyhow::Result<StandIn> {
    let remembered = state_dir.join("dev-provider");
    let shape = match std::fs::read_to_string(&remembered) {
        Ok(text) if text.trim() == "gemini" => StandIn::Gemini,
        Ok(text) if text.trim() == "openai" => StandIn::OpenAi,
        Ok(text) => anyhow::bail!("{}: {:?} is neither gemini nor openai", remembered.display(), text.trim()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let shape = match state_dir.join("dev-s3").exists() {
                true => StandIn::Gemini,
                false => StandIn::OpenAi,
            };
            std::fs::write(&remembered, format!("{}\n", shape.name()))
                .with_context(|| format!("cannot write {}", remembered.display()))?;
            shape
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", remembered.display())),
    };
    Ok(shape)
}

/// Which provider shape the stand-in is used in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIn {
    OpenAi,
    Gemini,
}

impl StandIn {
    pub fn name(self) -> &'static str {
        match self {
            StandIn::OpenAi => "openai",
            StandIn::Gemini => "gemini",
        }
    }
}

/// Variables `--dev` supplies. `standin` is `None` when the user gave a
/// provider key: then the real provider is used.
pub fn variables(services: &DevServices, standin: Option<StandIn>) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("s3_endpoint".into(), services.s3_endpoint.clone());
    v.insert("s3_bucket".into(), DEV_BUCKET.into());
    v.insert("s3_access_key_id".into(), DEV_ACCESS_KEY.into());
    v.insert("s3_secret_access_key".into(), DEV_SECRET_KEY.into());
    // The demo page makes signed misses from one browser: room to try it.
    v.insert("client_misses_per_hour".into(), "1000".into());
    if let Some(standin) = standin {
        // Both shapes point at the stand-in (a `models` list may name either);
        // `provider` is the remembered one (Gemini is the component's default).
        if standin == StandIn::OpenAi {
            v.insert("provider".into(), "openai".into());
        }
        v.insert("openai_base_url".into(), services.provider_url.clone());
        v.insert("openai_api_key".into(), "dev-stand-in".into());
        v.insert("gemini_base_url".into(), services.provider_url.clone());
        v.insert("gemini_api_key".into(), "dev-stand-in".into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_state_dir_gets_openais_shape_and_remembers_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(standin_provider(dir.path()).unwrap(), StandIn::OpenAi);
        assert_eq!(std::fs::read_to_string(dir.path().join("dev-provider")).unwrap(), "openai\n");
        // Its own dev-s3 later does not turn it into an old one.
        std::fs::create_dir(dir.path().join("dev-s3")).unwrap();
        assert_eq!(standin_provider(dir.path()).unwrap(), StandIn::OpenAi);
    }

    #[test]
    fn a_state_dir_an_earlier_dev_wrote_keeps_geminis_shape() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dev-s3")).unwrap();
        assert_eq!(standin_provider(dir.path()).unwrap(), StandIn::Gemini);
        assert_eq!(std::fs::read_to_string(dir.path().join("dev-provider")).unwrap(), "gemini\n");
        let services = DevServices { s3_endpoint: "http://s3".into(), provider_url: "http://p".into() };
        let gemini = variables(&services, Some(StandIn::Gemini));
        assert_eq!(gemini.get("provider"), None, "the component's default, as before");
        assert_eq!(
            variables(&services, Some(StandIn::OpenAi)).get("provider").map(String::as_str),
            Some("openai")
        );
        std::fs::write(dir.path().join("dev-provider"), "dall-e\n").unwrap();
        let refused = standin_provider(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("neither gemini nor openai"), "{refused}");
    }
}
