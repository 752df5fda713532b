//! Derived variants through the real runtime, Garage and a Gemini double
//! that answers pictures of Gemini's real size (1024×1024 for 1:1).

use testkit::gemini::{Behavior, Gemini};
use testkit::s3;

use crate::support::host::{self, Host};
use crate::support::http::{send, Reply};
use crate::support::runtime;
use crate::support::{enc, s3_endpoint, unique};

const WIDTHS: [u32; 5] = [64, 256, 384, 512, 768];
const FORMATS: [(&str, image::ImageFormat, &str); 2] =
    [("webp", image::ImageFormat::WebP, "image/webp"), ("jpeg", image::ImageFormat::Jpeg, "image/jpeg")];

fn decoded(bytes: &[u8]) -> (image::ImageFormat, u32, u32) {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().unwrap();
    let format = reader.format().expect("a known image format");
    let image = reader.decode().expect("decodes");
    (format, image.width(), image.height())
}

/// An AVIF file's brand and its `ispe` (image spatial extent) box.
fn avif_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(4..12) != Some(b"ftypavif") {
        return None;
    }
    let at = bytes.windows(4).position(|w| w == b"ispe")? + 8;
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    Some((word(at), word(at + 4)))
}

fn objects(project: &str) -> Vec<String> {
    s3::list(s3_endpoint(), &format!("live/{project}/")).unwrap()
}

/// Twenty requests at once, two for each of ten variants of one prompt,
/// while the original takes 1 s to generate (so they all overlap): one
/// generation; each variant derived once (ten MISSes), and the ten others
/// answered what another request made while they waited (coalesced HITs).
pub fn twenty_concurrent_requests_for_ten_variants_make_one_generation_and_eleven_objects() {
    let gemini = Gemini::start();
    gemini.set(Behavior::Picture);
    gemini.set_delay(1000);
    let host = Host::start(&host::standard_vars(s3_endpoint(), &gemini.url));
    let p = host.create_project_with(r#"{"name":"variants"}"#);
    let prompt = enc(&unique("a lighthouse at dusk"));
    let query = |w: u32, f: &str| format!("/api/v1/live/generate?prompt={prompt}&w={w}&format={f}");
    let asked: Vec<(u32, usize)> =
        WIDTHS.iter().flat_map(|&w| (0..FORMATS.len()).map(move |f| (w, f))).flat_map(|v| [v, v]).collect();
    assert_eq!(asked.len(), 20);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let threads: Vec<_> = asked
            .iter()
            .map(|&(w, f)| {
                let url = host.url(&query(w, FORMATS[f].0));
                let key = p.api_key.clone();
                s.spawn(move || send("GET", &url, &[("x-api-key", &key)], b""))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let original = host.get(&format!("/api/v1/live/generate?prompt={prompt}"), &p.api_key);
    assert_eq!(original.header("x-cache-status"), Some("HIT"), "generated on the way to the variants");
    assert_eq!(decoded(&original.body), (image::ImageFormat::Png, 1024, 1024));
    let original_id = original.header("x-image-id").unwrap().to_string();
    for (&(w, f), reply) in asked.iter().zip(&replies) {
        let (name, format, content_type) = FORMATS[f];
        assert_eq!(reply.status, 200, "w={w} {name}: {}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.header("content-type"), Some(content_type));
        assert_eq!(reply.header("x-variant-of"), Some(original_id.as_str()));
        assert_eq!(decoded(&reply.body), (format, w, w), "w={w} {name}");
        assert!(reply.body.len() < original.body.len() / 2, "w={w} {name}: {} bytes", reply.body.len());
    }
    assert_eq!(gemini.calls(), 1, "one generation for twenty requests");
    assert_eq!(objects(&p.id).len(), 11, "{:#?}", objects(&p.id));
    let misses = replies.iter().filter(|r| r.header("x-cache-status") == Some("MISS")).count();
    assert_eq!(misses, 10, "each variant derived once");
    for (&(w, f), reply) in
        asked.iter().zip(&replies).filter(|(_, r)| r.header("x-cache-status") != Some("MISS"))
    {
        let how = (reply.header("x-cache-status"), reply.header("x-cache-coalesced"));
        assert_eq!(how, (Some("HIT"), Some("true")), "w={w} {}: waited for another's", FORMATS[f].0);
    }
    for pair in replies.chunks(2) {
        assert_eq!(pair[0].body, pair[1].body, "one variant, made once");
    }
    gemini.set_delay(0);

    for (&(w, f), first) in asked.iter().zip(&replies) {
        let again = host.get(&query(w, FORMATS[f].0), &p.api_key);
        assert_eq!(again.header("x-cache-status"), Some("HIT"));
        assert_eq!((again.body == first.body, again.header("etag")), (true, first.header("etag")));
        assert_eq!(again.header("vary"), None);
    }

    let auto = send(
        "GET",
        &host.url(&query(300, "auto")),
        &[("x-api-key", &p.api_key), ("accept", "image/avif,image/webp,*/*")],
        b"",
    );
    assert_eq!(auto.status, 200, "{}", String::from_utf8_lossy(&auto.body));
    assert_eq!((auto.header("content-type"), auto.header("vary")), (Some("image/avif"), Some("Accept")));
    assert_eq!(avif_size(&auto.body), Some((384, 384)), "w=300 snaps up to 384");
    // Ten variants counted (and logged under their original, for the purge)
    // at once: exact wherever increments are atomic — not on wash's
    // directory store, which reads, then writes (docs/deploy.md). What was
    // counted once is exact everywhere.
    let exact = runtime::current().counts_exactly();
    let stats = host.stats(&p.api_key);
    assert_eq!(stats["entries"].as_i64(), Some(1), "{stats}");
    assert_eq!(stats["bytes_stored"].as_i64(), Some(original.body.len() as i64), "{stats}");
    if exact {
        let variant_bytes: usize =
            replies.iter().step_by(2).map(|r| r.body.len()).sum::<usize>() + auto.body.len();
        assert_eq!(stats["variants"].as_i64(), Some(11), "{stats}");
        assert_eq!(stats["variant_bytes"].as_i64(), Some(variant_bytes as i64), "{stats}");
    }
    assert_eq!(objects(&p.id).len(), 12);
    let entry =
        |k: &String| -> serde_json::Value { serde_json::from_slice(&host.kv_get(k).unwrap()).unwrap() };
    let entries = host.kv_keys(&format!("live:{}:", p.id));
    let original_entry = entries.iter().find(|k| !k.contains('~')).expect("the original's entry");
    let original_object = entry(original_entry)["object_key"].as_str().unwrap().to_string();

    let purged = send("DELETE", &host.url(&query(64, "webp")), &[("x-api-key", &p.api_key)], b"");
    assert_eq!(purged.status, 204);
    // Everywhere: the original's entry and object are gone, and what is
    // left agrees — each entry left has its object, each object its entry.
    let left = host.kv_keys(&format!("live:{}:", p.id));
    assert!(left.iter().all(|k| k.contains('~')), "the original's entry is gone: {left:?}");
    let mut pointed: Vec<String> =
        left.iter().map(|k| entry(k)["object_key"].as_str().unwrap().to_string()).collect();
    pointed.sort();
    let mut stored = objects(&p.id);
    stored.sort();
    assert!(!stored.contains(&original_object), "the original's object is gone: {stored:?}");
    assert_eq!(stored, pointed, "objects left, and the objects the entries left point at");
    if exact {
        assert_eq!(objects(&p.id), Vec::<String>::new(), "the original and every variant are gone");
        let stats = host.stats(&p.api_key);
        assert_eq!((stats["variants"].as_i64(), stats["variant_bytes"].as_i64()), (Some(0), Some(0)));
        assert!(host.kv_keys("variantlog").is_empty(), "{:?}", host.kv_keys("variantlog"));
    } else {
        // The variants whose log rows a lost increment overwrote are left.
        println!("left on {:?}: {left:?}, logged: {:?}", runtime::current(), host.kv_keys("variantlog"));
    }
    let again = host.get(&query(64, "webp"), &p.api_key);
    assert_eq!(again.header("x-cache-status"), Some("MISS"), "a purged image's variant is made again");
}

/// One client asking a public scope for 300 distinct variants of one cached
/// image: it derives its hour's allowance of them, the rest are 429
/// `rate_limited`, what it derived stays served, and S3 holds exactly that.
pub fn a_client_derives_at_most_its_allowance_of_variants_and_cached_ones_stay_served() {
    let gemini = Gemini::start();
    gemini.set(Behavior::Picture);
    let widths: Vec<String> = (1..=30).map(|i| (i * 16).to_string()).collect();
    let mut vars = host::standard_vars(s3_endpoint(), &gemini.url);
    vars.retain(|(n, _)| n != "client_derivations_per_hour");
    vars.extend([
        ("client_derivations_per_hour".to_string(), "10".to_string()),
        ("variant_widths".to_string(), widths.join(",")),
        ("variant_qualities".to_string(), "10,20,30,40,50,60,70,80,90,100".to_string()),
    ]);
    let host = Host::start(&vars);
    let r = host.admin("POST", "/api/v1/projects", &format!(r#"{{"name":"{}"}}"#, unique("variants")));
    let (id, key, slug) = {
        let v = r.json();
        let s = |n: &str| v[n].as_str().unwrap().to_string();
        (s("project_id"), s("api_key"), s("slug"))
    };
    let scope =
        send("POST", &host.url("/api/v1/scopes"), &[("x-api-key", &key)], br#"{"slug":"pub","public":true}"#);
    assert_eq!(scope.status, 201);
    let prompt = enc(&unique("a lighthouse at noon"));
    let url = |extra: &str| host.url(&format!("/cdn/{slug}/live/pub?prompt={prompt}{extra}"));
    assert_eq!(send("GET", &url(""), &[], b"").header("x-cache-status"), Some("MISS"), "the original");
    let asked: Vec<String> = widths
        .iter()
        .flat_map(|w| (1..=10).map(move |q| format!("&w={w}&format=jpeg&q={}", q * 10)))
        .collect();
    assert_eq!(asked.len(), 300);
    // The allowance is per clock hour: a run across the hour's turn gets
    // the next hour's too.
    let hour = || crate::support::sign::now() / 3600;
    let first_hour = hour();
    let replies: Vec<Reply> = asked.iter().map(|extra| send("GET", &url(extra), &[], b"")).collect();
    let hours = (hour() - first_hour + 1) as usize;
    let derived: Vec<&String> =
        asked.iter().zip(&replies).filter(|(_, r)| r.status == 200).map(|(a, _)| a).collect();
    match hours {
        1 => assert_eq!(derived.len(), 10, "the client's allowance"),
        _ => assert!(
            (10..=10 * hours).contains(&derived.len()),
            "the allowance of {hours} hours: {}",
            derived.len()
        ),
    }
    for r in replies.iter().filter(|r| r.status != 200) {
        assert_eq!((r.status, r.error_code().as_str()), (429, "rate_limited"));
        assert!(r.header("retry-after").is_some());
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    }
    for extra in &derived {
        let again = send("GET", &url(extra), &[], b"");
        assert_eq!((again.status, again.header("x-cache-status")), (200, Some("HIT")), "{extra}");
    }
    assert_eq!(objects(&id).len(), 1 + derived.len(), "the original and the variants derived");
    assert_eq!(gemini.calls(), 1);
}

/// What exiftool (Debian's libimage-exiftool-perl, installed by
/// scripts/setup.sh) reads as `XMP-iptcExt:DigitalSourceType` in `bytes`.
fn digital_source_type(bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = std::process::Command::new("exiftool")
        .args(["-s3", "-XMP-iptcExt:DigitalSourceType"])
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| panic!("exiftool (scripts/setup.sh installs it): {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every variant we encode is marked as AI-generated where exiftool reads
/// it (JPEG APP1, PNG iTXt, WebP `XMP `, AVIF `mime` item); the original is
/// the provider's bytes untouched; every answer says so in `X-AI-Generated`;
/// the LQIP and ThumbHash placeholders of the same image are small, decode
/// and round-trip.
pub fn every_variant_is_marked_as_ai_generated_for_exiftool() {
    let gemini = Gemini::start();
    gemini.set(Behavior::Picture);
    let host = Host::start(&host::standard_vars(s3_endpoint(), &gemini.url));
    let key = host.create_project("marked");
    let prompt = unique("a marked lighthouse");
    let live = format!("/api/v1/live/generate?prompt={}", enc(&prompt));
    let original = host.get(&live, &key);
    assert_eq!(original.status, 200);
    assert_eq!(original.body, testkit::double::picture(&prompt, "1:1"), "the provider's bytes, untouched");
    assert_eq!(original.header("x-ai-generated"), Some("true"));
    let term = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";
    for format in ["jpeg", "png", "webp", "avif"] {
        let v = host.get(&format!("{live}&w=256&format={format}"), &key);
        assert_eq!((v.status, v.header("x-ai-generated")), (200, Some("true")), "{format}");
        assert_eq!(digital_source_type(&v.body), term, "{format}");
        if format != "avif" {
            assert_eq!(decoded(&v.body).1, 256, "{format} still decodes");
        } else {
            assert_eq!(avif_size(&v.body), Some((256, 256)));
        }
    }

    let lqip = host.get(&format!("{live}&format=lqip"), &key);
    assert_eq!((lqip.status, lqip.header("content-type")), (200, Some("image/webp")));
    assert!(lqip.body.len() <= 1024, "{} bytes", lqip.body.len());
    assert_eq!(decoded(&lqip.body), (image::ImageFormat::WebP, 24, 24));
    let hash = host.get(&format!("{live}&format=thumbhash"), &key);
    let json = hash.json();
    use base64::Engine;
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(json["thumbhash"].as_str().unwrap()).unwrap();
    let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&bytes).expect("a ThumbHash");
    assert_eq!(rgba.len(), w * h * 4);
    let url = json["data_url"].as_str().unwrap();
    let png =
        base64::engine::general_purpose::STANDARD.decode(url.strip_prefix("data:image/png;base64,").unwrap());
    assert_eq!(decoded(&png.unwrap()).0, image::ImageFormat::Png);
    // Geometry: h with fit, and dpr folded into w (the 1024² original).
    for (query, size) in [
        ("w=256&h=128&fit=cover&format=png", (256, 128)),
        ("w=256&h=128&format=png", (128, 128)),
        ("w=256&h=256&fit=pad&gravity=top&format=jpeg", (256, 256)),
        ("w=384&dpr=2&format=webp", (768, 768)),
        ("h=64&format=png", (64, 64)),
    ] {
        let v = host.get(&format!("{live}&{query}"), &key);
        assert_eq!(v.status, 200, "{query}: {}", String::from_utf8_lossy(&v.body));
        let (_, w, h) = decoded(&v.body);
        assert_eq!((w, h), size, "{query}");
    }
    let again = host.get(&format!("{live}&w=768&format=webp"), &key);
    assert_eq!(again.header("x-cache-status"), Some("HIT"), "w=384&dpr=2 is the 768 variant");
    let never =
        host.get(&format!("/api/v1/live/generate?prompt={}&format=lqip", enc(&unique("never"))), &key);
    assert_eq!(
        (never.status, never.error_code().as_str()),
        (404, "not_cached"),
        "a placeholder never generates"
    );
    assert_eq!(gemini.calls(), 1);
}
