//! SQLite key-value backend, in Spin's own format: the table
//! `spin_key_value(store, key, value)` in `sqlite_key_value.db`, so a state
//! directory written by `spin up` and by banatie-host are interchangeable.
//!
//! Several host processes may share one file: WAL mode (synchronous=NORMAL),
//! a busy timeout, and every read-modify-write (increment, compare-and-swap)
//! runs in an IMMEDIATE transaction, which takes the write lock before reading.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{Backend, BackendResult};

pub struct Sqlite {
    conn: Mutex<Connection>,
}

fn err(e: rusqlite::Error) -> String {
    format!("sqlite: {e}")
}

impl Sqlite {
    pub fn open(path: &Path) -> anyhow::Result<Sqlite> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
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
        Ok(Sqlite { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> BackendResult<T> {
        let mut conn = self.conn.lock().map_err(|_| "sqlite: lock poisoned".to_string())?;
        f(&mut conn).map_err(err)
    }
}

fn read(conn: &Connection, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row(
        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
        params![store, key],
        |row| row.get(0),
    )
    .optional()
}

fn write(conn: &Connection, store: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
        params![store, key, value],
    )?;
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
            c.execute("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2", params![store, key])
                .map(drop)
        })
    }

    fn exists(&self, store: &str, key: &str) -> BackendResult<bool> {
        Ok(self.get(store, key)?.is_some())
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

    fn increment(&self, store: &str, key: &str, delta: i64) -> BackendResult<i64> {
        let result = self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = match read(&tx, store, key)? {
                None => Ok(0),
                Some(v) => v.as_slice().try_into().map(i64::from_le_bytes).map_err(|_| ()),
            };
            let Ok(current) = current else {
                return Ok(None);
            };
            let next = current.wrapping_add(delta);
            write(&tx, store, key, &next.to_le_bytes())?;
            tx.commit()?;
            Ok(Some(next))
        })?;
        result.ok_or_else(|| format!("value of {key} is not a counter"))
    }

    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> BackendResult<bool> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if read(&tx, store, key)?.as_deref() != expected {
                return Ok(false);
            }
            write(&tx, store, key, new)?;
            tx.commit()?;
            Ok(true)
        })
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
        assert!(db.increment("default", "a", 1).is_err());
        assert!(db.compare_and_swap("default", "l", None, b"x").unwrap());
        assert!(!db.compare_and_swap("default", "l", None, b"y").unwrap());
        assert!(db.compare_and_swap("default", "l", Some(b"x"), b"y").unwrap());
        assert_eq!(db.list_keys("default", None, 10).unwrap(), vec!["a", "l", "n"]);
        assert_eq!(db.list_keys("default", Some("a"), 1).unwrap(), vec!["l"]);
        db.delete("default", "a").unwrap();
        drop(db);
        let again = Sqlite::open(&path).unwrap();
        assert!(!again.exists("default", "a").unwrap());
        assert_eq!(again.increment("default", "n", 0).unwrap(), 3);
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
