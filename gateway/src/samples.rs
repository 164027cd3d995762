//! Realistic protocol messages, shared by tests, benches and fuzz seed corpora so that all three
//! exercise the shapes the real services send (protocols.md A2, C4).

use crate::core::ws::{Data, Encoder, OpCode};

/// A stream sid of Twilio's shape (`MZ` + 32 hex).
pub const STREAM_SID: &str = "MZ18ad3ab5a668481ce02b83e7395059f0";

/// `n` bytes of a 400 Hz-ish μ-law tone (deterministic).
pub fn ulaw_tone(n: usize) -> Vec<u8> {
    const CYCLE: [u8; 20] = [
        0xff, 0xa8, 0x9a, 0x91, 0x8c, 0x8a, 0x8c, 0x91, 0x9a, 0xa8, 0x7f, 0x28, 0x1a, 0x11, 0x0c, 0x0a, 0x0c,
        0x11, 0x1a, 0x28,
    ];
    (0..n).map(|i| CYCLE[i % CYCLE.len()]).collect()
}

/// Standard base64 of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// A Twilio `media` event as Twilio sends it (field order and string-typed numbers included).
pub fn twilio_media(seq: u64, chunk: u64, payload_b64: &str) -> String {
    format!(
        r#"{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{}","payload":"{payload_b64}"}},"streamSid":"{STREAM_SID}"}}"#,
        chunk.saturating_sub(1) * 20
    )
}

/// A Twilio `mark` echo.
pub fn twilio_mark(seq: u64, name: &str) -> String {
    format!(
        r#"{{"event":"mark","sequenceNumber":"{seq}","streamSid":"{STREAM_SID}","mark":{{"name":"{name}"}}}}"#
    )
}

/// A Twilio `start` event with custom parameters.
pub fn twilio_start(call_sid: &str, token: &str) -> String {
    format!(
        r#"{{"event":"start","sequenceNumber":"1","start":{{"accountSid":"AC00000000000000000000000000000000","streamSid":"{STREAM_SID}","callSid":"{call_sid}","tracks":["inbound"],"mediaFormat":{{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"customParameters":{{"lead_id":"42","token":"{token}"}}}},"streamSid":"{STREAM_SID}"}}"#
    )
}

/// A Twilio `stop` event for the stream of [`twilio_start`].
pub fn twilio_stop(call_sid: &str) -> String {
    format!(
        r#"{{"event":"stop","sequenceNumber":"999","stop":{{"accountSid":"AC00000000000000000000000000000000","callSid":"{call_sid}"}},"streamSid":"{STREAM_SID}"}}"#
    )
}

/// An OpenAI `response.output_audio.delta` as the GA API sends it.
pub fn openai_delta(event: u64, delta_b64: &str) -> String {
    format!(
        r#"{{"type":"response.output_audio.delta","event_id":"event_{event}","response_id":"resp_CAbc123","item_id":"item_CAbc456","output_index":0,"content_index":0,"delta":"{delta_b64}"}}"#
    )
}

/// A GPT-Live `session.output_audio.delta` (the layout observed: type and delta only).
pub fn live_delta(delta_b64: &str) -> String {
    format!(r#"{{"type":"session.output_audio.delta","delta":"{delta_b64}"}}"#)
}

/// A masked client→server text frame (as Twilio sends us), deterministic mask.
pub fn client_text_frame(text: &str) -> Vec<u8> {
    let mut enc = Encoder::client_with_seed([0x5a; 32]);
    let mut out = vec![0u8; text.len() + 14];
    let n = enc.frame_parts(&mut out, OpCode::Data(Data::Text), true, &[text.as_bytes()]).expect("sized");
    out.truncate(n);
    out
}

/// An unmasked server→client text frame (as OpenAI sends us).
pub fn server_text_frame(text: &str) -> Vec<u8> {
    let mut enc = Encoder::server();
    let mut out = vec![0u8; text.len() + 14];
    let n = enc.frame_parts(&mut out, OpCode::Data(Data::Text), true, &[text.as_bytes()]).expect("sized");
    out.truncate(n);
    out
}
