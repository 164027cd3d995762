//! How a simulator instance behaves: key, script, pacing, echo mode, faults, session cap.

use std::net::SocketAddr;
use std::time::Duration;

use crate::faults::Fault;
use crate::script::Script;

/// Configuration of an [`crate::OpenAiSim`].
///
/// Build it with struct update syntax: `SimConfig { echo: true, ..SimConfig::default() }`.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen (default `127.0.0.1:0`, a free port).
    pub addr: SocketAddr,
    /// The API key `Authorization: Bearer` must carry (default `sk-test`).
    pub api_key: String,
    /// What the model says and does.
    pub script: Script,
    /// Delay between `response.created` and the first output item/audio (default 200 ms).
    pub ttfb: Duration,
    /// How many times faster than real time audio is streamed after the first byte (default
    /// 4.0); `None` streams as fast as the socket takes it (one step per scheduler turn, so a
    /// cancel still lands between chunks).
    pub speed: Option<f64>,
    /// Audio per `response.output_audio.delta`, in milliseconds (default 100).
    pub chunk_ms: u32,
    /// Echo mode: every `input_audio_buffer.append` is answered at once by one
    /// `response.output_audio.delta` carrying the same audio; no VAD, no responses.
    pub echo: bool,
    /// Session length limit (default 60 minutes): then `error` `session_expired` and close 1001.
    pub session_cap: Duration,
    /// Faults on demand.
    pub faults: Vec<Fault>,
    /// Keep the text of every event received and sent (default true; turn off for load tests:
    /// counters are kept either way).
    pub record_events: bool,
    /// Validate every server event against the server-events schema before sending, recording
    /// violations in [`crate::SessionRecord::schema_violations`] (default true).
    pub check_outgoing: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: "sk-test".to_owned(),
            script: Script::default(),
            ttfb: Duration::from_millis(200),
            speed: Some(4.0),
            chunk_ms: 100,
            echo: false,
            session_cap: Duration::from_secs(60 * 60),
            faults: Vec::new(),
            record_events: true,
            check_outgoing: true,
        }
    }
}

impl SimConfig {
    /// The configuration for load tests: echo mode, no recording of event text, no outgoing
    /// schema check.
    pub fn echo_for_load() -> Self {
        Self { echo: true, record_events: false, check_outgoing: false, ..Self::default() }
    }
}
