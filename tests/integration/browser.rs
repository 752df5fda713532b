//! The demo page in a real browser (headless Chromium over WebDriver): the
//! images decode (derived variants, AVIF for a browser that accepts it), a
//! reload takes them from the browser cache without a new generation, and a
//! tampered URL is a broken image with a 403. Screenshots
//! go to target/screenshots/ for a person to look at.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::gemini::{self, Gemini};
use crate::support::host::{repo_root, Host};

const ALL_LOADED: &str = "document.querySelectorAll('figure').length >= 4 && \
     [...document.querySelectorAll('figure')].every(f => f.dataset.state === 'loaded')";

fn screenshots() -> std::path::PathBuf {
    repo_root().join("target/screenshots")
}

pub fn the_demo_page_renders_live_images_and_reloads_from_the_browser_cache() {
    let gemini = Gemini::start();
    gemini.set(testkit::gemini::Behavior::Picture);
    let state = Arc::new(tempfile::tempdir().unwrap());
    let vars = [
        ("gemini_api_key".to_string(), gemini::API_KEY.to_string()),
        ("gemini_base_url".to_string(), gemini.url.clone()),
    ];
    let host = Host::start_in(state, &vars, &["--dev"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.stdout.lock().unwrap().iter().any(|l| l.contains("demo page: ")) {
        assert!(Instant::now() < deadline, "the dev project was not created: {}", host.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    let browser = Browser::start();
    browser.goto(&host.url("/"));
    browser.wait_for(ALL_LOADED, Duration::from_secs(60));
    let widths = browser.js("return [...document.querySelectorAll('img.live')].map(i => i.naturalWidth);");
    let widths: Vec<u64> = widths.as_array().unwrap().iter().map(|w| w.as_u64().unwrap()).collect();
    // With srcset, naturalWidth is the decoded image's width over its density:
    // the 384 px variant the browser chose for a 280 px cell.
    assert_eq!(widths, [280; 4], "every image decodes");
    let chosen = browser.js("return [...document.querySelectorAll('img.live')].map(i => i.currentSrc);");
    assert!(chosen.as_array().unwrap().iter().all(|s| s.as_str().unwrap().contains("w=384")), "{chosen}");
    // Chromium accepts AVIF: format=auto gave it AVIF, which it decoded (above);
    // the card shows the bytes against the original's.
    let cards = browser.js(
        "return [...document.querySelectorAll('figure')].map(f => [f.dataset.variantType,            Number(f.dataset.variantBytes), Number(f.dataset.originalBytes), f.dataset.variantOf,            f.querySelector('.bytes').textContent]);",
    );
    for card in cards.as_array().unwrap() {
        assert_eq!(card[0], "image/avif", "{card}");
        let (variant, original) = (card[1].as_u64().unwrap(), card[2].as_u64().unwrap());
        assert!(variant > 0 && variant * 10 < original, "{card}");
        assert!(!card[3].as_str().unwrap().is_empty(), "X-Variant-Of: {card}");
        assert!(card[4].as_str().unwrap().starts_with("AVIF 384px"), "{card}");
    }
    let labels = browser.js("return [...document.querySelectorAll('.badge')].map(b => b.textContent);");
    assert!(labels.as_array().unwrap().iter().all(|l| l.as_str().unwrap().starts_with("MISS")), "{labels}");
    assert_eq!(gemini.calls(), 4, "one generation per picture");
    browser.wait_for(
        "document.getElementById('stats').textContent.includes('generations 4')",
        Duration::from_secs(10),
    );
    let shot = browser.screenshot(&screenshots().join("demo-grid.png"));
    eprintln!("screenshot: {}", shot.display());

    browser.reload();
    browser.wait_for(ALL_LOADED, Duration::from_secs(60));
    assert_eq!(gemini.calls(), 4, "a reload generates nothing");
    let sources = browser.js("return [...document.querySelectorAll('img.live')].map(i => \
           (performance.getEntriesByName(i.currentSrc).pop() || {transferSize: 0}).transferSize);");
    let transferred: Vec<u64> = sources.as_array().unwrap().iter().map(|v| v.as_u64().unwrap_or(0)).collect();
    assert!(
        transferred.iter().all(|t| *t < 1000),
        "images came from the browser cache or a 304: {transferred:?}"
    );
    browser.screenshot(&screenshots().join("demo-grid-reloaded.png"));

    // On the reload every image was cached: its blurred placeholder
    // (format=lqip) was painted under it.
    browser.wait_for(
        "[...document.querySelectorAll('figure')].every(f => f.dataset.placeholder === 'painted')",
        Duration::from_secs(30),
    );

    // A tampered signed URL: a 403 whose error picture renders, nothing generated.
    let tampered = browser.js_async(
        "const done = arguments[0]; window.banatie.sign('a tampered picture', '1:1').then(p => { \
           const card = window.banatie.addCard(p.replace('prompt=a%20', 'prompt=b%20'), 'tampered', '1:1'); \
           card.id = 'tampered'; done(p); });",
    );
    assert!(tampered.as_str().is_some_and(|p| p.contains("sig=")));
    browser
        .wait_for("document.getElementById('tampered').dataset.state === 'broken'", Duration::from_secs(30));
    let status = browser.js("return document.getElementById('tampered').dataset.status;");
    assert_eq!(status, Value::String("403".into()));
    let width = browser.js("return document.querySelector('#tampered img').naturalWidth;");
    assert!(width.as_u64().is_some_and(|w| w > 0), "the error picture rendered: {width}");
    assert_eq!(gemini.calls(), 4);
    browser.screenshot(&screenshots().join("demo-tampered.png"));
}

/// Without `demo_project_id` (production), there is no demo page.
pub fn there_is_no_demo_page_unless_asked_for() {
    let w = crate::support::World::new();
    let r = crate::support::http::send("GET", &w.host.url("/"), &[], b"");
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = crate::support::http::send("POST", &w.host.url("/api/v1/demo/sign"), &[], br#"{"prompt":"x"}"#);
    assert_eq!(r.status, 404);
}

/// An `<img>` whose signed URL answers 429 (the budget is spent) renders the
/// error picture (`naturalWidth > 0`), and the answer is a 429 all the same
/// (read with `fetch`, asking for an image as the `<img>` did); a JSON client
/// gets the JSON error.
pub fn an_img_whose_url_answers_429_renders_the_error_picture() {
    use crate::support::sign::{now, signed_path};
    let gemini = Gemini::start();
    let vars = crate::support::host::standard_vars(crate::support::s3_endpoint(), &gemini.url);
    let host = Host::start(&vars);
    let project = host.create_project_with(r#"{"name":"spent","generations_per_hour":1}"#);
    let spend =
        format!("/api/v1/live/generate?prompt={}", crate::support::enc(&crate::support::unique("first")));
    assert_eq!(host.get(&spend, &project.api_key).status, 200);
    let exp = (now() + 600).to_string();
    let prompt = crate::support::unique("one too many");
    let params = [("prompt", prompt.as_str()), ("project", project.id.as_str()), ("exp", exp.as_str())];
    let url = host.url(&signed_path(&project.signing_secret, &params));

    let browser = Browser::start();
    browser.goto(&host.url("/api/v1/health"));
    let script = format!(
        "const done = arguments[0]; const img = new Image(); \
         img.onload = () => done(img.naturalWidth); img.onerror = () => done(-1); \
         document.body.append(img); img.src = {url:?};"
    );
    let width = browser.js_async(&script);
    assert!(width.as_i64().is_some_and(|w| w > 0), "the error picture rendered: {width}");
    let asked_as_image = browser.js_async(&format!(
        "const done = arguments[0]; fetch({url:?}, {{ headers: {{ accept: 'image/webp,image/*,*/*;q=0.8' }} }}) \
           .then(r => done([r.status, r.headers.get('content-type'), r.headers.get('x-error-code'), \
                            r.headers.get('retry-after')]));"
    ));
    assert_eq!(asked_as_image[0], 429, "{asked_as_image}");
    assert_eq!(asked_as_image[1], "image/svg+xml");
    assert_eq!(asked_as_image[2], "budget_exceeded");
    assert!(asked_as_image[3].as_str().is_some_and(|s| s.parse::<u64>().is_ok()), "{asked_as_image}");
    let as_json = browser.js_async(&format!(
        "const done = arguments[0]; fetch({url:?}).then(r => r.json().then(b => done([r.status, b.error.code])));"
    ));
    assert_eq!(as_json, serde_json::json!([429, "budget_exceeded"]));
    browser.screenshot(&screenshots().join("error-image-429.png"));
    assert_eq!(gemini.calls(), 1);
}

/// Defines `sample(src)`: an `<img>` of `src`, sampled every 100 ms from
/// inside the page (its natural size and a hash of its decoded pixels, with
/// the time since it was added), and `hashOf(image)`.
const SAMPLER: &str = "window.samples = []; const canvas = document.createElement('canvas'); \
    window.hashOf = source => { canvas.width = source.naturalWidth || source.width; \
      canvas.height = source.naturalHeight || source.height; const c = canvas.getContext('2d'); \
      c.drawImage(source, 0, 0); const d = c.getImageData(0, 0, canvas.width, canvas.height).data; \
      let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0; return h; }; \
    window.sample = src => { const img = new Image(); const t0 = performance.now(); \
      window.sampler = setInterval(() => { if (!img.naturalWidth) return; \
        window.samples.push({t: performance.now() - t0, w: img.naturalWidth, h: img.naturalHeight, \
                             hash: window.hashOf(img)}); }, 100); \
      document.body.append(img); img.src = src; };";

/// The hashes the sampler saw, in order, each once.
fn distinct_hashes(browser: &Browser) -> Vec<u64> {
    let samples = browser.js("return window.samples.map(s => s.hash);");
    let mut seen: Vec<u64> = Vec::new();
    for h in samples.as_array().unwrap().iter().map(|h| h.as_u64().unwrap()) {
        if seen.last() != Some(&h) {
            seen.push(h);
        }
    }
    seen
}

/// What the same URL fetched now answers: status, cache headers, type and
/// the hash of its decoded pixels.
fn fetched_again(browser: &Browser, url: &str) -> Value {
    browser.js_async(&format!(
        "const done = arguments[0]; fetch({url:?}).then(async r => {{ \
           const bitmap = await createImageBitmap(await r.blob()); \
           done([r.headers.get('x-cache-status'), r.headers.get('cache-control'), \
                 r.headers.get('content-type'), window.hashOf(bitmap)]); }});"
    ))
}

/// A signed progressive URL for a new prompt of `host`'s new project.
fn progressive_url(host: &Host, prompt: &str, ratio: &str) -> String {
    let key = host.create_project("progressive-browser");
    let body = serde_json::json!({"prompt": prompt, "aspect_ratio": ratio, "progressive": true}).to_string();
    let signed = crate::support::http::send(
        "POST",
        &host.url("/api/v1/live/sign"),
        &[("x-api-key", &key)],
        body.as_bytes(),
    );
    host.url(signed.json()["path"].as_str().unwrap())
}

/// A plain `<img>` of a progressive URL for a new prompt, the provider taking
/// 3 s: at ~0.5 s it shows the waiting frame at the final image's size; by
/// ~4 s the image, whose pixels are those the same URL serves as a HIT
/// afterwards (plain and cacheable). Reloading gets the HIT.
pub fn a_progressive_img_paints_the_waiting_frame_then_the_image_a_hit_serves() {
    let gemini = Gemini::start();
    gemini.set(testkit::gemini::Behavior::Picture);
    gemini.set_delay(3_000);
    let host = Host::start(&crate::support::host::standard_vars(crate::support::s3_endpoint(), &gemini.url));
    let url = progressive_url(&host, &crate::support::unique("a fox painted at once"), "16:9");
    let browser = Browser::start();
    browser.goto(&host.url("/api/v1/health"));
    browser.js(&format!("{SAMPLER} window.sample({url:?}); return 0;"));
    browser.wait_for("window.samples.length > 0", Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(400));
    browser.screenshot(&screenshots().join("progressive-waiting.png"));
    let first = browser.js("return window.samples[0];");
    assert_eq!(gemini.calls(), 1);
    assert_eq!((first["w"].as_u64(), first["h"].as_u64()), (Some(1344), Some(768)), "Gemini's 16:9 size");
    browser.wait_for(
        &format!("window.samples[window.samples.length - 1].hash !== {}", first["hash"]),
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(300));
    browser.screenshot(&screenshots().join("progressive-final.png"));
    let last = browser.js("clearInterval(window.sampler); return window.samples[window.samples.length - 1];");
    assert_eq!((last["w"].as_u64(), last["h"].as_u64()), (Some(1344), Some(768)), "no reflow");
    let again = fetched_again(&browser, &url);
    assert_eq!(again[0], "HIT", "{again}");
    assert_eq!(again[1], "public, max-age=31536000, immutable");
    assert_eq!(again[2], "image/png");
    assert_eq!(again[3], last["hash"], "the image shown is the image a HIT serves");
    assert_eq!(distinct_hashes(&browser).len(), 2, "the frame, then the image");
    eprintln!("frame shown {:.0} ms after the <img> was added", first["t"].as_f64().unwrap());
    assert_eq!(gemini.calls(), 1);
}

/// With OpenAI streaming two previews 1 s apart, the `<img>` shows one of
/// them between the waiting frame and the image.
pub fn a_progressive_img_shows_the_providers_previews_as_they_stream() {
    let openai = testkit::openai::OpenAi::start();
    openai.set(testkit::openai::Behavior::Stream { every_ms: 1_000 });
    let gemini = Gemini::start();
    let mut vars = crate::support::host::standard_vars(crate::support::s3_endpoint(), &gemini.url);
    vars.extend([
        ("provider".to_string(), "openai".to_string()),
        ("openai_api_key".to_string(), testkit::openai::API_KEY.to_string()),
        ("openai_base_url".to_string(), openai.url.clone()),
    ]);
    let host = Host::start(&vars);
    let url = progressive_url(&host, &crate::support::unique("a fox in previews"), "1:1");
    let browser = Browser::start();
    browser.goto(&host.url("/api/v1/health"));
    browser.js(&format!("{SAMPLER} window.sample({url:?}); return 0;"));
    browser.wait_for("window.samples.length > 0", Duration::from_secs(3));
    browser.screenshot(&screenshots().join("previews-waiting.png"));
    let shown = "new Set(window.samples.map(s => s.hash)).size";
    browser.wait_for(&format!("{shown} >= 2"), Duration::from_secs(30));
    browser.screenshot(&screenshots().join("previews-partial.png"));
    // The image: the last part, which stays.
    browser.wait_for(
        &format!("{shown} >= 3 && window.samples.slice(-10).every(s => s.hash === window.samples[window.samples.length - 1].hash)"),
        Duration::from_secs(30),
    );
    browser.screenshot(&screenshots().join("previews-final.png"));
    browser.js("clearInterval(window.sampler); return 0;");
    let hashes = distinct_hashes(&browser);
    assert!(hashes.len() >= 3, "the frame, a preview, the image: {hashes:?}");
    let (frame, image) = (hashes[0], *hashes.last().unwrap());
    assert!(hashes[1..hashes.len() - 1].iter().any(|h| *h != frame && *h != image), "{hashes:?}");
    let again = fetched_again(&browser, &url);
    assert_eq!((again[0].clone(), again[3].clone()), (Value::from("HIT"), Value::from(image)));
    assert_eq!(openai.calls(), 1);
}
