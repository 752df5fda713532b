//! A fault at each step of making an image — the provider failing, refusing
//! or panicking, the object store failing a read or a put, the entry's write
//! failing, a panic while reading an original — leaves no lease held, and
//! gives back exactly what was reserved and not spent: a generation's
//! units stay spent once the provider was called (whatever it answered), a
//! derivation's once it was computed; everything else goes back. After each
//! fault, the same URL is served at once (no lease to wait out). Both kinds
//! of image, over the fakes of Spin's store and of wasmCloud's (no CAS).

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::api::fakes::{add_project, Semantics, World, START_UNIX};
use crate::api::Reply;
use crate::core::decide::single_flight::{observe, Seen};
use crate::core::http::routes::LIVE_PATH;
use crate::core::ports::KeyValue;
use crate::core::stored::scope::Scope;
use crate::core::{decide::signature, stored::keys, Error};

/// What a request reserves on, summed over the hour's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    budget: i64,
    client_misses: i64,
    scope: i64,
    derivations: i64,
    client_derivations: i64,
}

impl Counts {
    const GENERATION: Counts =
        Counts { budget: 1, client_misses: 1, scope: 1, derivations: 0, client_derivations: 0 };
    const DERIVATION: Counts =
        Counts { budget: 0, client_misses: 0, scope: 0, derivations: 1, client_derivations: 1 };
    const NOTHING: Counts =
        Counts { budget: 0, client_misses: 0, scope: 0, derivations: 0, client_derivations: 0 };

    fn read(w: &World) -> Counts {
        let sum = |prefix: &str| -> i64 {
            w.kv.keys_with_prefix(prefix).iter().map(|k| w.kv.counter(k).unwrap().unwrap_or(0)).sum()
        };
        Counts {
            budget: sum("budget:proj-f:"),
            client_misses: sum("clientmiss:"),
            scope: sum("scopegen:proj-f:s"),
            derivations: sum("derivations:proj-f:"),
            client_derivations: sum("clientderive:"),
        }
    }

    fn minus(self, before: Counts) -> Counts {
        Counts {
            budget: self.budget - before.budget,
            client_misses: self.client_misses - before.client_misses,
            scope: self.scope - before.scope,
            derivations: self.derivations - before.derivations,
            client_derivations: self.client_derivations - before.client_derivations,
        }
    }
}

/// A world with per-client limits, a project `proj-f` with a stored scope
/// `s`, pictures to derive from, and its signer.
fn world(semantics: Semantics) -> (World, impl Fn(&[(&str, &str)]) -> String) {
    let mut w = World::on(semantics);
    w.config.client_misses_per_hour = 10;
    w.config.client_derivations_per_hour = 10;
    w.config.variant_widths = vec![8, 16, 32];
    w.provider.picture.set(Some((64, 32)));
    let (_, secret) = add_project(&w.kv, "proj-f", 11, 100);
    w.kv.set(&keys::scope("proj-f", "s"), &Scope::lazy("s", START_UNIX).encode()).unwrap();
    let sign = move |pairs: &[(&str, &str)]| {
        let mut pairs: Vec<(String, String)> =
            pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        pairs.extend([("scope".into(), "s".into()), ("project".into(), "proj-f".into())]);
        let path = signature::signed_path(&secret, LIVE_PATH, &pairs);
        path.split_once('?').unwrap().1.to_string()
    };
    (w, sign)
}

/// One request from one client: its reply, its error, or its panic.
fn ask(w: &World, query: &str) -> std::thread::Result<Result<Reply<Vec<u8>>, Error>> {
    catch_unwind(AssertUnwindSafe(|| w.live(query, &[("spin-client-addr", "203.0.113.9:1")], false)))
}

/// The leases someone still holds.
fn held_leases(w: &World) -> Vec<String> {
    let now = w.env.now_ms.get();
    let keys = w.kv.keys_with_prefix("lease:");
    keys.into_iter()
        .filter(|k| matches!(observe(now, w.kv.map.borrow().get(k).cloned()), Seen::Held(_)))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Status(u16),
    Panicked,
}

fn outcome(result: std::thread::Result<Result<Reply<Vec<u8>>, Error>>) -> Outcome {
    match result {
        Err(_) => Outcome::Panicked,
        Ok(Ok(reply)) => Outcome::Status(reply.status),
        Ok(Err(e)) => Outcome::Status(e.status()),
    }
}

/// Where the fault is injected, and how.
#[derive(Debug, Clone, Copy)]
enum Fault {
    ProviderFails,
    ProviderRefuses,
    ProviderPanics,
    UnknownReference,
    PutFails,
    EntryWriteFails,
    ReadFails,
    ReadPanics,
    DerivationRefused,
}

impl Fault {
    fn inject(self, w: &mut World) {
        match self {
            Fault::ProviderFails => *w.provider.answer.borrow_mut() = Some(Error::Provider("down".into())),
            Fault::ProviderRefuses => {
                *w.provider.answer.borrow_mut() = Some(Error::PromptRefused("SAFETY".into()))
            }
            Fault::ProviderPanics => w.provider.panics.set(true),
            Fault::UnknownReference => {}
            Fault::PutFails => w.store.fail_puts.set(true),
            Fault::EntryWriteFails => w.kv.fail_set_many.set(true),
            Fault::ReadFails => w.store.fail_reads.set(true),
            Fault::ReadPanics => w.store.panic_reads.set(true),
            Fault::DerivationRefused => w.config.max_source_pixels = 100,
        }
    }

    fn clear(self, w: &mut World) {
        *w.provider.answer.borrow_mut() = None;
        w.provider.panics.set(false);
        w.store.fail_puts.set(false);
        w.kv.fail_set_many.set(false);
        w.store.fail_reads.set(false);
        w.store.panic_reads.set(false);
        w.config.max_source_pixels = crate::core::variant::DEFAULT_MAX_SOURCE_PIXELS;
    }
}

/// The request faulted: what it answered and what it left.
fn check(
    w: &mut World,
    fault: Fault,
    query: &str,
    cached_first: Option<&str>,
    expected: (Outcome, Counts),
    label: &str,
) {
    if let Some(first) = cached_first {
        assert_eq!(outcome(ask(w, first)), Outcome::Status(200), "{label}: the original, first");
    }
    let before = Counts::read(w);
    fault.inject(w);
    let answered = outcome(ask(w, query));
    let spent = Counts::read(w).minus(before);
    assert_eq!((answered, spent), expected, "{label}: the answer, and what stayed spent");
    assert_eq!(held_leases(w), Vec::<String>::new(), "{label}: no lease is left held");
    fault.clear(w);
    let started = w.env.now_ms.get();
    let again = outcome(ask(w, query));
    let waited = w.env.now_ms.get() - started;
    assert_eq!(again, Outcome::Status(200), "{label}: the same URL is served after the fault");
    assert!(waited < 1_000, "{label}: served at once, no lease waited out ({waited} ms)");
    assert_eq!(held_leases(w), Vec::<String>::new(), "{label}: and leaves no lease");
}

#[test]
fn a_fault_at_any_step_of_making_leaves_no_lease_held_and_gives_back_what_was_not_spent() {
    use Fault::*;
    use Outcome::{Panicked, Status};
    let generation = [
        (ProviderFails, Status(502), Counts::GENERATION),
        (ProviderRefuses, Status(422), Counts::GENERATION),
        (ProviderPanics, Panicked, Counts::GENERATION),
        (UnknownReference, Status(404), Counts::NOTHING),
        (PutFails, Status(502), Counts::GENERATION),
        (EntryWriteFails, Status(200), Counts::GENERATION),
    ];
    // A variant asked of a new prompt: its original is made for it, under one lease.
    let generation_for_a_variant = [
        (ProviderFails, Status(502), Counts::GENERATION),
        (ProviderPanics, Panicked, Counts::GENERATION),
        (PutFails, Status(502), Counts { derivations: 1, client_derivations: 1, ..Counts::GENERATION }),
        (DerivationRefused, Status(422), Counts::GENERATION),
    ];
    // A variant of a cached original.
    let derivation = [
        (ReadFails, Status(502), Counts::NOTHING),
        (ReadPanics, Panicked, Counts::NOTHING),
        (DerivationRefused, Status(422), Counts::NOTHING),
        (PutFails, Status(502), Counts::DERIVATION),
        (EntryWriteFails, Status(200), Counts::DERIVATION),
    ];
    for semantics in [Semantics::SpinSqlite, Semantics::WasmCloud] {
        for (n, (fault, answer, spent)) in generation.into_iter().enumerate() {
            let (mut w, sign) = world(semantics);
            let prompt = format!("generation {n}");
            let mut pairs = vec![("prompt", prompt.as_str())];
            if matches!(fault, UnknownReference) {
                pairs.push(("ref", "0123456789abcdef"));
            }
            let label = format!("{semantics:?}, an original, {fault:?}");
            let query = sign(&pairs);
            if matches!(fault, UnknownReference) {
                // Nothing to serve afterwards either: only what it left.
                let before = Counts::read(&w);
                assert_eq!(
                    (outcome(ask(&w, &query)), Counts::read(&w).minus(before)),
                    (answer, spent),
                    "{label}"
                );
                assert_eq!(held_leases(&w), Vec::<String>::new(), "{label}");
                continue;
            }
            check(&mut w, fault, &query, None, (answer, spent), &label);
        }
        for (n, (fault, answer, spent)) in generation_for_a_variant.into_iter().enumerate() {
            let (mut w, sign) = world(semantics);
            let prompt = format!("generation for a variant {n}");
            let query = sign(&[("prompt", &prompt), ("w", "8"), ("format", "jpeg")]);
            let label = format!("{semantics:?}, an original made for a variant, {fault:?}");
            check(&mut w, fault, &query, None, (answer, spent), &label);
        }
        for (n, (fault, answer, spent)) in derivation.into_iter().enumerate() {
            let (mut w, sign) = world(semantics);
            let prompt = format!("derivation {n}");
            let original = sign(&[("prompt", &prompt)]);
            let query = sign(&[("prompt", &prompt), ("w", "8"), ("format", "jpeg")]);
            let label = format!("{semantics:?}, a variant of a cached original, {fault:?}");
            check(&mut w, fault, &query, Some(&original), (answer, spent), &label);
        }
    }
}
