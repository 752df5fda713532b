//! [`Env`] over WASI: wall-clock time, a sleep future on
//! `wasi:clocks/monotonic-clock` driven by spin-sdk's executor (the same one
//! that drives outbound HTTP), ids and randomness from `wasi:random`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use wasi::clocks::monotonic_clock;

use crate::core::ports::Env;

pub struct WasiEnv;

impl Env for WasiEnv {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn monotonic_us(&self) -> u64 {
        monotonic_us()
    }

    async fn sleep(&self, ms: u64) {
        sleep(ms).await
    }

    fn new_id(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn random_u32(&self) -> u32 {
        u32::from_le_bytes(random())
    }

    fn random_bytes64(&self) -> [u8; 64] {
        random()
    }
}

/// `wasi:clocks/monotonic-clock` in microseconds.
pub fn monotonic_us() -> u64 {
    monotonic_clock::now() / 1_000
}

fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the host provides randomness");
    buf
}

/// Resolves once `ms` milliseconds have passed.
pub fn sleep(ms: u64) -> Sleep {
    Sleep { deadline: monotonic_clock::now().saturating_add(ms.saturating_mul(1_000_000)), token: None }
}

pub struct Sleep {
    deadline: monotonic_clock::Instant,
    /// The clock pollable this sleep waits on now: replaced (the old one
    /// cancelled) on each poll, so a sleep raced in a `select` that is
    /// polled often registers one pollable, not one per poll.
    token: Option<spin_executor::CancelOnDropToken>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if monotonic_clock::now() >= self.deadline {
            self.token = None;
            return Poll::Ready(());
        }
        let pollable = monotonic_clock::subscribe_instant(self.deadline);
        self.token = Some(spin_executor::push_waker_and_get_token(pollable, cx.waker().clone()).into());
        Poll::Pending
    }
}

/// Resolves once `pollable` is ready (or the executor wakes it for another
/// reason: the caller looks again either way).
pub struct Ready {
    pollable: Option<wasi::io::poll::Pollable>,
    token: Option<spin_executor::CancelOnDropToken>,
}

impl Ready {
    pub fn new(pollable: wasi::io::poll::Pollable) -> Ready {
        Ready { pollable: Some(pollable), token: None }
    }
}

impl Future for Ready {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.pollable.take() {
            Some(pollable) if !pollable.ready() => {
                self.token =
                    Some(spin_executor::push_waker_and_get_token(pollable, cx.waker().clone()).into());
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    }
}
