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
/// next). The fallback answers in 0.5 s, so the misses overlap: one makes
/// the image, the others wait for it (coalesced). A refusal does not fall
/// back.
pub fn a_failing_model_falls_back_once_within_one_budget_unit() {
    let (gemini, openai) = (Gemini::start(), OpenAi::start());
    openai.set_delay(500);
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
        let how: Vec<_> =
            replies.iter().map(|r| (r.header("x-cache-status"), r.header("x-cache-coalesced"))).collect();
        assert_eq!(how.iter().filter(|h| **h == (Some("MISS"), None)).count(), 1, "{fail}: {how:?}");
        let waited = how.iter().filter(|h| **h == (Some("HIT"), Some("true"))).count();
        assert_eq!(waited, n - 1, "{fail}: the others waited for it: {how:?}");
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

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// `ref=@logo&ref=ID`: the provider receives exactly those images' bytes
/// (Gemini as `inlineData` parts, OpenAI as the edits endpoint's `image[]`
/// files), checked by hash; the key moves with the alias; another project's
/// image id is a 404; a public URL takes refs by alias only.
pub fn references_reach_the_provider_and_aliases_key_them() {
    let (gemini, openai) = (Gemini::start(), OpenAi::start());
    let host = host(&gemini, &openai);
    let key = host.create_project("refs");
    let other = host.create_project("someone-else");
    let a = host.get(&live(&unique("a logo"), ""), &key);
    let b = host.get(&live(&unique("a mascot"), ""), &key);
    let (a_id, b_id) =
        (a.header("x-image-id").unwrap().to_string(), b.header("x-image-id").unwrap().to_string());
    let put = |name: &str, id: &str| {
        let body = format!(r#"{{"image_id":"{id}"}}"#);
        send("PUT", &host.url(&format!("/api/v1/aliases/{name}")), &[("x-api-key", &key)], body.as_bytes())
    };
    assert_eq!(put("logo", &a_id).status, 200);
    let listed = send("GET", &host.url("/api/v1/aliases"), &[("x-api-key", &key)], b"");
    assert_eq!(listed.json()["aliases"]["logo"], a_id.as_str());

    let prompt = unique("the logo on a mug");
    let made = host.get(&live(&prompt, &format!("&ref=@logo&ref={b_id}")), &key);
    assert_eq!(made.status, 200, "{}", String::from_utf8_lossy(&made.body));
    let sent = gemini.last_request().unwrap();
    let parts = sent["contents"][0]["parts"].as_array().unwrap();
    use base64::Engine;
    let mut received: Vec<String> = parts[1..]
        .iter()
        .map(|p| {
            sha(&base64::engine::general_purpose::STANDARD
                .decode(p["inlineData"]["data"].as_str().unwrap())
                .unwrap())
        })
        .collect();
    let mut expected = vec![sha(&a.body), sha(&b.body)];
    received.sort();
    expected.sort();
    assert_eq!(received, expected, "exactly the referenced images' bytes");
    assert_eq!(parts[1]["inlineData"]["mimeType"], "image/png");

    let calls = gemini.calls();
    let again = host.get(&live(&prompt, &format!("&ref={b_id}&ref={a_id}")), &key);
    assert_eq!(again.header("x-cache-status"), Some("HIT"), "an alias is its image's id; refs are a set");
    assert_eq!(put("logo", &b_id).status, 200);
    let moved = host.get(&live(&prompt, &format!("&ref=@logo&ref={b_id}")), &key);
    assert_eq!(moved.header("x-cache-status"), Some("MISS"), "the alias moved: another key");
    assert_eq!(gemini.calls(), calls + 1);

    // OpenAI: the edits endpoint with the images as files.
    let edited = host.get(&live(&unique("the mascot, waving"), &format!("&model=gpt&ref={a_id}")), &key);
    assert_eq!(edited.status, 200, "{}", String::from_utf8_lossy(&edited.body));
    let (content_type, body) = openai.last_raw().unwrap();
    let files = testkit::openai::multipart(&content_type, &body).expect("multipart");
    let images: Vec<String> = files.iter().filter(|p| p.name == "image[]").map(|p| sha(&p.data)).collect();
    assert_eq!(images, [sha(&a.body)]);

    let theirs =
        host.get(&live(&unique("their picture"), ""), &other).header("x-image-id").unwrap().to_string();
    let calls = gemini.calls();
    let refused = host.get(&live(&unique("not yours"), &format!("&ref={theirs}")), &key);
    assert_eq!((refused.status, refused.error_code().as_str()), (404, "not_found"));
    assert_eq!(gemini.calls(), calls, "nothing generated");
    let deleted = send("DELETE", &host.url("/api/v1/aliases/logo"), &[("x-api-key", &key)], b"");
    assert_eq!(deleted.status, 204);
    assert_eq!(host.get(&live("x", "&ref=@logo"), &key).status, 404);
}
