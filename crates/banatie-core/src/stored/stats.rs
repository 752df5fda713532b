//! Per-project counters and the stats document. Every counter is an atomic
//! KV increment (no read-modify-write), so the figures stay exact when many
//! instances count at once.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Requests served from the cache.
    Hits,
    /// Requests answered with a fresh generation, or a variant derived just now.
    Misses,
    /// Images the provider generated and the store kept.
    Generations,
    /// Cache entries that exist now.
    Entries,
    /// Bytes of the objects those entries point at.
    Bytes,
    /// Derived variants that exist now (not among `Entries`).
    Variants,
    /// Bytes of their objects (not in `Bytes`).
    VariantBytes,
    /// Milliseconds spent deriving variants (the component's CPU).
    DeriveMs,
}

pub const ALL: [Counter; 8] = [
    Counter::Hits,
    Counter::Misses,
    Counter::Generations,
    Counter::Entries,
    Counter::Bytes,
    Counter::Variants,
    Counter::VariantBytes,
    Counter::DeriveMs,
];

impl Counter {
    pub fn name(self) -> &'static str {
        match self {
            Counter::Hits => "hits",
            Counter::Misses => "misses",
            Counter::Generations => "generations",
            Counter::Entries => "entries",
            Counter::Bytes => "bytes_stored",
            Counter::Variants => "variants",
            Counter::VariantBytes => "variant_bytes",
            Counter::DeriveMs => "derive_ms",
        }
    }
}

/// Hits of one entry the project's `hits` takes one by one; past them, it
/// moves in steps of this many.
pub const HITS_STEP: i64 = 32;

/// How far a project's `hits` moves when one of its entries reaches its
/// `n`th hit (the value of the entry's exact counter, unique to that hit):
/// by 1 for each of the first [`HITS_STEP`], then by `HITS_STEP` at every
/// multiple of it. Each hit's number is its own, so no two hits move it for
/// the same ones: the project's `hits` is exact while no entry has more than
/// `HITS_STEP` hits, and otherwise trails the sum of its entries' counts by
/// less than `HITS_STEP` per entry — while a hot entry's hit costs no store
/// call for it (`api::live::cached::count_hit`).
pub fn hits_step(n: i64) -> Option<i64> {
    match n {
        ..=0 => None,
        1..=HITS_STEP => Some(1),
        _ => (n % HITS_STEP == 0).then_some(HITS_STEP),
    }
}

pub struct Budget {
    pub limit: u32,
    pub used: i64,
    pub resets_at: u64,
}

/// The stats document; `values` in the order of [`ALL`].
pub fn document(project: &str, values: [i64; 8], budget: Budget, derivations: Budget) -> Value {
    let [hits, misses, generations, entries, bytes, variants, variant_bytes, derive_ms] = values;
    let served = hits + misses;
    let ratio = if served > 0 { hits as f64 / served as f64 } else { 0.0 };
    json!({
        "project_id": project,
        "entries": entries,
        "hits": hits,
        "misses": misses,
        "generations": generations,
        "bytes_stored": bytes,
        "variants": variants,
        "variant_bytes": variant_bytes,
        "derive_ms": derive_ms,
        "hit_ratio": (ratio * 10_000.0).round() / 10_000.0,
        "budget": {"limit": budget.limit, "used": budget.used, "resets_at": budget.resets_at},
        "derivations": {"limit": derivations.limit, "used": derivations.used, "resets_at": derivations.resets_at},
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_project_counts_each_hit_once_and_hot_entries_in_steps() {
        let moved = |n: i64| (1..=n).filter_map(super::hits_step).sum::<i64>();
        assert_eq!((moved(1), moved(32), moved(33), moved(63)), (1, 32, 32, 32));
        assert_eq!((moved(64), moved(100), moved(1000)), (64, 96, 992));
        for n in 1..2000 {
            assert!(n - moved(n) < super::HITS_STEP && moved(n) <= n, "{n}");
        }
    }

    use super::*;

    #[test]
    fn the_document_has_every_figure_and_a_rounded_ratio() {
        let budget = |limit, used| Budget { limit, used, resets_at: 3600 };
        let d = document("p", [2, 1, 1, 1, 500, 3, 120, 40], budget(100, 1), budget(600, 3));
        assert_eq!(d["hit_ratio"], 0.6667);
        assert_eq!(d["bytes_stored"], 500);
        assert_eq!((d["variants"].as_i64(), d["variant_bytes"].as_i64()), (Some(3), Some(120)));
        assert_eq!(d["budget"]["limit"], 100);
        assert_eq!((d["derive_ms"].as_i64(), d["derivations"]["used"].as_i64()), (Some(40), Some(3)));
        assert_eq!(document("p", [0; 8], budget(1, 0), budget(1, 0))["hit_ratio"], 0.0);
    }
}
