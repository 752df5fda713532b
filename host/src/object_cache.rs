//! `--object-cache DIR`: the S3 objects the component reads, kept on local
//! disk and answered from there, so a HIT does not carry its bytes from S3.
//!
//! What it answers, and why that can never be a stale or a forbidden image:
//! - **Objects are immutable.** Every generation and every variant is
//!   stored under a new object key (`banatie_core::stored::keys`); purge and
//!   regenerate delete the old key and its entry. Once an entry is gone the
//!   component never asks for its old object again, so a copy of an object
//!   by key is that object for as long as anyone can ask for it.
//! - **DELETE drops it.** A DELETE (or PUT) the component sends for a key
//!   drops the local copy before it goes to S3, and a copy being filled while
//!   one happens is not kept.
//! - **Several hosts on one store.** When host A purges, host B's component
//!   finds the entry gone in the shared KV store and never asks B's cache for
//!   the old key; B's copy is only evicted later, by size.
//! - **Only what S3 would answer.** A GET is answered from a copy only when
//!   it is a presigned GET of the configured bucket signed with the app's own
//!   S3 credentials and still valid (`banatie_core::s3::Signer::verify_get`,
//!   the component's own signer): a component without those credentials
//!   cannot read through the cache what S3 would refuse it. Anything else
//!   goes to S3 as it is, and is not kept.
//! - **Never a damaged copy.** Each copy's length and SHA-256 are written
//!   beside it; the length is checked on every read and the hash on a copy's
//!   first read by this process (copies this process filled are known good),
//!   so a file damaged on disk or while the host was stopped is dropped and
//!   fetched again, never served. (A file changed under a running host after
//!   its first read is outside this: the directory is the host's.)
//!
//! Bounded by construction: at most `--object-cache-size` bytes of copies
//! (least recently used evicted first; an object larger than an eighth of it
//! is not kept), plus the objects being filled (one fill per object at a
//! time). The bytes of a copy never go through the component: the answer
//! made from a copy carries a token for this request ([`Handed`],
//! `core::http::headers::HOST_OBJECT`), the component answers the token instead of
//! streaming the body, and the host sends the copy, read with one read into
//! the buffer it writes to the client.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::Context as _;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime_wasi_http::{Error, WasiBody};

use banatie_core::config::S3Config;
use banatie_core::decide::cache_key::hex;
use banatie_core::s3::{SignedGet, Signer};

/// How many checked presigned GETs are kept (about 2 MiB at most).
const SIGNED_URLS: usize = 4096;

/// `--object-cache-size` when not given.
pub const DEFAULT_SIZE: u64 = 1 << 30;

/// What is written beside each copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    key: String,
    len: u64,
    sha256: String,
    content_type: Option<String>,
    etag: Option<String>,
}

struct Copy {
    meta: Meta,
    /// Its hash was checked by this process (or it was filled by it).
    verified: bool,
}

struct State {
    copies: LruCache<String, Copy>,
    bytes: u64,
    /// The copies being filled, one fill per object at a time (the other
    /// GETs meanwhile go to S3 as they are); `true` once a DELETE or PUT of
    /// that object came meanwhile (the fill is then not kept).
    filling: std::collections::HashMap<String, bool>,
}

pub struct ObjectCache {
    objects: PathBuf,
    tmp: PathBuf,
    capacity: u64,
    signer: Signer,
    /// The endpoint, bucket and credentials: part of every copy's name (a
    /// SHA-256, so no secret is written anywhere).
    scope: String,
    state: Mutex<State>,
    /// Presigned GETs whose signature was checked, by URL ([`SIGNED_URLS`]
    /// of them, least recently asked dropped first: a few hundred bytes each).
    signed: Mutex<LruCache<String, SignedGet>>,
    /// Held while the cache is open (`File::try_lock`).
    _lock: std::fs::File,
}

/// What the cache does with one outbound GET.
pub enum Lookup {
    /// Answered from the copy: S3's answer ([`response`]) and its bytes.
    Hit(Meta, Bytes),
    /// A GET it may keep: send it, then [`Fill::wrap`] the answer.
    Miss(Fill),
    /// Not for the cache: send it as it is.
    Pass,
}

impl ObjectCache {
    /// Open (or make) the cache in `dir`, rebuilding its index from what is
    /// there: copies without their description, or of the wrong length, and
    /// unfinished fills are removed.
    pub fn open(dir: &Path, capacity: u64, s3: &S3Config) -> anyhow::Result<ObjectCache> {
        let signer = Signer::new(s3).map_err(|e| anyhow::anyhow!("--object-cache: {e}"))?;
        let (objects, tmp) = (dir.join("objects"), dir.join("tmp"));
        for d in [&objects, &tmp] {
            std::fs::create_dir_all(d)
                .with_context(|| format!("--object-cache: cannot create {}", d.display()))?;
        }
        // One host per directory: another one's evictions and fills would
        // not be in this one's index.
        let lock = std::fs::File::create(dir.join("lock"))?;
        if lock.try_lock().is_err() {
            anyhow::bail!("--object-cache {}: another banatie-host uses this directory", dir.display());
        }
        for stale in std::fs::read_dir(&tmp)?.flatten() {
            let _ = std::fs::remove_file(stale.path());
        }
        let mut found: Vec<(std::time::SystemTime, String, Meta)> = Vec::new();
        for file in std::fs::read_dir(&objects)?.flatten() {
            let path = file.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            let Some(name) = name.strip_suffix(".meta").map(str::to_string) else {
                if !objects.join(format!("{name}.meta")).exists() {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            };
            let meta: Option<Meta> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let data = std::fs::metadata(objects.join(&name)).ok();
            match (meta, data) {
                (Some(meta), Some(data)) if data.len() == meta.len => {
                    found.push((data.modified().unwrap_or(std::time::UNIX_EPOCH), name, meta))
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(objects.join(&name));
                }
            }
        }
        // Oldest first, so the newest end up the most recently used.
        found.sort_by_key(|(at, _, _)| *at);
        let mut state = State { copies: LruCache::unbounded(), bytes: 0, filling: Default::default() };
        for (_, name, meta) in found {
            state.bytes += meta.len;
            state.copies.push(name, Copy { meta, verified: false });
        }
        let cache = ObjectCache {
            objects,
            tmp,
            capacity,
            signer,
            // The credentials too: a component signing with others finds
            // none of these copies (S3 may not answer it what it answered them).
            scope: format!(
                "{}\n{}\n{}\n{}",
                s3.endpoint,
                s3.bucket,
                s3.access_key_id,
                s3.secret_access_key.expose()
            ),
            state: Mutex::new(state),
            signed: Mutex::new(LruCache::new(std::num::NonZeroUsize::new(SIGNED_URLS).unwrap())),
            _lock: lock,
        };
        let mut state = crate::sync::lock(&cache.state);
        cache.evict(&mut state);
        let (n, bytes) = (state.copies.len(), state.bytes);
        drop(state);
        tracing::info!("object cache {}: {n} objects, {bytes} bytes (of {capacity})", dir.display());
        Ok(cache)
    }

    fn name(&self, key: &str) -> String {
        hex(&Sha256::digest(format!("{}\n{key}", self.scope).as_bytes()))
    }

    /// The object a presigned GET names, when the app's signer made it and
    /// it is valid at `now`. A URL's signature is checked once: its answer
    /// is kept by URL (the component presigns each second anew, so a hot
    /// object's HITs share one URL a second) and only its time checked again.
    fn signed_key(&self, url: &str, now: u64) -> Option<String> {
        let known = crate::sync::lock(&self.signed).get(url).cloned();
        let signed = match known {
            Some(signed) => signed,
            None => {
                let signed = self.signer.signed_get(url)?;
                crate::sync::lock(&self.signed).put(url.to_string(), signed.clone());
                signed
            }
        };
        signed.valid_at(now).then_some(signed.key)
    }

    /// A GET to the S3 endpoint (the caller checked the authority).
    pub fn lookup(self: &Arc<Self>, request: &http::Request<WasiBody>, now: u64) -> Lookup {
        if request.method() != http::Method::GET || request.headers().contains_key(http::header::RANGE) {
            return Lookup::Pass;
        }
        let Some(key) = self.signed_key(&request.uri().to_string(), now) else { return Lookup::Pass };
        // The health route's GET is asked of S3 itself, always.
        if key == banatie_core::stored::keys::HEALTH_OBJECT {
            return Lookup::Pass;
        }
        let name = self.name(&key);
        if let Some((meta, bytes)) = self.read(&name) {
            return Lookup::Hit(meta, bytes);
        }
        let mut state = crate::sync::lock(&self.state);
        if state.filling.contains_key(&name) {
            return Lookup::Pass;
        }
        state.filling.insert(name.clone(), false);
        Lookup::Miss(Fill { cache: self.clone(), name, key })
    }

    /// The copy and its bytes, checked; a damaged copy is dropped (`None`).
    fn read(&self, name: &str) -> Option<(Meta, Bytes)> {
        let (meta, verified) = {
            let mut state = crate::sync::lock(&self.state);
            let copy = state.copies.get(name)?;
            (copy.meta.clone(), copy.verified)
        };
        let path = self.objects.join(name);
        let check = || {
            let bytes = std::fs::read(&path).ok();
            let good = bytes.as_ref().is_some_and(|b| {
                b.len() as u64 == meta.len && (verified || hex(&Sha256::digest(b)) == meta.sha256)
            });
            (bytes, good)
        };
        // A copy's first read hashes it: off the async worker (a read of a
        // copy already checked is one read from the page cache).
        let (bytes, good) = match verified {
            true => check(),
            false => tokio::task::block_in_place(check),
        };
        let mut state = crate::sync::lock(&self.state);
        if !good {
            // Evicted or dropped meanwhile (no longer indexed), or damaged.
            if state.copies.contains(name) {
                tracing::warn!("object cache: the copy of {} is damaged; fetched again", meta.key);
                self.drop_copy(&mut state, name);
            }
            return None;
        }
        if let Some(copy) = state.copies.peek_mut(name) {
            copy.verified = true;
        }
        Some((meta, Bytes::from(bytes?)))
    }

    /// A DELETE or PUT of a key of the bucket: its copy goes first.
    pub fn forget(&self, uri: &http::Uri) {
        let Some(key) = self.signer.key_of(&uri.to_string()) else { return };
        let name = self.name(&key);
        let mut state = crate::sync::lock(&self.state);
        if let Some(cancelled) = state.filling.get_mut(&name) {
            *cancelled = true;
        }
        self.drop_copy(&mut state, &name);
    }

    fn drop_copy(&self, state: &mut State, name: &str) {
        if let Some(copy) = state.copies.pop(name) {
            state.bytes -= copy.meta.len;
        }
        let _ = std::fs::remove_file(self.objects.join(format!("{name}.meta")));
        let _ = std::fs::remove_file(self.objects.join(name));
    }

    fn evict(&self, state: &mut State) {
        while state.bytes > self.capacity {
            let Some((name, _)) = state.copies.peek_lru().map(|(n, c)| (n.clone(), c.meta.len)) else {
                break;
            };
            self.drop_copy(state, &name);
        }
    }

    /// Keep a copy fetched whole (written aside, then moved in under the
    /// lock unless a DELETE or PUT came meanwhile).
    fn commit(&self, fill: &Fill, meta: Meta, chunks: &[Bytes]) -> std::io::Result<()> {
        let unique = format!("{}.{}", fill.name, rand::random::<u64>());
        let (data_tmp, meta_tmp) = (self.tmp.join(&unique), self.tmp.join(format!("{unique}.meta")));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::File::create(&data_tmp)?;
            chunks.iter().try_for_each(|c| file.write_all(c))?;
            std::fs::write(&meta_tmp, serde_json::to_vec(&meta)?)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&data_tmp);
            let _ = std::fs::remove_file(&meta_tmp);
            return Err(e);
        }
        let mut state = crate::sync::lock(&self.state);
        if state.filling.get(&fill.name) != Some(&false) || state.copies.contains(&fill.name) {
            drop(state);
            let _ = std::fs::remove_file(&data_tmp);
            let _ = std::fs::remove_file(&meta_tmp);
            return Ok(());
        }
        std::fs::rename(&data_tmp, self.objects.join(&fill.name))?;
        if let Err(e) = std::fs::rename(&meta_tmp, self.objects.join(format!("{}.meta", fill.name))) {
            let _ = std::fs::remove_file(self.objects.join(&fill.name));
            let _ = std::fs::remove_file(&meta_tmp);
            return Err(e);
        }
        state.bytes += meta.len;
        state.copies.push(fill.name.clone(), Copy { meta, verified: true });
        self.evict(&mut state);
        Ok(())
    }
}

/// S3's answer to the GET, from the copy, marked with `token`
/// (`core::http::headers::HOST_OBJECT`): the component that streams it to its
/// client answers the token instead, and [`Handed::serve`] sends the bytes.
pub fn response(meta: &Meta, bytes: Bytes, token: &str) -> http::Response<WasiBody> {
    let content_type = meta.content_type.as_deref().unwrap_or("application/octet-stream");
    let mut response = http::Response::builder()
        .status(200)
        .header(banatie_core::http::headers::HOST_OBJECT, token)
        .header(http::header::CONTENT_LENGTH, meta.len)
        .header(http::header::CONTENT_TYPE, content_type);
    if let Some(etag) = &meta.etag {
        response = response.header(http::header::ETAG, etag);
    }
    let body = Full::new(bytes).map_err(|never| match never {}).boxed_unsync();
    response.body(body).expect("valid header values (they were S3's)")
}

/// The copies one request's component was given, by token.
#[derive(Clone, Default)]
pub struct Handed(Arc<Mutex<Vec<(String, Bytes)>>>);

impl Handed {
    /// A new token for `bytes`.
    pub fn hand(&self, bytes: Bytes) -> String {
        let token = format!("{:032x}", rand::random::<u128>());
        crate::sync::lock(&self.0).push((token.clone(), bytes));
        token
    }

    /// The component's answer, with the bytes of the copy it names in place
    /// of its token. A token this request was not given is dropped (the
    /// answer stays as the component made it).
    pub fn serve(&self, mut response: http::Response<WasiBody>) -> http::Response<WasiBody> {
        let Some(token) = response.headers_mut().remove(banatie_core::http::headers::HOST_OBJECT) else {
            return response;
        };
        let handed = crate::sync::lock(&self.0);
        let Some((_, bytes)) = handed.iter().find(|(t, _)| token.as_bytes() == t.as_bytes()) else {
            tracing::warn!("the component answered an object token it was not given");
            return response;
        };
        response.headers_mut().insert(http::header::CONTENT_LENGTH, bytes.len().into());
        *response.body_mut() = Full::new(bytes.clone()).map_err(|never| match never {}).boxed_unsync();
        response
    }
}

/// A copy to keep of the answer S3 gives a GET.
pub struct Fill {
    cache: Arc<ObjectCache>,
    name: String,
    key: String,
}

impl Drop for Fill {
    fn drop(&mut self) {
        crate::sync::lock(&self.cache.state).filling.remove(&self.name);
    }
}

impl Fill {
    /// S3's answer, passed on as it streams; a whole 200 of the length it
    /// announced (and small enough) is kept once its last byte has passed.
    pub fn wrap(self, response: http::Response<WasiBody>) -> http::Response<WasiBody> {
        let header = |name: http::header::HeaderName| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let len = header(http::header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        let keep = match len {
            Some(len) => response.status() == 200 && len <= self.cache.capacity / 8,
            None => false,
        };
        if !keep {
            return response;
        }
        let meta = Meta {
            key: self.key.clone(),
            len: len.unwrap_or(0),
            sha256: String::new(),
            content_type: header(http::header::CONTENT_TYPE),
            etag: header(http::header::ETAG),
        };
        response.map(|inner| {
            Tee { inner, fill: Some((self, meta)), chunks: Vec::new(), seen: 0, hash: Sha256::new() }
                .boxed_unsync()
        })
    }
}

/// A body passed on as it comes, its chunks kept (shared, not copied) for
/// the copy.
struct Tee {
    inner: WasiBody,
    fill: Option<(Fill, Meta)>,
    chunks: Vec<Bytes>,
    seen: u64,
    hash: Sha256,
}

impl Tee {
    fn keep(&mut self) {
        let Some((fill, mut meta)) = self.fill.take() else { return };
        meta.sha256 = hex(&std::mem::take(&mut self.hash).finalize());
        let chunks = std::mem::take(&mut self.chunks);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = fill.cache.commit(&fill, meta, &chunks) {
                tracing::warn!("object cache: a copy was not kept: {e}");
            }
        });
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some((_, meta))) = (frame.data_ref(), &this.fill) {
                    this.seen += data.len() as u64;
                    if this.seen > meta.len {
                        this.fill = None;
                    } else {
                        this.hash.update(data);
                        this.chunks.push(data.clone());
                    }
                }
                // Kept as soon as the last byte announced has passed: the
                // reader may stop there without asking for the end.
                if this.fill.as_ref().is_some_and(|(_, meta)| this.seen == meta.len) {
                    this.keep();
                }
            }
            Poll::Ready(Some(Err(_))) => this.fill = None,
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `--object-cache-size`: bytes, or with a unit (`KiB`, `MiB`, `GiB`, `TiB`;
/// `K`, `M`, `G`, `T` and `KB`… mean the same binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let number: u64 = number.parse().map_err(|_| format!("{s:?}: expected a size such as 512MiB or 2GiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{s:?}: unknown unit (use KiB, MiB, GiB or TiB)")),
    };
    number.checked_mul(1 << shift).filter(|n| *n > 0).ok_or_else(|| format!("{s:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
    }

    /// A URL's signature is checked once, its validity every time.
    #[test]
    fn a_kept_signature_still_expires_and_only_its_own_url_is_kept() {
        use banatie_core::config::Secret;
        let s3 = S3Config {
            endpoint: "http://127.0.0.1:3900".into(),
            region: "garage".into(),
            bucket: "images".into(),
            access_key_id: "GK1".into(),
            secret_access_key: Secret("very-secret".into()),
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = ObjectCache::open(dir.path(), 1 << 20, &s3).unwrap();
        let at = 1_700_000_000;
        let url = Signer::new(&s3).unwrap().get("live/p/h.png", at).url;
        assert_eq!(cache.signed_key(&url, at).as_deref(), Some("live/p/h.png"));
        assert_eq!(crate::sync::lock(&cache.signed).len(), 1);
        assert_eq!(cache.signed_key(&url, at + 60).as_deref(), Some("live/p/h.png"));
        assert_eq!(cache.signed_key(&url, at + 61), None, "kept, but expired");
        let tampered = url.replace("live/p/h", "live/p/i");
        assert_eq!(cache.signed_key(&tampered, at), None);
        assert_eq!(crate::sync::lock(&cache.signed).len(), 1, "a URL that fails its check is not kept");
    }
}
