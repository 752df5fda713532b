//! Generation budgets: at most `generations_per_hour` MISS generations per
//! project in each fixed, clock-aligned hour. Counting is an atomic KV
//! increment on a per-window key, so concurrent misses cannot overshoot: the
//! request whose increment lands above the limit is refused. HITs never count.

use crate::Error;

pub const DEFAULT_GENERATIONS_PER_HOUR: u32 = 100;
pub const MAX_GENERATIONS_PER_HOUR: u32 = 1_000_000;

/// Unix time at which the current window ends.
pub fn resets_at(now: u64) -> u64 {
    (crate::stored::keys::hour(now) + 1) * crate::stored::keys::HOUR_SECONDS
}

/// How many past windows' counters the first spend of a window removes.
pub const STALE_WINDOWS_CLEANED: u64 = 24;

/// Counters of the windows before `now`'s that nothing reads any more: the
/// first spend of each window deletes them, so they never pile up.
pub fn stale_counter_keys(project: &str, now: u64) -> Vec<String> {
    stale_hours(now).map(|hour| crate::stored::keys::budget_of_hour(project, hour)).collect()
}

/// The same for the project's hourly derivations counters (the first
/// derivation of each hour deletes them).
pub fn stale_derivation_keys(project: &str, now: u64) -> Vec<String> {
    stale_hours(now).map(|hour| crate::stored::keys::derivations_of_hour(project, hour)).collect()
}

fn stale_hours(now: u64) -> impl Iterator<Item = u64> {
    let current = crate::stored::keys::hour(now);
    (1..=STALE_WINDOWS_CLEANED.min(current)).map(move |back| current - back)
}

/// Before taking a lease: is this window's budget already spent? (`count` is
/// the counter as it is, before this request.) Refusing here writes nothing.
pub fn check_before_spending(count: i64, limit: u32, now: u64) -> Result<(), Error> {
    decide(count + 1, limit, now)
}

/// Decide with the counter's value *after* this request's increment.
pub fn decide(count: i64, limit: u32, now: u64) -> Result<(), Error> {
    if count <= i64::from(limit) {
        Ok(())
    } else {
        Err(Error::BudgetExceeded { retry_after: (resets_at(now) - now).max(1) })
    }
}

/// Budget use as reported: never above the limit, even when refused requests
/// pushed the raw counter past it.
pub fn used(count: i64, limit: u32) -> i64 {
    count.clamp(0, i64::from(limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_spend_of_a_window_names_the_counters_before_it() {
        let now = 10 * crate::stored::keys::HOUR_SECONDS + 5;
        let keys = stale_counter_keys("p", now);
        assert_eq!(keys.len(), 10);
        assert_eq!(keys[0], "budget:p:9");
        assert_eq!(
            stale_counter_keys("p", 100 * crate::stored::keys::HOUR_SECONDS).len(),
            STALE_WINDOWS_CLEANED as usize
        );
    }

    #[test]
    fn a_spent_budget_is_refused_before_spending() {
        assert!(check_before_spending(1, 2, 0).is_ok());
        assert_eq!(check_before_spending(2, 2, 0).unwrap_err().status(), 429);
    }

    #[test]
    fn windows_are_clock_aligned_hours() {
        assert_eq!(resets_at(7200), 10800);
        assert_eq!(resets_at(7199), 7200);
    }

    #[test]
    fn the_request_over_the_limit_is_told_when_to_retry() {
        assert_eq!(decide(3, 3, 7000), Ok(()));
        assert_eq!(decide(4, 3, 7000), Err(Error::BudgetExceeded { retry_after: 200 }));
        assert_eq!(decide(1, 0, 7000).unwrap_err().status(), 429);
        assert_eq!(used(9, 3), 3);
    }
}
