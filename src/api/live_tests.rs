//! The HIT/MISS flow, natively, over in-memory ports.

use futures::executor::block_on;

use super::*;
use crate::api::fakes::{FakeProvider, MemKv, MemStore};
use crate::core::config::{ProviderConfig, S3Config, Secret};
use crate::core::project;

fn config() -> Config {
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
    }
}

fn next_id() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("id-{}", N.fetch_add(1, Ordering::Relaxed))
}

struct World {
    config: Config,
    kv: MemKv,
    store: MemStore,
    provider: FakeProvider,
}

impl World {
    fn new() -> World {
        let w = World {
            config: config(),
            kv: MemKv::default(),
            store: MemStore::default(),
            provider: FakeProvider::default(),
        };
        for (key, id) in [("bl_alpha", "proj-a"), ("bl_beta", "proj-b")] {
            w.kv.set(&project::api_key_index(key), id.as_bytes())
                .unwrap();
        }
        w
    }

    fn get(&self, query: &str, key: Option<&str>, head: bool) -> Result<Reply<Vec<u8>>, Error> {
        let ports = Ports {
            config: &self.config,
            kv: &self.kv,
            store: &self.store,
            provider: &self.provider,
        };
        let env = Env {
            now: 1_700_000_000,
            new_id: next_id,
        };
        block_on(get(&ports, &env, query, key, head))
    }

    fn entries(&self) -> usize {
        self.kv
            .map
            .borrow()
            .keys()
            .filter(|k| k.starts_with("live:"))
            .count()
    }
}

fn header<'a>(reply: &'a Reply<Vec<u8>>, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn body(reply: &Reply<Vec<u8>>) -> Vec<u8> {
    match &reply.body {
        Body::Bytes(b) | Body::Stream(b) => b.clone(),
        Body::Empty => Vec::new(),
    }
}

#[test]
fn second_identical_request_is_a_hit_with_the_same_bytes() {
    let w = World::new();
    let miss = w.get("prompt=fox", Some("bl_alpha"), false).unwrap();
    assert_eq!(header(&miss, "x-cache-status"), Some("MISS"));
    assert!(header(&miss, "x-generation-id").is_some());
    let hit = w.get("prompt=+fox+", Some("bl_alpha"), false).unwrap();
    assert_eq!(header(&hit, "x-cache-status"), Some("HIT"));
    assert_eq!(header(&hit, "x-cache-hit-count"), Some("1"));
    assert_eq!(header(&hit, "etag"), header(&miss, "etag"));
    assert_eq!(header(&hit, "x-image-id"), header(&miss, "x-image-id"));
    assert_eq!(body(&hit), body(&miss));
    assert_eq!(w.provider.calls.get(), 1);
    let again = w.get("prompt=fox", Some("bl_alpha"), false).unwrap();
    assert_eq!(header(&again, "x-cache-hit-count"), Some("2"));
}

#[test]
fn projects_never_share_entries() {
    let w = World::new();
    w.get("prompt=fox", Some("bl_alpha"), false).unwrap();
    let b = w.get("prompt=fox", Some("bl_beta"), false).unwrap();
    assert_eq!(header(&b, "x-cache-status"), Some("MISS"));
    assert_eq!(w.provider.calls.get(), 2);
    assert_eq!(w.entries(), 2);
}

#[test]
fn failures_write_nothing() {
    let w = World::new();
    *w.provider.answer.borrow_mut() = Some(Error::PromptRefused("SAFETY".into()));
    assert_eq!(
        w.get("prompt=fox", Some("bl_alpha"), false)
            .err()
            .unwrap()
            .status(),
        422
    );
    *w.provider.answer.borrow_mut() = None;
    w.store.fail_puts.set(true);
    assert_eq!(
        w.get("prompt=fox", Some("bl_alpha"), false)
            .err()
            .unwrap()
            .status(),
        502
    );
    assert_eq!(w.entries(), 0);
    assert!(w.store.objects.borrow().is_empty());
}

#[test]
fn bad_input_and_bad_keys_are_refused_before_the_provider() {
    let w = World::new();
    assert_eq!(
        w.get("prompt=fox", None, false).err().unwrap().status(),
        401
    );
    assert_eq!(
        w.get("prompt=fox", Some("bl_nope"), false)
            .err()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        w.get("prompt=", Some("bl_alpha"), false)
            .err()
            .unwrap()
            .status(),
        400
    );
    assert_eq!(w.provider.calls.get(), 0);
}

#[test]
fn a_vanished_object_is_regenerated() {
    let w = World::new();
    w.get("prompt=fox", Some("bl_alpha"), false).unwrap();
    w.store.objects.borrow_mut().clear();
    let again = w.get("prompt=fox", Some("bl_alpha"), false).unwrap();
    assert_eq!(header(&again, "x-cache-status"), Some("MISS"));
    assert_eq!(w.store.objects.borrow().len(), 1);
    let hit = w.get("prompt=fox", Some("bl_alpha"), false).unwrap();
    assert_eq!(header(&hit, "x-cache-status"), Some("HIT"));
}

#[test]
fn head_never_generates() {
    let w = World::new();
    let e = w.get("prompt=fox", Some("bl_alpha"), true).err().unwrap();
    assert_eq!(e, Error::NotCached);
    assert_eq!(w.provider.calls.get(), 0);
    w.get("prompt=fox", Some("bl_alpha"), false).unwrap();
    let head = w.get("prompt=fox", Some("bl_alpha"), true).unwrap();
    assert!(body(&head).is_empty());
    assert_eq!(header(&head, "x-cache-hit-count"), Some("0"));
}

#[test]
fn a_kv_failure_after_the_put_still_serves_the_image() {
    let w = World::new();
    w.kv.fail_writes.set(true);
    let miss = w.get("prompt=fox", Some("bl_alpha"), false).unwrap();
    assert_eq!(miss.status, 200);
    assert_eq!(w.entries(), 0);
}
