//! banatie-host as a user runs it: manifest policy, variables, --dev.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::host::{repo_root, standard_vars, Host};
use crate::support::{enc, gemini::Gemini, http::send, s3_endpoint, unique};

/// A manifest whose allow-list names only S3: the provider must be refused.
pub fn outbound_hosts_outside_the_manifest_are_refused() {
    let gemini = Gemini::start();
    let state = Arc::new(tempfile::tempdir().unwrap());
    let manifest = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap();
    let wasm = repo_root().join("target/wasm32-wasip2/release/banatie_live.wasm");
    // spin.toml's allow-list line, whatever hosts it lists, narrowed to S3.
    let narrowed: String = manifest
        .lines()
        .map(|l| match l.starts_with("allowed_outbound_hosts = [") {
            true => r#"allowed_outbound_hosts = ["{{ s3_endpoint }}"]"#,
            false => l,
        })
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            r#"source = "target/wasm32-wasip2/release/banatie_live.wasm""#,
            &format!("source = {:?}", wasm.display().to_string()),
        );
    assert!(
        manifest.contains(r#"allowed_outbound_hosts = ["{{ s3_endpoint }}", "#),
        "spin.toml's allow-list line"
    );
    assert!(narrowed.contains(r#"allowed_outbound_hosts = ["{{ s3_endpoint }}"]"#), "narrowed");
    let path = state.path().join("spin.toml");
    std::fs::write(&path, narrowed).unwrap();
    let host =
        Host::start_with_manifest(state.clone(), &path, &standard_vars(s3_endpoint(), &gemini.url), &[]);
    let key = host.create_project("narrow");
    let r = host.get(&format!("/api/v1/live/generate?prompt={}", enc(&unique("fox"))), &key);
    assert_eq!(r.status, 502);
    assert_eq!(r.error_code(), "provider_error");
    assert_eq!(gemini.calls(), 0, "the request never left the host");
    assert!(host.log().contains("not in allowed_outbound_hosts"), "log: {}", host.log());
    assert!(host.kv_keys("live:").is_empty());
}

pub fn missing_required_variable_stops_the_host_before_serving() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_banatie-host"))
        .args(["up", "--listen", "127.0.0.1:0", "--from"])
        .arg(repo_root().join("spin.toml"))
        .arg("--state-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .env_remove("SPIN_VARIABLE_S3_ENDPOINT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("required variables are not set"), "{stderr}");
    for name in ["s3_endpoint", "s3_bucket", "s3_access_key_id", "s3_secret_access_key"] {
        assert!(stderr.contains(name), "{name} is named: {stderr}");
    }
    assert!(!stderr.contains("s3_region"), "variables with defaults are not named: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("serving"));
}

/// The key `--dev` prints for its project.
fn dev_key(host: &Host) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = host.stdout.lock().unwrap().clone();
        if let Some(line) = lines.iter().find(|l| l.contains("dev project API key: ")) {
            break line.split("dev project API key: ").nth(1).unwrap().trim().to_string();
        }
        assert!(Instant::now() < deadline, "no dev project key printed: {lines:?}\n{}", host.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn dev_mode_serves_miss_then_hit_with_no_setup() {
    let state = Arc::new(tempfile::tempdir().unwrap());
    let host = Host::start_in(state, &[], &["--dev"]);
    let key = dev_key(&host);
    let url = host.url("/api/v1/live/generate?prompt=a+red+fox&aspect_ratio=16:9");
    let miss = send("GET", &url, &[("x-api-key", &key)], b"");
    assert_eq!(miss.status, 200, "{}", String::from_utf8_lossy(&miss.body));
    assert_eq!(miss.header("x-cache-status"), Some("MISS"));
    let hit = send("GET", &url, &[("x-api-key", &key)], b"");
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(hit.body, miss.body);
    assert_eq!(&hit.body[1..4], b"PNG");
    assert!(host.log().contains("STAND-IN provider"), "the stand-in is announced");
}

/// README's first command, exactly as README writes it, from the repository
/// root (its default manifest `spin.toml` and state dir `.spin/`): it must
/// build the component, serve, print a dev key, and answer MISS then HIT.
pub fn readmes_first_command_serves_miss_then_hit() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme.split("## Run it locally").nth(1).expect("README has 'Run it locally'");
    let command = section.split("```sh\n").nth(1).and_then(|b| b.lines().next()).unwrap().to_string();
    assert!(command.contains("up --dev --build"), "README's first command: {command}");
    let mut host = crate::support::host::Shell::start(&command, &repo_root());
    let deadline = Instant::now() + Duration::from_secs(540);
    let (base, key) = loop {
        let lines = host.stdout();
        let base = lines
            .iter()
            .find_map(|l| l.split(" on http://").nth(1))
            .map(|r| format!("http://{}", r.split_whitespace().next().unwrap()));
        let key =
            lines.iter().find_map(|l| l.split("dev project API key: ").nth(1)).map(|k| k.trim().to_string());
        if let (Some(base), Some(key)) = (base, key) {
            break (base, key);
        }
        if let Some(status) = host.exited() {
            panic!("`{command}` ended ({status}) before serving:\n{}", host.log());
        }
        assert!(Instant::now() < deadline, "no address and dev key printed: {lines:?}\n{}", host.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(base, "http://127.0.0.1:3000", "README's curl lines use port 3000");
    let url = format!("{base}/api/v1/live/generate?prompt={}&aspect_ratio=16:9", enc(&unique("a red fox")));
    let miss = send("GET", &url, &[("x-api-key", &key)], b"");
    assert_eq!((miss.status, miss.header("x-cache-status")), (200, Some("MISS")), "{}", host.log());
    let hit = send("GET", &url, &[("x-api-key", &key)], b"");
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(hit.body, miss.body);
}

/// The component's own configuration check runs in the host before it
/// listens: a mis-set `provider` or an empty required key names the variable.
pub fn an_invalid_component_configuration_stops_the_host_before_serving() {
    let gemini = Gemini::start();
    for (name, value, named) in [
        ("provider", "dall-e", "provider"),
        ("gemini_api_key", "", "gemini_api_key"),
        ("s3_endpoint", "https://s3.example.com/prefix", "s3_endpoint"),
    ] {
        let mut vars = standard_vars(s3_endpoint(), &gemini.url);
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_string(), value.to_string()));
        let mut args = vec!["up".to_string(), "--listen".into(), "127.0.0.1:0".into(), "--from".into()];
        args.push(repo_root().join("spin.toml").display().to_string());
        args.push("--state-dir".into());
        args.push(tempfile::tempdir().unwrap().path().display().to_string());
        for (k, v) in &vars {
            args.push("--variable".into());
            args.push(format!("{k}={v}"));
        }
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_banatie-host")).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}={value:?} was accepted");
        assert!(stderr.contains(named), "{name}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("serving"), "it never listened");
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The state dir `tests/fixtures/{name}` (its files, and its SQLite store
/// from the text dump `{name}.sql`) in a copy, served by `--dev`: what
/// `{name}.json` says of it, the copy, the host and the dev project's key
/// (checked to be the remembered one).
fn serve_fixture(name: &str) -> (serde_json::Value, Arc<tempfile::TempDir>, Host, String) {
    let fixtures = repo_root().join("tests/fixtures");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join(format!("{name}.json"))).unwrap()).unwrap();
    let state = Arc::new(tempfile::tempdir().unwrap());
    copy_dir(&fixtures.join(name), state.path());
    let dump = std::fs::read_to_string(fixtures.join(format!("{name}.sql"))).unwrap();
    let db = rusqlite::Connection::open(state.path().join("sqlite_key_value.db")).unwrap();
    db.execute_batch(&dump).unwrap();
    drop(db);
    let host = Host::start_in(state.clone(), &[], &["--dev"]);
    let key = dev_key(&host);
    assert_eq!(key, expected["api_key"], "the remembered dev project is the one served");
    (expected, state, host, key)
}

/// The stored formats (cache key, entries, signatures, KV keys, counters,
/// the dev project) are a contract with every existing state dir: one
/// written by main at 4e810d9 (its files, and its SQLite store as a text
/// dump, `state-4e810d9.sql`) keeps serving its images, as HITs, with the
/// same ids, ETags and bytes, its signed URL still valid and its counters
/// going on from where they were.
pub fn a_state_dir_written_by_an_earlier_main_keeps_serving_its_images() {
    let (expected, state, host, key) = serve_fixture("state-4e810d9");

    let keyed = &expected["keyed"];
    let url = host.url(&format!("/api/v1/live/generate?{}", keyed["query"].as_str().unwrap()));
    let hit = send("GET", &url, &[("x-api-key", &key)], b"");
    assert_eq!(hit.status, 200, "{}", String::from_utf8_lossy(&hit.body));
    assert_eq!(hit.header("x-cache-status"), Some("HIT"));
    assert_eq!(hit.header("x-image-id"), keyed["image_id"].as_str());
    assert_eq!(hit.header("etag"), keyed["etag"].as_str());
    assert_eq!(hit.header("x-cache-hit-count"), Some("2"), "the hit counter goes on");
    let stored = std::fs::read(state.path().join(keyed["object"].as_str().unwrap())).unwrap();
    assert_eq!(hit.body, stored);
    let etag = keyed["etag"].as_str().unwrap();
    let not_modified = send("GET", &url, &[("x-api-key", &key), ("if-none-match", etag)], b"");
    assert_eq!(not_modified.status, 304);

    let signed = &expected["signed"];
    let r = send("GET", &host.url(signed["path"].as_str().unwrap()), &[], b"");
    assert_eq!(r.status, 200, "the old signed URL still verifies");
    assert_eq!(r.header("x-cache-status"), Some("HIT"));
    assert_eq!(r.header("x-image-id"), signed["image_id"].as_str());
    assert_eq!(r.header("etag"), signed["etag"].as_str());

    let stats: serde_json::Value = serde_json::from_slice(
        &send("GET", &host.url("/api/v1/live/stats"), &[("x-api-key", &key)], b"").body,
    )
    .unwrap();
    assert_eq!(stats["project_id"], expected["project_id"]);
    assert_eq!(stats["entries"], expected["stats"]["entries"]);
    assert_eq!(stats["bytes_stored"], expected["stats"]["bytes_stored"]);
    assert_eq!(stats["generations"], expected["stats"]["generations"], "nothing was generated again");
    assert_eq!(stats["hits"], 4);
}

/// A state dir written by 153cf55 (main before issues 21–23) with what the
/// first fixture lacks: a derived variant, a public scope and its image, the
/// entries log (the requests that made it: state-153cf55.json's
/// `written_by`). Its images are HITs with the same ids and ETags, the
/// variant is still a variant HIT, the scope keeps its count, the entries
/// list is the same, and nothing is generated again.
pub fn a_state_dir_with_variants_scopes_and_entries_from_153cf55_keeps_serving() {
    let (expected, _state, host, key) = serve_fixture("state-153cf55");
    let check = |what: &str, path: String, key: Option<&str>| {
        let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        let r = send("GET", &host.url(&path), &headers, b"");
        assert_eq!(r.status, 200, "{what}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("x-cache-status"), Some("HIT"), "{what}");
        assert_eq!(r.header("x-image-id"), expected[what]["image_id"].as_str(), "{what}");
        assert_eq!(r.header("etag"), expected[what]["etag"].as_str(), "{what}");
        r
    };
    let q = |what: &str| format!("/api/v1/live/generate?{}", expected[what]["query"].as_str().unwrap());
    check("keyed", q("keyed"), Some(&key));
    let variant = check("variant", q("variant"), Some(&key));
    assert_eq!(variant.header("content-type"), expected["variant"]["content_type"].as_str());
    assert_eq!(variant.body.len() as u64, expected["variant"]["size"].as_u64().unwrap());
    check("public", expected["public"]["path"].as_str().unwrap().to_string(), None);
    check("signed", expected["signed"]["path"].as_str().unwrap().to_string(), None);
    let get = |path: &str| -> serde_json::Value {
        serde_json::from_slice(&send("GET", &host.url(path), &[("x-api-key", &key)], b"").body).unwrap()
    };
    let scope = get("/api/v1/scopes/hero");
    for field in ["public", "generations_limit", "generations_used", "created_at"] {
        assert_eq!(scope[field], expected["scope"][field], "scope {field}");
    }
    let entries = get("/api/v1/live/entries");
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["entries"].as_array().unwrap().iter().map(|e| e["image_id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&entries), ids(&expected["entries"]), "the same entries, newest first");
    let stats = get("/api/v1/live/stats");
    for field in ["entries", "bytes_stored", "generations", "variants", "variant_bytes"] {
        assert_eq!(stats[field], expected["stats"][field], "stats {field}: nothing made again");
    }
    assert_eq!(stats["hits"], expected["stats"]["hits"].as_u64().unwrap() + 4);
}

/// The JSON object README shows right after `marker` (inline or in a
/// block), with README's `…` placeholders read as values.
fn readme_answer(readme: &str, marker: &str) -> serde_json::Value {
    let after = readme.split(marker).nth(1).unwrap_or_else(|| panic!("README has no {marker:?}"));
    let start = after.find("{\"").unwrap_or_else(|| panic!("no JSON after {marker:?}"));
    let text = &after[start..];
    // The object ends where its braces balance.
    let mut depth = 0;
    let end = text
        .char_indices()
        .find_map(|(i, c)| {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i + 1)
        })
        .unwrap();
    let json = text[..end].replace(":…", ":null").replace('\n', " ");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("README's answer after {marker:?}: {e}: {json}"))
}

/// Every field name, nested ones as `outer.inner`.
fn fields(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            let name = format!("{prefix}{k}");
            fields(v, &format!("{name}."), out);
            out.push(name);
        }
    }
    out.sort();
}

fn field_names(value: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    fields(value, "", &mut out);
    out
}

/// The answers README shows have the fields the real answers have.
pub fn readmes_json_answers_have_the_real_answers_fields() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let gemini = Gemini::start();
    let host = Host::start(&standard_vars(s3_endpoint(), &gemini.url));
    let created = host.admin("POST", "/api/v1/projects", r#"{"name":"shop","generations_per_hour":100}"#);
    assert_eq!(created.status, 201);
    let created = created.json();
    let key = created["api_key"].as_str().unwrap();
    let path = format!("/api/v1/live/generate?prompt={}", enc(&unique("readme")));
    assert_eq!(host.get(&path, key).status, 200);
    let signed = send(
        "POST",
        &host.url("/api/v1/live/sign"),
        &[("x-api-key", key)],
        br#"{"prompt":"a fox","aspect_ratio":"16:9","lifetime_seconds":86400}"#,
    );
    for (marker, real) in [
        ("default 100) answers **201**", created.clone()),
        ("`GET /api/v1/live/stats` (`X-API-Key`) returns the caller's project only:", host.stats(key)),
        (r#""lifetime_seconds":86400}`, which answers"#, signed.json()),
    ] {
        let shown = readme_answer(&readme, marker);
        assert_eq!(field_names(&shown), field_names(&real), "README after {marker:?}\nreal: {real}");
    }
}
