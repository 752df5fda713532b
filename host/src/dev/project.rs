//! `--dev`: a project to try the live URL with, created through the
//! component's own admin API on first start and remembered in the state dir.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const FILE: &str = "dev-project.json";

/// The dev project's API key: remembered, or created now.
pub async fn ensure(addr: SocketAddr, admin_token: &str, state_dir: &Path) -> anyhow::Result<String> {
    let file = state_dir.join(FILE);
    if let Ok(text) = std::fs::read_to_string(&file) {
        let v: serde_json::Value = serde_json::from_str(&text).context("dev-project.json")?;
        if let Some(key) = v.get("api_key").and_then(|k| k.as_str()) {
            return Ok(key.to_string());
        }
    }
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::post("/api/v1/projects")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {admin_token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"name":"dev"}"#)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != 201 {
        bail!("POST /api/v1/projects answered {status}: {}", String::from_utf8_lossy(&body));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let key = v.get("api_key").and_then(|k| k.as_str()).context("no api_key in answer")?.to_string();
    std::fs::write(&file, &body)?;
    Ok(key)
}
