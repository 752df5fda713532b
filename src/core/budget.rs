//! Generation budgets: at most `generations_per_hour` MISS generations per
//! project in each fixed, clock-aligned hour. Counting is an atomic KV
//! increment on a per-window key, so concurrent misses cannot overshoot: the
//! request whose increment lands above the limit is refused. HITs never count.

use super::Error;

pub const WINDOW_SECONDS: u64 = 3600;
pub const DEFAULT_GENERATIONS_PER_HOUR: u32 = 100;
pub const MAX_GENERATIONS_PER_HOUR: u32 = 1_000_000;

pub fn window(now: u64) -> u64 {
    now / WINDOW_SECONDS
}

/// Unix time at which the current window ends.
pub fn resets_at(now: u64) -> u64 {
    (window(now) + 1) * WINDOW_SECONDS
}

/// KV key of the counter for the window containing `now`.
pub fn counter_key(project: &str, now: u64) -> String {
    format!("budget:{project}:{}", window(now))
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
    fn windows_are_clock_aligned_hours() {
        assert_eq!(resets_at(7200), 10800);
        assert_eq!(resets_at(7199), 7200);
        assert_eq!(counter_key("p", 7300), "budget:p:2");
    }

    #[test]
    fn the_request_over_the_limit_is_told_when_to_retry() {
        assert_eq!(decide(3, 3, 7000), Ok(()));
        assert_eq!(decide(4, 3, 7000), Err(Error::BudgetExceeded { retry_after: 200 }));
        assert_eq!(decide(1, 0, 7000).unwrap_err().status(), 429);
        assert_eq!(used(9, 3), 3);
    }
}
