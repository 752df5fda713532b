//! Hourly rows noted and swept, as `core::stored::expiry` says: [`note`] a row
//! when it is first written; the first note of each hour sweeps the lists of
//! the hours before.

use crate::core::ports::KeyValue;
use crate::core::stored::expiry::{self, Expiring};
use crate::core::stored::keys;

/// Note `row` in the list of the hour containing `now`; the first note of
/// the hour sweeps the earlier hours' lists. Failing to note is logged (the
/// row then stays), never the request's failure.
pub fn note(kv: &impl KeyValue, row: &Expiring, now: u64) {
    let hour = keys::hour(now);
    let n = match kv.increment(&keys::expiry_seq(hour), 1) {
        Ok(n) => n,
        Err(e) => return crate::diag!("expiry of a row not noted: {e}"),
    };
    if let Err(e) = kv.set(&keys::expiry(hour, n), &row.encode()) {
        crate::diag!("expiry of a row not noted: {e}");
    }
    if n == 1 {
        sweep(kv, hour);
    }
}

/// Remove the rows the lists of the hours before `hour` name, and the lists.
fn sweep(kv: &impl KeyValue, hour: u64) {
    let mut left = expiry::MAX_SWEPT_ROWS;
    for past in expiry::hours_to_sweep(hour) {
        let seq = keys::expiry_seq(past);
        let count = match kv.counter(&seq) {
            Ok(Some(count)) => count,
            Ok(None) => continue,
            Err(e) => return crate::diag!("expiry list of hour {past} not read: {e}"),
        };
        for n in 1..=count {
            if left == 0 {
                return; // the rest go with the next hour's sweep
            }
            let list_row = keys::expiry(past, n);
            match kv.get(&list_row) {
                Ok(Some(bytes)) => {
                    left -= 1;
                    if let Some(row) = Expiring::decode(&bytes) {
                        remove(kv, &row);
                    }
                    let _ = kv.delete(&list_row);
                }
                Ok(None) => {}
                Err(e) => return crate::diag!("expiry sweep stopped: {e}"),
            }
        }
        if let Err(e) = kv.delete_counter(&seq) {
            crate::diag!("expiry list of hour {past} not removed: {e}");
        }
    }
}

fn remove(kv: &impl KeyValue, row: &Expiring) {
    let result = match row {
        Expiring::Counter(key) => kv.delete_counter(key),
        Expiring::Failure { owner, lease, failure } => {
            // Only what the failed owner left: a request that has taken the
            // lease since (or failed again) owns what is there now.
            let left = |key: &str, is: fn(&[u8], u32) -> bool| -> Result<(), crate::core::Error> {
                match kv.get(key)? {
                    Some(v) if is(&v, *owner) => kv.delete(key),
                    _ => Ok(()),
                }
            };
            left(lease, expiry::is_left_lease).and_then(|()| left(failure, expiry::is_left_failure))
        }
    };
    if let Err(e) = result {
        crate::diag!("an expired row was not removed: {e}");
    }
}
