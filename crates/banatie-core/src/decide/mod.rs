//! The decisions a request's fate turns on, each a function over data: the
//! cache key, a URL's signature, the single-flight lease's state machine,
//! budgets, who the client is and its allowance, a prompt's template, the
//! prompt policy.

pub mod budget;
pub mod cache_key;
pub mod client;
pub mod policy;
pub mod signature;
pub mod single_flight;
pub mod template;
