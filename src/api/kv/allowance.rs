//! The per-client miss limit, carried out (`core::decide::client` says who the
//! client is). A unit is reserved just before this request would take a
//! generation lease — an atomic add, undone at once when it goes over the
//! limit, so N concurrent requests against a limit L make exactly L
//! generations — and given back when the request does not generate after
//! all (another request did, or the generation failed). HITs never count.

use super::expiry;
use super::reserve::Unit;
use crate::api::context::ClientLimit;
use crate::core::decide::client::Allowance;
use crate::core::http::headers::{self, Header};
use crate::core::ports::KeyValue;
use crate::core::stored::expiry::Expiring;
use crate::core::Error;

pub struct Reservation<'a, K> {
    kv: &'a K,
    unit: Unit<'a, K>,
    limit: Option<&'a ClientLimit>,
    now: u64,
}

impl<'a, K: KeyValue> Reservation<'a, K> {
    pub fn new(kv: &'a K, limit: Option<&'a ClientLimit>, now: u64) -> Self {
        Reservation { kv, unit: Unit::new(kv, limit.map(|l| l.key.clone())), limit, now }
    }

    /// Reserve one new generation (once; later calls are no-ops).
    pub fn take(&self) -> Result<(), Error> {
        let Some(limit) = self.limit else { return Ok(()) };
        let was_taken = self.unit.used().is_some();
        self.unit.take(|used| {
            if used <= limit.limit as i64 {
                return Ok(());
            }
            let allowance = Allowance::new(limit.limit, used, self.now);
            let retry_after = allowance.reset_at.saturating_sub(self.now).max(1);
            Err(Error::RateLimited { allowance, retry_after })
        })?;
        if !was_taken && self.unit.used() == Some(1) {
            expiry::note(self.kv, &Expiring::Counter(limit.key.clone()), self.now);
        }
        Ok(())
    }

    /// The client's counter, when the limit applies.
    pub fn key(&self) -> Option<&str> {
        self.unit.key()
    }

    /// This request made no provider call after all: give the unit back.
    pub fn refund(&self) {
        self.unit.refund()
    }

    /// `X-RateLimit-*` for this request's answer: after its own generation,
    /// the count it reserved; otherwise the count now (one atomic read).
    pub fn headers(&self) -> Vec<Header> {
        let Some(limit) = self.limit else { return Vec::new() };
        let used = match self.unit.used() {
            Some(used) => used,
            None => match self.kv.counter(&limit.key) {
                Ok(used) => used.unwrap_or(0),
                Err(e) => {
                    crate::diag!("client allowance not read: {e}");
                    return Vec::new();
                }
            },
        };
        headers::rate_limit(&Allowance::new(limit.limit, used, self.now))
    }
}

#[cfg(test)]
#[path = "allowance_tests.rs"]
mod tests;
