//! What the bench measures besides the in-process banatie-host: the real
//! `spin up` serving the same `.wasm`, nginx (static files and a proxy in
//! front of Garage), and s3s-fs as an S3 server in a process of its own.
//! Each is a child process on 127.0.0.1, killed when dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A child process in a process group of its own, the whole group killed on
/// drop (`spin up` runs `spin trigger http` as a child, nginx its workers).
pub struct Proc {
    child: Child,
    pub base: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group; no memory is involved.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Wait until `url` answers anything over HTTP.
fn wait_for(url: &str, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if crate::agent().get(url).call().is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited ({status}) before it answered");
        }
        if Instant::now() > deadline {
            bail!("{what} did not answer {url} within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `spin up` with the same manifest and variables as the in-process host,
/// its own state dir (Spin's own SQLite key-value store).
pub fn spin(root: &Path, vars: &[(&str, &str)], state: &Path) -> anyhow::Result<Proc> {
    spin_from(&root.join("spin.toml"), vars, state)
}

/// The same, from the manifest `manifest` (Spin 3.6).
pub fn spin_from(manifest: &Path, vars: &[(&str, &str)], state: &Path) -> anyhow::Result<Proc> {
    spin_version_from(testkit::spin::Spin::V3, manifest, vars, state)
}

/// The same, with Spin `version` (3.6 or 4.0.2).
pub fn spin_version_from(
    version: testkit::spin::Spin,
    manifest: &Path,
    vars: &[(&str, &str)],
    state: &Path,
) -> anyhow::Result<Proc> {
    let bin = testkit::spin::binary(version)
        .with_context(|| format!("no spin CLI {version:?} (PATH or ../shared/spin*/install.sh)"))?;
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg("up")
        .arg("--from")
        .arg(manifest)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(state);
    for (k, v) in vars {
        cmd.arg("--variable").arg(format!("{k}={v}"));
    }
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting spin up")?;
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/api/v1/bench-nothing"), &mut child, "spin up")?;
    Ok(Proc { child, base })
}

/// nginx serving `root` as static files (sendfile) at `/static/`, and
/// proxying `/proxy/` to `upstream` (`host:port`) over kept-alive connections.
pub fn nginx(dir: &Path, root: &Path, upstream: &str) -> anyhow::Result<Proc> {
    let port = free_port();
    let conf = dir.join("nginx.conf");
    std::fs::create_dir_all(dir.join("logs"))?;
    std::fs::write(
        &conf,
        format!(
            r#"
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream s3 {{ server {upstream}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{ alias {root}/; }}
        location /proxy/ {{
            proxy_pass http://s3/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host {upstream};
            proxy_buffering off;
        }}
    }}
}}
"#,
            dir = dir.display(),
            root = root.display(),
        ),
    )?;
    let mut child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx (Debian: apt-get install -y nginx-light)")?;
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/static/"), &mut child, "nginx")?;
    Ok(Proc { child, base })
}

/// s3s-fs (the S3 server `--dev` embeds, which answers small objects without
/// Garage's delayed-ACK stall) in a process of its own: this binary, run as
/// `bench s3s-fs DIR`, prints its endpoint. Same bucket and key pair as the
/// test Garage, so `testkit::s3` works against it.
pub fn s3s_fs(dir: &Path) -> anyhow::Result<Proc> {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("s3s-fs")
        .arg(dir)
        .process_group(0)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting s3s-fs")?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let base = line.trim().to_string();
    if !base.starts_with("http://") {
        bail!("s3s-fs printed {line:?}");
    }
    Ok(Proc { child, base })
}

/// The `s3s-fs DIR` subcommand: print the endpoint, serve until killed.
pub fn serve_s3s_fs(dir: PathBuf) -> anyhow::Result<()> {
    use testkit::garage::{BUCKET, KEY_ID, SECRET};
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let endpoint = banatie_host::dev::s3::start(&dir, BUCKET, KEY_ID, SECRET).await?;
        println!("{endpoint}");
        std::future::pending::<anyhow::Result<()>>().await
    })
}
