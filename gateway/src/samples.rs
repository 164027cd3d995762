//! Realistic protocol messages, shared by tests, benches and fuzz seed corpora so that all three
//! exercise the shapes the real services send (protocols.md A2, C4).

use std::time::Instant;

use crate::core::buf::RecvBuf;
use crate::core::call::{Call, CallConfig, CallContext, Event, Handled, Peer, VoiceApi};
use crate::core::ws::upgrade::{self, Parse};
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

/// Hands everything pending for `peer` to a socket that takes it all; the bytes written.
pub fn flush(call: &mut Call, peer: Peer) -> usize {
    let mut total = 0;
    while let Some(bytes) = call.poll_transmit(peer) {
        let n = bytes.len();
        total += n;
        call.transmitted(peer, n);
    }
    total
}

/// A short call context as the control plane's redeem answers it (no transfer offered).
pub fn call_context() -> CallContext {
    CallContext {
        call_id: "c".into(),
        lead_id: "l".into(),
        first_name: "Zoé".into(),
        summary: "offre pro".into(),
        language: "fr".into(),
        voice: "marin".into(),
        instructions: "Tu es Claire.".into(),
        transfer: false,
        web_transcript: Vec::new(),
    }
}

/// A call on `api` in conversation, as the frame path finds it: past Twilio's `start`
/// ([`twilio_start`]), its session configured (Realtime: the greeting response created;
/// GPT-Live: `session.started`, the greeting commentary sent), every byte and event so far
/// taken. Returns the call and its Twilio and OpenAI receive buffers. Panics if the call does
/// not get there (a bug in the core).
pub fn call_in_conversation(api: VoiceApi, now: Instant) -> (Call, RecvBuf, RecvBuf) {
    let mut call = Call::new(
        CallConfig { api, openai_api_key: "sk".into(), ..CallConfig::default() },
        call_context(),
        now,
    );
    assert_eq!(call.poll_event(), Some(Event::OpenUpstream));
    call.upstream_connected(now);
    let request = call.poll_transmit(Peer::OpenAi).expect("the upgrade request").to_vec();
    flush(&mut call, Peer::OpenAi);
    let Ok(Parse::Complete(req)) = upgrade::parse_request(&request) else {
        panic!("the upgrade request parses")
    };
    let mut accept = vec![0u8; 256];
    let n = upgrade::write_accept(&mut accept, req.key).expect("sized");
    let mut up = RecvBuf::with_capacity(64 * 1024);
    let mut down = RecvBuf::with_capacity(16 * 1024);
    up.push(&accept[..n]);
    assert_eq!(call.handle_upstream(&mut up, now), Handled::Done);
    down.push(&client_text_frame(&twilio_start("CA1", "tok")));
    assert_eq!(call.handle_downstream(&mut down, now), Handled::Done);
    up.push(&server_text_frame(match api {
        VoiceApi::Realtime => {
            r#"{"type":"response.created","event_id":"e","response":{"id":"resp_CAbc123","status":"in_progress","output":[]}}"#
        }
        VoiceApi::Live => r#"{"type":"session.started","event_id":"e","session":{"id":"sess_1","expires_at":1}}"#,
    }));
    assert_eq!(call.handle_upstream(&mut up, now), Handled::Done);
    flush(&mut call, Peer::OpenAi);
    flush(&mut call, Peer::Twilio);
    while call.poll_event().is_some() {}
    (call, down, up)
}
