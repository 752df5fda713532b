//! Scale-out and portability: hosts sharing Redis, the OpenAI provider.

use std::sync::Arc;

use crate::support::host::{standard_vars, Host};
use crate::support::openai::{self, OpenAi};
use crate::support::store::Store;
use crate::support::{enc, gemini::Gemini, http::send, s3, s3_endpoint, unique};

fn live(prompt: &str) -> String {
    format!("/api/v1/live/generate?prompt={}", enc(prompt))
}

/// Two hosts on one shared store: Redis for banatie-host and Spin (their
/// runtime config), the trial's own backend for wash (Redis, NATS).
pub fn two_hosts_on_one_store_share_cache_counts_and_single_flight() {
    let store = Store::shared();
    let gemini = Gemini::start();
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let a = Host::start_sharing(&store, &vars);
    let b = Host::start_sharing(&store, &vars);
    let key = a.create_project("shared");

    let path = live(&unique("made on A"));
    let miss = a.get(&path, &key);
    assert_eq!(miss.header("x-cache-status"), Some("MISS"));
    let hit = b.get(&path, &key);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"), "a MISS on one host is a HIT on the other");
    assert_eq!(hit.body, miss.body);

    std::thread::scope(|scope| {
        for i in 0..19 {
            let (host, key, path) = (if i % 2 == 0 { &a } else { &b }, &key, &path);
            scope.spawn(move || assert_eq!(host.get(path, key).header("x-cache-status"), Some("HIT")));
        }
    });
    let last = a.get(&path, &key);
    assert_eq!(last.header("x-cache-hit-count"), Some("21"), "hit counts are exact across hosts");
    assert_eq!(b.stats(&key)["hits"], 21);

    gemini.set_delay(700);
    let crowd = live(&unique("wanted by everyone"));
    let replies: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (host, key, crowd) = (if i % 2 == 0 { &a } else { &b }, &key, &crowd);
                scope.spawn(move || host.get(crowd, key))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(gemini.calls(), 2, "one generation for the first prompt, one for the crowd");
    assert_eq!(replies.iter().filter(|r| r.header("x-cache-status") == Some("MISS")).count(), 1);
    assert!(replies.iter().all(|r| r.status == 200 && r.body == replies[0].body));
    let entries = store.keys("live:");
    assert_eq!(entries.len(), 2, "the two images' entries live in the shared store: {entries:?}");
    assert!(store.keys("lease:").is_empty(), "leases are released");
}

fn openai_host(double: &OpenAi) -> Host {
    let gemini = standard_vars(s3_endpoint(), "http://127.0.0.1:9");
    let mut vars: Vec<_> = gemini.into_iter().filter(|(k, _)| !k.starts_with("gemini_")).collect();
    vars.push(("provider".into(), "openai".into()));
    vars.push(("openai_api_key".into(), openai::API_KEY.into()));
    vars.push(("openai_base_url".into(), double.url.clone()));
    Host::start(&vars)
}

pub fn the_openai_provider_generates_refuses_and_fails_like_gemini() {
    let double = OpenAi::start();
    let host = openai_host(&double);
    let key = host.create_project("openai");
    let path = format!("{}&aspect_ratio=16:9", live(&unique("an otter")));
    let miss = host.get(&path, &key);
    assert_eq!(
        (miss.status, miss.header("x-cache-status")),
        (200, Some("MISS")),
        "{}",
        String::from_utf8_lossy(&miss.body)
    );
    assert_eq!(miss.header("content-type"), Some("image/png"));
    let sent = double.last_request().unwrap();
    assert_eq!(sent["size"], "1536x1024", "16:9 maps to the nearest supported size");
    assert_eq!((sent["model"].as_str(), sent["n"].as_i64()), (Some("gpt-image-1"), Some(1)));
    let hit = host.get(&path, &key);
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(hit.body, miss.body);
    let entries = host.kv_keys("live:");
    let entry: serde_json::Value = serde_json::from_slice(&host.kv_get(&entries[0]).unwrap()).unwrap();
    assert_eq!((entry["provider"].as_str(), entry["model"].as_str()), (Some("openai"), Some("gpt-image-1")));
    assert!(s3::get(s3_endpoint(), entry["object_key"].as_str().unwrap()).is_some());

    double.set(openai::Behavior::Refuse);
    let refused = host.get(&live(&unique("something forbidden")), &key);
    assert_eq!((refused.status, refused.error_code().as_str()), (422, "prompt_refused"));
    double.set(openai::Behavior::Status(500));
    let failed = host.get(&live(&unique("while it is down")), &key);
    assert_eq!((failed.status, failed.error_code().as_str()), (502, "provider_error"));
    assert_eq!(host.kv_keys("live:").len(), 1, "failures wrote nothing");
    assert_eq!(double.calls(), 3);
}

/// The provider and model are part of the cache key: the same prompt through
/// another provider is another entry.
pub fn switching_provider_never_serves_the_other_providers_image() {
    let gemini = Gemini::start();
    let double = OpenAi::start();
    let state = Arc::new(tempfile::tempdir().unwrap());
    let gemini_host = Host::start_in(state.clone(), &standard_vars(s3_endpoint(), &gemini.url), &[]);
    let key = gemini_host.create_project("switch");
    let path = live(&unique("a lighthouse at dusk"));
    assert_eq!(gemini_host.get(&path, &key).header("x-cache-status"), Some("MISS"));
    drop(gemini_host);
    let mut vars = standard_vars(s3_endpoint(), &gemini.url);
    vars.push(("provider".into(), "openai".into()));
    vars.push(("openai_api_key".into(), openai::API_KEY.into()));
    vars.push(("openai_base_url".into(), double.url.clone()));
    let openai_host = Host::start_in(state, &vars, &[]);
    let r = send("GET", &openai_host.url(&path), &[("x-api-key", &key)], b"");
    assert_eq!(r.header("x-cache-status"), Some("MISS"));
    assert_eq!((gemini.calls(), double.calls()), (1, 1));
}
