//! Which runtime a test's hosts run in: banatie-host, or the real `spin up`.
//! The trial wrapper in `main.rs` sets it for the test's thread, so the same
//! test code runs against both (`support::host::Host` starts the right one).

use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    BanatieHost,
    Spin,
}

thread_local! {
    static CURRENT: Cell<Runtime> = const { Cell::new(Runtime::BanatieHost) };
}

pub fn current() -> Runtime {
    CURRENT.with(Cell::get)
}

/// Run `test` with every host it starts on `runtime`.
pub fn with(runtime: Runtime, test: fn()) {
    with_current(runtime, test)
}

/// Set `BANATIE_REQUIRE_SPIN=1` (CI does) to make a missing Spin a failure
/// instead of a skipped suite.
pub fn spin_required() -> bool {
    std::env::var("BANATIE_REQUIRE_SPIN").is_ok_and(|v| v == "1")
}

/// Run `f` with `runtime` as the current one, then restore the previous.
pub fn with_current<R>(runtime: Runtime, f: impl FnOnce() -> R) -> R {
    let before = current();
    CURRENT.with(|c| c.set(runtime));
    let out = f();
    CURRENT.with(|c| c.set(before));
    out
}
