//! Derived variants over in-memory ports, through the whole of `api`.

use crate::api::fakes::{body, live_request, World};
use crate::api::reply::Reply;
use crate::api::run;
use crate::core::stored::stats::Counter;
use crate::core::Error;

fn world() -> World {
    let mut w = World::new();
    w.provider.picture.set(Some((64, 32)));
    w.config.variant_widths = vec![8, 16, 32, 128];
    w
}

fn get(w: &World, query: &str, accept: Option<&str>) -> Result<Reply<Vec<u8>>, Error> {
    let mut headers = vec![("x-api-key", w.alpha.as_str())];
    headers.extend(accept.map(|a| ("accept", a)));
    w.live(query, &headers, false)
}

fn refused(result: Result<Reply<Vec<u8>>, Error>) -> Error {
    match result {
        Err(e) => e,
        Ok(reply) => panic!("answered {} instead of an error", reply.status),
    }
}

fn decoded(bytes: &[u8]) -> (image::ImageFormat, u32, u32) {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().unwrap();
    let format = reader.format().unwrap();
    let image = reader.decode().unwrap();
    (format, image.width(), image.height())
}

fn objects(w: &World) -> Vec<String> {
    w.store.objects.borrow().keys().cloned().collect()
}

#[test]
fn a_variant_is_derived_once_from_the_generated_original_then_served_from_the_cache() {
    let w = world();
    let miss = get(&w, "prompt=fox&w=10&format=jpeg", None).unwrap();
    assert_eq!(miss.header("x-cache-status"), Some("MISS"));
    assert_eq!(miss.header("content-type"), Some("image/jpeg"));
    assert_eq!(decoded(&body(&miss)), (image::ImageFormat::Jpeg, 16, 8), "w=10 snaps up to 16");
    assert!(miss.header("server-timing").is_some_and(|t| t.starts_with("derive;dur=")));
    let original = get(&w, "prompt=fox", None).unwrap();
    assert_eq!(original.header("x-cache-status"), Some("HIT"), "the original was cached on the way");
    assert_eq!(decoded(&body(&original)), (image::ImageFormat::Png, 64, 32));
    assert_eq!(miss.header("x-variant-of"), original.header("x-image-id"));
    assert_eq!(original.header("x-variant-of"), None);
    assert_ne!(miss.header("x-image-id"), original.header("x-image-id"));

    let hit = get(&w, "prompt=fox&w=16&format=jpeg", None).unwrap();
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(hit.header("x-cache-hit-count"), Some("1"));
    assert_eq!(
        (hit.header("etag"), hit.header("x-variant-of")),
        (miss.header("etag"), miss.header("x-variant-of"))
    );
    assert_eq!(body(&hit), body(&miss));
    assert_eq!(w.provider.calls.get(), 1);
    assert_eq!(objects(&w).len(), 2);
    assert!(objects(&w).iter().any(|k| k.ends_with(".jpg")));
    assert_eq!((w.counter("proj-a", Counter::Entries), w.counter("proj-a", Counter::Variants)), (1, 1));
    let size = body(&miss).len() as i64;
    assert_eq!(w.counter("proj-a", Counter::VariantBytes), size);

    let not_modified = w
        .live(
            "prompt=fox&w=16&format=jpeg",
            &[("x-api-key", &w.alpha), ("if-none-match", hit.header("etag").unwrap())],
            false,
        )
        .unwrap();
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("x-variant-of"), miss.header("x-variant-of"));
}

#[test]
fn many_variants_at_once_make_one_generation_and_one_object_each() {
    let w = world();
    let ctx = w.ctx();
    let queries: Vec<String> = [8, 16, 32]
        .iter()
        .flat_map(|width| ["png", "webp"].map(|f| format!("prompt=fox&w={width}&format={f}")))
        .flat_map(|q| [q.clone(), q])
        .collect();
    let requests = queries.iter().map(|q| live_request(q, &[("x-api-key", &w.alpha)], false));
    let replies = w.block_on(futures::future::join_all(requests.map(|r| run(&ctx, r))));
    for (q, reply) in queries.iter().zip(&replies) {
        let reply = reply.as_ref().unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(reply.status, 200, "{q}");
    }
    assert_eq!(w.provider.calls.get(), 1);
    assert_eq!(objects(&w).len(), 7, "{:?}", objects(&w));
    assert_eq!(w.counter("proj-a", Counter::Variants), 6);
    let misses =
        replies.iter().filter(|r| r.as_ref().unwrap().header("x-cache-status") == Some("MISS")).count();
    assert_eq!(misses, 6, "each variant derived once; its twin waited and was served from the cache");
}

#[test]
fn auto_follows_accept_and_says_it_varies() {
    let w = world();
    let avif = get(&w, "prompt=fox&w=16&format=auto", Some("image/avif,image/webp,*/*")).unwrap();
    assert_eq!(avif.header("content-type"), Some("image/avif"));
    assert_eq!(avif.header("vary"), Some("Accept"));
    assert_eq!(&body(&avif)[4..12], b"ftypavif");
    let webp = get(&w, "prompt=fox&w=16&format=auto", Some("image/webp,*/*;q=0.8")).unwrap();
    assert_eq!((webp.header("content-type"), webp.header("vary")), (Some("image/webp"), Some("Accept")));
    let jpeg = get(&w, "prompt=fox&w=16&format=auto", None).unwrap();
    assert_eq!((jpeg.header("content-type"), jpeg.header("vary")), (Some("image/jpeg"), Some("Accept")));
    let again = get(&w, "prompt=fox&w=16&format=auto", Some("image/avif")).unwrap();
    assert_eq!((again.header("x-cache-status"), again.header("vary")), (Some("HIT"), Some("Accept")));
    assert_eq!(body(&again), body(&avif));
    let fixed = get(&w, "prompt=fox&w=16&format=webp", Some("image/avif")).unwrap();
    assert_eq!(fixed.header("vary"), None, "an explicit format does not vary");
}

#[test]
fn a_regenerated_original_gets_its_variants_derived_again() {
    let w = world();
    let before = get(&w, "prompt=fox&w=16&format=png", None).unwrap();
    let regen = w
        .request(crate::api::fakes::request(
            crate::core::http::routes::Method::Post,
            "/api/v1/live/regenerate?prompt=fox",
            &[("x-api-key", &w.alpha)],
            b"",
        ))
        .unwrap();
    assert_eq!(regen.status, 200);
    assert_eq!(objects(&w).len(), 1, "the old variant's object went with the regenerate: {:?}", objects(&w));
    assert_eq!(w.counter("proj-a", Counter::Variants), 0);
    let after = get(&w, "prompt=fox&w=16&format=png", None).unwrap();
    assert_eq!(after.header("x-cache-status"), Some("MISS"));
    assert_ne!(after.header("x-variant-of"), before.header("x-variant-of"));
    assert_eq!(after.header("x-variant-of"), regen.header("x-image-id"));
    assert_eq!(objects(&w).len(), 2, "old original and old variant objects are gone: {:?}", objects(&w));
    assert_eq!(w.counter("proj-a", Counter::Variants), 1);
}

#[test]
fn purge_removes_the_original_and_every_variant() {
    let w = world();
    for q in ["prompt=fox&w=8&format=png", "prompt=fox&w=16&format=webp", "prompt=fox&format=jpeg&q=50"] {
        get(&w, q, None).unwrap();
    }
    get(&w, "prompt=other&w=8&format=png", None).unwrap();
    assert_eq!(objects(&w).len(), 6);
    let purged = w
        .request(crate::api::fakes::request(
            crate::core::http::routes::Method::Delete,
            "/api/v1/live/generate?prompt=fox&w=16",
            &[("x-api-key", &w.alpha)],
            b"",
        ))
        .unwrap();
    assert_eq!(purged.status, 204);
    assert_eq!(objects(&w).len(), 2, "only the other prompt's: {:?}", objects(&w));
    assert!(objects(&w).iter().all(|k| !k.contains(&w.kv_hash_of("fox"))));
    assert_eq!(w.counter("proj-a", Counter::Variants), 1);
    let leftover: Vec<String> = w
        .kv
        .map
        .borrow()
        .keys()
        .filter(|k| k.contains(&w.kv_hash_of("fox")) && !k.starts_with("stats:") && !k.starts_with("budget"))
        .cloned()
        .collect();
    // Left: the entries log, and the variant log's counter and purge mark
    // (never reset: a derivation may be logging while a purge runs).
    let bookkeeping = ["seen:", "entrylog", "variantseq:", "variantpurged:"];
    assert!(leftover.iter().all(|k| bookkeeping.iter().any(|b| k.starts_with(b))), "{leftover:?}");
    let again = get(&w, "prompt=fox&w=16&format=webp", None).unwrap();
    assert_eq!(again.header("x-cache-status"), Some("MISS"));
    assert_eq!(w.provider.calls.get(), 3);
    // A second purge walks on from the mark and finds the new variant.
    let purge = || {
        w.request(crate::api::fakes::request(
            crate::core::http::routes::Method::Delete,
            "/api/v1/live/generate?prompt=fox",
            &[("x-api-key", &w.alpha)],
            b"",
        ))
    };
    assert_eq!(purge().unwrap().status, 204);
    assert!(objects(&w).iter().all(|k| !k.contains(&w.kv_hash_of("fox"))), "{:?}", objects(&w));
    assert_eq!(w.counter("proj-a", Counter::Variants), 1);
    assert_eq!(refused(purge()), Error::NotFound("no cached image for these parameters"));
    // Purge judges variant values as a GET does.
    let bad = w.request(crate::api::fakes::request(
        crate::core::http::routes::Method::Delete,
        "/api/v1/live/generate?prompt=other&w=abc",
        &[("x-api-key", &w.alpha)],
        b"",
    ));
    assert_eq!(refused(bad).status(), 400);
    assert_eq!(objects(&w).len(), 2, "the other prompt's original and variant are untouched");
}

#[test]
fn an_original_over_the_pixel_limit_is_a_422_that_leaves_nothing_behind() {
    let mut w = world();
    w.config.max_source_pixels = 64 * 32 - 1;
    let e = refused(get(&w, "prompt=fox&w=16&format=webp", None));
    assert_eq!((e.status(), e.code()), (422, "variant_unavailable"));
    assert!(e.public_message().contains("max_source_pixels"), "{}", e.public_message());
    assert_eq!(objects(&w).len(), 1, "the original alone");
    assert_eq!(w.counter("proj-a", Counter::Variants), 0);
    let again = refused(get(&w, "prompt=fox&w=16&format=webp", None));
    assert_eq!(again.status(), 422, "no lease left behind");
    assert_eq!(get(&w, "prompt=fox", None).unwrap().header("x-cache-status"), Some("HIT"));
}

#[test]
fn bad_variant_parameters_are_400s_that_change_nothing() {
    let w = world();
    for q in ["prompt=fox&w=0", "prompt=fox&format=gif", "prompt=fox&format=png&q=5", "prompt=fox&w=1&w=2"] {
        let e = refused(get(&w, q, None));
        assert_eq!(e.status(), 400, "{q}");
    }
    assert_eq!((w.provider.calls.get(), objects(&w).len(), w.entries()), (0, 0, 0));
}

#[test]
fn head_of_a_variant_never_derives() {
    let w = world();
    get(&w, "prompt=fox", None).unwrap();
    let e = refused(w.live("prompt=fox&w=16&format=png", &[("x-api-key", &w.alpha)], true));
    assert_eq!(e, Error::NotCached);
    get(&w, "prompt=fox&w=16&format=png", None).unwrap();
    let head = w.live("prompt=fox&w=16&format=png", &[("x-api-key", &w.alpha)], true).unwrap();
    assert_eq!((head.status, head.header("x-cache-status")), (200, Some("HIT")));
    assert!(body(&head).is_empty());
    assert_eq!(objects(&w).len(), 2);
}

#[test]
fn the_sign_api_signs_variant_parameters_with_the_width_snapped() {
    let w = world();
    let signed = w
        .request(crate::api::fakes::request(
            crate::core::http::routes::Method::Post,
            "/api/v1/live/sign",
            &[("x-api-key", &w.alpha)],
            br#"{"prompt":"fox","w":20,"format":"auto"}"#,
        ))
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&body(&signed)).unwrap();
    let path = doc["path"].as_str().unwrap();
    assert!(path.contains("w=32") && path.contains("format=auto"), "{path}");
    let query = path.split_once('?').unwrap().1;
    let reply = w.live(query, &[("accept", "image/webp")], false).unwrap();
    assert_eq!((reply.status, reply.header("content-type")), (200, Some("image/webp")));
    let tampered = query.replace("w=32", "w=16");
    assert_eq!(refused(w.live(&tampered, &[], false)), Error::BadSignature);
}

/// What a variant MISS costs the KV store (every call, counted by the
/// fake), in an hour whose budget and derivations counters exist (the first
/// generation and derivation of an hour also remove the counters of the 24
/// before): each entry is read at
/// most once per stage (looked up, then checked before it is written), and
/// `misses` moves once per answer.
#[test]
fn a_variant_miss_reads_each_entry_once_per_stage_and_makes_few_kv_operations() {
    use crate::core::stored::stats::Counter;
    let w = world();
    get(&w, "prompt=warm&w=8&format=jpeg", None).unwrap();
    let reads = |ops: &[(&str, String)], key: &str| {
        let read = |op: &str, k: &str| match op {
            "get" => k == key,
            "get_many" => k.split(' ').any(|k| k == key),
            _ => false,
        };
        ops.iter().filter(|(op, k)| read(op, k)).count()
    };
    let (_, request) = crate::core::http::request::parse("prompt=fox", 100).unwrap();
    let original = crate::api::kv::slot::Slot::new(&w.config, "proj-a", &request).unwrap();
    let misses = w.counter("proj-a", Counter::Misses);
    w.kv.take_ops();
    assert_eq!(get(&w, "prompt=fox&w=8&format=jpeg", None).unwrap().header("x-cache-status"), Some("MISS"));
    let ops = w.kv.take_ops();
    // 23 since issue 36: the project's prompt policy is read before a
    // generation, and a takedown's block before (original not cached) and
    // under the lease.
    assert_eq!(ops.len(), 23, "a variant MISS of a new prompt: {} KV operations: {ops:#?}", ops.len());
    assert_eq!(reads(&ops, &original.entry_key), 2, "looked up, then checked before writing: {ops:#?}");
    assert_eq!(w.counter("proj-a", Counter::Misses), misses + 1, "one answer, one miss");
    let variant = format!("{}~w16.jpeg.q80", original.entry_key);
    w.kv.take_ops();
    assert_eq!(get(&w, "prompt=fox&w=16&format=jpeg", None).unwrap().header("x-cache-status"), Some("MISS"));
    let ops = w.kv.take_ops();
    assert_eq!(ops.len(), 14, "a variant MISS of a cached original: {} KV operations: {ops:#?}", ops.len());
    // The original: looked up, then checked once the variant is stored (a
    // purge meanwhile takes the variant back, `purge::take_back_variant`).
    assert_eq!((reads(&ops, &original.entry_key), reads(&ops, &variant)), (2, 2), "{ops:#?}");
    assert_eq!(w.counter("proj-a", Counter::Misses), misses + 2);
}

#[test]
fn a_placeholder_is_only_of_a_cached_image_and_is_cached_like_a_variant() {
    let w = world();
    for format in ["lqip", "thumbhash"] {
        let e = refused(get(&w, &format!("prompt=fox+{format}&format={format}"), None));
        assert_eq!(e, Error::NotCached, "{format}: never generates");
    }
    assert_eq!(w.provider.calls.get(), 0);
    get(&w, "prompt=fox", None).unwrap();
    let lqip = get(&w, "prompt=fox&format=lqip", None).unwrap();
    assert_eq!(lqip.header("content-type"), Some("image/webp"));
    assert!(body(&lqip).len() <= banatie_image::MAX_LQIP_BYTES);
    assert_eq!(decoded(&body(&lqip)), (image::ImageFormat::WebP, 24, 12));
    let again = get(&w, "prompt=fox&format=lqip", None).unwrap();
    assert_eq!(again.header("x-cache-status"), Some("HIT"));
    let hash = get(&w, "prompt=fox&format=thumbhash", None).unwrap();
    assert_eq!(hash.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&body(&hash)).unwrap();
    assert!(
        json["thumbhash"].is_string() && json["data_url"].as_str().unwrap().starts_with("data:image/png")
    );
    assert_eq!(w.provider.calls.get(), 1);
}

#[test]
fn every_variant_is_marked_as_ai_generated_and_every_answer_says_so() {
    let w = world();
    let original = get(&w, "prompt=fox", None).unwrap();
    assert_eq!(original.header("x-ai-generated"), Some("true"));
    let id = original.header("x-image-id").unwrap().to_string();
    for format in ["png", "jpeg", "webp", "avif"] {
        let v = get(&w, &format!("prompt=fox&w=16&format={format}"), None).unwrap();
        assert_eq!(v.header("x-ai-generated"), Some("true"));
        let bytes = String::from_utf8_lossy(&body(&v)).into_owned();
        assert!(bytes.contains(crate::core::variant::marking::DIGITAL_SOURCE_TYPE), "{format}");
        assert!(bytes.contains(&format!("urn:banatie:image:{id}")), "{format}: names its original");
    }
}

#[test]
fn a_project_derives_at_most_its_derivations_per_hour_and_cached_variants_stay_served() {
    use crate::core::ports::KeyValue;
    use crate::core::stored::keys;
    use crate::core::stored::project::Project;
    let w = world();
    let mut project = Project::decode(&w.kv.get(&keys::project("proj-a")).unwrap().unwrap()).unwrap();
    project.derivations_per_hour = 2;
    w.kv.set(&keys::project("proj-a"), &project.encode()).unwrap();
    for width in [8, 16] {
        let miss = get(&w, &format!("prompt=fox&w={width}&format=jpeg"), None).unwrap();
        assert_eq!(miss.header("x-cache-status"), Some("MISS"));
    }
    let stored = objects(&w);
    let e = refused(get(&w, "prompt=fox&w=32&format=jpeg", None));
    assert_eq!((e.status(), e.code()), (429, "derivations_exceeded"));
    assert!(e.retry_after().is_some_and(|s| (1..=3600).contains(&s)), "{:?}", e.retry_after());
    assert_eq!(objects(&w), stored, "a refused derivation stores nothing");
    // The original and the variants derived before are served as they are.
    for query in ["prompt=fox", "prompt=fox&w=8&format=jpeg", "prompt=fox&w=16&format=jpeg"] {
        assert_eq!(get(&w, query, None).unwrap().header("x-cache-status"), Some("HIT"), "{query}");
    }
    assert_eq!(w.counter("proj-a", Counter::Variants), 2);
    // Another project's allowance is its own.
    let other = w.live("prompt=fox&w=32&format=jpeg", &[("x-api-key", w.beta.as_str())], false).unwrap();
    assert_eq!(other.header("x-cache-status"), Some("MISS"));
}
