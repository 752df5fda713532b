//! Deployed the way users deploy: the app pushed to an OCI registry with
//! `spin registry push` (what SpinKube's `SpinApp` and Fermyon take), then
//! run from the registry by the real `spin up --from-registry`.

use std::process::Command;

use testkit::registry::Registry;

use crate::support::gemini::Gemini;
use crate::support::host::{repo_root, standard_vars, Host};
use crate::support::runtime::{self, Runtime};
use crate::support::{enc, s3_endpoint, unique};

pub fn an_app_pushed_to_a_registry_runs_from_it() {
    let Runtime::Spin(version) = runtime::current() else { panic!("Spin pushes and pulls apps") };
    let registry = Registry::start();
    let reference = registry.reference("banatie-live", "test");
    let cache = tempfile::tempdir().unwrap();
    let pushed = Command::new(testkit::spin::binary(version).expect("spin CLI"))
        .args(["registry", "push", "--insecure", "--from"])
        .arg(repo_root().join("spin.toml"))
        .arg(&reference)
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&pushed.stdout).into_owned() + &String::from_utf8_lossy(&pushed.stderr);
    assert!(pushed.status.success(), "spin registry push: {said}");
    assert!(said.contains("Pushed with digest sha256:"), "{said}");

    let gemini = Gemini::start();
    let host = Host::start_from_registry(&reference, &standard_vars(s3_endpoint(), &gemini.url));
    let key = host.create_project("from-a-registry");
    let path = format!("/api/v1/live/generate?prompt={}", enc(&unique("a harbour at dawn")));
    let miss = host.get(&path, &key);
    assert_eq!((miss.status, miss.header("x-cache-status")), (200, Some("MISS")));
    let hit = host.get(&path, &key);
    assert_eq!((hit.status, hit.header("x-cache-status")), (200, Some("HIT")));
    assert_eq!(hit.body, miss.body);
    assert_eq!(gemini.calls(), 1);
}
