//! SQLite key-value backend, in Spin's own format: the table
//! `spin_key_value(store, key, value)` in `sqlite_key_value.db`, so a state
//! directory written by `spin up` and by banatie-host are interchangeable.
//!
//! The observable semantics are Spin v3.6.0's (`crates/key-value-spin/src/store.rs`):
//! a counter is 8 little-endian bytes (any other value makes `increment` fail
//! the way Spin's `expect("incorrect length")` does: the guest traps);
//! compare-and-swap remembers what `current` read and then runs
//! `UPDATE … WHERE value = old`, or — when `current` read nothing — the upsert
//! `INSERT … ON CONFLICT DO UPDATE`, which always succeeds. That last one is
//! not a compare-and-swap at all, and it is reproduced on purpose: the
//! component must be correct on it (see `core::decide::single_flight`).
//!
//! Several host processes may share one file (Spin does not do that; the host's
//! tests do): WAL mode (synchronous=NORMAL), and `increment` is one
//! statement (upsert + `RETURNING`), atomic across connections.
//!
//! Where it runs: every call first runs right on the async worker that asked
//! (a statement from the cache, microseconds, no waiting: busy timeout 0).
//! Only when the file is locked by another process (`SQLITE_BUSY`) does it
//! move off the worker (`block_in_place`) and retry for up to
//! [`BUSY_TIMEOUT`]. Spin puts every call in `block_in_place`; here that
//! handoff cost more than the statements themselves (issue 14's profile).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{named_params, params, Connection, OptionalExtension};

use super::{Backend, BackendResult, Cas, IncrementError, SwapError};

/// How long a call waits for another process's write lock before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
}

fn err(e: rusqlite::Error) -> String {
    format!("sqlite: {e}")
}

impl Sqlite {
    pub fn open(path: &Path) -> anyhow::Result<Sqlite> {
        // It holds API key hashes and signing secrets: owner-only, and SQLite
        // gives its -wal and -shm files the database file's permissions.
        crate::private_file::create(path)?;
        let conn = Connection::open(path)?;
        // Opening may wait for another connection's write (switching to WAL,
        // creating the table take a write lock): up to 5 s, before serving.
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(32);
        register_le_add(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a commit survives a crash of the process (the WAL is
        // written), and fsync happens at checkpoints rather than on every counter
        // bump. A power loss may drop the last commits (a cache entry to
        // regenerate, a counter tick, even a just-created project); images are
        // never lost, they live in S3.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            );",
        )?;
        // Serving never waits inside SQLite: `with` waits, off the async worker.
        conn.busy_timeout(Duration::ZERO)?;
        Ok(Sqlite { conn: Arc::new(Mutex::new(conn)) })
    }

    fn with<T>(&self, f: impl Fn(&mut Connection) -> rusqlite::Result<T>) -> BackendResult<T> {
        with(&self.conn, f)
    }
}

/// The message of `le_add`'s error (how `increment` recognises it).
const NOT_A_COUNTER: &str = "not an 8-byte counter";

fn counter(value: &[u8]) -> Option<i64> {
    <[u8; 8]>::try_from(value).ok().map(i64::from_le_bytes)
}

/// `le_add(value, delta)`: Spin's counter encoding (8 little-endian bytes)
/// in SQL, so that an increment is one statement.
fn register_le_add(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "le_add",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let value: Vec<u8> = ctx.get(0)?;
            let delta: i64 = ctx.get(1)?;
            let current =
                counter(&value).ok_or_else(|| rusqlite::Error::UserFunctionError(NOT_A_COUNTER.into()))?;
            Ok(current.wrapping_add(delta).to_le_bytes().to_vec())
        },
    )
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Run `f` now; if another process holds the file's lock, retry off the
/// async worker until [`BUSY_TIMEOUT`]. The mutex is never held while waiting.
fn with<T>(conn: &Mutex<Connection>, f: impl Fn(&mut Connection) -> rusqlite::Result<T>) -> BackendResult<T> {
    let once = || -> BackendResult<rusqlite::Result<T>> {
        let mut conn = crate::sync::lock(conn);
        Ok(f(&mut conn))
    };
    match once()? {
        Err(e) if is_busy(&e) => super::blocking(|| {
            let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
            loop {
                match once()? {
                    Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    result => return result.map_err(err),
                }
            }
        }),
        result => result.map_err(err),
    }
}

fn read(conn: &Connection, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row(params![store, key], |row| row.get(0))
        .optional()
}

fn write(conn: &Connection, store: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![store, key, value])?;
    Ok(())
}

impl Backend for Sqlite {
    fn get(&self, store: &str, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.with(|c| read(c, store, key))
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> BackendResult<()> {
        self.with(|c| write(c, store, key, value))
    }

    fn delete(&self, store: &str, key: &str) -> BackendResult<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute(params![store, key])
                .map(drop)
        })
    }

    fn exists(&self, store: &str, key: &str) -> BackendResult<bool> {
        Ok(self.get(store, key)?.is_some())
    }

    /// Spin v3.6.0 `crates/key-value-spin/src/store.rs`, `get_many`:
    /// `SELECT key, value … WHERE key IN (…)`, so only the keys found.
    fn get_many(&self, store: &str, keys: &[String]) -> BackendResult<Vec<(String, Option<Vec<u8>>)>> {
        self.with(|c| {
            let mut found = Vec::new();
            for key in keys {
                if let Some(value) = read(c, store, key)? {
                    found.push((key.clone(), Some(value)));
                }
            }
            Ok(found)
        })
    }

    /// Spin's `set_many`: every upsert in one transaction.
    fn set_many(&self, store: &str, pairs: &[(String, Vec<u8>)]) -> BackendResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for (key, value) in pairs {
                write(&tx, store, key, value)?;
            }
            tx.commit()
        })
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> BackendResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for key in keys {
                tx.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .execute(params![store, key])?;
            }
            tx.commit()
        })
    }

    fn list_keys(&self, store: &str, cursor: Option<&str>, limit: usize) -> BackendResult<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT key FROM spin_key_value WHERE store = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![store, cursor.unwrap_or(""), limit as i64], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Spin reads and writes in one transaction; here it is one statement
    /// (an implicit transaction, as atomic): `le_add` adds to the 8-byte
    /// little-endian value, or fails for any other value as Spin does. Adding
    /// 0 to an existing counter only reads it (the value would not change).
    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, IncrementError> {
        let not_a_counter =
            || IncrementError::NotACounter(format!("sqlite: value of {key} is not an 8-byte counter"));
        if delta == 0 {
            // Absent: create it with the upsert below.
            if let Some(v) = self.get(store, key).map_err(IncrementError::Store)? {
                return counter(&v).ok_or_else(not_a_counter);
            }
        }
        let result = self.with(|c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = le_add(value, ?4)
                 RETURNING value",
            )?
            .query_row(params![store, key, delta.to_le_bytes(), delta], |row| row.get::<_, Vec<u8>>(0))
        });
        match result {
            Ok(v) => counter(&v).ok_or_else(not_a_counter),
            Err(e) if e.contains(NOT_A_COUNTER) => Err(not_a_counter()),
            Err(e) => Err(IncrementError::Store(e)),
        }
    }

    fn blocks(&self) -> bool {
        false
    }

    fn new_cas(&self, store: &str, key: &str) -> BackendResult<Box<dyn Cas>> {
        Ok(Box::new(SqliteCas { conn: self.conn.clone(), store: store.into(), key: key.into(), seen: None }))
    }
}

struct SqliteCas {
    conn: Arc<Mutex<Connection>>,
    store: String,
    key: String,
    seen: Option<Vec<u8>>,
}

impl Cas for SqliteCas {
    fn current(&mut self) -> BackendResult<Option<Vec<u8>>> {
        self.seen = with(&self.conn, |c| read(c, &self.store, &self.key))?;
        Ok(self.seen.clone())
    }

    fn swap(&mut self, value: &[u8]) -> Result<(), SwapError> {
        let rows = with(&self.conn, |c| match &self.seen {
            Some(old) => c
                .prepare_cached(
                    "UPDATE spin_key_value SET value = :new WHERE store = :store AND key = :key AND value = :old",
                )?
                .execute(named_params! { ":new": value, ":store": self.store, ":key": self.key, ":old": old }),
            // Spin's behaviour when `current` read nothing: an upsert.
            None => c.execute(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                params![self.store, self.key, value],
            ),
        })
        .map_err(SwapError::Other)?;
        if rows == 1 {
            Ok(())
        } else {
            Err(SwapError::CasFailed("failed to update 1 row".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_counters_and_cas_behave_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let db = Sqlite::open(&path).unwrap();
        db.set("default", "a", b"1").unwrap();
        assert_eq!(db.get("default", "a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(db.get("other", "a").unwrap(), None);
        assert_eq!(db.increment("default", "n", 1).unwrap(), 1);
        assert_eq!(db.increment("default", "n", 2).unwrap(), 3);
        assert!(matches!(db.increment("default", "a", 1), Err(IncrementError::NotACounter(_))));
        let mut cas = db.new_cas("default", "l").unwrap();
        assert_eq!(cas.current().unwrap(), None);
        cas.swap(b"x").unwrap();
        assert_eq!(db.get("default", "l").unwrap(), Some(b"x".to_vec()));
        assert_eq!(db.list_keys("default", None, 10).unwrap(), vec!["a", "l", "n"]);
        assert_eq!(db.list_keys("default", Some("a"), 1).unwrap(), vec!["l"]);
        db.delete("default", "a").unwrap();
        drop(db);
        let again = Sqlite::open(&path).unwrap();
        assert!(!again.exists("default", "a").unwrap());
        assert_eq!(again.increment("default", "n", 0).unwrap(), 3);
    }

    /// Spin v3.6.0 `crates/key-value-spin/src/store.rs`, `CompareAndSwap::swap`:
    /// with a value read, the swap is `UPDATE … WHERE value = old`; with none
    /// read, it is an upsert, so two racing swaps from absent both succeed.
    #[test]
    fn cas_is_conditional_from_a_value_and_an_upsert_from_absent_like_spin() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(&dir.path().join("kv.db")).unwrap();
        let (mut a, mut b) = (db.new_cas("s", "k").unwrap(), db.new_cas("s", "k").unwrap());
        assert_eq!((a.current().unwrap(), b.current().unwrap()), (None, None));
        a.swap(b"a").unwrap();
        b.swap(b"b").expect("Spin's swap from absent is an upsert: both succeed");
        assert_eq!(db.get("s", "k").unwrap(), Some(b"b".to_vec()));
        let (mut c, mut d) = (db.new_cas("s", "k").unwrap(), db.new_cas("s", "k").unwrap());
        assert_eq!(c.current().unwrap(), Some(b"b".to_vec()));
        d.current().unwrap();
        c.swap(b"c").unwrap();
        assert!(matches!(d.swap(b"d"), Err(SwapError::CasFailed(_))), "from a value, only one wins");
        assert_eq!(db.get("s", "k").unwrap(), Some(b"c".to_vec()));
    }

    /// Spin v3.6.0 `increment`: 8 little-endian bytes; a counter 0 is created
    /// when the key is absent and an existing 8-byte value is kept as it is.
    #[test]
    fn counters_are_eight_little_endian_bytes_like_spin() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(&dir.path().join("kv.db")).unwrap();
        assert_eq!(db.increment("s", "n", 0).unwrap(), 0);
        assert_eq!(db.get("s", "n").unwrap(), Some(vec![0; 8]));
        db.set("s", "lease", &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        db.increment("s", "lease", 0).unwrap();
        assert_eq!(db.get("s", "lease").unwrap(), Some(vec![1, 2, 3, 4, 5, 6, 7, 8]));
    }

    #[test]
    fn two_connections_count_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let db = Sqlite::open(&path).unwrap();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        db.increment("default", "n", 1).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(Sqlite::open(&path).unwrap().increment("default", "n", 0).unwrap(), 200);
    }
}
