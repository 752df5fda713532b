//! The `--dev` S3 endpoint: s3s-fs (an S3 service over a folder, checking
//! SigV4 with one key pair) on 127.0.0.1, path-style.

use std::path::Path;

use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// Start on an ephemeral loopback port with `bucket` present; returns the endpoint URL.
pub async fn start(root: &Path, bucket: &str, access_key: &str, secret_key: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(root.join(bucket))?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("dev S3 folder: {e:?}"))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
    super::serve_loopback(builder.build()).await
}
