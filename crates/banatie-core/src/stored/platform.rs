//! What each runtime's key-value store really does, and how the component
//! copes with it: one place for every platform fact the rest of the code
//! relies on. Each fact is read from the runtime's source (cited) and seen in
//! runs under the real CLI (`tests/integration`, the runtime matrix).
//!
//! | | Spin 3.6 / 4.0 (and banatie-host) | wasmCloud 2 (wash-runtime 2.7.0) |
//! |---|---|---|
//! | stores | SQLite, Redis | Redis, NATS JetStream, a directory, memory |
//! | compare-and-swap | yes: exclusive from an *existing* value (from absent: SQLite upserts) | none in `wasi:keyvalue@0.2.0-draft` |
//! | `increment` | signed, atomic, also from absent | unsigned; atomic on Redis (`INCRBY`) and memory; on NATS a CAS on the stream that fails on conflict (`wrong last sequence`) and, on a key never written, a plain `put` (two first increments both return 1); on the directory store a read then a write |
//! | counter bytes | SQLite: 8 bytes LE; Redis: decimal | NATS: 8 bytes BE; memory: 8 bytes LE; Redis, directory: decimal |
//! | key alphabet | any | NATS `[-/_=.a-zA-Z0-9]+`, no leading/trailing `.`; directory: a key is a file name (`/` makes a subdirectory, and `K` beside `K/x` is impossible) |
//!
//! Sources: Spin v3.6.0/v4.0.2 `crates/key-value-spin/src/store.rs`,
//! `crates/key-value-redis/src/store.rs`; wasmCloud v2.7.0
//! `crates/wash-runtime/src/plugin/wasi_keyvalue/{redis,nats,fs_store,in_memory}.rs`
//! and async-nats 0.49.1 `jetstream/kv/mod.rs` (`is_valid_key`, `put`, `update`).
//!
//! What follows from it: the single-flight lease is a CAS on Spin and a
//! settled claim on wasmCloud (`core::decide::single_flight` says why each is
//! exclusive); wasmCloud 2 keys are escaped into the NATS alphabet with no
//! `/` ([`Flavour::store_key`]); a counter that goes down keeps its
//! decrements in a second key there ([`Flavour::down_key`]); counters are read
//! with `get` and decoded here ([`Flavour::decode_counter`]), never with an
//! `increment(key, 0)` (which writes on NATS and, on a key never written,
//! can overwrite a concurrent first increment); NATS conflicts are retried
//! ([`Flavour::is_increment_conflict`]); and counters whose first increments
//! race are created first under a lock (`api::kv::counters::ensure`).

use std::borrow::Cow;

/// The build of the component, chosen by cargo feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Spin 3.x/4.x and banatie-host: `wasi:keyvalue@0.2.0-draft2`.
    Spin,
    /// wasmCloud 1.x (`--features wasmcloud`): `wasi:keyvalue@0.2.0-draft`
    /// through its providers (not run here; keys kept as 1.x deployments have them).
    WasmCloud1,
    /// wasmCloud 2 (`--features wasmcloud2`): `wasi:keyvalue@0.2.0-draft`
    /// on any of wash-runtime's backends; the component cannot tell which.
    WasmCloud2,
}

/// A counter as read with `get` ([`Flavour::decode_counter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Value(i64),
    /// 8 bytes that read as a count in either order (big-endian, little-endian).
    Either {
        big: i64,
        little: i64,
    },
    NotACounter,
}

impl Counter {
    /// The value, given the store's byte order when it matters.
    pub fn resolve(self, big_endian: impl FnOnce() -> Option<bool>) -> Option<i64> {
        match self {
            Counter::Value(v) => Some(v),
            Counter::Either { big, little } => Some(if big_endian()? { big } else { little }),
            Counter::NotACounter => None,
        }
    }
}

/// What makes a lease exclusive on a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// A compare-and-swap from a value that exists (Spin's stores).
    CompareAndSwap,
    /// No CAS: write a claim, wait, and find it still there
    /// (`core::decide::single_flight`, "settled claims").
    SettledClaim,
}

impl Flavour {
    pub fn exclusion(self) -> Exclusion {
        match self {
            Flavour::Spin => Exclusion::CompareAndSwap,
            Flavour::WasmCloud1 | Flavour::WasmCloud2 => Exclusion::SettledClaim,
        }
    }

    /// Whether two concurrent first increments of a key that was never
    /// written both count. Spin: yes (SQLite upserts in a transaction, Redis
    /// `INCRBY`). wasmCloud: not on NATS (`put`) nor on the directory store.
    pub fn first_increment_is_atomic(self) -> bool {
        self == Flavour::Spin
    }

    /// How this flavour's store spells the logical key `key` (`core::stored::keys`).
    pub fn store_key(self, key: &str) -> Cow<'_, str> {
        match self {
            Flavour::Spin | Flavour::WasmCloud1 => Cow::Borrowed(key),
            Flavour::WasmCloud2 => Cow::Owned(escape(key)),
        }
    }

    /// The logical key that a stored name spells (for tests and tools).
    pub fn logical_key(self, stored: &str) -> Option<String> {
        match self {
            Flavour::Spin | Flavour::WasmCloud1 => Some(stored.to_string()),
            Flavour::WasmCloud2 => unescape(stored),
        }
    }

    /// Where a counter that can go down keeps its decrements, next to its
    /// increments at `stored` (wasmCloud's `increment` is unsigned); `None`:
    /// one signed counter (Spin).
    pub fn down_key(self, stored: &str) -> Option<String> {
        match self {
            Flavour::Spin => None,
            Flavour::WasmCloud1 => Some(format!("{stored}/down")),
            // No `/`: the directory store cannot hold `K` and `K/down` both.
            Flavour::WasmCloud2 => Some(format!("{stored}.down")),
        }
    }

    /// A counter's value from the bytes `get` returned. Spin: 8
    /// little-endian bytes (SQLite) or decimal text (Redis). wasmCloud:
    /// decimal text (Redis, directory) or 8 bytes, big-endian on NATS and
    /// little-endian in memory: a count below 2^56 has a zero first byte in
    /// one order and a zero last byte in the other, so only bytes with both
    /// zero are ambiguous ([`Counter::Either`]: the store's order settles it,
    /// [`Flavour::big_endian_probe`]).
    pub fn decode_counter(self, bytes: &[u8]) -> Counter {
        if let Ok(eight) = <[u8; 8]>::try_from(bytes) {
            if self == Flavour::Spin {
                return Counter::Value(i64::from_le_bytes(eight));
            }
            let (big, little) = (u64::from_be_bytes(eight), u64::from_le_bytes(eight));
            let clamp = |v: u64| v.min(i64::MAX as u64) as i64;
            return match (eight[0] == 0, eight[7] == 0) {
                (true, false) => Counter::Value(clamp(big)),
                (false, true) => Counter::Value(clamp(little)),
                (true, true) if big == little => Counter::Value(0),
                _ => Counter::Either { big: clamp(big), little: clamp(little) },
            };
        }
        match std::str::from_utf8(bytes).ok().and_then(|t| t.trim().parse().ok()) {
            Some(v) => Counter::Value(v),
            None => Counter::NotACounter,
        }
    }

    /// The byte order of the store's 8-byte counters, from the probe counter
    /// (`core::stored::keys::COUNTER_PROBE`, incremented once to at least 1):
    /// `Some(true)` big-endian, `Some(false)` little-endian, `None` when it
    /// is not 8 bytes (decimal stores never make an ambiguous counter).
    pub fn big_endian_probe(self, bytes: &[u8]) -> Option<bool> {
        let eight = <[u8; 8]>::try_from(bytes).ok()?;
        Some(eight[7] != 0)
    }

    /// Whether a failed increment changed nothing and may simply be tried
    /// again: wash's NATS backend updates with the revision it read and
    /// reports a lost race as the JetStream error 10071, "wrong last sequence".
    /// (Never a timeout: an update whose answer was lost may have happened.)
    pub fn is_increment_conflict(self, message: &str) -> bool {
        self != Flavour::Spin && message.to_ascii_lowercase().contains("wrong last sequence")
    }
}

/// How often an increment that lost a race (wash's NATS) is tried again.
/// Each try is one round trip and each round of contenders lets one
/// through, so a lost try first waits a random part of
/// [`conflict_wait_span_us`]: 100 concurrent HITs of one image spread out
/// instead of retrying in lockstep (64 tries without the wait left the last
/// few of them with 503 `kv_unavailable`).
pub const CONFLICT_RETRIES: u32 = 200;
/// The longest wait before another try of a lost increment, in µs.
pub const CONFLICT_BACKOFF_MAX_US: u64 = 4_000;

/// The span (µs, at least 1) a lost increment's next try waits a random
/// part of after `tries` lost tries: 100 µs a try, up to
/// [`CONFLICT_BACKOFF_MAX_US`].
pub fn conflict_wait_span_us(tries: u32) -> u64 {
    (100 * u64::from(tries)).clamp(1, CONFLICT_BACKOFF_MAX_US)
}

/// wasmCloud 2's spelling: `[A-Za-z0-9_-]` as is; `:` as `.` (the separator
/// every NATS tool shows) unless that would make an empty token (first,
/// last, or next to another `:`); every other byte, `.` `=` `~` and `/`
/// included, as `=XX` (upper-case hex; `=` is in NATS's alphabet and in no
/// key of ours). Injective, so no two keys collide; no `/`, so every key is
/// a plain file on the directory store. Keys of ids, hex hashes, slugs and
/// counter names keep the spelling wasmCloud 2 deployments already have.
fn escape(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = String::with_capacity(key.len() + 8);
    for (i, &b) in bytes.iter().enumerate() {
        let separator =
            b == b':' && i > 0 && i + 1 < bytes.len() && bytes[i - 1] != b':' && bytes[i + 1] != b':';
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => out.push(b as char),
            b':' if separator => out.push('.'),
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out
}

fn unescape(stored: &str) -> Option<String> {
    let bytes = stored.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => out.push(b':'),
            b'=' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::keys;

    /// async-nats 0.49.1 `is_valid_key`: `\A[-/_=\.a-zA-Z0-9]+\z`, not
    /// starting or ending with `.`; NATS subjects also have no empty token.
    fn nats_valid(k: &str) -> bool {
        !k.is_empty()
            && !k.starts_with('.')
            && !k.ends_with('.')
            && !k.contains("..")
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
    }

    /// wash's directory store: the key is a path under the bucket's directory
    /// (`lock_root`); a plain file needs no `/` and a name of at most 255 bytes.
    fn file_valid(k: &str) -> bool {
        !k.contains('/') && k != "." && k != ".." && !k.is_empty() && k.len() <= 255
    }

    #[test]
    fn wasmcloud2_keys_are_legal_on_every_wash_backend_and_round_trip() {
        let samples = keys::samples();
        let mut stored = std::collections::BTreeSet::new();
        for (family, key) in &samples {
            let s = Flavour::WasmCloud2.store_key(key).into_owned();
            assert!(nats_valid(&s), "{family}: {s:?} is not a NATS key");
            assert!(file_valid(&s), "{family}: {s:?} is not a file name");
            let down = Flavour::WasmCloud2.down_key(&s).unwrap();
            assert!(nats_valid(&down) && file_valid(&down), "{family}: {down:?}");
            assert_eq!(Flavour::WasmCloud2.logical_key(&s).as_deref(), Some(key.as_str()), "{family}");
            assert!(stored.insert(s), "{family}: two keys spelled alike");
        }
        // A counter's decrements never land on another key.
        for (family, key) in &samples {
            let down = Flavour::WasmCloud2.down_key(&Flavour::WasmCloud2.store_key(key)).unwrap();
            assert!(!stored.contains(&down), "{family}: {down} is also a key");
        }
    }

    #[test]
    fn every_string_escapes_to_a_legal_key_that_round_trips() {
        // Exhaustive over short strings of the characters that matter.
        let alphabet = [':', '.', '_', '~', '/', 'a', '-', '=', 'é'];
        let mut words = vec![String::new()];
        for _ in 0..4 {
            words = words.iter().flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}"))).collect();
            for w in &words {
                let s = escape(w);
                assert!(nats_valid(&s) && file_valid(&s), "{w:?} → {s:?}");
                assert_eq!(unescape(&s).as_deref(), Some(w.as_str()), "{w:?} → {s:?}");
            }
        }
    }

    #[test]
    fn plain_keys_keep_the_spelling_wasmcloud2_deployments_already_have() {
        let p = "2c5e3f6a-9b1d-4e7f-8a2b-3c4d5e6f7a8b";
        assert_eq!(Flavour::WasmCloud2.store_key(&keys::entry(p, "ab12")), format!("live.{p}.ab12"));
        assert_eq!(
            Flavour::WasmCloud2.store_key(&keys::entry(p, &keys::variant_hash("ab", "w256.webp.q80"))),
            format!("live.{p}.ab=7Ew256=2Ewebp=2Eq80")
        );
        assert_eq!(Flavour::WasmCloud2.store_key("clientmiss:2001:db8::1:7"), "clientmiss.2001.db8=3A=3A1.7");
        assert_eq!(Flavour::WasmCloud2.store_key("stats:p:bytes_stored"), "stats.p.bytes_stored");
        assert_eq!(Flavour::Spin.store_key("live:p:h"), "live:p:h");
        assert_eq!(
            Flavour::WasmCloud1.down_key("stats:p:bytes_stored").unwrap(),
            "stats:p:bytes_stored/down"
        );
        assert_eq!(Flavour::Spin.down_key("k"), None);
    }

    #[test]
    fn counters_decode_as_each_store_writes_them() {
        let f = Flavour::WasmCloud2;
        // Spin's SQLite store: i64 little-endian; its Redis store: INCRBY's text.
        assert_eq!(Flavour::Spin.decode_counter(&(-3i64).to_le_bytes()), Counter::Value(-3));
        assert_eq!(Flavour::Spin.decode_counter(b"42"), Counter::Value(42));
        // wash: NATS writes u64 big-endian, memory little-endian, Redis and
        // the directory store decimal text.
        let never = || -> Option<bool> { panic!("unambiguous") };
        for n in [0u64, 1, 255, 257, 65_535, 4_000_000_001, (1 << 55) + 3] {
            assert_eq!(f.decode_counter(&n.to_be_bytes()).resolve(never), Some(n as i64), "BE {n}");
            assert_eq!(f.decode_counter(&n.to_le_bytes()).resolve(never), Some(n as i64), "LE {n}");
            assert_eq!(f.decode_counter(n.to_string().as_bytes()).resolve(never), Some(n as i64));
        }
        // A multiple of 256 (below 2^56) reads both ways: the probe decides.
        for n in [256u64, 1 << 32, 5_000_000_000 / 256 * 256] {
            assert!(matches!(f.decode_counter(&n.to_be_bytes()), Counter::Either { .. }), "{n}");
            assert_eq!(f.decode_counter(&n.to_be_bytes()).resolve(|| Some(true)), Some(n as i64));
            assert_eq!(f.decode_counter(&n.to_le_bytes()).resolve(|| Some(false)), Some(n as i64));
        }
        assert_eq!(f.big_endian_probe(&1u64.to_be_bytes()), Some(true));
        assert_eq!(f.big_endian_probe(&3u64.to_le_bytes()), Some(false));
        assert_eq!(f.big_endian_probe(b"1"), None);
        assert_eq!(f.decode_counter(b"{\"json\":1}"), Counter::NotACounter);
        assert_eq!(f.decode_counter(b""), Counter::NotACounter);
    }

    #[test]
    fn a_lost_increment_waits_longer_with_each_try_up_to_a_bound() {
        assert_eq!(conflict_wait_span_us(0), 1);
        assert_eq!(conflict_wait_span_us(1), 100);
        assert_eq!(conflict_wait_span_us(39), 3_900);
        assert_eq!(conflict_wait_span_us(40), CONFLICT_BACKOFF_MAX_US);
        assert_eq!(conflict_wait_span_us(CONFLICT_RETRIES), CONFLICT_BACKOFF_MAX_US);
    }

    #[test]
    fn only_a_lost_nats_race_is_retried() {
        let lost = "JetStream error: failed to update: wrong last sequence: 41";
        assert!(Flavour::WasmCloud2.is_increment_conflict(lost));
        assert!(!Flavour::WasmCloud2.is_increment_conflict("JetStream error: timed out"));
        assert!(!Flavour::WasmCloud2.is_increment_conflict("Redis error: connection refused"));
        assert!(!Flavour::Spin.is_increment_conflict(lost));
    }

    #[test]
    fn only_spin_has_compare_and_swap_and_atomic_first_increments() {
        assert_eq!(Flavour::Spin.exclusion(), Exclusion::CompareAndSwap);
        assert!(Flavour::Spin.first_increment_is_atomic());
        for f in [Flavour::WasmCloud1, Flavour::WasmCloud2] {
            assert_eq!(f.exclusion(), Exclusion::SettledClaim);
            assert!(!f.first_increment_is_atomic());
        }
    }
}
