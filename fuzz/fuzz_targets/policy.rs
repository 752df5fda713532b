//! The prompt policy: any bytes as a policy's JSON must give a policy or a
//! clean 400, never a panic nor a pattern that compiles past its bounds; a
//! valid policy judges any prompt without panicking, and each deny term
//! refuses a prompt that is that term.
#![no_main]

use banatie_core as core;
use core::decide::policy::{Matcher, Policy, PolicyChanges, Rule};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (json, prompt) = text.split_once('\u{0}').unwrap_or((text, "a fox"));
    let Ok(changes) = serde_json::from_str::<PolicyChanges>(json) else { return };
    if let Err(e) = changes.validate() {
        assert_eq!(e.status(), 400);
        return;
    }
    let mut policy = Policy::default();
    changes.apply(&mut policy);
    let matcher = Matcher::new(&[&policy]).expect("a validated policy compiles");
    let template = prompt.len().is_multiple_of(2).then_some("product");
    let _ = matcher.check(prompt, template, prompt.len() % 3 == 0);
    for term in &policy.deny_terms {
        assert_eq!(matcher.deny(term), Err(Rule::DenyTerms), "{term:?}");
    }
});
