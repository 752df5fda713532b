//! How the host shares itself: no client's requests, and no request's
//! computing, can take what others need to be served.
//!
//! - **Per client** ([`PerClient`]): a client (the peer address, or behind
//!   the operator's `trusted_proxies` the `X-Forwarded-For` hop, as the
//!   component reads it: `core::decide::client`; IPv6 by its `client_ipv6_prefix`)
//!   runs at most `max_requests_per_client` components at once; its others
//!   wait (holding a connection, not an instance) up to `queue_timeout`,
//!   then 429. Requests that wait on another's generation, and answers a
//!   client does not read, hold instances: this bounds them to that
//!   client's share, so the pool is taken only by
//!   `max_concurrent_requests / max_requests_per_client` clients at once.
//! - **Compute** ([`Compute`], [`WasmClock`]): wasm that computes does not
//!   yield by itself, so the host yields it at every epoch tick (wasmtime's
//!   epoch-based async yielding: the worker thread serves others between
//!   ticks), and a request whose wasm has run for [`HEAVY_AFTER`] (a
//!   derivation; a HIT's wasm runs well under a millisecond) takes one of
//!   `compute_slots` (half the cores) before it computes on, so the other
//!   cores stay free for everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banatie_core::decide::client::{self, Net};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Wasm time after which a request is computing, not serving: it then
/// computes only under a compute slot.
pub const HEAVY_AFTER: Duration = Duration::from_millis(50);

/// Who a request is, for [`PerClient`]: from the peer address and the
/// `X-Forwarded-For` values, as the component decides it (`core::decide::client`).
#[derive(Clone, Default)]
pub struct Identity {
    pub trusted_proxies: Vec<Net>,
    pub ipv6_prefix: u8,
}

impl Identity {
    /// From the component's own variables (`trusted_proxies`,
    /// `client_ipv6_prefix`), so the host and the component agree on who
    /// a client is. Values the component would refuse count as unset.
    pub fn from_variables(vars: &std::collections::BTreeMap<String, String>) -> Identity {
        let trusted = vars.get("trusted_proxies").map(String::as_str).unwrap_or("");
        let prefix = vars.get("client_ipv6_prefix").and_then(|v| v.trim().parse::<u8>().ok());
        Identity {
            trusted_proxies: client::parse_trusted(trusted).unwrap_or_default(),
            ipv6_prefix: prefix.filter(|p| (16..=128).contains(p)).unwrap_or(client::DEFAULT_IPV6_PREFIX),
        }
    }

    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> String {
        let peer = peer.to_string();
        let ip = client::client(&[peer.as_str()], forwarded_for, &self.trusted_proxies);
        ip.map_or(peer.clone(), |ip| client::client_id(ip, self.ipv6_prefix))
    }
}

/// At most `cap` running requests per client.
pub struct PerClient {
    cap: usize,
    running: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A client's running request; dropping it frees the client's slot.
pub struct ClientPermit {
    _permit: OwnedSemaphorePermit,
    key: String,
    owner: Arc<PerClient>,
}

impl Drop for ClientPermit {
    fn drop(&mut self) {
        let mut running = crate::sync::lock(&self.owner.running);
        // The map's own reference and ours: nobody else holds or waits.
        if running.get(&self.key).is_some_and(|s| Arc::strong_count(s) <= 2) {
            running.remove(&self.key);
        }
    }
}

impl PerClient {
    pub fn new(cap: usize) -> Arc<PerClient> {
        Arc::new(PerClient { cap: cap.max(1), running: Mutex::new(HashMap::new()) })
    }

    /// A slot for `client`, waiting up to `wait`; `None` when it stays full.
    pub async fn acquire(self: &Arc<Self>, client: &str, wait: Duration) -> Option<ClientPermit> {
        let semaphore = {
            let mut running = crate::sync::lock(&self.running);
            running.entry(client.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.cap))).clone()
        };
        let permit = tokio::time::timeout(wait, semaphore.clone().acquire_owned()).await;
        drop(semaphore);
        let permit = match permit {
            Ok(Ok(permit)) => permit,
            _ => {
                self.forget_if_idle(client);
                return None;
            }
        };
        Some(ClientPermit { _permit: permit, key: client.to_string(), owner: self.clone() })
    }

    fn forget_if_idle(&self, client: &str) {
        let mut running = crate::sync::lock(&self.running);
        if running.get(client).is_some_and(|s| Arc::strong_count(s) == 1) {
            running.remove(client);
        }
    }

    /// Clients with a request running or waiting (tests).
    pub fn clients(&self) -> usize {
        crate::sync::lock(&self.running).len()
    }
}

/// The compute slots.
#[derive(Clone)]
pub struct Compute(Arc<Semaphore>);

impl Compute {
    pub fn new(slots: usize) -> Compute {
        Compute(Arc::new(Semaphore::new(slots.max(1))))
    }

    /// Half the cores, at least one.
    pub fn default_slots() -> usize {
        (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2).max(1)
    }
}

/// How long one request's wasm has run (not counting the time it waited
/// in host calls), and its compute slot once it has one. Kept in the
/// store, moved by wasmtime's call hook and read by its epoch callback.
pub struct WasmClock {
    ran: Duration,
    since: Option<Instant>,
    started: Instant,
    slot: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    asked: bool,
}

/// What the epoch callback decides at a tick.
pub enum Tick {
    /// Past the request's deadline: trap.
    Deadline,
    /// Yield to the executor, then go on.
    Yield,
    /// Yield until this request holds a compute slot.
    WaitForSlot(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
}

impl WasmClock {
    pub fn new() -> WasmClock {
        WasmClock {
            ran: Duration::ZERO,
            since: None,
            started: Instant::now(),
            slot: Arc::new(Mutex::new(None)),
            asked: false,
        }
    }

    /// Wasm starts (or resumes after a host call).
    pub fn enter(&mut self) {
        self.since = Some(Instant::now());
    }

    /// Wasm stops (a host call, or it returned).
    pub fn leave(&mut self) {
        if let Some(since) = self.since.take() {
            self.ran += since.elapsed();
        }
    }

    pub fn ran(&self) -> Duration {
        self.ran + self.since.map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// At an epoch tick, while wasm runs.
    pub fn tick(&mut self, deadline: Duration, compute: &Compute) -> Tick {
        if self.started.elapsed() >= deadline {
            return Tick::Deadline;
        }
        if self.asked || self.ran() < HEAVY_AFTER {
            return Tick::Yield;
        }
        self.asked = true;
        let (semaphore, slot) = (compute.0.clone(), self.slot.clone());
        Tick::WaitForSlot(Box::pin(async move {
            if let Ok(permit) = semaphore.acquire_owned().await {
                *crate::sync::lock(&slot) = Some(permit);
            }
        }))
    }

    /// Whether this request holds a compute slot (tests).
    pub fn computing(&self) -> bool {
        crate::sync::lock(&self.slot).is_some()
    }
}

impl Default for WasmClock {
    fn default() -> WasmClock {
        WasmClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_runs_at_most_its_share_and_leaves_no_trace() {
        let per = PerClient::new(2);
        let a = per.acquire("a", Duration::from_millis(10)).await.unwrap();
        let b = per.acquire("a", Duration::from_millis(10)).await.unwrap();
        assert!(per.acquire("a", Duration::from_millis(10)).await.is_none(), "a third waits, then gives up");
        let other = per.acquire("b", Duration::from_millis(10)).await;
        assert!(other.is_some(), "another client has its own share");
        drop((a, other));
        assert!(per.acquire("a", Duration::from_millis(10)).await.is_some());
        drop(b);
        assert_eq!(per.clients(), 0);
    }

    #[test]
    fn behind_a_trusted_proxy_the_forwarded_client_counts() {
        let mut vars = std::collections::BTreeMap::new();
        vars.insert("trusted_proxies".to_string(), "127.0.0.1".to_string());
        let id = Identity::from_variables(&vars);
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(id.client(proxy, &["198.51.100.7"]), "198.51.100.7");
        assert_eq!(id.client(proxy, &["2001:db8:0:7::5"]), "2001:db8:0:7::/64");
        let other: IpAddr = "203.0.113.1".parse().unwrap();
        assert_eq!(
            id.client(other, &["198.51.100.7"]),
            "203.0.113.1",
            "an untrusted peer's header is not believed"
        );
    }

    #[tokio::test]
    async fn a_request_computes_under_a_slot_only_once_it_is_heavy() {
        let compute = Compute::new(1);
        let mut clock = WasmClock::new();
        clock.enter();
        assert!(matches!(clock.tick(Duration::from_secs(60), &compute), Tick::Yield));
        clock.ran = HEAVY_AFTER;
        let Tick::WaitForSlot(wait) = clock.tick(Duration::from_secs(60), &compute) else { panic!() };
        wait.await;
        assert!(clock.computing());
        let mut second = WasmClock::new();
        second.ran = HEAVY_AFTER;
        let Tick::WaitForSlot(wait) = second.tick(Duration::from_secs(60), &compute) else { panic!() };
        assert!(
            tokio::time::timeout(Duration::from_millis(20), wait).await.is_err(),
            "one slot: the second waits"
        );
        assert!(matches!(clock.tick(Duration::ZERO, &compute), Tick::Deadline));
    }
}
