//! Which runtime a test's hosts run in: banatie-host, the real `spin up` of
//! Spin 3 or Spin 4, or wasmCloud 2's real `wash dev` over one of its
//! key-value backends. The trial wrapper in `main.rs` sets it for the test's
//! thread, so the same test code runs against each (`support::host::Host`
//! starts the right one, `support::store` reads the right store).

use std::cell::Cell;

use testkit::spin::Spin;

/// wasmCloud 2's key-value backends (wash-runtime's `wasi_keyvalue` plugins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WashStore {
    Redis,
    /// NATS JetStream, the cluster default.
    Nats,
    /// A directory (`wasi_keyvalue_path`): one file per key.
    Dir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    BanatieHost,
    Spin(Spin),
    Wash(WashStore),
}

impl Runtime {
    /// Every runtime other than banatie-host, in the order of the matrix.
    pub const MATRIX: [Runtime; 5] = [
        Runtime::Spin(Spin::V3),
        Runtime::Spin(Spin::V4),
        Runtime::Wash(WashStore::Redis),
        Runtime::Wash(WashStore::Nats),
        Runtime::Wash(WashStore::Dir),
    ];

    /// The prefix of its trials' names.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::BanatieHost => "banatie-host",
            Runtime::Spin(Spin::V3) => "spin3",
            Runtime::Spin(Spin::V4) => "spin4",
            Runtime::Wash(WashStore::Redis) => "wash-redis",
            Runtime::Wash(WashStore::Nats) => "wash-nats",
            Runtime::Wash(WashStore::Dir) => "wash-dir",
        }
    }

    /// Whether the runtime tells the component who the client is
    /// (`spin-client-addr`): Spin and banatie-host do, wasmCloud does not.
    pub fn knows_the_client(self) -> bool {
        !matches!(self, Runtime::Wash(_))
    }

    /// Whether concurrent increments of one counter are exact: not on wash's
    /// directory store, whose increment reads, then writes (wash-runtime
    /// v2.7.0 `plugin/wasi_keyvalue/fs_store.rs`, `increment`).
    pub fn counts_exactly(self) -> bool {
        self != Runtime::Wash(WashStore::Dir)
    }
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

/// Set `BANATIE_REQUIRE_RUNTIMES=1` (CI does) to make a missing runtime a
/// failure instead of a skipped suite (`BANATIE_REQUIRE_SPIN=1` too, as before).
pub fn required() -> bool {
    ["BANATIE_REQUIRE_RUNTIMES", "BANATIE_REQUIRE_SPIN"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| v == "1"))
}

/// Run `f` with `runtime` as the current one, then restore the previous.
pub fn with_current<R>(runtime: Runtime, f: impl FnOnce() -> R) -> R {
    let before = current();
    CURRENT.with(|c| c.set(runtime));
    let out = f();
    CURRENT.with(|c| c.set(before));
    out
}
