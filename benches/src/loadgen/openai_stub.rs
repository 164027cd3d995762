//! The OpenAI Realtime stand-in: one WebSocket session per call the gateway opens, on plain
//! `ws://` (the gateway gets `OPENAI_BASE_URL=http://127.0.0.1:PORT`).
//!
//! It answers the upgrade, sends `session.created`, answers `session.update` with
//! `session.updated`, and answers the greeting's `response.create` with a short greeting
//! (`response.created`, one 20 ms `response.output_audio.delta` of silence, `response.done`),
//! then opens the echo response (`response.created` for `resp_lg_echo`, never done). From then
//! on every `input_audio_buffer.append` is answered with a `response.output_audio.delta` of that
//! response carrying the same base64 audio, in the GA field order the gateway's fast path
//! expects. Events are read by byte search ([`super::scan::client_event`]) and written from
//! constant pieces: no JSON tree, no allocation per frame.
//!
//! GPT-Live (`OPENAI_VOICE_API=live`: the upgrade is for `/v1/live/sessions`): nothing until
//! `session.start`, answered with `session.started`; the greeting's `session.commentary.append`
//! is acknowledged and answered with 20 ms of quiet voiced audio (not digital silence, which
//! the gateway holds back when Twilio has nothing to play); every `session.input_audio.append`
//! is answered with a `session.output_audio.delta` carrying the same audio, in the layout the
//! gateway's fast path expects; `session.close` with `session.closed` and a close frame.
//!
//! The shapes follow the simulator's echo mode (`sim/openai`), without its schema checks or
//! recording: this stand-in must cost less per frame than the gateway.

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::ws::upgrade::{self, Parse};
use callway_gateway::core::ws::{
    Control, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role, close_code,
};

use super::conn::Outbox;
use super::recorder::{Counts, Progress};
use super::scan::{ClientEvent, client_event};
use super::soak::SoakShared;
use super::soak::script::Script;

/// Receive buffer of a session: `session.update` with the instructions is a few KiB.
pub const RECV: usize = 64 * 1024;

const SESSION_CREATED: &[u8] = br#"{"type":"session.created","event_id":"event_lg_created","session":{"type":"realtime","model":"gpt-realtime-2.1","output_modalities":["audio"]}}"#;
pub(crate) const SESSION_UPDATED: &[u8] = br#"{"type":"session.updated","event_id":"event_lg_updated","session":{"type":"realtime","model":"gpt-realtime-2.1","output_modalities":["audio"]}}"#;
pub(crate) const GREETING_CREATED: &[u8] = br#"{"type":"response.created","event_id":"event_lg_g1","response":{"object":"realtime.response","id":"resp_lg_greeting","status":"in_progress","output":[]}}"#;
pub(crate) const GREETING_DELTA_HEAD: &[u8] = br#"{"type":"response.output_audio.delta","event_id":"event_lg_g2","response_id":"resp_lg_greeting","item_id":"item_lg_greeting","output_index":0,"content_index":0,"delta":""#;
pub(crate) const GREETING_DONE: &[u8] = br#"{"type":"response.done","event_id":"event_lg_g3","response":{"object":"realtime.response","id":"resp_lg_greeting","status":"completed","output":[]}}"#;
const ECHO_CREATED: &[u8] = br#"{"type":"response.created","event_id":"event_lg_e0","response":{"object":"realtime.response","id":"resp_lg_echo","status":"in_progress","output":[]}}"#;
pub(crate) const DELTA_HEAD: &[u8] = br#"{"type":"response.output_audio.delta","event_id":"event_lg_"#;
const DELTA_MID: &[u8] =
    br#"","response_id":"resp_lg_echo","item_id":"item_lg_echo","output_index":0,"content_index":0,"delta":""#;
pub(crate) const DELTA_END: &[u8] = br#""}"#;
pub(crate) const ALREADY_ACTIVE: &[u8] = br#"{"type":"error","event_id":"event_lg_err","error":{"type":"invalid_request_error","code":"conversation_already_has_active_response","message":"Conversation already has an active response in progress: resp_lg_echo. Wait until the response is finished before creating a new one.","param":null,"event_id":null}}"#;
/// 20 ms of μ-law silence, base64: the greeting.
pub(crate) const GREETING_AUDIO: &str = "/////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////w==";

const LIVE_STARTED: &[u8] = br#"{"type":"session.started","event_id":"event_lg_started","session":{"id":"sess_lg","expires_at":4102444800,"model":"gpt-live-1.1","status":"active"}}"#;
const LIVE_COMMENTARY_APPENDED: &[u8] =
    br#"{"type":"session.commentary.appended","event_id":"event_lg_ca","start_ms":0,"end_ms":0}"#;
const LIVE_DELTA_HEAD: &[u8] = br#"{"type":"session.output_audio.delta","delta":""#;
const LIVE_CLOSED: &[u8] = br#"{"type":"session.closed","event_id":"event_lg_closed","reason":"close_requested","session":{"id":"sess_lg"},"usage":{"seconds":1.0}}"#;
/// 20 ms of quiet voiced μ-law (`0xFE`), base64: the GPT-Live greeting.
pub(crate) const LIVE_GREETING_AUDIO: &str = "/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/g==";
/// The exact prefix of the gateway's GPT-Live appends (`core::live::append_parts`).
const LIVE_APPEND_PREFIX: &[u8] = br#"{"type":"session.input_audio.append","audio":""#;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Reading the upgrade request.
    Head,
    /// Upgraded: events flow.
    Open,
    /// Our close frame is queued: drop the socket once it is written.
    Closing,
}

/// One Realtime session's protocol state (the socket is the loop's).
#[derive(Debug)]
pub struct Session {
    /// Where it is.
    pub state: State,
    dec: Decoder,
    enc: Encoder,
    greeted: bool,
    deltas: u64,
    /// A GPT-Live session (the upgrade was for `/v1/live/sessions`).
    live: bool,
    /// A soak's scripted turns (none: the load generator's plain echo).
    script: Option<Box<Script>>,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            state: State::Head,
            dec: Decoder::new(Role::Server, Limits { max_frame: RECV, max_message: RECV }),
            enc: Encoder::server(),
            greeted: false,
            deltas: 0,
            live: false,
            script: None,
        }
    }
}

impl Session {
    /// A session that follows a soak's script.
    pub fn scripted(script: Script) -> Self {
        Self { script: Some(Box::new(script)), ..Self::default() }
    }

    /// The soak script, if any.
    pub fn script(&self) -> Option<&Script> {
        self.script.as_deref()
    }

    /// Runs the script's turns due at `now_ns` (a soak only).
    pub fn on_tick(&mut self, now_ns: u64, out: &mut Outbox, soak: &mut SoakShared) {
        if self.state == State::Open
            && let Some(script) = self.script.as_deref_mut()
        {
            script.on_tick(now_ns, &mut self.enc, out, &mut soak.counts, &mut soak.checks);
        }
    }

    /// Handles everything complete in `recv`, queueing the answers in `out`. Returns `false`
    /// when the connection should be dropped now.
    pub fn process(
        &mut self,
        recv: &mut RecvBuf,
        out: &mut Outbox,
        counts: &mut Counts,
        progress: &Progress,
        mut soak: Option<&mut SoakShared>,
    ) -> bool {
        if self.state == State::Head {
            match upgrade::parse_request(recv.data()) {
                Ok(Parse::Partial) => return true,
                Ok(Parse::Complete(req)) => {
                    let mut head = [0u8; 256];
                    let Ok(n) = upgrade::write_accept(&mut head, req.key) else { return false };
                    let head_len = req.head_len;
                    self.live = req.path.starts_with("/v1/live/sessions");
                    out.push_raw(&head[..n]);
                    recv.consume(head_len);
                    if !self.live {
                        out.push_text(&mut self.enc, &[SESSION_CREATED]);
                    }
                    self.state = State::Open;
                    counts.openai_sessions += 1;
                    Progress::add(&progress.openai_open, 1);
                }
                Err(e) => {
                    let mut head = [0u8; 512];
                    if let Ok(n) = upgrade::write_refusal(&mut head, e.status(), &e.to_string()) {
                        out.push_raw(&head[..n]);
                    }
                    self.state = State::Closing;
                    return true;
                }
            }
        }
        while self.state == State::Open {
            let (consumed, close) = match self.dec.decode(recv) {
                Ok(Decoded::Incomplete { .. }) => return true,
                Err(e) => {
                    out.push_frame(
                        &mut self.enc,
                        OpCode::Control(Control::Close),
                        &[&e.close_code().to_be_bytes()],
                    );
                    self.close(progress);
                    return true;
                }
                Ok(Decoded::Frame { consumed, message }) => match message {
                    Some(Message::Text(text)) => {
                        match (self.script.as_deref_mut(), soak.as_deref_mut()) {
                            (Some(script), Some(soak)) => {
                                script.on_client(text, &mut self.enc, out, &mut soak.counts, &mut soak.checks)
                            }
                            _ if self.live => {
                                if answer_live(text, &mut self.enc, out, counts) {
                                    out.push_frame(
                                        &mut self.enc,
                                        OpCode::Control(Control::Close),
                                        &[&close_code::NORMAL.to_be_bytes()],
                                    );
                                    self.close(progress);
                                }
                            }
                            _ => {
                                answer(text, &mut self.enc, &mut self.greeted, &mut self.deltas, out, counts)
                            }
                        }
                        (consumed, None)
                    }
                    Some(Message::Ping(p)) => {
                        out.push_frame(&mut self.enc, OpCode::Control(Control::Pong), &[p]);
                        (consumed, None)
                    }
                    Some(Message::Close(c)) => {
                        (consumed, Some(c.map_or(close_code::NORMAL, |(code, _)| code)))
                    }
                    Some(Message::Pong(_) | Message::Binary(_)) | None => (consumed, None),
                },
            };
            recv.consume(consumed);
            if let Some(code) = close {
                out.push_frame(&mut self.enc, OpCode::Control(Control::Close), &[&code.to_be_bytes()]);
                self.close(progress);
            }
        }
        true
    }

    fn close(&mut self, progress: &Progress) {
        if self.state == State::Open {
            Progress::sub(&progress.openai_open, 1);
        }
        self.state = State::Closing;
    }

    /// The socket is gone (EOF or error).
    pub fn gone(&mut self, progress: &Progress) {
        self.close(progress);
    }
}

/// Answers one client event.
#[inline]
fn answer(
    text: &[u8],
    enc: &mut Encoder,
    greeted: &mut bool,
    deltas: &mut u64,
    out: &mut Outbox,
    counts: &mut Counts,
) {
    match client_event(text) {
        ClientEvent::Append { audio } => {
            *deltas += 1;
            let mut b = itoa::Buffer::new();
            let n = b.format(*deltas).as_bytes();
            out.push_text(enc, &[DELTA_HEAD, n, DELTA_MID, audio, DELTA_END]);
            counts.appends += 1;
        }
        ClientEvent::SessionUpdate => out.push_text(enc, &[SESSION_UPDATED]),
        ClientEvent::ResponseCreate if !*greeted => {
            *greeted = true;
            out.push_text(enc, &[GREETING_CREATED]);
            out.push_text(enc, &[GREETING_DELTA_HEAD, GREETING_AUDIO.as_bytes(), DELTA_END]);
            out.push_text(enc, &[GREETING_DONE]);
            out.push_text(enc, &[ECHO_CREATED]);
        }
        ClientEvent::ResponseCreate => out.push_text(enc, &[ALREADY_ACTIVE]),
        ClientEvent::ResponseCancel | ClientEvent::Other { .. } | ClientEvent::Malformed => {}
    }
}

/// Answers one GPT-Live client event; `true` once the session is closed (`session.close`).
#[inline]
fn answer_live(text: &[u8], enc: &mut Encoder, out: &mut Outbox, counts: &mut Counts) -> bool {
    if let Some(rest) = text.strip_prefix(LIVE_APPEND_PREFIX)
        && let Some(audio) = rest.strip_suffix(br#""}"#)
        && memchr::memchr(b'"', audio).is_none()
    {
        out.push_text(enc, &[LIVE_DELTA_HEAD, audio, DELTA_END]);
        counts.appends += 1;
        return false;
    }
    match super::scan::str_after(text, br#""type":""#) {
        Some(b"session.start") => out.push_text(enc, &[LIVE_STARTED]),
        Some(b"session.commentary.append") => {
            out.push_text(enc, &[LIVE_COMMENTARY_APPENDED]);
            out.push_text(enc, &[LIVE_DELTA_HEAD, LIVE_GREETING_AUDIO.as_bytes(), DELTA_END]);
        }
        Some(b"session.close") => {
            out.push_text(enc, &[LIVE_CLOSED]);
            return true;
        }
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use callway_gateway::core::openai::{ServerEvent, parse_delta_fast, parse_server_event};

    fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut buf = RecvBuf::with_capacity(1 << 16);
        buf.push(bytes);
        let mut dec = Decoder::new(Role::Client, Limits::OPENAI);
        let mut out = Vec::new();
        while let Ok(Decoded::Frame { consumed, message }) = dec.decode(&mut buf) {
            if let Some(Message::Text(t)) = message {
                out.push(t.to_vec());
            }
            buf.consume(consumed);
        }
        out
    }

    fn client_frame(enc: &mut Encoder, text: &[u8]) -> Vec<u8> {
        let mut out = Outbox::default();
        out.push_text(enc, &[text]);
        let mut v = Vec::new();
        out.flush(&mut v).unwrap();
        v
    }

    #[test]
    fn a_session_as_the_gateway_sees_it() {
        let progress = Progress::default();
        let mut counts = Counts::default();
        let mut s = Session::default();
        let mut recv = RecvBuf::with_capacity(RECV);
        let mut out = Outbox::default();
        recv.push(b"GET /v1/realtime?model=gpt-realtime-2.1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer sk-x\r\n\r\n");
        let mut enc = Encoder::client_with_seed([1; 32]);
        for ev in [
            &br#"{"type":"session.update","session":{"type":"realtime"}}"#[..],
            br#"{"type":"response.create"}"#,
            br#"{"type":"input_audio_buffer.append","audio":"AAAA/w=="}"#,
        ] {
            recv.push(&client_frame(&mut enc, ev));
        }
        assert!(s.process(&mut recv, &mut out, &mut counts, &progress, None));
        let mut wire = Vec::new();
        out.flush(&mut wire).unwrap();
        let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(wire.starts_with(b"HTTP/1.1 101"));
        let texts = frames(&wire[head_end..]);
        let kinds: Vec<String> = texts
            .iter()
            .map(|t| {
                let mut t = t.clone();
                format!("{:?}", parse_server_event(&mut t).unwrap())
            })
            .collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
        assert!(
            kinds[0].starts_with("SessionCreated") && kinds[1].starts_with("SessionUpdated"),
            "{kinds:?}"
        );
        assert!(kinds[2].contains("resp_lg_greeting") && kinds[4].starts_with("ResponseDone"), "{kinds:?}");
        assert!(kinds[5].contains("resp_lg_echo"), "{kinds:?}");
        // The echo takes the gateway's fast path, with the audio unchanged.
        let d = parse_delta_fast(&texts[6]).expect("fast path");
        assert_eq!((d.delta, d.response_id), (&b"AAAA/w=="[..], &b"resp_lg_echo"[..]));
        let g = parse_delta_fast(&texts[3]).expect("greeting on the fast path");
        assert_eq!(g.delta.len(), 216);
        assert_eq!((counts.appends, counts.openai_sessions, Progress::get(&progress.openai_open)), (1, 1, 1));
        // A second response.create is refused as the service does; a close is answered.
        recv.push(&client_frame(&mut enc, br#"{"type":"response.create"}"#));
        let mut close = Outbox::default();
        close.push_frame(&mut enc, OpCode::Control(Control::Close), &[&1000u16.to_be_bytes()]);
        let mut c = Vec::new();
        close.flush(&mut c).unwrap();
        recv.push(&c);
        assert!(s.process(&mut recv, &mut out, &mut counts, &progress, None));
        let mut wire = Vec::new();
        out.flush(&mut wire).unwrap();
        let mut t = frames(&wire);
        assert!(matches!(parse_server_event(&mut t[0]).unwrap(), ServerEvent::Error(_)));
        assert_eq!(s.state, State::Closing);
        assert_eq!(Progress::get(&progress.openai_open), 0);
    }

    #[test]
    fn a_gpt_live_session_as_the_gateway_sees_it() {
        use callway_gateway::core::live::{LiveEvent, is_silence_b64, parse_delta_fast, parse_server_event};
        let progress = Progress::default();
        let mut counts = Counts::default();
        let mut s = Session::default();
        let mut recv = RecvBuf::with_capacity(RECV);
        let mut out = Outbox::default();
        recv.push(b"GET /v1/live/sessions HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer sk-x\r\n\r\n");
        let mut enc = Encoder::client_with_seed([1; 32]);
        for ev in [
            &br#"{"type":"session.start","session":{"model":"gpt-live-1.1"}}"#[..],
            br#"{"type":"session.commentary.append","content":"Salue.","delegation_id":null}"#,
            br#"{"type":"session.input_audio.append","audio":"AAAA/w=="}"#,
            br#"{"type":"session.close"}"#,
        ] {
            recv.push(&client_frame(&mut enc, ev));
        }
        assert!(s.process(&mut recv, &mut out, &mut counts, &progress, None));
        let mut wire = Vec::new();
        out.flush(&mut wire).unwrap();
        let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut texts = frames(&wire[head_end..]);
        assert_eq!(texts.len(), 5, "nothing before session.start, then started, ack, greeting, echo, closed");
        assert!(matches!(
            parse_server_event(&mut texts[0]).unwrap(),
            LiveEvent::Started { session_id: "sess_lg" }
        ));
        let greeting = parse_delta_fast(&texts[2]).expect("greeting on the fast path");
        assert!(!is_silence_b64(greeting), "the greeting must reach the caller");
        assert_eq!(parse_delta_fast(&texts[3]), Some(&b"AAAA/w=="[..]));
        assert!(matches!(parse_server_event(&mut texts[4]).unwrap(), LiveEvent::Closed { .. }));
        assert_eq!(s.state, State::Closing);
        assert_eq!((counts.appends, counts.openai_sessions), (1, 1));
    }

    #[test]
    fn greeting_audio_is_twenty_ms_of_silence() {
        let b = base64_simd::STANDARD.decode_to_vec(GREETING_AUDIO).unwrap();
        assert_eq!(b.len(), 160);
        assert!(b.iter().all(|&x| x == 0xFF));
    }
}
