//! `core::ports::Respond` over WASI: an answer written while the component
//! is still at work (a progressive MISS, the warm endpoint's lines).
//!
//! What the runtimes do (read from their code; see docs/progressive.md):
//! on Spin 3.6/4.0, wasmCloud 2 and banatie-host the head goes out at
//! `response-outparam.set`, each write reaches the client at once (chunked,
//! no Content-Length), and a client that leaves makes the next write fail
//! with `closed` — the component's `handle` keeps running. So writes here
//! never wait: what the client cannot take yet is queued and sent, while
//! the request goes on, by [`Streamed::sending`] (run beside it) as the
//! client takes it, the rest by [`Streamed::finish`] after the request
//! within a deadline; the first failed write marks the client gone and
//! nothing is written again. No `blocking-*` call is made (it would stop
//! the whole component, and over 4096 bytes trap).
//!
//! A preview is taken only when the client has taken everything before it
//! (the queue is empty and the stream has room): one slow to read gets
//! fewer previews, never a growing queue. A preview may be larger than
//! what one write takes (wasmtime's body stream takes 1 MiB at a time, and
//! OpenAI's previews are PNGs of 1–3 MB), so it is queued whole and sent in
//! as many writes as it needs. So at most one preview and the last part
//! are queued at once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::{Poll, Waker};

use futures::future::{select, Either};
use spin_sdk::http::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};

use wasi::io::streams::OutputStream;

use crate::core::http::headers::Header;
use crate::core::ports::Respond;

pub struct Streamed {
    out: RefCell<Option<ResponseOutparam>>,
    body: RefCell<Option<(OutgoingBody, OutputStream)>>,
    /// Chunks the client could not take yet, in order.
    queue: RefCell<VecDeque<Vec<u8>>>,
    begun: Cell<bool>,
    gone: Cell<bool>,
    /// [`Streamed::sending`] waiting for something to be queued.
    idle: RefCell<Option<Waker>>,
}

impl Streamed {
    pub fn new(out: ResponseOutparam) -> Streamed {
        Streamed {
            out: RefCell::new(Some(out)),
            body: RefCell::new(None),
            queue: RefCell::new(VecDeque::new()),
            begun: Cell::new(false),
            gone: Cell::new(false),
            idle: RefCell::new(None),
        }
    }

    /// The response outparam, for a plain answer (none was begun).
    pub fn take_out(&self) -> Option<ResponseOutparam> {
        self.out.borrow_mut().take()
    }

    /// Run beside the request (it never ends): sends what is queued as the
    /// client takes it, so a part larger than one write reaches the client
    /// while the request is still at work (waiting for the provider), not
    /// only when the next part is written.
    pub async fn sending(&self) -> std::convert::Infallible {
        loop {
            self.pump();
            let waiting = !self.gone.get() && !self.queue.borrow().is_empty();
            let pollable = match self.body.borrow().as_ref() {
                Some((_, stream)) if waiting => Some(stream.subscribe()),
                _ => None,
            };
            match pollable {
                Some(pollable) => super::env::Ready::new(pollable).await,
                None => self.queued().await,
            }
        }
    }

    /// Resolves once a chunk is queued (never, once the client is gone).
    async fn queued(&self) {
        let mut first = true;
        std::future::poll_fn(|cx| {
            if !first && !self.gone.get() && !self.queue.borrow().is_empty() {
                return Poll::Ready(());
            }
            first = false;
            *self.idle.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// After the request: send what is left as the client takes it, for at
    /// most `deadline_ms`, then end the body.
    pub async fn finish(&self, deadline_ms: u64) {
        let started = super::env::monotonic_us();
        loop {
            self.pump();
            if self.queue.borrow().is_empty() || self.gone.get() {
                break;
            }
            let waited_ms = (super::env::monotonic_us() - started) / 1000;
            if waited_ms >= deadline_ms {
                crate::diag!("a streamed answer's client took too long; its last chunks are dropped");
                break;
            }
            let pollable = match self.body.borrow().as_ref() {
                Some((_, stream)) => stream.subscribe(),
                None => break,
            };
            let ready = std::pin::pin!(super::env::Ready::new(pollable));
            let timeout = std::pin::pin!(super::env::sleep(deadline_ms - waited_ms));
            if let Either::Right(_) = select(ready, timeout).await {
                continue; // the deadline: looked at once more, then given up
            }
        }
        if let Some((body, stream)) = self.body.borrow_mut().take() {
            drop(stream);
            if let Err(e) = OutgoingBody::finish(body, None) {
                crate::diag!("streamed body not finished: {e:?}");
            }
        }
    }

    /// Write what the client can take now, in order. A failed write means
    /// it left: nothing is written again.
    fn pump(&self) {
        let body = self.body.borrow();
        let Some((_, stream)) = body.as_ref() else { return };
        let mut queue = self.queue.borrow_mut();
        while let Some(front) = queue.front_mut() {
            let room = match stream.check_write() {
                Ok(0) => return,
                Ok(n) => n as usize,
                Err(_) => return self.left(&mut queue),
            };
            let n = room.min(front.len());
            if stream.write(&front[..n]).is_err() || stream.flush().is_err() {
                return self.left(&mut queue);
            }
            front.drain(..n);
            if front.is_empty() {
                queue.pop_front();
            }
        }
    }

    fn left(&self, queue: &mut VecDeque<Vec<u8>>) {
        self.gone.set(true);
        queue.clear();
    }
}

impl Respond for Streamed {
    fn begin(&self, status: u16, headers: Vec<Header>) {
        let Some(out) = self.take_out() else { return };
        self.begun.set(true);
        let fields = Fields::new();
        for (name, value) in &headers {
            if let Err(e) = fields.append(name, value.as_bytes()) {
                crate::diag!("streamed header {name} refused: {e:?}");
            }
        }
        let response = OutgoingResponse::new(fields);
        let _ = response.set_status_code(status);
        // The body is taken before the response is set (else it goes out empty).
        let body = response.body().ok();
        let stream = body.as_ref().and_then(|b| b.write().ok());
        out.set(response);
        match (body, stream) {
            (Some(body), Some(stream)) => *self.body.borrow_mut() = Some((body, stream)),
            _ => self.gone.set(true),
        }
    }

    fn chunk(&self, bytes: Vec<u8>, droppable: bool) {
        if self.gone.get() {
            return;
        }
        if droppable {
            // Only when the client has taken all before it: a preview is
            // worth nothing late.
            self.pump();
            let ready = self.queue.borrow().is_empty()
                && self.body.borrow().as_ref().is_some_and(|(_, s)| s.check_write().is_ok_and(|n| n > 0));
            if !ready {
                return;
            }
        }
        self.queue.borrow_mut().push_back(bytes);
        self.pump();
        if !self.queue.borrow().is_empty() {
            if let Some(waker) = self.idle.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    fn begun(&self) -> bool {
        self.begun.get()
    }

    fn gone(&self) -> bool {
        self.gone.get()
    }
}
