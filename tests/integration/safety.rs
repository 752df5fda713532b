//! Public URLs a brand can stand behind, through the real runtime: a
//! project's and a scope's prompt policy (`PATCH /api/v1/projects/{id}`,
//! the scope's `PATCH`) refuse prompts with a 422 before any money is spent.

use crate::support::host::{standard_vars, Host};
use crate::support::http::send;
use crate::support::runtime;
use crate::support::{enc, gemini::Gemini, s3, s3_endpoint, unique};
use testkit::moderation::Moderation;

pub fn a_public_scopes_policy_refuses_prompts_with_422_and_makes_nothing() {
    let gemini = Gemini::start();
    let mut vars = standard_vars(s3_endpoint(), &gemini.url);
    vars.retain(|(n, _)| n != "client_misses_per_hour");
    vars.push(("client_misses_per_hour".into(), "20".into()));
    let host = Host::start(&vars);
    let r = host.admin("POST", "/api/v1/projects", &format!(r#"{{"name":"{}"}}"#, unique("Acme")));
    let (id, key, slug) = {
        let v = r.json();
        let s = |f: &str| v[f].as_str().unwrap().to_string();
        (s("project_id"), s("api_key"), s("slug"))
    };
    let patched = host.admin("PATCH", &format!("/api/v1/projects/{id}"), r#"{"deny_terms":["gore"]}"#);
    assert_eq!(patched.status, 200, "{}", String::from_utf8_lossy(&patched.body));
    assert_eq!(patched.json()["policy"]["deny_terms"][0], "gore");
    let scope = r#"{"slug":"hero","public":true,"allow_patterns":["^(a|an) "]}"#;
    let created = send("POST", &host.url("/api/v1/scopes"), &[("x-api-key", &key)], scope.as_bytes());
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));

    let get = |prompt: &str, accept: &str| {
        let url = host.url(&format!("/cdn/{slug}/live/hero?prompt={}", enc(&unique(prompt))));
        send("GET", &url, &[("accept", accept)], b"")
    };
    let knows_client = runtime::current().knows_the_client();
    let remaining = |r: &crate::support::http::Reply, n: &str| {
        if knows_client {
            assert_eq!(r.header("x-ratelimit-remaining"), Some(n), "the client's allowance");
        }
    };
    let first = get("a fox", "*/*");
    assert_eq!((first.status, first.header("x-cache-status")), (200, Some("MISS")));
    remaining(&first, "19");

    // The project's deny list: a 422, in an <img> an error picture.
    let denied = get("a GORE scene", "image/avif,image/webp,*/*");
    assert_eq!(denied.status, 422);
    assert_eq!(denied.header("x-error-code"), Some("prompt_refused"));
    assert_eq!(denied.header("content-type"), Some("image/svg+xml"));
    let denied = get("a gore scene", "application/json");
    assert_eq!((denied.status, denied.error_code().as_str()), (422, "prompt_refused"));
    assert!(
        denied.json()["error"]["message"].as_str().unwrap().contains("deny_terms"),
        "{:?}",
        denied.json()
    );
    // The scope's allow list.
    let outside = get("the owl", "application/json");
    assert_eq!((outside.status, outside.error_code().as_str()), (422, "prompt_refused"));

    // Each refusal cost the client one unit; nothing was generated or stored for them.
    let next = get("an owl", "*/*");
    assert_eq!(next.status, 200);
    remaining(&next, "15");
    assert_eq!(gemini.calls(), 2, "only the allowed prompts were generated");
    let objects = s3::list(s3_endpoint(), &format!("live/{id}/")).unwrap();
    assert_eq!(objects.len(), 2, "{objects:?}");

    // A bad policy is a 400 naming its field, and changes nothing.
    let bad = host.admin(
        "PATCH",
        &format!("/api/v1/projects/{id}"),
        r#"{"deny_terms":[],"deny_patterns":["a{1000}{1000}"]}"#,
    );
    assert_eq!((bad.status, bad.error_code().as_str()), (400, "bad_request"));
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("deny_patterns"));
    assert_eq!(get("a gore scene", "application/json").status, 422, "the deny list is unchanged");
    assert_eq!(gemini.calls(), 2);
}

/// A host on `gemini` with moderation on, through the double `moderation`.
fn moderated_host(gemini: &Gemini, moderation: &Moderation, fail: &str) -> Host {
    let mut vars = standard_vars(s3_endpoint(), &gemini.url);
    for (name, value) in [
        ("moderation", "openai"),
        ("moderation_base_url", moderation.url.as_str()),
        ("moderation_api_key", testkit::moderation::API_KEY),
        ("moderation_fail", fail),
        ("provider_safety", "strict"),
    ] {
        vars.push((name.into(), value.into()));
    }
    Host::start(&vars)
}

pub fn moderation_refuses_a_flagged_prompt_once_asked_and_an_outage_follows_moderation_fail() {
    let (gemini, moderation) = (Gemini::start(), Moderation::start());
    let host = moderated_host(&gemini, &moderation, "closed");
    let key = host.create_project(&unique("moderated"));
    let flagged = format!("/api/v1/live/generate?prompt={}", enc(&unique("a FLAGME scene")));
    for _ in 0..5 {
        let r = send("GET", &host.url(&flagged), &[("x-api-key", &key), ("accept", "application/json")], b"");
        assert_eq!((r.status, r.error_code().as_str()), (422, "prompt_refused"));
        assert_eq!(r.json()["error"]["categories"], serde_json::json!(["violence"]));
    }
    assert_eq!((moderation.calls(), gemini.calls()), (1, 0), "asked once for five, generated nothing");
    let sent = moderation.last_request().unwrap();
    assert_eq!(sent["model"], "omni-moderation-latest");
    assert!(sent["input"][0]["text"].as_str().unwrap().contains("FLAGME"), "{sent}");

    // A clean prompt is asked, then generated with the provider's own filters set.
    let clean = host.get(&format!("/api/v1/live/generate?prompt={}", enc(&unique("a fox"))), &key);
    assert_eq!((clean.status, clean.header("x-cache-status")), (200, Some("MISS")));
    assert_eq!((moderation.calls(), gemini.calls()), (2, 1));
    let asked = gemini.last_request().unwrap();
    assert_eq!(asked["safetySettings"][0]["threshold"], "BLOCK_LOW_AND_ABOVE", "{asked}");

    // Moderation down, closed: a 503 that asks the client to come back, nothing generated.
    moderation.set(testkit::moderation::Behavior::Down(503));
    let down = host.get(&format!("/api/v1/live/generate?prompt={}", enc(&unique("an owl"))), &key);
    assert_eq!((down.status, down.error_code().as_str()), (503, "moderation_unavailable"));
    assert_eq!(down.header("retry-after"), Some("30"));
    assert_eq!(gemini.calls(), 1);
    drop(host);

    // Down, open: generated unmoderated.
    let host = moderated_host(&gemini, &moderation, "open");
    let key = host.create_project(&unique("moderated open"));
    let open = host.get(&format!("/api/v1/live/generate?prompt={}", enc(&unique("an owl"))), &key);
    assert_eq!((open.status, open.header("x-cache-status")), (200, Some("MISS")));
    assert_eq!(gemini.calls(), 2);
}

/// The objects the project holds in S3.
fn objects(project_id: &str) -> Vec<String> {
    s3::list(s3_endpoint(), &format!("live/{project_id}/")).unwrap()
}

pub fn a_takedown_answers_451_on_every_url_of_the_image_and_leaves_nothing_in_s3() {
    let gemini = Gemini::start();
    let host = Host::start(&standard_vars(s3_endpoint(), &gemini.url));
    let slug: String = unique("brand")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let created = host.admin("POST", "/api/v1/projects", &format!(r#"{{"name":"brand","slug":"{slug}"}}"#));
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let v = created.json();
    let (id, key, secret) = (
        v["project_id"].as_str().unwrap().to_string(),
        v["api_key"].as_str().unwrap().to_string(),
        v["signing_secret"].as_str().unwrap().to_string(),
    );
    let scope = send(
        "POST",
        &host.url("/api/v1/scopes"),
        &[("x-api-key", &key)],
        br#"{"slug":"hero","public":true}"#,
    );
    assert_eq!(scope.status, 201);
    let prompt = unique("a brand hero");
    let keyed = |extra: &str| format!("/api/v1/live/generate?prompt={}&scope=hero{extra}", enc(&prompt));
    let cdn = |extra: &str| format!("/cdn/{slug}/live/hero?prompt={}{extra}", enc(&prompt));
    let exp = (crate::support::sign::now() + 600).to_string();
    let signed = crate::support::sign::signed_path(
        &secret,
        &[("prompt", prompt.as_str()), ("scope", "hero"), ("project", id.as_str()), ("exp", exp.as_str())],
    );
    let miss = host.get(&keyed(""), &key);
    assert_eq!(miss.status, 200);
    let image_id = miss.header("x-image-id").unwrap().to_string();
    let urls = [
        keyed(""),
        keyed("&w=256&format=webp"),
        keyed("&w=128&format=jpeg"),
        cdn("&w=64&format=png"),
        cdn(""),
        signed.clone(),
    ];
    for url in &urls {
        let r = send("GET", &host.url(url), &[("x-api-key", &key)], b"");
        assert_eq!(r.status, 200, "{url}");
    }
    assert_eq!(objects(&id).len(), 4, "the original and three variants");

    let blocked = send(
        "POST",
        &host.url(&format!("/api/v1/images/{image_id}/block")),
        &[("x-api-key", &key)],
        br#"{"reason":"a takedown request"}"#,
    );
    assert_eq!(blocked.status, 201, "{}", String::from_utf8_lossy(&blocked.body));
    assert_eq!(objects(&id), Vec::<String>::new(), "S3 holds none of its objects");
    let stats = host.stats(&key);
    assert_eq!((stats["entries"].as_i64(), stats["variants"].as_i64()), (Some(0), Some(0)), "{stats}");
    let mut all = urls.to_vec();
    all.push(keyed("&w=512&format=webp"));
    for url in &all {
        for headers in [&[("x-api-key", key.as_str())][..], &[]] {
            let r = send("GET", &host.url(url), headers, b"");
            if headers.is_empty() && url.starts_with("/api/v1/live/generate?prompt") && !url.contains("sig=")
            {
                continue; // a keyed URL without its key is a 401
            }
            assert_eq!((r.status, r.error_code().as_str()), (451, "blocked"), "{url}");
        }
    }
    assert_eq!(send("HEAD", &host.url(&keyed("")), &[("x-api-key", &key)], b"").status, 451);
    assert_eq!(gemini.calls(), 1, "never generated again");
    let list = send("GET", &host.url("/api/v1/blocks"), &[("x-api-key", &key)], b"").json();
    assert_eq!(list["blocks"][0]["reason"], "a takedown request");

    // Twenty requests for variants and the image racing a takedown of another
    // image. Not on wash's directory store: its increments read, then write
    // (`Runtime::counts_exactly`), so two variants derived at once can take one
    // number in the variant log, and a takedown (like a purge) misses one of
    // them — a known defect of that store's counters, left open (README).
    if !runtime::current().counts_exactly() {
        return;
    }
    let other = unique("another hero");
    let first = host.get(&format!("/api/v1/live/generate?prompt={}", enc(&other)), &key);
    let other_id = first.header("x-image-id").unwrap().to_string();
    let widths = ["64", "128", "256", "384", "512"];
    let formats = ["jpeg", "webp", "png", "jpeg"];
    std::thread::scope(|s| {
        for i in 0..20 {
            let (host, key, other) = (&host, &key, &other);
            let query = match i % 5 {
                4 => format!("prompt={}", enc(other)),
                _ => format!("prompt={}&w={}&format={}", enc(other), widths[i % 5], formats[i / 5]),
            };
            s.spawn(move || host.get(&format!("/api/v1/live/generate?{query}"), key).status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let path = host.url(&format!("/api/v1/images/{other_id}/block"));
        assert_eq!(send("POST", &path, &[("x-api-key", &key)], b"").status, 201);
    });
    let after = host.get(&format!("/api/v1/live/generate?prompt={}&w=64&format=jpeg", enc(&other)), &key);
    assert_eq!(after.status, 451);
    assert_eq!(objects(&id), Vec::<String>::new(), "nothing left in S3 after the race");
    assert_eq!(gemini.calls(), 2);
}
