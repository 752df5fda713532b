//! A project's record as every room reads it (`keys::project`).

use crate::core::ports::KeyValue;
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::Error;

/// The project `id`; a record that cannot be decoded is an error
/// (`project_unreadable`), which rotation repairs (`routes::projects`).
pub fn load(kv: &impl KeyValue, id: &str) -> Result<Option<Project>, Error> {
    kv.get(&keys::project(id))?.map(|b| Project::decode(&b)).transpose()
}
