//! `Server-Timing`: time spent in the key-value store, the object store and
//! the provider during one request, summed per kind.

use std::cell::Cell;
use std::future::Future;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct Timings {
    kv_us: Cell<u64>,
    s3_us: Cell<u64>,
    provider_us: Cell<u64>,
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Kv,
    S3,
    Provider,
}

impl Timings {
    pub fn add(&self, kind: Kind, micros: u64) {
        let cell = match kind {
            Kind::Kv => &self.kv_us,
            Kind::S3 => &self.s3_us,
            Kind::Provider => &self.provider_us,
        };
        cell.set(cell.get() + micros);
    }

    /// Run `f`, adding the time it took to `kind`.
    pub fn measure<T>(&self, kind: Kind, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.add(kind, start.elapsed().as_micros() as u64);
        out
    }

    /// Await `f`, adding the time it took to `kind`.
    pub async fn measure_async<F: Future>(&self, kind: Kind, f: F) -> F::Output {
        let start = Instant::now();
        let out = f.await;
        self.add(kind, start.elapsed().as_micros() as u64);
        out
    }

    /// `kv;dur=0.412, s3;dur=3.100, provider;dur=0.000` (milliseconds).
    pub fn header(&self) -> String {
        let ms = |c: &Cell<u64>| c.get() as f64 / 1000.0;
        format!(
            "kv;dur={:.3}, s3;dur={:.3}, provider;dur={:.3}",
            ms(&self.kv_us),
            ms(&self.s3_us),
            ms(&self.provider_us)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_add_up_per_kind() {
        let t = Timings::default();
        t.add(Kind::Kv, 400);
        t.add(Kind::Kv, 12);
        t.add(Kind::Provider, 200_000);
        assert_eq!(t.header(), "kv;dur=0.412, s3;dur=0.000, provider;dur=200.000");
    }

    #[test]
    fn measure_returns_the_value_and_adds_the_time() {
        let t = Timings::default();
        let v = t.measure(Kind::S3, || {
            std::thread::sleep(std::time::Duration::from_millis(2));
            7
        });
        assert_eq!(v, 7);
        assert!(t.s3_us.get() >= 2000, "{}", t.header());
        assert_eq!(t.kv_us.get(), 0);
    }
}
