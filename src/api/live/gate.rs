//! What making a new image must pass, and gives back when it does not
//! happen after all. A generation: the project's hourly budget, the
//! client's hourly allowance (signed and public URLs) and the scope's cap. A
//! derivation: the project's hourly derivations and the client's. Each is an
//! atomic reservation (`reserve::Unit`, `allowance::Reservation`) made only
//! by the request that takes the lease, so N concurrent requests against a
//! limit L make exactly L; waiters and HITs never pay. What was reserved is
//! given back only when the work was not done: a provider call, or a
//! derivation, that was made costs its unit whatever it answered.

use crate::api::context::{Context, Incoming};
use crate::api::kv::allowance::Reservation;
use crate::api::kv::reserve::Unit;
use crate::api::reply::Reply;
use crate::core::decide::client::Allowance;
use crate::core::http::headers::{self, Header};
use crate::core::ports::{Env, KeyValue};
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::stored::scope::Scope;
use crate::core::{decide::budget, Error};

pub struct Gate<'k, K> {
    kv: &'k K,
    project: &'k Project,
    now: u64,
    allowance: Reservation<'k, K>,
    scope_unit: Unit<'k, K>,
    scope: Option<Scope>,
    /// The scope is a lazy one not stored yet (`scopes::find`).
    scope_unstored: bool,
    derivations: Unit<'k, K>,
    client_derivations: Reservation<'k, K>,
    /// Whether the answer is a variant (its rate-limit headers are the
    /// client's derivations, else its generations).
    variant: bool,
    /// The budget was found not spent (it is checked once per request).
    budget_checked: std::cell::Cell<bool>,
}

impl<'k, K: KeyValue> Gate<'k, K> {
    pub fn new<S, P, E>(
        ctx: &'k Context<K, S, P, E>,
        project: &'k Project,
        incoming: &'k Incoming,
        scope: Option<Scope>,
        scope_stored: bool,
        variant: bool,
        now: u64,
    ) -> Gate<'k, K> {
        let kv = &ctx.kv;
        let scope_key = scope.as_ref().map(|s| keys::scope_generations(&project.id, &s.slug));
        Gate {
            kv,
            project,
            now,
            allowance: Reservation::new(kv, incoming.client.as_ref().and_then(|c| c.misses.as_ref()), now),
            scope_unit: Unit::new(kv, scope_key),
            scope,
            scope_unstored: !scope_stored,
            derivations: Unit::new(kv, Some(keys::derivations(&project.id, now))),
            client_derivations: Reservation::new(
                kv,
                incoming.client.as_ref().and_then(|c| c.derivations.as_ref()),
                now,
            ),
            variant,
            budget_checked: std::cell::Cell::new(false),
        }
    }

    /// The counters a generation or derivation reserves on: they must exist
    /// before they race (`api::kv::counters::ensure`).
    pub fn counters(&self) -> Vec<String> {
        let mut keys = vec![
            keys::budget(&self.project.id, self.now),
            keys::derivations(&self.project.id, self.now),
            keys::expiry_seq(keys::hour(self.now)),
        ];
        for unit in [self.allowance.key(), self.scope_unit.key(), self.client_derivations.key()] {
            keys.extend(unit.map(str::to_string));
        }
        keys
    }

    /// A spent budget is refused before anything is written (the counter is
    /// only read); checked once per request.
    fn check_budget(&self) -> Result<(), Error> {
        if !self.budget_checked.get() {
            let count = self.kv.counter(&keys::budget(&self.project.id, self.now))?.unwrap_or(0);
            budget::check_before_spending(count, self.project.generations_per_hour, self.now)?;
            self.budget_checked.set(true);
        }
        Ok(())
    }

    /// Before this request takes a generation's lease: the budget, then the
    /// scope's cap and the client's allowance are reserved. Given back when
    /// the reservation is dropped unspent ([`Reserved::spend`]: the provider
    /// is called).
    pub fn reserve_generation(&self) -> Result<Reserved<'_, 'k, K>, Error> {
        self.check_budget()?;
        let scope = self.scope.as_ref();
        self.scope_unit.take(|used| scope.map_or(Ok(()), |s| s.check_new_generation(used - 1)))?;
        self.allowance.take().inspect_err(|_| self.scope_unit.refund())?;
        Ok(Reserved { gate: self, what: What::Generation, spent: false })
    }

    /// The slug of the scope the image is in, if any.
    pub fn scope_slug(&self) -> Option<&str> {
        self.scope.as_ref().map(|s| s.slug.as_str())
    }

    /// A prompt the policy refused costs the client one unit of its
    /// allowance, kept (over the allowance, the answer is its 429).
    pub async fn charge_refusal<S, P, E: Env>(&self, ctx: &Context<K, S, P, E>) -> Result<(), Error> {
        if let Some(key) = self.allowance.key() {
            crate::api::kv::counters::ensure(ctx, key).await?;
        }
        self.allowance.take()
    }

    /// No provider call was made after all (another request generated, or
    /// the budget was spent meanwhile): the client's unit and the scope's go
    /// back. A call that was made keeps them, whatever it answered.
    fn generation_given_back(&self) {
        self.allowance.refund();
        self.scope_unit.refund();
    }

    /// Before this request derives a variant: the project's derivations of
    /// the hour, then the client's. The first derivation of an hour removes
    /// the project's counters of the hours before. Given back when dropped
    /// unspent ([`Reserved::spend`]: the derivation was computed).
    pub fn reserve_derivation(&self) -> Result<Reserved<'_, 'k, K>, Error> {
        let limit = self.project.derivations_per_hour;
        let now = self.now;
        let was_taken = self.derivations.used().is_some();
        self.derivations.take(|used| {
            if used <= i64::from(limit) {
                return Ok(());
            }
            let allowance = Allowance::new(limit, used, now);
            Err(Error::DerivationsExceeded { retry_after: allowance.reset_at.saturating_sub(now).max(1) })
        })?;
        if !was_taken && self.derivations.used() == Some(1) {
            for stale in budget::stale_derivation_keys(&self.project.id, now) {
                if let Err(e) = self.kv.delete_counter(&stale) {
                    crate::diag!("old derivations counter {stale} not removed: {e}");
                }
            }
        }
        self.client_derivations.take().inspect_err(|_| self.derivations.refund())?;
        Ok(Reserved { gate: self, what: What::Derivation, spent: false })
    }

    /// No derivation was computed after all (another request's, the
    /// original was gone, or it was refused before decoding).
    fn derivation_given_back(&self) {
        self.derivations.refund();
        self.client_derivations.refund();
    }

    /// The headers every answer gets from the gate: the client's allowance
    /// (`X-RateLimit-*`) and the scope (`X-Scope`).
    pub fn finish<B>(&self, mut reply: Reply<B>) -> Reply<B> {
        reply.headers.extend(self.headers());
        reply
    }

    /// Those headers as they are now (a progressive answer sends them
    /// before this request reserves anything).
    pub fn headers(&self) -> Vec<Header> {
        let limit = if self.variant { &self.client_derivations } else { &self.allowance };
        let mut headers = limit.headers();
        if let Some(s) = &self.scope {
            headers.push(headers::scope(&s.slug));
        }
        headers
    }
}

/// What a request reserved on the gate for making one image: given back when
/// dropped, unless it was spent.
pub struct Reserved<'g, 'k, K: KeyValue> {
    gate: &'g Gate<'k, K>,
    what: What,
    spent: bool,
}

enum What {
    Generation,
    Derivation,
}

impl<K: KeyValue> Reserved<'_, '_, K> {
    /// The work is being done (the provider is called, the derivation is
    /// computed): what it cost stays spent, whatever comes of it.
    pub fn spend(&mut self) {
        self.spent = true;
    }
}

impl<K: KeyValue> Drop for Reserved<'_, '_, K> {
    fn drop(&mut self) {
        match (self.spent, &self.what) {
            (true, _) => {}
            (false, What::Generation) => self.gate.generation_given_back(),
            (false, What::Derivation) => self.gate.derivation_given_back(),
        }
    }
}

/// What a request does before it joins a generation's single-flight: the
/// lazy scope it names is stored — unless the budget is spent, which refuses
/// it with nothing written (were someone generating in that scope, it would
/// be stored: nobody to wait for) — and the counters it may reserve on exist.
pub async fn before_generating<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    gate: &Gate<'_, K>,
) -> Result<(), Error> {
    if let (true, Some(scope)) = (gate.scope_unstored, &gate.scope) {
        gate.check_budget()?;
        crate::api::records::scopes::store_lazy(ctx, gate.project, scope).await?;
    }
    ensure_counters(ctx, gate).await
}

/// The counters of a gate's reservations exist before they race.
pub async fn ensure_counters<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    gate: &Gate<'_, K>,
) -> Result<(), Error> {
    for key in gate.counters() {
        crate::api::kv::counters::ensure(ctx, &key).await?;
    }
    Ok(())
}
