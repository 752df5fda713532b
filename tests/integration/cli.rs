//! `banatie warm`, the operators' CLI, against the real component in the
//! real host, Garage and the Gemini double: prompts, a signed URL of a
//! variant and a public URL made once each, every one a HIT after. The CLI
//! is the binary `cargo build -p banatie-cli` wrote beside this test's own
//! (target/debug/banatie; `scripts/test.sh` builds it first).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::http::send;
use crate::support::{enc, sign, unique, World};

/// The built CLI, or a failure that says how to build it.
fn banatie() -> PathBuf {
    // This binary is target/<profile>/deps/integration-…; the CLI is
    // target/<profile>/banatie (so CARGO_TARGET_DIR is followed too).
    let exe = std::env::current_exe().unwrap();
    let cli = exe.parent().and_then(|deps| deps.parent()).map(|dir| dir.join("banatie")).unwrap();
    assert!(
        cli.exists(),
        "{} is missing: build the CLI first (cargo build -p banatie-cli; scripts/test.sh does)",
        cli.display()
    );
    cli
}

struct Run {
    code: Option<i32>,
    /// Each stdout line, and when it came.
    lines: Vec<(Instant, String)>,
    stderr: String,
}

/// `banatie warm --url BASE FILE`, the key in `BANATIE_API_KEY`; killed past 120 s.
fn warm(cli: &std::path::Path, base: &str, key: &str, file: &std::path::Path) -> Run {
    let mut child = Command::new(cli)
        .args(["warm", "--url", base])
        .arg(file)
        .env("BANATIE_API_KEY", key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run banatie");
    let stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        BufReader::new(stdout).lines().map_while(Result::ok).map(|l| (Instant::now(), l)).collect()
    });
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("banatie warm ran past 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run { code, lines: out.join().unwrap(), stderr: err.join().unwrap() }
}

pub fn warm_makes_each_image_once_and_every_url_is_a_hit_after() {
    let cli = banatie();
    let w = World::new();
    // Each generation takes a while, so the answer's lines come over time.
    w.gemini.set_delay(300);
    let r = w.host.admin("POST", "/api/v1/projects", &format!(r#"{{"name":"{}"}}"#, unique("Warm Shop")));
    assert_eq!(r.status, 201);
    let project = r.json();
    let field = |name: &str| project[name].as_str().unwrap().to_string();
    let (key, id, slug, secret) =
        (field("api_key"), field("project_id"), field("slug"), field("signing_secret"));
    let scope = send(
        "POST",
        &w.host.url("/api/v1/scopes"),
        &[("x-api-key", &key)],
        br#"{"slug":"hero","public":true}"#,
    );
    assert_eq!(scope.status, 201, "{}", String::from_utf8_lossy(&scope.body));

    let prompts: Vec<String> = (0..12).map(|i| unique(&format!("a warmed picture {i}"))).collect();
    // A signed URL (absolute) of a variant of the first prompt: derived, no
    // generation of its own; a public URL (a path) of a new prompt.
    let exp = (sign::now() + 3600).to_string();
    let params = [("prompt", prompts[0].as_str()), ("w", "256"), ("format", "webp")];
    let signed =
        sign::signed_path(&secret, &[params.as_slice(), &[("project", &id), ("exp", &exp)]].concat());
    let public = format!("/cdn/{slug}/live/hero?prompt={}&aspect_ratio=16:9", enc(&unique("a hero")));
    let file = tempfile::NamedTempFile::new().unwrap();
    let text =
        format!("# the shop's pictures\n{}\n\n{}\n{public}\n", prompts.join("\n"), w.host.url(&signed));
    std::fs::write(file.path(), text).unwrap();

    let run = warm(&cli, &w.host.base, &key, file.path());
    assert_eq!(run.code, Some(0), "stdout {:?}\nstderr {}", run.lines, run.stderr);
    assert_eq!(run.lines.len(), 14, "{:?}", run.lines);
    assert!(run.lines.iter().all(|(_, l)| l.split('\t').nth(1) == Some("generated")), "{:?}", run.lines);
    assert!(run.stderr.contains("warm: 14 generated, 0 cached, 0 failed of 14 items"), "{}", run.stderr);
    let spread = run.lines[13].0.duration_since(run.lines[0].0);
    assert!(
        spread >= Duration::from_millis(900),
        "the lines came together ({spread:?}), not as items completed"
    );
    assert_eq!(w.gemini.calls(), 13, "one generation per distinct original");

    // Each is a HIT now, and nothing more was generated.
    for prompt in &prompts {
        let hit = w.host.get(&format!("/api/v1/live/generate?prompt={}", enc(prompt)), &key);
        assert_eq!((hit.status, hit.header("x-cache-status")), (200, Some("HIT")), "{prompt}");
    }
    for url in [&signed, &public] {
        let hit = send("GET", &w.host.url(url), &[], b"");
        assert_eq!((hit.status, hit.header("x-cache-status")), (200, Some("HIT")), "{url}");
    }
    assert_eq!(w.gemini.calls(), 13);

    // Warmed again, everything is cached.
    let again = warm(&cli, &w.host.base, &key, file.path());
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stderr.contains("warm: 0 generated, 14 cached, 0 failed of 14 items"), "{}", again.stderr);
    assert_eq!(w.gemini.calls(), 13);
    for output in [&run, &again] {
        let all = format!("{:?}{}", output.lines, output.stderr);
        assert!(!all.contains(&key), "the key is never printed");
    }
}
