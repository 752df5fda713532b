//! `Server-Timing`: time spent in the key-value store, the object store and
//! the provider during one request, summed per kind, on the clock the caller
//! gives (the component's: `wasi:clocks/monotonic-clock`).

use std::cell::Cell;
use std::future::Future;

#[derive(Debug)]
pub struct Timings {
    /// A monotonic clock in microseconds.
    clock: fn() -> u64,
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
    pub fn new(clock: fn() -> u64) -> Timings {
        Timings { clock, kv_us: Cell::new(0), s3_us: Cell::new(0), provider_us: Cell::new(0) }
    }

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
        let start = (self.clock)();
        let out = f();
        self.add(kind, (self.clock)().saturating_sub(start));
        out
    }

    /// Await `f`, adding the time it took to `kind`.
    pub async fn measure_async<F: Future>(&self, kind: Kind, f: F) -> F::Output {
        let start = (self.clock)();
        let out = f.await;
        self.add(kind, (self.clock)().saturating_sub(start));
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

    /// Put these timings into a response's headers: one `Server-Timing`,
    /// the stores' and provider's times first, then what the handler
    /// measured itself (a derivation's), if it set one.
    pub fn add_to(&self, headers: &mut Vec<crate::http::headers::Header>) {
        let ours = self.header();
        match headers.iter_mut().find(|(name, _)| *name == "server-timing") {
            Some((_, more)) => *more = format!("{ours}, {more}"),
            None => headers.push(("server-timing", ours)),
        }
    }
}

/// The parts of a `Server-Timing` value named in `names`, with their
/// durations in milliseconds (what [`Timings::add_to`] writes; parts without
/// a `dur` are skipped).
pub fn parse<'a>(
    value: &'a str,
    names: &'a [&'static str],
) -> impl Iterator<Item = (&'static str, f64)> + 'a {
    value.split(',').filter_map(move |part| {
        let mut fields = part.trim().split(';');
        let name = fields.next()?.trim();
        let name = names.iter().find(|n| **n == name)?;
        let ms = fields.find_map(|f| f.trim().strip_prefix("dur="))?.parse::<f64>().ok()?;
        Some((*name, ms))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static NOW_US: Cell<u64> = const { Cell::new(0) };
    }

    /// A clock that moves only when a test says.
    fn test_clock() -> u64 {
        NOW_US.with(Cell::get)
    }

    fn advance(us: u64) {
        NOW_US.with(|c| c.set(c.get() + us));
    }

    #[test]
    fn one_server_timing_header_carries_the_handlers_own_figures_after_ours() {
        let t = Timings::new(test_clock);
        t.add(Kind::Kv, 1000);
        let mut plain = vec![("etag", "\"x\"".to_string())];
        t.add_to(&mut plain);
        assert_eq!(plain[1], ("server-timing", "kv;dur=1.000, s3;dur=0.000, provider;dur=0.000".into()));
        let mut derived = vec![("server-timing", "derive;dur=2.500".to_string())];
        t.add_to(&mut derived);
        assert_eq!(
            derived,
            [(
                "server-timing",
                "kv;dur=1.000, s3;dur=0.000, provider;dur=0.000, derive;dur=2.500".to_string()
            )]
        );
    }

    #[test]
    fn a_header_reads_back_by_name() {
        let t = Timings::new(test_clock);
        t.add(Kind::S3, 2293);
        let mut headers = vec![("server-timing", "derive;dur=12.5, other;dur=9".to_string())];
        t.add_to(&mut headers);
        let names = ["kv", "s3", "provider", "derive"];
        let parts: Vec<_> = parse(&headers[0].1, &names).collect();
        assert_eq!(parts, [("kv", 0.0), ("s3", 2.293), ("provider", 0.0), ("derive", 12.5)]);
        assert_eq!(parse("kv, s3;desc=x", &names).count(), 0);
    }

    #[test]
    fn durations_add_up_per_kind() {
        let t = Timings::new(test_clock);
        t.add(Kind::Kv, 400);
        t.add(Kind::Kv, 12);
        t.add(Kind::Provider, 200_000);
        assert_eq!(t.header(), "kv;dur=0.412, s3;dur=0.000, provider;dur=200.000");
    }

    #[test]
    fn measure_returns_the_value_and_adds_the_time() {
        let t = Timings::new(test_clock);
        let v = t.measure(Kind::S3, || {
            advance(2000);
            7
        });
        assert_eq!(v, 7);
        assert_eq!(t.s3_us.get(), 2000, "{}", t.header());
        assert_eq!(t.kv_us.get(), 0);
        advance(500); // time outside a measurement counts nowhere
        assert_eq!(t.header(), "kv;dur=0.000, s3;dur=2.000, provider;dur=0.000");
    }
}
