//! Redis (or Valkey) key-value backend, as Spin's runtime config selects it
//! (`type = "redis"`, `url = "redis://..."`). Keys are used as they are, like
//! Spin's own Redis store, so Spin and banatie-host can share one Redis.
//! Counters are Redis integers (`INCRBY`); compare-and-swap is one Lua script,
//! atomic on the server. Several hosts share one Redis: that is how
//! single-flight, hit counts and budgets stay exact across machines.

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, Script};

use super::{Backend, BackendResult};

/// SET `KEYS[1]` to `ARGV[3]` if its value is `ARGV[2]` (`ARGV[1]` = "1"), or
/// if it does not exist (`ARGV[1]` = "0"). Returns 1 when it swapped.
const CAS_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"#;

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_IDLE: usize = 64;

pub struct Redis {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    cas: Script,
}

fn err(e: redis::RedisError) -> String {
    format!("redis: {e}")
}

impl Redis {
    /// Connect once to check the URL and the server before serving.
    pub fn open(url: &str) -> anyhow::Result<Redis> {
        let client = Client::open(url)?;
        let redis = Redis { client, idle: Mutex::new(Vec::new()), cas: Script::new(CAS_SCRIPT) };
        let mut conn = redis.connect().map_err(|e| anyhow::anyhow!(e))?;
        redis::cmd("PING").query::<String>(&mut conn)?;
        redis.idle.lock().unwrap().push(conn);
        Ok(redis)
    }

    fn connect(&self) -> BackendResult<Connection> {
        let conn = self.client.get_connection_with_timeout(TIMEOUT).map_err(err)?;
        conn.set_read_timeout(Some(TIMEOUT)).map_err(err)?;
        conn.set_write_timeout(Some(TIMEOUT)).map_err(err)?;
        Ok(conn)
    }

    /// Run `f` on a pooled connection; a connection that failed is dropped.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>) -> BackendResult<T> {
        let pooled = self.idle.lock().map_err(|_| "redis: pool poisoned".to_string())?.pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = f(&mut conn);
        if result.is_ok() {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
            }
        }
        result.map_err(err)
    }
}

impl Backend for Redis {
    fn get(&self, _store: &str, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.with(|c| redis::cmd("GET").arg(key).query(c))
    }

    fn set(&self, _store: &str, key: &str, value: &[u8]) -> BackendResult<()> {
        self.with(|c| redis::cmd("SET").arg(key).arg(value).query(c))
    }

    fn delete(&self, _store: &str, key: &str) -> BackendResult<()> {
        self.with(|c| redis::cmd("DEL").arg(key).query::<i64>(c).map(drop))
    }

    fn exists(&self, _store: &str, key: &str) -> BackendResult<bool> {
        self.with(|c| redis::cmd("EXISTS").arg(key).query::<i64>(c).map(|n| n > 0))
    }

    fn list_keys(&self, _store: &str, cursor: Option<&str>, limit: usize) -> BackendResult<Vec<String>> {
        let mut keys: Vec<String> = self.with(|c| redis::cmd("KEYS").arg("*").query(c))?;
        keys.sort();
        Ok(keys.into_iter().filter(|k| cursor.is_none_or(|c| k.as_str() > c)).take(limit).collect())
    }

    fn increment(&self, _store: &str, key: &str, delta: i64) -> BackendResult<i64> {
        self.with(|c| redis::cmd("INCRBY").arg(key).arg(delta).query(c))
    }

    fn compare_and_swap(
        &self,
        _store: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> BackendResult<bool> {
        let (flag, expected) = match expected {
            Some(e) => ("1", e),
            None => ("0", &b""[..]),
        };
        self.with(|c| self.cas.key(key).arg(flag).arg(expected).arg(new).invoke::<i64>(c)).map(|n| n == 1)
    }
}
