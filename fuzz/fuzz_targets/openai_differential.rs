//! Differential: whenever the OpenAI audio-delta fast path (`parse_delta_fast`: template, then
//! the any-order scanner) accepts a message, the full parser (`parse_slow`, simd-json) must
//! return `AudioDelta` with equal fields. Giving up is always allowed; disagreeing never is.
//!
//! Inputs are tried as raw bytes (when UTF-8) and as the seed of a generated document
//! (`callway_fuzz::json`) built from the Realtime server events' vocabulary.
#![no_main]

use arbitrary::Unstructured;
use callway_fuzz::json;
use callway_gateway::core::openai::{ServerEvent, parse_delta_fast, parse_slow};
use libfuzzer_sys::fuzz_target;

fn check(doc: &[u8]) {
    if std::str::from_utf8(doc).is_err() {
        return;
    }
    let Some(fast) = parse_delta_fast(doc) else { return };
    let mut copy = doc.to_vec();
    let slow = parse_slow(&mut copy);
    assert_eq!(
        Ok(ServerEvent::AudioDelta(fast)),
        slow,
        "fast and full parsers disagree on {:?}",
        String::from_utf8_lossy(doc)
    );
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Ok(doc) = json::document(&mut Unstructured::new(data), &json::OPENAI) {
        check(&doc);
    }
});
