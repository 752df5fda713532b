//! `--dev`: a project to try the live URL with, created through the
//! component's own admin API on first start and remembered in the state dir;
//! the demo page (`/`) signs for it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::config::ConfigVars;

const FILE: &str = "dev-project.json";

pub struct DevProject {
    pub id: String,
    pub api_key: String,
}

fn read(body: &[u8]) -> Option<DevProject> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(DevProject {
        id: v.get("project_id")?.as_str()?.to_string(),
        api_key: v.get("api_key")?.as_str()?.to_string(),
    })
}

/// Serve the demo page for the dev project from now on.
pub fn enable_demo(vars: &RwLock<Arc<ConfigVars>>, project_id: &str) {
    if let Ok(mut current) = vars.write() {
        let mut next = (**current).clone();
        next.0.insert("demo_project_id".into(), project_id.into());
        *current = Arc::new(next);
    }
}

/// The dev project: remembered, or created now.
pub async fn ensure(addr: SocketAddr, admin_token: &str, state_dir: &Path) -> anyhow::Result<DevProject> {
    let file = state_dir.join(FILE);
    if let Some(project) = std::fs::read(&file).ok().and_then(|b| read(&b)) {
        return Ok(project);
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
    let project = read(&body).context("POST /api/v1/projects answered no project_id/api_key")?;
    crate::private_file::write(&file, &body)?;
    Ok(project)
}
