//! The server's bounds and their defaults, sized for the machine
//! (`banatie-host up --help` names the flags; README's "Running it in
//! production" table says what a client sees at each).

use std::time::Duration;

use crate::fair::Compute;

/// The server's bounds, and one diagnostic switch (`banatie-host up --help`
/// names the flags).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests whose component runs at once; sizes the instance pool.
    pub max_concurrent_requests: u32,
    /// How long a request waits for a free slot before it is answered 503
    /// (or for its client's share: then 429).
    pub queue_timeout: Duration,
    /// Open connections at once; beyond it the host stops accepting for a
    /// while (the kernel's listen backlog holds the newcomers).
    pub max_connections: usize,
    /// Time to receive a request head; also the keep-alive idle timeout.
    pub header_timeout: Duration,
    /// Wall-clock limit on one request's component, body streaming included.
    pub request_timeout: Duration,
    /// Requests of one client (`fair::Identity`) whose component runs at once.
    pub max_requests_per_client: usize,
    /// Requests whose wasm may compute past `fair::HEAVY_AFTER` at once.
    pub compute_slots: usize,
    /// How long a write to a client may wait for it to accept bytes.
    pub send_timeout: Duration,
    /// Log each request's `wasi:config` and key-value calls (a diagnostic).
    pub log_host_calls: bool,
}

impl Default for Limits {
    /// Sized for the machine: 64 instances per core (an instance mostly waits
    /// on I/O), queue 2 s, 4096 connections, 10 s for a head, 300 s a request
    /// (a coalesced MISS may wait `coalesce_wait_seconds`, then a provider
    /// call), a sixteenth of the pool per client (at least 4), half the cores
    /// computing, 30 s to accept bytes.
    fn default() -> Limits {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        let max_concurrent_requests = (64 * cores).clamp(64, 1024);
        Limits {
            max_concurrent_requests,
            queue_timeout: Duration::from_secs(2),
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            max_requests_per_client: per_client_default(max_concurrent_requests),
            compute_slots: Compute::default_slots(),
            send_timeout: Duration::from_secs(30),
            log_host_calls: false,
        }
    }
}

/// A client's share of a pool of `max_concurrent_requests`: a sixteenth,
/// at least 4 (so at least 16 clients are needed to fill the pool).
pub fn per_client_default(max_concurrent_requests: u32) -> usize {
    (max_concurrent_requests as usize / 16).max(4)
}
