//! The one way the host takes a lock: [`lock`].

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `mutex`, locked. A lock whose holder panicked is taken as it is: every
/// critical section in the host leaves what it guards whole between
/// statements (a count, a list, an index entry), and one request's panic
/// must not turn every later request that shares the lock into a panic.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_taken_as_it_is() {
        let mutex = std::sync::Arc::new(Mutex::new(vec![1]));
        let held = mutex.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("a request panicked holding the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        lock(&mutex).push(2);
        assert_eq!(*lock(&mutex), [1, 2]);
    }
}
