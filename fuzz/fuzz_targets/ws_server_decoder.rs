//! The WebSocket frame decoder on the server side (Twilio → gateway: frames must be masked),
//! fed in arbitrary chunk splits; see `callway_fuzz::ws` for the input layout and the checks.
#![no_main]

use callway_gateway::core::ws::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| callway_fuzz::ws::fuzz(Role::Server, data));
