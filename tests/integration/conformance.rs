//! Platform conformance without the platforms: the built component must
//! target Spin's `http-trigger` world (the WIT shipped with spin-sdk), the
//! wasmCloud build the interfaces a wasmCloud 1.x host provides, and the
//! wasmcloud2 build those wasmCloud 2's runtime (`wash-runtime`) links — and an
//! import the platform does not provide must fail the check, naming it.

use std::path::{Path, PathBuf};

use wit_parser::{Resolve, WorldId};

use crate::support::host::repo_root;

fn release(name: &str) -> Vec<u8> {
    let path = repo_root().join("target/wasm32-wasip2/release").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh builds it)", path.display()))
}

/// spin-sdk's `wit/` in the cargo registry, for the version in Cargo.lock.
fn spin_sdk_wit() -> PathBuf {
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"spin-sdk\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .expect("spin-sdk in Cargo.lock");
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let registry = cargo_home.join("registry/src");
    std::fs::read_dir(&registry)
        .unwrap()
        .map(|d| d.unwrap().path().join(format!("spin-sdk-{version}/wit")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("spin-sdk {version} sources not found under {}", registry.display()))
}

pub fn spin_world() -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve.push_dir(spin_sdk_wit()).unwrap();
    let world = resolve.select_world(&[pkg], Some("http-trigger")).unwrap();
    (resolve, world)
}

/// The imports a wasmCloud 1.x host links for an HTTP component (our
/// approximation: wasmCloud publishes no single world with WASI CLI, HTTP and
/// these drafts). Like Spin's world (whose P3 export is feature-gated), it
/// checks imports: the component may import nothing else. Imports match by
/// semver; the `incoming-handler@0.2.0` export is what wasmCloud's HTTP server
/// provider calls.
const WASMCLOUD_WORLD: &str = r#"
package banatie:wasmcloud-check;

world http-component {
  include wasi:cli/imports@0.2.6;
  import wasi:http/outgoing-handler@0.2.6;
  import wasi:keyvalue/store@0.2.0-draft;
  import wasi:keyvalue/atomics@0.2.0-draft;
  import wasi:config/store@0.2.0-draft;
}
"#;

/// What wasmCloud 2's `wash-runtime` links for an HTTP component
/// (wasmCloud/wasmCloud `crates/wash-runtime/src/engine/workload.rs` and its
/// `wit/deps`): WASI 0.2, `wasi:http` 0.2.x, the key-value draft and config
/// `0.2.0-rc.1`.
const WASMCLOUD2_WORLD: &str = r#"
package banatie:wasmcloud2-check;

world http-component {
  include wasi:cli/imports@0.2.6;
  import wasi:http/outgoing-handler@0.2.6;
  import wasi:keyvalue/store@0.2.0-draft;
  import wasi:keyvalue/atomics@0.2.0-draft;
  import wasi:keyvalue/batch@0.2.0-draft;
  import wasi:config/store@0.2.0-rc.1;
}
"#;

fn draft_world(config_dir: &str, world: &str) -> (Resolve, WorldId) {
    let (mut resolve, _) = spin_world(); // brings the wasi:* 0.2.x packages
    let deps = repo_root().join("wit/deps");
    for dir in ["keyvalue-0.2.0-draft", config_dir] {
        resolve.push_path(deps.join(dir)).unwrap();
    }
    let pkg = resolve.push_str(Path::new("check.wit"), world).unwrap();
    let world = resolve.select_world(&[pkg], Some("http-component")).unwrap();
    (resolve, world)
}

fn wasmcloud_world() -> (Resolve, WorldId) {
    draft_world("config-0.2.0-draft", WASMCLOUD_WORLD)
}

fn wasmcloud2_world() -> (Resolve, WorldId) {
    draft_world("config-0.2.0-rc.1", WASMCLOUD2_WORLD)
}

fn check(world: &(Resolve, WorldId), wasm: &[u8]) -> Result<(), String> {
    wit_component::targets(&world.0, world.1, wasm).map_err(|e| format!("{e:#}"))
}

/// A component that imports something no platform provides.
fn with_unsupported_import() -> Vec<u8> {
    wat::parse_str(r#"(component (import "banatie:unsupported/thing@1.0.0" (instance)))"#).unwrap()
}

pub fn the_component_targets_spins_http_trigger_world() {
    let spin = spin_world();
    check(&spin, &release("banatie_live.wasm")).expect("the Spin build conforms to spin:up http-trigger");
    let e = check(&spin, &with_unsupported_import()).unwrap_err();
    assert!(e.contains("banatie:unsupported/thing"), "{e}");
    // The wasmCloud build imports drafts Spin does not provide.
    let e = check(&spin, &release("banatie_live_wasmcloud.wasm")).unwrap_err();
    assert!(e.contains("wasi:keyvalue") || e.contains("wasi:config"), "{e}");
}

pub fn the_wasmcloud_build_targets_a_wasmcloud_host() {
    let wasmcloud = wasmcloud_world();
    check(&wasmcloud, &release("banatie_live_wasmcloud.wasm")).expect("the wasmCloud build conforms");
    let e = check(&wasmcloud, &with_unsupported_import()).unwrap_err();
    assert!(e.contains("banatie:unsupported/thing"), "{e}");
    let e = check(&wasmcloud, &release("banatie_live.wasm")).unwrap_err();
    assert!(e.contains("0.2.0-draft2") || e.contains("2024-09-27"), "{e}");
    // wasmCloud 2's build imports config 0.2.0-rc.1 and the key-value batch
    // interface, neither of which this host links.
    let e = check(&wasmcloud, &release("banatie_live_wasmcloud2.wasm")).unwrap_err();
    assert!(e.contains("0.2.0-rc.1") || e.contains("batch") || e.contains("type mismatch"), "{e}");
}

pub fn the_wasmcloud2_build_targets_wash_runtime() {
    let wasmcloud2 = wasmcloud2_world();
    check(&wasmcloud2, &release("banatie_live_wasmcloud2.wasm")).expect("the wasmcloud2 build conforms");
    let e = check(&wasmcloud2, &with_unsupported_import()).unwrap_err();
    assert!(e.contains("banatie:unsupported/thing"), "{e}");
    // The 1.x build imports config 0.2.0-draft, which wasmCloud 2 does not link.
    let e = check(&wasmcloud2, &release("banatie_live_wasmcloud.wasm")).unwrap_err();
    assert!(e.contains("wasi:config/store@0.2.0-draft"), "{e}");
    let e = check(&wasmcloud2, &release("banatie_live.wasm")).unwrap_err();
    assert!(e.contains("0.2.0-draft2") || e.contains("2024-09-27"), "{e}");
}

/// The host reads spin.toml the way Spin would; a manifest Spin would refuse
/// (here: a variable both required and defaulted) stops the host before it serves.
pub fn the_host_validates_spin_toml() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap();
    let broken = manifest
        .replace("s3_bucket = { required = true }", "s3_bucket = { required = true, default = \"x\" }");
    assert_ne!(broken, manifest);
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, broken).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_banatie-host"))
        .args(["up", "--listen", "127.0.0.1:0", "--from"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("s3_bucket cannot be both required and have a default"), "{stderr}");
}

/// Licences that may ship inside the component: compatible with Apache-2.0.
/// IJG is jpeg-encoder's (an acknowledgement in docs/variants.md). MPL-2.0 is
/// spin-sdk's routefinder → smartstring, used unmodified (file-level copyleft,
/// which a larger Apache-2.0 work may include: the ASF's "category B").
/// Anything else — the AGPL WebP encoders among them — fails here.
const PERMISSIVE: [&str; 15] = [
    "MIT",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "Zlib",
    "ISC",
    "0BSD",
    "Unlicense",
    "CC0-1.0",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "BSL-1.0",
    "IJG",
    "MPL-2.0",
    "MPL-2.0+",
];

/// An SPDX expression as crates.io writes them: `A OR B`, `A/B` (old style),
/// `(A OR B) AND C`, `Apache-2.0 WITH LLVM-exception`.
fn permissive(expression: &str) -> bool {
    expression.split(" AND ").all(|part| {
        part.trim_matches(|c| c == '(' || c == ')' || c == ' ')
            .split(" OR ")
            .flat_map(|alt| alt.split('/'))
            .any(|alt| {
                PERMISSIVE.contains(
                    &alt.split(" WITH ")
                        .next()
                        .unwrap_or("")
                        .trim_matches(|c| c == '(' || c == ')' || c == ' '),
                )
            })
    })
}

pub fn every_crate_in_the_component_has_an_apache_compatible_licence() {
    assert!(permissive("(MIT OR Apache-2.0) AND IJG") && permissive("MIT/Apache-2.0"));
    assert!(!permissive("AGPL-3.0-only OR LicenseRef-Imazen-Commercial") && !permissive("GPL-3.0"));
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["tree", "--offline", "-p", "banatie-live", "--target", "wasm32-wasip2", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}|{l}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> =
        listing.lines().map(|l| l.trim_end_matches(" (*)")).filter(|l| !l.trim().is_empty()).collect();
    assert!(crates.iter().any(|l| l.starts_with("rav1e ")), "the listing covers the variants' codecs");
    let refused: Vec<&&str> =
        crates.iter().filter(|l| !permissive(l.rsplit('|').next().unwrap_or(""))).collect();
    assert!(refused.is_empty(), "not Apache-2.0-compatible: {refused:#?}");
}

/// The bound on the component with its image codecs, built for speed since
/// issue 22, and the delivery and generation features of issues 25–27
/// (docs/variants.md: 2.78 MB; the HIT path's cost did not move), and the
/// prompt policies' regular expressions of issue 36 (the `regex` crate:
/// 451 KB) with its moderation and takedowns (3.30 MB, docs/variants.md).
pub fn the_component_stays_under_3_4_mb() {
    let wasm = repo_root().join("target/wasm32-wasip2/release/banatie_live.wasm");
    let size = std::fs::metadata(&wasm).unwrap().len();
    eprintln!("banatie_live.wasm: {size} bytes");
    assert!(size < 3_400_000, "{} is {size} bytes", wasm.display());
}
