//! In-memory implementations of the `core::ports` traits for native tests,
//! and a `World` of them that requests are sent to through `api::run`.

mod kv;
mod time;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

pub use kv::{MemKv, Semantics};
pub use time::{block_on, FakeEnv, YieldOnce, START_UNIX};

use super::{run, Body, Context, Reply, Request};
use crate::core::config::{Config, Model, ProviderConfig, S3Config, Secret};
use crate::core::http::headers::Header;
use crate::core::http::request::GenerationRequest;
use crate::core::http::routes::{Method, LIVE_PATH};
use crate::core::ports::{KeyValue, ObjectStore, Provider, Respond, StoredObject};
use crate::core::provider::GeneratedImage;
use crate::core::stored::keys;
use crate::core::stored::project::{self, Project};
use crate::core::Error;

#[derive(Default)]
pub struct MemStore {
    pub objects: RefCell<BTreeMap<String, (String, Vec<u8>)>>,
    pub fail_puts: Cell<bool>,
    /// Reading an object's bytes (`get_bytes`: a derivation's original, a
    /// reference) fails, or panics.
    pub fail_reads: Cell<bool>,
    pub panic_reads: Cell<bool>,
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
        assert!(!self.panic_reads.get(), "injected panic reading {key}");
        if self.fail_reads.get() {
            return Err(Error::Storage("injected".into()));
        }
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

/// A client's end of a streamed answer (`core::ports::Respond`): its head,
/// every chunk that reached it, and how many previews were dropped. It can
/// be told it is slow (a preview is dropped) or gone (nothing reaches it).
#[derive(Default)]
pub struct Recorded {
    pub head: RefCell<Option<(u16, Vec<Header>)>>,
    pub chunks: RefCell<Vec<Vec<u8>>>,
    /// When each chunk arrived (the world's clock, when it was given one).
    pub at: RefCell<Vec<u64>>,
    clock: Option<Rc<Cell<u64>>>,
    pub dropped: Cell<usize>,
    pub slow: Cell<bool>,
    pub left: Cell<bool>,
    /// The client leaves once this many chunks have reached it.
    pub leaves_after: Cell<Option<usize>>,
}

impl Recorded {
    /// A client that notes when each chunk reaches it, on `clock`.
    pub fn timed(clock: Rc<Cell<u64>>) -> Recorded {
        Recorded { clock: Some(clock), ..Recorded::default() }
    }

    /// Every byte of the body that reached the client.
    pub fn body(&self) -> Vec<u8> {
        self.chunks.borrow().concat()
    }

    /// The value of a header of the head.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.head.borrow();
        head.as_ref()?.1.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    }
}

impl Respond for Recorded {
    fn begin(&self, status: u16, headers: Vec<Header>) {
        let mut head = self.head.borrow_mut();
        if head.is_none() {
            *head = Some((status, headers));
        }
    }
    fn chunk(&self, bytes: Vec<u8>, droppable: bool) {
        assert!(self.head.borrow().is_some(), "a chunk before the head");
        if self.left.get() {
            return;
        }
        if droppable && self.slow.get() {
            self.dropped.set(self.dropped.get() + 1);
            return;
        }
        self.chunks.borrow_mut().push(bytes);
        self.at.borrow_mut().push(self.clock.as_ref().map_or(0, |c| c.get()));
        if self.leaves_after.get().is_some_and(|n| self.chunks.borrow().len() >= n) {
            self.left.set(true);
        }
    }
    fn begun(&self) -> bool {
        self.head.borrow().is_some()
    }
    fn gone(&self) -> bool {
        self.left.get()
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
    /// The model id of every image call, in order.
    pub models: RefCell<Vec<String>>,
    /// The input images (`ref=`) of every image call, in order.
    pub inputs: RefCell<Vec<Vec<Vec<u8>>>>,
    /// Model ids that fail, and how.
    pub failing: RefCell<BTreeMap<String, Error>>,
    /// A clock (the world's `FakeEnv::now_ms`) each image call moves on by
    /// this many milliseconds: a provider that takes its time.
    pub takes: RefCell<Option<(Rc<Cell<u64>>, u64)>>,
    /// Image calls panic (once called: the call counts).
    pub panics: Cell<bool>,
    /// Previews streamed before the image, when the caller takes them.
    pub partials: Cell<usize>,
    /// Image calls under way now, and the most there ever were at once.
    pub in_flight: Cell<usize>,
    pub most_in_flight: Cell<usize>,
    /// Moderation calls; a prompt containing `FLAGME` is flagged (violence);
    /// `moderation_down`: every call is an outage.
    pub moderation_calls: Cell<usize>,
    pub moderation_down: Cell<bool>,
}

/// Runs its closure when dropped (however the scope ends).
struct Finally<F: FnMut()>(F);

impl<F: FnMut()> Drop for Finally<F> {
    fn drop(&mut self) {
        (self.0)()
    }
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
    async fn generate(
        &self,
        model: &ProviderConfig,
        request: &GenerationRequest,
        inputs: &[GeneratedImage],
        previews: Option<&dyn Fn(GeneratedImage)>,
    ) -> Result<GeneratedImage, Error> {
        self.calls.set(self.calls.get() + 1);
        self.in_flight.set(self.in_flight.get() + 1);
        self.most_in_flight.set(self.most_in_flight.get().max(self.in_flight.get()));
        let _done = Finally(|| self.in_flight.set(self.in_flight.get() - 1));
        self.models.borrow_mut().push(model.model().to_string());
        self.inputs.borrow_mut().push(inputs.iter().map(|i| i.bytes.clone()).collect());
        if let Some((clock, ms)) = &*self.takes.borrow() {
            clock.set(clock.get() + ms);
        }
        assert!(!self.panics.get(), "injected panic in the provider");
        if let Some(e) = self.failing.borrow().get(model.model()) {
            return Err(e.clone());
        }
        YieldOnce::default().await; // a real provider call takes a while
        if let Some(e) = self.answer.borrow().clone() {
            return Err(e);
        }
        for n in 0..self.partials.get() {
            if let (Some(preview), Some((w, h))) = (previews, self.picture.get()) {
                preview(GeneratedImage { content_type: "image/png".into(), bytes: png(w, h, 200 + n as u8) });
            }
            YieldOnce::default().await;
        }
        let bytes = match self.picture.get() {
            Some((w, h)) => png(w, h, request.prompt.len() as u8),
            None => format!("PNG:{}:{}", request.prompt, request.aspect_ratio).into_bytes(),
        };
        Ok(GeneratedImage { content_type: "image/png".into(), bytes })
    }
    async fn moderate(
        &self,
        _: &crate::core::provider::moderation::Moderation,
        prompt: &str,
        _: &[GeneratedImage],
    ) -> Result<crate::core::provider::moderation::Verdict, Error> {
        self.moderation_calls.set(self.moderation_calls.get() + 1);
        YieldOnce::default().await;
        if self.moderation_down.get() {
            return Err(Error::ModerationUnavailable { retry_after: 30, detail: "down".into() });
        }
        let flagged = prompt.contains("FLAGME");
        let categories = if flagged { vec!["violence".to_string()] } else { Vec::new() };
        Ok(crate::core::provider::moderation::Verdict { flagged, categories })
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
    let gemini = ProviderConfig::Gemini {
        api_key: Secret("k".into()),
        base_url: "http://g".into(),
        model: "m".into(),
    };
    let other = ProviderConfig::OpenAi {
        api_key: Secret("o".into()),
        base_url: "http://o".into(),
        model: "o".into(),
    };
    // The default, and three more a test may name (`model=other`, which falls
    // back to the default; `plain`, which does not; `seeded`, a Gemini model
    // falling back to one that takes no seed).
    let models = vec![
        Model { name: "gemini".into(), kind: "gemini", provider: gemini.clone(), fallback: None },
        Model {
            name: "other".into(),
            kind: "openai",
            provider: other.clone(),
            fallback: Some("gemini".into()),
        },
        Model { name: "plain".into(), kind: "openai", provider: other, fallback: None },
        Model {
            name: "seeded".into(),
            kind: "gemini",
            provider: ProviderConfig::Gemini {
                api_key: Secret("k".into()),
                base_url: "http://g".into(),
                model: "s".into(),
            },
            fallback: Some("plain".into()),
        },
    ];
    Config {
        s3: S3Config {
            endpoint: "http://s3".into(),
            region: "us-east-1".into(),
            bucket: "b".into(),
            access_key_id: "a".into(),
            secret_access_key: Secret("s".into()),
        },
        provider: gemini,
        models,
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
        client_ipv6_prefix: 64,
        trusted_proxies: Vec::new(),
        variant_widths: crate::core::variant::DEFAULT_WIDTHS.to_vec(),
        variant_qualities: Vec::new(),
        client_derivations_per_hour: 0,
        max_source_pixels: crate::core::variant::DEFAULT_MAX_SOURCE_PIXELS,
        avif_speed: crate::core::variant::DEFAULT_AVIF_SPEED,
        error_images: true,
        openai_partial_images: 2,
        warm_concurrency: 2,
        moderation: None,
        provider_safety: Default::default(),
    }
}

/// Store a project record and its key index; returns (API key, signing secret).
pub fn add_project(kv: &MemKv, id: &str, seed: u8, generations_per_hour: u32) -> (String, String) {
    let (key, secret) = project::new_credentials(id, [seed; 64]);
    let record = Project {
        id: id.into(),
        name: id.into(),
        api_key_sha256: project::hash_api_key(&key),
        signing_secret: secret.clone(),
        generations_per_hour,
        derivations_per_hour: project::DEFAULT_DERIVATIONS_PER_HOUR,
        created_at: 0,
        slug: None,
        lazy_scopes: false,
        progressive_misses: false,
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
    pub fn counter(&self, project: &str, counter: crate::core::stored::stats::Counter) -> i64 {
        self.kv.counter(&crate::core::stored::keys::stats(project, counter)).unwrap().unwrap_or(0)
    }

    /// The cache key's hash of a plain prompt (1:1, no scope).
    pub fn kv_hash_of(&self, prompt: &str) -> String {
        let request =
            GenerationRequest { prompt: prompt.into(), aspect_ratio: "1:1".into(), ..Default::default() };
        crate::core::decide::cache_key::hash(
            &request,
            self.config.provider.name(),
            self.config.provider.model(),
        )
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
        Body::Empty | Body::Sent => Vec::new(),
    }
}
