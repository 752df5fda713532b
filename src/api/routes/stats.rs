//! `GET /api/v1/live/stats` (X-API-Key): the caller's project only (`api::dispatch`
//! authenticates). Counters are read, never written (`KeyValue::counter`).

use crate::api::reply::Reply;
use crate::core::ports::KeyValue;
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::stored::stats::{self, Budget};
use crate::core::{decide::budget, Error};

pub fn get<B>(kv: &impl KeyValue, project: &Project, now: u64) -> Result<Reply<B>, Error> {
    let mut values = [0i64; stats::ALL.len()];
    for (value, counter) in values.iter_mut().zip(stats::ALL) {
        *value = kv.counter(&keys::stats(&project.id, counter))?.unwrap_or(0);
    }
    let hour = |key: String, limit: u32| -> Result<Budget, Error> {
        let spent = kv.counter(&key)?.unwrap_or(0);
        Ok(Budget { limit, used: budget::used(spent, limit), resets_at: budget::resets_at(now) })
    };
    let budget = hour(keys::budget(&project.id, now), project.generations_per_hour)?;
    let derivations = hour(keys::derivations(&project.id, now), project.derivations_per_hour)?;
    Ok(Reply::json(200, stats::document(&project.id, values, budget, derivations)))
}
