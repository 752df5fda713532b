//! Named models (`models`), fallback, seed and templates, against a Gemini
//! double and an OpenAI double, both speaking their real wire formats.

use std::time::Duration;

use testkit::gemini::{Behavior, Gemini};
use testkit::openai::{self, OpenAi};

use crate::support::host::{standard_vars, Host};
use crate::support::http::{send, Reply};
use crate::support::{enc, s3_endpoint, unique};

fn live(prompt: &str, extra: &str) -> String {
    format!("/api/v1/live/generate?prompt={}{extra}", enc(prompt))
}

fn host(gemini: &Gemini, openai: &OpenAi) -> Host {
    let mut vars = standard_vars(s3_endpoint(), &gemini.url);
    for (k, v) in [
        ("openai_api_key", openai::API_KEY),
        ("openai_base_url", openai.url.as_str()),
        ("models", "flash=gemini:gemini-2.5-flash-image>gpt, gpt=openai:gpt-image-1"),
        ("provider_timeout_ms", "1500"),
    ] {
        vars.push((k.to_string(), v.to_string()));
    }
    Host::start(&vars)
}

/// Each model calls its own provider and names itself in `X-Model-Used`;
/// an unknown one is a 400 naming the allowed ones; a seed goes to Gemini
/// and is refused for OpenAI; a template frames the prompt.
pub fn each_model_calls_its_provider_and_seed_and_template_reach_it() {
    let (gemini, openai) = (Gemini::start(), OpenAi::start());
    let host = host(&gemini, &openai);
    let key = host.create_project("models");
    let flash = host.get(&live(&unique("a fox"), "&model=flash"), &key);
    assert_eq!((flash.status, flash.header("x-model-used")), (200, Some("flash")));
    let default = host.get(&live(&unique("a fox"), ""), &key);
    assert_eq!(default.header("x-model-used"), Some("flash"), "the first is the default");
    let gpt = host.get(&live(&unique("a fox"), "&model=gpt"), &key);
    assert_eq!((gpt.status, gpt.header("x-model-used")), (200, Some("gpt")));
    assert_eq!((gemini.calls(), openai.calls()), (2, 1));
    let unknown = host.get(&live("a fox", "&model=nope"), &key);
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error"]["message"], "parameter 'model' must be one of flash, gpt");

    let seeded = host.get(&live(&unique("a seeded fox"), "&seed=42&template=sticker"), &key);
    assert_eq!(seeded.status, 200);
    let sent = gemini.last_request().unwrap();
    assert_eq!(sent["generationConfig"]["seed"], 42);
    let text = sent["contents"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("A die-cut sticker") && text.contains("a seeded fox"), "{text}");
    let refused = host.get(&live("a fox", "&model=gpt&seed=1"), &key);
    assert_eq!((refused.status, refused.error_code().as_str()), (400, "bad_request"));
    assert_eq!((gemini.calls(), openai.calls()), (3, 1));
}

fn concurrently(host: &Host, key: &str, path: &str, n: usize) -> Vec<Reply> {
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let url = host.url(path);
                s.spawn(move || send("GET", &url, &[("x-api-key", key)], b""))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// The primary answering 503, 429 or not in time: its fallback makes the
/// image, once for 20 concurrent identical misses, within one budget unit,
/// and every answer names it; the key stays the requested model's (a HIT
/// next). A refusal does not fall back.
pub fn a_failing_model_falls_back_once_within_one_budget_unit() {
    let (gemini, openai) = (Gemini::start(), OpenAi::start());
    let host = host(&gemini, &openai);
    let key = host.create_project("fallback");
    let mut generations = 0;
    for (i, fail) in ["503", "429", "timeout"].into_iter().enumerate() {
        match fail {
            "503" => gemini.set(Behavior::Status(503)),
            "429" => gemini.set(Behavior::BusyFor("7".into())),
            _ => {
                gemini.set(Behavior::Image);
                gemini.set_delay(3000);
            }
        }
        let path = live(&unique("a fox that falls back"), "&model=flash");
        let (g, o) = (gemini.calls(), openai.calls());
        let n = if i == 0 { 20 } else { 2 };
        let replies = concurrently(&host, &key, &path, n);
        for r in &replies {
            assert_eq!(r.status, 200, "{fail}: {}", String::from_utf8_lossy(&r.body));
            assert_eq!(r.header("x-model-used"), Some("gpt"), "{fail}");
        }
        assert_eq!((gemini.calls() - g, openai.calls() - o), (1, 1), "{fail}: one try each");
        generations += 1;
        assert_eq!(host.stats(&key)["generations"], generations, "{fail}: one budget unit");
        let hit = host.get(&path, &key);
        assert_eq!((hit.header("x-cache-status"), hit.header("x-model-used")), (Some("HIT"), Some("gpt")));
        gemini.set_delay(0);
        std::thread::sleep(Duration::from_millis(50));
    }
    gemini.set(Behavior::Refuse);
    let o = openai.calls();
    let refused = host.get(&live(&unique("a forbidden fox"), "&model=flash"), &key);
    assert_eq!(refused.status, 422);
    assert_eq!(openai.calls(), o, "a refusal is the prompt's, not the provider's: no fallback");
}
