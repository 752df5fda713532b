//! The HIT at local speed (issue 28): banatie-host's object cache
//! (`--object-cache`) never serves a purged, replaced, damaged or forbidden
//! copy; a hot keyed HIT makes two key-value operations; hit counts stay
//! exact under concurrency on every runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::gemini::{Behavior, Gemini};
use crate::support::host::{standard_vars, Host};
use crate::support::http::{send, Reply};
use crate::support::store::Store;
use crate::support::{enc, s3_endpoint, unique};

fn live(prompt: &str) -> String {
    format!("/api/v1/live/generate?prompt={}", enc(prompt))
}

/// The copies in a cache directory (not their descriptions).
fn copies(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("objects"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_none());
    files.sort();
    files
}

/// Each copy and when it was written.
fn written(dir: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    copies(dir)
        .into_iter()
        .filter_map(|p| Some((p.clone(), std::fs::metadata(&p).ok()?.modified().ok()?)))
        .collect()
}

/// A HIT whose answer fills a copy: it is kept just after the answer's last
/// byte, so wait (at most 10 s) until a copy is new.
fn hit_and_keep(host: &Host, path: &str, key: &str, dir: &Path) -> Reply {
    let before = written(dir);
    let reply = hit(host, path, key);
    let started = Instant::now();
    while written(dir).iter().all(|w| before.contains(w)) {
        assert!(started.elapsed() < Duration::from_secs(10), "no copy kept of {path}");
        std::thread::sleep(Duration::from_millis(10));
    }
    reply
}

/// GETs the host's component made that its object cache answered (read off
/// the operator listener, which is not among the exchanges checked against
/// docs/openapi.yaml).
fn answered_from_copies(host: &Host) -> u64 {
    let (_, text) = crate::operations::operator_get(&format!("{}/metrics", host.operator_base()));
    let series = r#"banatie_outbound_requests_total{target="s3",outcome="cached"}"#;
    // The series appears with its first count (0 before): the tests that
    // count more than 0 show its name is right.
    crate::operations::sample_if_any(&text, series).unwrap_or(0.0) as u64
}

fn cached_host(
    state: Arc<tempfile::TempDir>,
    vars: &[(String, String)],
    cache: &Path,
    extra: &[&str],
) -> Host {
    let dir = cache.display().to_string();
    let mut args = vec!["--object-cache", dir.as_str(), "--metrics-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Host::start_in(state, vars, &args)
}

fn hit(host: &Host, path: &str, key: &str) -> Reply {
    let r = host.get(path, key);
    assert_eq!(
        (r.status, r.header("x-cache-status")),
        (200, Some("HIT")),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r
}

/// Two hosts on one Redis and one Garage, each with its own object cache:
/// B answers A's image from its copy; after A purges it and after A
/// regenerates it, B answers the new image, never its copy of the old.
pub fn two_hosts_sharing_a_store_never_serve_a_purged_or_replaced_image_from_their_copies() {
    let store = Store::shared();
    let gemini = Gemini::start();
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let (cache_a, cache_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let with = |dir: &Path| {
        let dir = dir.display().to_string();
        Host::start_sharing_with(&store, &vars, &["--object-cache", &dir, "--metrics-listen", "127.0.0.1:0"])
    };
    let (a, b) = (with(cache_a.path()), with(cache_b.path()));
    let key = a.create_project("cached twice");
    let prompt = unique("kept on both");
    let path = live(&prompt);
    let first = a.get(&path, &key);
    assert_eq!(first.header("x-cache-status"), Some("MISS"));
    assert_eq!(hit_and_keep(&b, &path, &key, cache_b.path()).body, first.body);
    for _ in 0..2 {
        assert_eq!(hit(&b, &path, &key).body, first.body);
    }
    assert_eq!(copies(cache_b.path()).len(), 1, "B keeps the object it read");
    assert_eq!(
        answered_from_copies(&b),
        2,
        "the first HIT filled the copy, the next two were answered from it"
    );
    // A variant is derived from B's copy (the component reads its bytes).
    let variant = b.get(&format!("{path}&w=384&format=jpeg"), &key);
    assert_eq!((variant.status, variant.header("content-type")), (200, Some("image/jpeg")));
    assert_eq!(&variant.body[..2], b"\xff\xd8");
    assert_eq!(answered_from_copies(&b), 3);

    // A purges: B's copy is of an object nobody will ask for again.
    let purged = send("DELETE", &a.url(&path), &[("x-api-key", &key)], b"");
    assert_eq!(purged.status, 204);
    gemini.set(Behavior::Picture);
    let remade = b.get(&path, &key);
    assert_eq!(remade.header("x-cache-status"), Some("MISS"), "the entry is gone on both");
    assert_ne!(remade.body, first.body, "a new image, not B's copy of the old one");
    assert_eq!(hit(&b, &path, &key).body, remade.body);
    assert_eq!(hit(&a, &path, &key).body, remade.body);

    // A regenerates: both answer the newest image.
    gemini.set(Behavior::Sized(3000));
    let regen = send(
        "POST",
        &a.url(&format!("/api/v1/live/regenerate?prompt={}", enc(&prompt))),
        &[("x-api-key", &key)],
        b"",
    );
    assert_eq!(regen.status, 200, "{}", String::from_utf8_lossy(&regen.body));
    assert_ne!(regen.body, remade.body);
    assert_eq!(hit(&b, &path, &key).body, regen.body);
    assert_eq!(hit_and_keep(&a, &path, &key, cache_a.path()).body, regen.body);
    assert_eq!(hit(&b, &path, &key).body, regen.body);
    // The replaced objects' copies went with the DELETEs their host sent:
    // A keeps exactly one copy, of the newest image.
    let kept: Vec<Vec<u8>> = copies(cache_a.path()).iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(kept, std::slice::from_ref(&regen.body), "A's copies: {:?}", copies(cache_a.path()));
}

/// The copies outlive a restart; one damaged on disk (a byte changed, or
/// cut short) is found out and fetched again from S3, never served.
pub fn copies_survive_a_restart_and_a_damaged_one_is_fetched_again() {
    let gemini = Gemini::start();
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let cache = tempfile::tempdir().unwrap();
    let host = cached_host(Arc::new(tempfile::tempdir().unwrap()), &vars, cache.path(), &[]);
    let key = host.create_project("kept");
    let paths: Vec<String> = (0..3).map(|i| live(&unique(&format!("kept {i}")))).collect();
    let originals: Vec<Vec<u8>> = paths.iter().map(|p| host.get(p, &key).body).collect();
    for p in &paths {
        hit_and_keep(&host, p, &key, cache.path());
    }
    let files = copies(cache.path());
    assert_eq!(files.len(), 3);
    let host = {
        let mut host = host;
        host.kill();
        // One copy with a byte changed, one cut short, one intact.
        let mut changed = std::fs::read(&files[0]).unwrap();
        let middle = changed.len() / 2;
        changed[middle] ^= 0xff;
        std::fs::write(&files[0], changed).unwrap();
        let short = std::fs::read(&files[1]).unwrap();
        std::fs::write(&files[1], &short[..short.len() - 10]).unwrap();
        host.restart()
    };
    let damaged: Vec<Vec<u8>> = files[..2].iter().map(|f| std::fs::read(f).unwrap_or_default()).collect();
    for (p, original) in paths.iter().zip(&originals) {
        assert_eq!(&hit(&host, p, &key).body, original, "{p}");
    }
    // The two damaged copies are replaced by whole ones (kept just after
    // their answers).
    let started = Instant::now();
    while files[..2].iter().zip(&damaged).any(|(f, d)| std::fs::read(f).map_or(true, |now| now == *d)) {
        assert!(started.elapsed() < Duration::from_secs(10), "the damaged copies were not replaced");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(answered_from_copies(&host), 1, "only the intact copy was answered from");
    for (p, original) in paths.iter().zip(&originals) {
        assert_eq!(&hit(&host, p, &key).body, original, "{p}");
    }
    assert_eq!(answered_from_copies(&host), 4, "the damaged ones were fetched again and kept");
    assert_eq!(copies(cache.path()).len(), 3);
}

/// A host whose component has other S3 credentials (here a wrong secret)
/// finds nothing in a cache directory filled by one with the right ones: S3
/// refuses it, and so does the cache.
pub fn a_component_without_the_credentials_reads_nothing_through_the_cache() {
    let gemini = Gemini::start();
    let store = Store::shared();
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().display().to_string();
    let flags = ["--object-cache", dir.as_str(), "--metrics-listen", "127.0.0.1:0"];
    let good = Host::start_sharing_with(&store, &vars, &flags);
    let key = good.create_project("guarded");
    let path = live(&unique("guarded"));
    let made = good.get(&path, &key);
    assert_eq!(hit_and_keep(&good, &path, &key, cache.path()).body, made.body);
    assert_eq!(copies(cache.path()).len(), 1);
    drop(good);
    let mut wrong = vars.clone();
    for (k, v) in wrong.iter_mut() {
        if k == "s3_secret_access_key" {
            *v = "not-the-secret".into();
        }
    }
    let other = Host::start_sharing_with(&store, &wrong, &flags);
    let refused = other.get(&path, &key);
    assert_eq!(
        refused.status,
        502,
        "S3 refuses the wrong secret: {}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_ne!(refused.body, made.body);
    assert_eq!(answered_from_copies(&other), 0);
}

/// At most `--object-cache-size` of copies, the most recently used kept.
pub fn the_cache_keeps_to_its_size() {
    let gemini = Gemini::start();
    gemini.set(Behavior::Sized(20_000));
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let cache = tempfile::tempdir().unwrap();
    let host = cached_host(
        Arc::new(tempfile::tempdir().unwrap()),
        &vars,
        cache.path(),
        &["--object-cache-size", "200000"],
    );
    let key = host.create_project_with(r#"{"name":"many","generations_per_hour":100}"#).api_key;
    let paths: Vec<String> = (0..16).map(|i| live(&unique(&format!("many {i}")))).collect();
    for p in &paths {
        host.get(p, &key);
        hit_and_keep(&host, p, &key, cache.path());
    }
    let sizes: u64 = copies(cache.path()).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert!(sizes <= 200_000, "{sizes} bytes of copies");
    assert!(copies(cache.path()).len() >= 8, "{:?}", copies(cache.path()));
    let before = answered_from_copies(&host);
    hit(&host, paths.last().unwrap(), &key);
    assert_eq!(answered_from_copies(&host), before + 1, "the newest copy is kept");
    hit(&host, &paths[0], &key);
    assert_eq!(answered_from_copies(&host), before + 1, "the oldest was evicted");
}

/// A hot keyed HIT makes two key-value operations (one `get-many` for its
/// project, entry and last access; one increment), counted by
/// banatie-host's KV layer (`--log-host-calls`).
pub fn a_hot_keyed_hit_makes_two_kv_operations() {
    let gemini = Gemini::start();
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let host = Host::start_in(Arc::new(tempfile::tempdir().unwrap()), &vars, &["--log-host-calls"]);
    let key = host.create_project("counted");
    let path = live(&unique("hot"));
    let hot = banatie_core::stored::stats::HITS_STEP as usize + 8;
    for _ in 0..hot {
        host.get(&path, &key);
    }
    let started = Instant::now();
    let log = loop {
        let log = host.log();
        if log.matches("host calls: GET /api/v1/live/generate").count() >= hot {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no host-calls lines:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let calls: Vec<&str> =
        log.lines().filter(|l| l.contains("host calls: GET /api/v1/live/generate")).collect();
    println!("{}\n{}", calls[0], calls[calls.len() - 1]);
    for line in &calls[calls.len() - 5..] {
        assert!(line.ends_with("config 1, kv 2"), "{line}");
    }
}

/// 100 concurrent HITs of one image: every `X-Cache-Hit-Count` from 1 to
/// 100 exactly once, and the entries list says 100.
pub fn a_hundred_concurrent_hits_count_exactly() {
    let gemini = Gemini::start();
    let host = Host::start(&standard_vars(s3_endpoint(), &gemini.url));
    let key = host.create_project("crowd");
    let path = live(&unique("crowded"));
    assert_eq!(host.get(&path, &key).header("x-cache-status"), Some("MISS"));
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                scope.spawn(|| hit(&host, &path, &key).header("x-cache-hit-count").unwrap().parse().unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = counts.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=100).collect::<Vec<u64>>(), "each count once");
    let entries = send("GET", &host.url("/api/v1/live/entries"), &[("x-api-key", &key)], b"").json();
    let listed: Vec<i64> =
        entries["entries"].as_array().unwrap().iter().filter_map(|e| e["hit_count"].as_i64()).collect();
    assert_eq!(listed, vec![100], "{entries}");
    let hits = host.stats(&key)["hits"].as_i64().unwrap();
    let step = banatie_core::stored::stats::HITS_STEP;
    assert_eq!(hits, 100 / step * step, "the project's hits move in steps past the first {step}");
}

/// One host per cache directory: a second one is refused before it listens
/// (its index would not know the first one's fills and evictions).
pub fn a_second_host_on_one_cache_directory_is_refused() {
    let gemini = Gemini::start();
    let vars = standard_vars(s3_endpoint(), &gemini.url);
    let cache = tempfile::tempdir().unwrap();
    let _first = cached_host(Arc::new(tempfile::tempdir().unwrap()), &vars, cache.path(), &[]);
    let state = tempfile::tempdir().unwrap();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_banatie-host"));
    second.args(["up", "--listen", "127.0.0.1:0", "--object-cache"]).arg(cache.path());
    second.arg("--from").arg(crate::support::host::repo_root().join("spin.toml"));
    second.arg("--state-dir").arg(state.path());
    for (k, v) in &vars {
        second.arg("--variable").arg(format!("{k}={v}"));
    }
    let mut child =
        second.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("a second host on the same cache directory kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("another banatie-host uses this directory"), "{err}");
}
