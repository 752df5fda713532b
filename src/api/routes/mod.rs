//! The route handlers, one module per route family: thin, each reads what
//! its route takes and composes `records`, `kv` and (for the live family)
//! `live`. Nothing below imports them.

pub mod aliases;
pub mod blocks;
pub mod demo;
pub mod entries;
pub mod health;
pub mod live;
pub mod projects;
pub mod purge;
pub mod scopes;
pub mod sign;
pub mod stats;
pub mod warm;
