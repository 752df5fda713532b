//! Signature checking: arbitrary queries and signatures never panic and never
//! verify by accident; a URL we sign always verifies after a round trip
//! through the query parser.
#![no_main]

use banatie_core as core;

use libfuzzer_sys::fuzz_target;

const PATH: &str = "/api/v1/live/generate";
const SECRET: &str = "bls_fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // 1. Whatever arrives, verification is a clean yes/no.
    if let Ok(raw) = core::http::request::parse_query(text) {
        if let Some(signed) = &raw.signed {
            let verdict = core::decide::signature::verify(SECRET, PATH, &raw.pairs, &signed.sig, signed.exp, 0);
            assert!(verdict.is_err(), "a random query verified: {text:?}");
        }
    }
    // 2. Anything we sign verifies after the round trip.
    let (prompt, ratio) = text.split_once('\u{0}').unwrap_or((text, "1:1"));
    let pairs = vec![
        ("prompt".to_string(), prompt.to_string()),
        ("aspect_ratio".to_string(), ratio.to_string()),
        ("project".to_string(), "p".to_string()),
    ];
    let path = core::decide::signature::signed_path(SECRET, PATH, &pairs);
    let query = path.split_once('?').unwrap().1;
    let raw = core::http::request::parse_query(query).expect("our own signed URL parses");
    let signed = raw.signed.clone().expect("it is signed");
    assert_eq!(core::decide::signature::verify(SECRET, PATH, &raw.pairs, &signed.sig, signed.exp, 0), Ok(()));
});
