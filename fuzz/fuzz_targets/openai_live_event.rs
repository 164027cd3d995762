//! `core::live::parse_server_event` (GPT-Live) on any bytes, the slow path's simd-json
//! included.
//!
//! Checks: for UTF-8 input the answer, event or error, is the full parser's (`parse_slow`);
//! an accepted audio delta is base64, and `is_silence_b64` says silence exactly when every
//! decoded byte is `0xFF`; an accepted event borrowed nothing outside the input.
#![no_main]

use callway_gateway::core::json_scan::is_base64;
use callway_gateway::core::live::{LiveEvent, is_silence_b64, parse_server_event, parse_slow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut a = data.to_vec();
    let result = parse_server_event(&mut a);
    if std::str::from_utf8(data).is_ok() {
        let mut b = data.to_vec();
        assert_eq!(result, parse_slow(&mut b), "parse_server_event and the full parser disagree");
    }
    if let Ok(LiveEvent::AudioDelta { delta }) = result {
        assert!(is_base64(delta), "accepted a non-base64 delta");
        let audio = base64_simd::STANDARD.decode_to_vec(delta).expect("checked base64 decodes");
        let silent = !audio.is_empty() && audio.iter().all(|&b| b == 0xFF);
        assert_eq!(is_silence_b64(delta), silent, "silence decided on the base64 differs from the audio");
    }
});
