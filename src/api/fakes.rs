//! In-memory implementations of the `core::ports` traits for native tests,
//! and a `World` of them that requests are sent to through `api::run`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use std::future::Future;
use std::pin::Pin;
use std::task::{self, Poll};

use super::{run, Body, Context, Reply, Request};
use crate::core::config::{Config, ProviderConfig, S3Config, Secret};
use crate::core::keys;
use crate::core::platform::Flavour;
use crate::core::ports::{Env, KeyValue, ObjectStore, Provider, StoredObject};
use crate::core::project::{self, Project};
use crate::core::provider::GeneratedImage;
use crate::core::request::GenerationRequest;
use crate::core::routes::{Method, LIVE_PATH};
use crate::core::Error;

/// Which runtime's observable key-value semantics the fake reproduces
/// (read from Spin v3.6.0's `crates/key-value-{spin,redis}/src/store.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Semantics {
    /// Spin's SQLite store: counters are 8 little-endian bytes (any other
    /// length panics, as Spin's `expect("incorrect length")` does).
    #[default]
    SpinSqlite,
    /// Spin's Redis store: counters are decimal text (INCRBY), and a swap
    /// reports failure although its SET was applied.
    SpinRedis,
    /// wasmCloud 2's `wasi:keyvalue@0.2.0-draft` (any wash backend): no
    /// compare-and-swap at all (calling one fails the test), counters as
    /// decimal text.
    WasmCloud,
}

#[derive(Default)]
pub struct MemKv {
    pub map: RefCell<BTreeMap<String, Vec<u8>>>,
    pub fail_writes: Cell<bool>,
    pub semantics: Semantics,
    /// Writes that other reads do not see yet: until when, and what they
    /// see meanwhile (a store whose reads lag its writes; see [`MemKv::lagging`]).
    lag: Option<(Rc<Cell<u64>>, u64)>,
    unseen: RefCell<BTreeMap<String, Unseen>>,
}

/// Until when a write is unseen, and what reads see meanwhile.
type Unseen = (u64, Option<Vec<u8>>);

impl MemKv {
    pub fn with(semantics: Semantics) -> MemKv {
        MemKv { semantics, ..MemKv::default() }
    }

    /// From now on, reads see a `set` or `delete` only `lag_ms` of `clock`
    /// after it: the gap between a read and a write in another instance (or
    /// a lagging replica) made visible in virtual time.
    pub fn set_lag(&mut self, clock: Rc<Cell<u64>>, lag_ms: u64) {
        self.lag = Some((clock, lag_ms));
    }

    fn write(&self, key: &str, value: Option<Vec<u8>>) {
        if let Some((clock, lag)) = &self.lag {
            let seen = self.get(key).expect("reads never fail");
            self.unseen.borrow_mut().insert(key.into(), (clock.get() + lag, seen));
        }
        match value {
            Some(v) => self.map.borrow_mut().insert(key.into(), v),
            None => self.map.borrow_mut().remove(key),
        };
    }
}

impl KeyValue for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        if let Some((clock, _)) = &self.lag {
            if let Some((until, seen)) = self.unseen.borrow().get(key) {
                if clock.get() < *until {
                    return Ok(seen.clone());
                }
            }
        }
        Ok(self.map.borrow().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        if self.fail_writes.get() {
            return Err(Error::KeyValue("injected".into()));
        }
        self.write(key, Some(value.to_vec()));
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), Error> {
        self.write(key, None);
        Ok(())
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let mut map = self.map.borrow_mut();
        let current = map.get(key);
        let next = match self.semantics {
            Semantics::SpinSqlite => {
                let n =
                    current.map(|v| i64::from_le_bytes(v.as_slice().try_into().expect("incorrect length")));
                let next = n.unwrap_or(0) + delta;
                map.insert(key.into(), next.to_le_bytes().to_vec());
                next
            }
            Semantics::SpinRedis | Semantics::WasmCloud => {
                let n = match current {
                    None => 0,
                    Some(v) => {
                        std::str::from_utf8(v).ok().and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| {
                            Error::KeyValue("ERR value is not an integer or out of range".into())
                        })?
                    }
                };
                map.insert(key.into(), (n + delta).to_string().into_bytes());
                n + delta
            }
        };
        Ok(next)
    }
    fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        let Some(bytes) = self.map.borrow().get(key).cloned() else { return Ok(None) };
        self.flavour()
            .decode_counter(&bytes)
            .resolve(|| None)
            .map(Some)
            .ok_or_else(|| Error::KeyValue(format!("{key} is not a counter")))
    }
    fn create_counter(&self, key: &str) -> Result<(), Error> {
        self.increment(key, 0).map(drop)
    }
    fn delete_counter(&self, key: &str) -> Result<(), Error> {
        self.delete(key)
    }
    fn flavour(&self) -> Flavour {
        match self.semantics {
            Semantics::SpinSqlite | Semantics::SpinRedis => Flavour::Spin,
            Semantics::WasmCloud => Flavour::WasmCloud2,
        }
    }
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, Error> {
        assert_ne!(self.semantics, Semantics::WasmCloud, "no compare-and-swap on wasmCloud ({key})");
        let mut map = self.map.borrow_mut();
        if map.get(key).map(Vec::as_slice) != Some(expected) {
            return Ok(false);
        }
        map.insert(key.into(), new.to_vec());
        Ok(self.semantics != Semantics::SpinRedis)
    }
}

/// Returns `Pending` once, so concurrent futures interleave in `join_all`.
#[derive(Default)]
pub struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Wall-clock second at which every test world starts.
pub const START_UNIX: u64 = 1_700_000_000;

/// Virtual time (tests never really wait: [`block_on`] moves the clock to
/// the next sleeper's wake-up when nothing else can run), numbered ids and
/// counting "randomness".
pub struct FakeEnv {
    pub now_ms: Rc<Cell<u64>>,
    /// Wake-up times of the sleeps pending now.
    timers: RefCell<Vec<u64>>,
    ids: Cell<u64>,
    random: Cell<u32>,
}

impl Default for FakeEnv {
    fn default() -> FakeEnv {
        FakeEnv {
            now_ms: Rc::new(Cell::new(START_UNIX * 1000)),
            timers: RefCell::new(Vec::new()),
            ids: Cell::new(0),
            random: Cell::new(1),
        }
    }
}

/// A sleep in virtual time: pending until the clock reaches `until`.
struct Sleep<'e> {
    env: &'e FakeEnv,
    until: u64,
}

impl Future for Sleep<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut task::Context<'_>) -> Poll<()> {
        if self.env.now_ms.get() >= self.until {
            return Poll::Ready(());
        }
        self.env.timers.borrow_mut().push(self.until);
        Poll::Pending
    }
}

/// Run `future` (say, many requests at once with `join_all`) in `env`'s
/// virtual time: poll while anything asks to be polled again (a yield),
/// else move the clock to the earliest pending sleep's end. Sleepers wake
/// together, as they would in real time.
pub fn block_on<F: Future>(env: &FakeEnv, future: F) -> F::Output {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    struct Flag(AtomicBool);
    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(flag: &Arc<Self>) {
            flag.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = futures::task::waker(flag.clone());
    let mut cx = task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        if flag.0.load(Ordering::SeqCst) {
            continue;
        }
        let next = env.timers.borrow_mut().drain(..).min().expect("pending with no sleeper: a deadlock");
        env.now_ms.set(next.max(env.now_ms.get()));
    }
}

impl FakeEnv {
    /// Virtual milliseconds since the world started.
    pub fn elapsed_ms(&self) -> u64 {
        self.now_ms.get() - START_UNIX * 1000
    }
}

impl Env for FakeEnv {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }
    fn monotonic_ms(&self) -> u64 {
        self.now_ms.get()
    }
    async fn sleep(&self, ms: u64) {
        Sleep { env: self, until: self.now_ms.get() + ms }.await
    }
    fn new_id(&self) -> String {
        self.ids.set(self.ids.get() + 1);
        format!("id-{}", self.ids.get())
    }
    fn random_u32(&self) -> u32 {
        self.random.set(self.random.get() + 1);
        self.random.get()
    }
    fn random_bytes64(&self) -> [u8; 64] {
        [self.random_u32() as u8; 64]
    }
}

#[derive(Default)]
pub struct MemStore {
    pub objects: RefCell<BTreeMap<String, (String, Vec<u8>)>>,
    pub fail_puts: Cell<bool>,
}

impl ObjectStore for MemStore {
    type Body = Vec<u8>;
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), Error> {
        if self.fail_puts.get() {
            return Err(Error::Storage("injected".into()));
        }
        self.objects.borrow_mut().insert(key.into(), (content_type.into(), bytes));
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<StoredObject<Vec<u8>>>, Error> {
        Ok(self
            .objects
            .borrow()
            .get(key)
            .map(|(_, b)| StoredObject { size: b.len() as u64, body: b.clone() }))
    }
    async fn get_bytes(&self, key: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, Error> {
        match self.objects.borrow().get(key) {
            Some((_, b)) if b.len() > max_bytes => Err(Error::Storage("object too large".into())),
            found => Ok(found.map(|(_, b)| b.clone())),
        }
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
}

/// Draws "bytes" from the prompt; can be told to fail or refuse.
#[derive(Default)]
pub struct FakeProvider {
    pub calls: Cell<usize>,
    pub answer: RefCell<Option<Error>>,
    /// Text-model calls (prompt enhancement), and whether they fail.
    pub text_calls: Cell<usize>,
    pub text_fails: Cell<bool>,
    /// Answer a real PNG of this size (to derive variants from).
    pub picture: Cell<Option<(u32, u32)>>,
}

/// A real PNG, `w`×`h`, a gradient whose tint comes from `seed`.
pub fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    use image::ImageEncoder;
    let pixels: Vec<u8> =
        (0..w * h).flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, seed]).collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&pixels, w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

impl Provider for FakeProvider {
    async fn generate(&self, request: &GenerationRequest) -> Result<GeneratedImage, Error> {
        self.calls.set(self.calls.get() + 1);
        YieldOnce::default().await; // a real provider call takes a while
        if let Some(e) = self.answer.borrow().clone() {
            return Err(e);
        }
        let bytes = match self.picture.get() {
            Some((w, h)) => png(w, h, request.prompt.len() as u8),
            None => format!("PNG:{}:{}", request.prompt, request.aspect_ratio).into_bytes(),
        };
        Ok(GeneratedImage { content_type: "image/png".into(), bytes })
    }
    async fn enhance(&self, prompt: &str) -> Result<String, Error> {
        self.text_calls.set(self.text_calls.get() + 1);
        YieldOnce::default().await;
        if self.text_fails.get() {
            return Err(Error::Provider("text model down".into()));
        }
        Ok(format!("{prompt}, golden hour, 35mm"))
    }
}

pub fn config() -> Config {
    Config {
        s3: S3Config {
            endpoint: "http://s3".into(),
            region: "us-east-1".into(),
            bucket: "b".into(),
            access_key_id: "a".into(),
            secret_access_key: Secret("s".into()),
        },
        provider: ProviderConfig::Gemini {
            api_key: Secret("k".into()),
            base_url: "http://g".into(),
            model: "m".into(),
        },
        admin_token: None,
        max_prompt_length: 100,
        generation_lease_seconds: 120,
        coalesce_wait_seconds: 60,
        lease_settle_ms: 100,
        provider_timeout_ms: 1000,
        max_image_bytes: 1 << 20,
        text_model: "t".into(),
        demo_project_id: None,
        client_misses_per_hour: 0,
        trusted_proxies: Vec::new(),
        variant_widths: crate::core::variant::DEFAULT_WIDTHS.to_vec(),
        max_source_pixels: crate::core::variant::DEFAULT_MAX_SOURCE_PIXELS,
    }
}

/// Store a project record and its key index; returns (API key, signing secret).
pub fn add_project(kv: &MemKv, id: &str, seed: u8, generations_per_hour: u32) -> (String, String) {
    let (key, secret) = project::new_credentials([seed; 64]);
    let record = Project {
        id: id.into(),
        name: id.into(),
        api_key_sha256: project::hash_api_key(&key),
        signing_secret: secret.clone(),
        generations_per_hour,
        created_at: 0,
        slug: None,
        lazy_scopes: false,
    };
    kv.set(&keys::project(id), &record.encode()).unwrap();
    kv.set(&project::api_key_index(&key), id.as_bytes()).unwrap();
    (key, secret)
}

pub type FakeContext<'w> = Context<&'w MemKv, &'w MemStore, &'w FakeProvider, &'w FakeEnv>;

/// Fakes for every port, and two projects (`proj-a`, `proj-b`).
pub struct World {
    pub config: Config,
    pub kv: MemKv,
    pub store: MemStore,
    pub provider: FakeProvider,
    pub env: FakeEnv,
    pub alpha: String,
    pub beta: String,
}

impl World {
    pub fn new() -> World {
        World::on(Semantics::SpinSqlite)
    }

    pub fn on(semantics: Semantics) -> World {
        let kv = MemKv::with(semantics);
        let (alpha, _) = add_project(&kv, "proj-a", 1, 100);
        let (beta, _) = add_project(&kv, "proj-b", 2, 100);
        World {
            config: config(),
            kv,
            store: MemStore::default(),
            provider: FakeProvider::default(),
            env: FakeEnv::default(),
            alpha,
            beta,
        }
    }

    /// A world on `semantics` whose reads lag its writes by `lag_ms` (see
    /// [`MemKv::set_lag`]), once its two projects are stored.
    pub fn lagging(semantics: Semantics, lag_ms: u64) -> World {
        let mut w = World::on(semantics);
        w.kv.set_lag(w.env.now_ms.clone(), lag_ms);
        w
    }

    pub fn ctx(&self) -> FakeContext<'_> {
        Context {
            config: self.config.clone(),
            kv: &self.kv,
            store: &self.store,
            provider: &self.provider,
            env: &self.env,
        }
    }

    /// A request through routing, authentication and the handler.
    pub fn request(&self, request: Request<Vec<u8>>) -> Result<Reply<Vec<u8>>, Error> {
        self.block_on(run(&self.ctx(), request))
    }

    /// Run `future` in this world's virtual time ([`block_on`]).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        block_on(&self.env, future)
    }

    /// A live request (`GET`, or `HEAD` when `head`), with these headers.
    pub fn live(&self, query: &str, headers: &[(&str, &str)], head: bool) -> Result<Reply<Vec<u8>>, Error> {
        self.request(live_request(query, headers, head))
    }

    /// A live GET or HEAD with `X-API-Key: key` when there is one.
    pub fn get(&self, query: &str, key: Option<&str>, head: bool) -> Result<Reply<Vec<u8>>, Error> {
        let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        self.live(query, &headers, head)
    }

    /// The value of a project's stats counter.
    pub fn counter(&self, project: &str, counter: crate::core::stats::Counter) -> i64 {
        self.kv.counter(&crate::core::keys::stats(project, counter)).unwrap().unwrap_or(0)
    }

    /// The cache key's hash of a plain prompt (1:1, no scope).
    pub fn kv_hash_of(&self, prompt: &str) -> String {
        let request = GenerationRequest {
            prompt: prompt.into(),
            aspect_ratio: "1:1".into(),
            scope: None,
            enhance: false,
        };
        crate::core::cache_key::hash(&request, self.config.provider.name(), self.config.provider.model())
    }

    /// How many cache entries the KV store holds.
    pub fn entries(&self) -> usize {
        self.kv.map.borrow().keys().filter(|k| k.starts_with("live:")).count()
    }
}

pub fn request(
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Request<Vec<u8>> {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    Request {
        method,
        path: path.into(),
        query: query.into(),
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect(),
        origin: Some("http://localhost:3000".into()),
        body: body.to_vec(),
    }
}

pub fn live_request(query: &str, headers: &[(&str, &str)], head: bool) -> Request<Vec<u8>> {
    let method = if head { Method::Head } else { Method::Get };
    request(method, &format!("{LIVE_PATH}?{query}"), headers, b"")
}

/// A reply's body bytes, streamed or not.
pub fn body(reply: &Reply<Vec<u8>>) -> Vec<u8> {
    match &reply.body {
        Body::Bytes(b) | Body::Stream(b) => b.clone(),
        Body::Empty => Vec::new(),
    }
}
