//! What is stored, and how it is spelled: every key-value key and S3 object
//! key (`keys`, one table), the records behind them (entry, entries log,
//! project, scope, alias, block, stats, rows that expire with their hour), and
//! what each runtime's store does to them (`platform`). Stored formats are
//! a contract: every deployment reads them.

pub mod alias;
pub mod block;
pub mod entries;
pub mod entry;
pub mod expiry;
pub mod keys;
pub mod platform;
pub mod project;
pub mod scope;
pub mod stats;
