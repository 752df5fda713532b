//! `--dev`: a project to try the live URL with, written straight into the
//! key-value store before the host listens (the records are exactly those the
//! admin API writes: `banatie_core::stored::project::Created`), and remembered in the
//! state dir; the demo page (`/`) signs for it.

use std::path::Path;

use anyhow::Context;
use banatie_core::stored::keys;
use banatie_core::stored::project::{Created, NewProject};
use rand::Rng;

use crate::kv::Backend;

const FILE: &str = "dev-project.json";
/// The label of the store the component opens.
const STORE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevProject {
    pub id: String,
    pub api_key: String,
}

fn read(body: &[u8]) -> Option<DevProject> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(DevProject {
        id: v.get("project_id")?.as_str()?.to_string(),
        api_key: v.get("api_key")?.as_str()?.to_string(),
    })
}

/// The dev project: the remembered one while the store still has it, or a
/// new one (a fresh state dir, or a store that was emptied since).
pub fn ensure(kv: &dyn Backend, state_dir: &Path) -> anyhow::Result<DevProject> {
    let file = state_dir.join(FILE);
    if let Some(known) = std::fs::read(&file).ok().and_then(|b| read(&b)) {
        let key = keys::project(&known.id);
        if kv.get(STORE, &key).map_err(anyhow::Error::msg)?.is_some() {
            return Ok(known);
        }
    }
    let mut rng = rand::rng();
    let id = format!("dev-{:016x}", rng.random::<u64>());
    let new = NewProject {
        name: "dev".into(),
        generations_per_hour: banatie_core::decide::budget::DEFAULT_GENERATIONS_PER_HOUR,
        derivations_per_hour: banatie_core::stored::project::DEFAULT_DERIVATIONS_PER_HOUR,
        // Public URLs read `/cdn/dev/live/{scope}`; scopes come on first use.
        slug: Some("dev".into()),
        lazy_scopes: true,
        // The demo page asks for progressive answers itself (`progressive=1`).
        progressive_misses: false,
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let created = Created::new(new, id, rng.random(), now);
    for (key, value) in created.writes() {
        kv.set(STORE, &key, &value).map_err(anyhow::Error::msg).context("creating the dev project")?;
    }
    let remembered = serde_json::json!({"project_id": created.record.id, "api_key": created.api_key});
    crate::private_file::write(&file, &serde_json::to_vec(&remembered)?)?;
    Ok(DevProject { id: created.record.id, api_key: created.api_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::sqlite::Sqlite;

    #[test]
    fn the_project_is_stored_as_the_admin_api_stores_it_and_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let kv = Sqlite::open(&dir.path().join("kv.db")).unwrap();
        let first = ensure(&kv, dir.path()).unwrap();
        let record = banatie_core::stored::project::Project::decode(
            &kv.get(STORE, &keys::project(&first.id)).unwrap().unwrap(),
        )
        .unwrap();
        assert!(record.has_api_key(&first.api_key));
        let index =
            kv.get(STORE, &banatie_core::stored::project::api_key_index(&first.api_key)).unwrap().unwrap();
        assert_eq!(index, first.id.as_bytes());
        assert_eq!(ensure(&kv, dir.path()).unwrap(), first, "remembered across restarts");
        let empty = Sqlite::open(&dir.path().join("other.db")).unwrap();
        assert_ne!(ensure(&empty, dir.path()).unwrap(), first, "a store without it gets a new one");
    }
}
