//! Virtual time for the fakes: an environment whose clock only moves when
//! every request is waiting, and the executor that moves it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{self, Poll};

use crate::core::ports::Env;

/// Returns `Pending` once, so concurrent futures interleave in `join_all`.
#[derive(Default)]
pub struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Wall-clock second at which every test world starts.
pub const START_UNIX: u64 = 1_700_000_000;

/// Virtual time (tests never really wait: [`block_on`] moves the clock to
/// the next sleeper's wake-up when nothing else can run), numbered ids and
/// counting "randomness".
pub struct FakeEnv {
    pub now_ms: Rc<Cell<u64>>,
    /// Wake-up times of the sleeps pending now.
    timers: RefCell<Vec<u64>>,
    ids: Cell<u64>,
    random: Cell<u32>,
}

impl Default for FakeEnv {
    fn default() -> FakeEnv {
        FakeEnv {
            now_ms: Rc::new(Cell::new(START_UNIX * 1000)),
            timers: RefCell::new(Vec::new()),
            ids: Cell::new(0),
            random: Cell::new(1),
        }
    }
}

/// A sleep in virtual time: pending until the clock reaches `until`.
struct Sleep<'e> {
    env: &'e FakeEnv,
    until: u64,
}

impl Future for Sleep<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut task::Context<'_>) -> Poll<()> {
        if self.env.now_ms.get() >= self.until {
            return Poll::Ready(());
        }
        self.env.timers.borrow_mut().push(self.until);
        Poll::Pending
    }
}

/// Run `future` (say, many requests at once with `join_all`) in `env`'s
/// virtual time: poll while anything asks to be polled again (a yield),
/// else move the clock to the earliest pending sleep's end. Sleepers wake
/// together, as they would in real time.
pub fn block_on<F: Future>(env: &FakeEnv, future: F) -> F::Output {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    struct Flag(AtomicBool);
    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(flag: &Arc<Self>) {
            flag.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = futures::task::waker(flag.clone());
    let mut cx = task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        if flag.0.load(Ordering::SeqCst) {
            continue;
        }
        let next = env.timers.borrow_mut().drain(..).min().expect("pending with no sleeper: a deadlock");
        env.now_ms.set(next.max(env.now_ms.get()));
    }
}

impl FakeEnv {
    /// Virtual milliseconds since the world started.
    pub fn elapsed_ms(&self) -> u64 {
        self.now_ms.get() - START_UNIX * 1000
    }
}

impl Env for FakeEnv {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }
    fn monotonic_us(&self) -> u64 {
        self.now_ms.get() * 1000
    }
    async fn sleep(&self, ms: u64) {
        Sleep { env: self, until: self.now_ms.get() + ms }.await
    }
    fn new_id(&self) -> String {
        self.ids.set(self.ids.get() + 1);
        format!("id-{}", self.ids.get())
    }
    fn random_u32(&self) -> u32 {
        self.random.set(self.random.get() + 1);
        self.random.get()
    }
    fn random_bytes64(&self) -> [u8; 64] {
        [self.random_u32() as u8; 64]
    }
}
