//! What the routes and the live pipeline share, below both: a project's
//! record, its scopes, its aliases, its prompt policies, its takedowns, and the removal of a
//! cached image. Uses
//! `kv` only.

pub mod aliases;
pub mod blocks;
pub mod images;
pub mod policies;
pub mod projects;
pub mod record;
pub mod scopes;
