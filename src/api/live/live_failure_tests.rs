//! The pipeline when things go wrong: damaged KV records, refused misses,
//! oversized images, the last budget unit. Same fakes as `live_tests`.

use super::*;

#[test]
fn a_corrupt_entry_is_a_miss_that_is_replaced_and_purge_removes_one() {
    let w = World::new();
    w.get("prompt=fox", Some(&w.alpha), false).unwrap();
    let key = w.kv.map.borrow().keys().find(|k| k.starts_with("live:")).unwrap().clone();
    w.kv.set(&key, b"{not json").unwrap();
    let again = w.get("prompt=fox", Some(&w.alpha), false).unwrap();
    assert_eq!(header(&again, "x-cache-status"), Some("MISS"));
    assert!(Entry::decode(&w.kv.get(&key).unwrap().unwrap()).is_ok(), "replaced by a good entry");
    w.kv.set(&key, br#"{"v":99}"#).unwrap();
    let purge = crate::api::fakes::request(
        crate::core::http::routes::Method::Delete,
        "/api/v1/live/generate?prompt=fox",
        &[("x-api-key", &w.alpha)],
        b"",
    );
    let purged = w.request(purge).unwrap();
    assert_eq!(purged.status, 204);
    assert!(w.kv.get(&key).unwrap().is_none(), "an unreadable entry is purged too");
}

#[test]
fn refused_misses_write_nothing_and_old_budget_counters_are_removed() {
    let w = World::new();
    let (key, _) = add_project(&w.kv, "proj-tight", 6, 1);
    let old = crate::core::stored::keys::budget("proj-tight", START_UNIX - 3600);
    w.kv.increment(&old, 7).unwrap();
    w.get("prompt=first", Some(key.as_str()), false).unwrap();
    assert!(w.kv.get(&old).unwrap().is_none(), "the first spend of an hour removes the hours before");
    for prompt in ["a", "b", "c"] {
        assert_eq!(
            w.get(&format!("prompt={prompt}"), Some(key.as_str()), false).err().unwrap().status(),
            429
        );
    }
    let rows: Vec<String> =
        w.kv.map
            .borrow()
            .keys()
            .filter(|k| k.starts_with("lease:") || k.starts_with("failed:"))
            .cloned()
            .collect();
    assert!(rows.is_empty(), "a 429 leaves no row: {rows:?}");
}

#[test]
fn an_image_over_max_image_bytes_is_a_provider_error() {
    let image =
        crate::core::provider::GeneratedImage { content_type: "image/png".into(), bytes: vec![0; 2048] };
    let e = crate::core::provider::check_size(image, 1024).unwrap_err();
    assert_eq!((e.status(), e.code()), (502, "provider_error"));
    assert!(crate::core::provider::answer_limit(3 << 20) > 4 << 20, "base64 and JSON fit");
}

#[test]
fn requests_that_wait_on_the_last_budget_unit_are_served_not_refused() {
    let w = World::new();
    let (key, _) = add_project(&w.kv, "proj-last", 7, 1);
    let replies = concurrently(&w, 4, "prompt=last", &key);
    assert!(replies.iter().all(|r| r.as_ref().is_ok_and(|r| r.status == 200)), "no 429 while coalescing");
    assert_eq!(w.provider.calls.get(), 1);
}

#[test]
fn a_corrupt_project_record_is_a_clear_error_that_rotation_repairs() {
    let w = World::new();
    w.kv.set(&crate::core::stored::keys::project("proj-a"), b"{broken").unwrap();
    let e = w.get("prompt=fox", Some(&w.alpha), false).err().unwrap();
    assert_eq!((e.status(), e.code()), (500, "project_unreadable"));
    let rotated: Reply<Vec<u8>> = crate::api::routes::projects::rotate(&w.kv, "proj-a", [9; 64]).unwrap();
    assert_eq!(rotated.status, 200);
    let record = crate::api::records::projects::load(&w.kv, "proj-a").unwrap().unwrap();
    assert_eq!(record.generations_per_hour, crate::core::decide::budget::DEFAULT_GENERATIONS_PER_HOUR);
    let (new_key, _) = project::new_credentials("proj-a", [9; 64]);
    assert_eq!(w.get("prompt=fox", Some(&new_key), false).unwrap().status, 200, "the new key works");
}
