//! The call state machine driven by arbitrary interleavings of both peers' bytes and events,
//! connects, drops, tool results and time; see `callway_fuzz::call` for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| callway_fuzz::call::fuzz(data));
