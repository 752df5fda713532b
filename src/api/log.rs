//! The component's diagnostics, through one helper: `crate::diag!`, one line
//! each on stderr (Spin, wasmCloud and banatie-host collect it), carrying the
//! request's id (`X-Request-Id`: banatie-host sets it, a proxy may; kept only
//! when it is 1–64 of `[A-Za-z0-9._-]`, as the host keeps a client's, so a
//! client cannot write into the log), so a line can be found beside the
//! request's own log line. Nothing secret is passed to it: no key, token,
//! signature, query or prompt (a whole-suite test greps every host log for
//! those the tests used).

use std::cell::RefCell;

thread_local! {
    static REQUEST_ID: RefCell<String> = RefCell::new("-".into());
}

/// The request this instance now answers (`api::handle`, first).
pub fn begin(request_id: Option<&str>) {
    let valid = |id: &&str| {
        (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let id = request_id.filter(valid).unwrap_or("-");
    REQUEST_ID.with(|r| id.clone_into(&mut r.borrow_mut()));
}

/// One diagnostic line (use `crate::diag!`).
pub fn write(message: std::fmt::Arguments<'_>) {
    REQUEST_ID.with(|id| eprintln!("banatie-live: [{}] {message}", id.borrow()));
}

/// `diag!("format", args…)`: one line of the component's log, with the
/// request's id.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::api::log::write(format_args!($($arg)*))
    };
}
