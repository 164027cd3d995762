//! Differential: whenever the Twilio fast path (`parse_fast`: templates, then the any-order
//! scanner) accepts a message, the full parser (`parse_slow`, simd-json) must return an equal
//! `TwilioEvent`. Giving up is always allowed; disagreeing never is.
//!
//! Each input is tried twice: as raw bytes (when UTF-8, which the WebSocket decoder
//! guarantees), and as the seed of a generated document (`callway_fuzz::json`) built from
//! Twilio's vocabulary, which reaches the fast path's corners (key order, duplicates, empty or
//! extra objects, escapes, numbers) far more often than mutation alone.
#![no_main]

use arbitrary::Unstructured;
use callway_fuzz::json;
use callway_gateway::core::twilio::{TwilioEvent, parse_fast, parse_slow};
use libfuzzer_sys::fuzz_target;

fn check(doc: &[u8]) {
    if std::str::from_utf8(doc).is_err() {
        return;
    }
    let Some(fast) = parse_fast(doc) else { return };
    assert!(matches!(fast, TwilioEvent::Media(_) | TwilioEvent::Mark { .. }), "fast path produced {fast:?}");
    let mut copy = doc.to_vec();
    let slow = parse_slow(&mut copy);
    assert_eq!(
        Ok(&fast),
        slow.as_ref(),
        "fast and full parsers disagree on {:?}",
        String::from_utf8_lossy(doc)
    );
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Ok(doc) = json::document(&mut Unstructured::new(data), &json::TWILIO) {
        check(&doc);
    }
});
