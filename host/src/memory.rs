//! How much linear memory each instance uses: a `ResourceLimiter` that records
//! the initial size and the peak, and a process-wide report of the largest
//! growth seen (read by the benchmark; logged per request when
//! `BANATIE_HOST_MEMORY_LOG=1`). It never refuses growth; the pooling
//! allocator's `max_memory_size` is the limit.

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryWatch {
    pub initial: usize,
    pub peak: usize,
}

impl wasmtime::ResourceLimiter for MemoryWatch {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if current == 0 && self.initial == 0 {
            self.initial = desired;
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_GROWTH_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Fold one finished instance into the process-wide report.
pub fn record(watch: &MemoryWatch) {
    PEAK_BYTES.fetch_max(watch.peak, Ordering::Relaxed);
    PEAK_GROWTH_BYTES.fetch_max(watch.peak.saturating_sub(watch.initial), Ordering::Relaxed);
    if std::env::var_os("BANATIE_HOST_MEMORY_LOG").is_some() {
        tracing::info!("instance linear memory initial={} peak={}", watch.initial, watch.peak);
    }
}

/// (largest peak, largest growth over the initial size) since the last reset.
pub fn report() -> (usize, usize) {
    (PEAK_BYTES.load(Ordering::Relaxed), PEAK_GROWTH_BYTES.load(Ordering::Relaxed))
}

pub fn reset() {
    PEAK_BYTES.store(0, Ordering::Relaxed);
    PEAK_GROWTH_BYTES.store(0, Ordering::Relaxed);
}
