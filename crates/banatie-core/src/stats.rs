//! Per-project counters and the stats document. Every counter is an atomic
//! KV increment (no read-modify-write), so the figures stay exact when many
//! instances count at once.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Requests served from the cache.
    Hits,
    /// Requests answered with a fresh generation.
    Misses,
    /// Images the provider generated and the store kept.
    Generations,
    /// Cache entries that exist now.
    Entries,
    /// Bytes of the objects those entries point at.
    Bytes,
}

pub const ALL: [Counter; 5] =
    [Counter::Hits, Counter::Misses, Counter::Generations, Counter::Entries, Counter::Bytes];

impl Counter {
    pub fn name(self) -> &'static str {
        match self {
            Counter::Hits => "hits",
            Counter::Misses => "misses",
            Counter::Generations => "generations",
            Counter::Entries => "entries",
            Counter::Bytes => "bytes_stored",
        }
    }
}

pub fn counter_key(project: &str, counter: Counter) -> String {
    format!("stats:{project}:{}", counter.name())
}

pub struct Budget {
    pub limit: u32,
    pub used: i64,
    pub resets_at: u64,
}

/// The stats document; `values` in the order of [`ALL`].
pub fn document(project: &str, values: [i64; 5], budget: Budget) -> Value {
    let [hits, misses, generations, entries, bytes] = values;
    let served = hits + misses;
    let ratio = if served > 0 { hits as f64 / served as f64 } else { 0.0 };
    json!({
        "project_id": project,
        "entries": entries,
        "hits": hits,
        "misses": misses,
        "generations": generations,
        "bytes_stored": bytes,
        "hit_ratio": (ratio * 10_000.0).round() / 10_000.0,
        "budget": {"limit": budget.limit, "used": budget.used, "resets_at": budget.resets_at},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_every_figure_and_a_rounded_ratio() {
        let d = document("p", [2, 1, 1, 1, 500], Budget { limit: 100, used: 1, resets_at: 3600 });
        assert_eq!(d["hit_ratio"], 0.6667);
        assert_eq!(d["bytes_stored"], 500);
        assert_eq!(d["budget"]["limit"], 100);
        assert_eq!(document("p", [0; 5], Budget { limit: 1, used: 0, resets_at: 0 })["hit_ratio"], 0.0);
        assert_eq!(counter_key("p", Counter::Bytes), "stats:p:bytes_stored");
    }
}
