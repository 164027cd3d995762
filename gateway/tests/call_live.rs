//! The call core on GPT-Live, sans-IO: what goes out before and after `session.started`, the
//! greeting, silence held back or kept, transcripts grouped into turns, tools, DTMF, the
//! goodbye, and the close with its bounded wait for `session.closed`. Driven by hand with a
//! fake clock; each test states one rule.

use std::time::{Duration, Instant};

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::call::{
    AmdOutcome, Call, CallConfig, CallContext, CallEvent, CallState, CloseReason, Event, Handled, Peer,
    Speaker, VoiceApi,
};
use callway_gateway::core::ws::upgrade::{self, Parse};
use callway_gateway::core::ws::{Decoded, Decoder, Limits, Message, Role};
use callway_gateway::samples::{self, call_context as context};
use serde_json::Value;

/// A call on GPT-Live with its two sockets played by the test.
struct Live {
    call: Call,
    now: Instant,
    up: RecvBuf,
    down: RecvBuf,
    /// Client events the gateway sent OpenAI, parsed.
    sent: Vec<Value>,
    /// Twilio messages the gateway sent, parsed.
    twilio: Vec<Value>,
    events: Vec<Event>,
    openai_closed: bool,
}

impl Live {
    fn new(tune: impl FnOnce(&mut CallConfig)) -> Self {
        Self::with_context(tune, context())
    }

    fn with_context(tune: impl FnOnce(&mut CallConfig), ctx: CallContext) -> Self {
        let now = Instant::now();
        let mut cfg = CallConfig {
            api: VoiceApi::Live,
            openai_target: "/v1/live/sessions".into(),
            model: "gpt-live-1.1".into(),
            openai_api_key: "sk".into(),
            ..CallConfig::default()
        };
        tune(&mut cfg);
        let mut call = Call::new(cfg, ctx, now);
        assert_eq!(call.poll_event(), Some(Event::OpenUpstream));
        call.upstream_connected(now);
        let request = call.poll_transmit(Peer::OpenAi).unwrap().to_vec();
        let n = request.len();
        call.transmitted(Peer::OpenAi, n);
        let Parse::Complete(req) = upgrade::parse_request(&request).unwrap() else { panic!("partial") };
        assert_eq!(req.path, "/v1/live/sessions");
        let mut accept = vec![0u8; 256];
        let n = upgrade::write_accept(&mut accept, req.key).unwrap();
        let mut l = Live {
            call,
            now,
            up: RecvBuf::with_capacity(64 * 1024),
            down: RecvBuf::with_capacity(16 * 1024),
            sent: Vec::new(),
            twilio: Vec::new(),
            events: Vec::new(),
            openai_closed: false,
        };
        l.up.push(&accept[..n]);
        assert_eq!(l.call.handle_upstream(&mut l.up, now), Handled::Done);
        l.pump();
        l
    }

    /// Collects what the call wrote and the events it raised.
    fn pump(&mut self) {
        for (peer, out) in [(Peer::OpenAi, &mut self.sent), (Peer::Twilio, &mut self.twilio)] {
            let mut bytes = Vec::new();
            while let Some(b) = self.call.poll_transmit(peer) {
                bytes.extend_from_slice(b);
                let n = b.len();
                self.call.transmitted(peer, n);
            }
            let role = if peer == Peer::OpenAi { Role::Server } else { Role::Client };
            let mut dec = Decoder::new(role, Limits::OPENAI);
            let mut buf = RecvBuf::with_capacity(bytes.len().max(16) + 16);
            buf.push(&bytes);
            while let Decoded::Frame { consumed, message } = dec.decode(&mut buf).unwrap() {
                match message {
                    Some(Message::Text(t)) => out.push(serde_json::from_slice(t).unwrap()),
                    Some(Message::Close(_)) if peer == Peer::OpenAi => self.openai_closed = true,
                    _ => {}
                }
                buf.consume(consumed);
            }
        }
        while let Some(e) = self.call.poll_event() {
            self.events.push(e);
        }
    }

    fn openai(&mut self, json: &str) {
        self.up.push(&samples::server_text_frame(json));
        assert_eq!(self.call.handle_upstream(&mut self.up, self.now), Handled::Done);
        self.pump();
    }

    fn twilio(&mut self, json: &str) {
        self.down.push(&samples::client_text_frame(json));
        assert_eq!(self.call.handle_downstream(&mut self.down, self.now), Handled::Done);
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(at) = self.call.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.call.handle_timeout(self.now);
            self.pump();
        }
        self.now = until;
    }

    /// A new OpenAI connection after [`Event::OpenUpstream`]: connected, upgraded.
    fn reconnect(&mut self) {
        self.up = RecvBuf::with_capacity(64 * 1024);
        self.call.upstream_connected(self.now);
        let request = self.call.poll_transmit(Peer::OpenAi).unwrap().to_vec();
        self.call.transmitted(Peer::OpenAi, request.len());
        let Parse::Complete(req) = upgrade::parse_request(&request).unwrap() else { panic!("partial") };
        let mut accept = vec![0u8; 256];
        let n = upgrade::write_accept(&mut accept, req.key).unwrap();
        self.up.push(&accept[..n]);
        assert_eq!(self.call.handle_upstream(&mut self.up, self.now), Handled::Done);
        self.pump();
    }

    fn started(&mut self) {
        self.openai(r#"{"type":"session.started","event_id":"e","session":{"id":"sess_1","expires_at":1}}"#);
    }

    fn start_stream(&mut self) {
        self.twilio(&samples::twilio_start("CA1", "tok"));
    }

    fn kinds(&self) -> Vec<&str> {
        self.sent.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    fn media_out(&self) -> usize {
        self.twilio.iter().filter(|e| e["event"] == "media").count()
    }

    fn reports(&self) -> Vec<&CallEvent> {
        self.events.iter().filter_map(|e| if let Event::Report(r) = e { Some(r) } else { None }).collect()
    }
}

/// A transcript delta (`kind`: `input` for the caller, `output` for the agent).
fn delta(kind: &str, text: &str, start: u64, end: u64) -> String {
    format!(
        r#"{{"type":"session.{kind}_transcript.delta","event_id":"e","delta":"{text}","start_ms":{start},"end_ms":{end}}}"#
    )
}

fn caller_frame(seq: u64) -> String {
    samples::twilio_media(seq + 1, seq, &samples::base64(&samples::ulaw_tone(160)))
}

#[test]
fn session_start_goes_first_and_nothing_else_before_session_started() {
    let mut l = Live::new(|c| c.live_start_at_upgrade = true);
    assert_eq!(l.kinds(), ["session.start"], "LIVE_START_AT=upgrade: the session starts with the socket");
    l.start_stream();
    for i in 0..5 {
        l.twilio(&caller_frame(i + 1));
    }
    assert_eq!(l.kinds(), ["session.start"], "caller audio waits in the hold ring");
    l.started();
    let kinds = l.kinds();
    assert_eq!(kinds[1], "session.input_audio.append", "{kinds:?}");
    assert!(kinds.contains(&"session.commentary.append"), "the greeting: {kinds:?}");
    let greeting = l.sent.iter().find(|e| e["type"] == "session.commentary.append").unwrap();
    assert!(greeting["content"].as_str().unwrap().contains("Zoé"), "{greeting}");
    assert_eq!(*l.call.state(), CallState::Live);
    assert!(
        l.reports().iter().any(
            |r| matches!(r, CallEvent::Engine { api, model } if api == "live" && model == "gpt-live-1.1")
        )
    );
}

/// The `input` history of each `session.start` sent, as (role, text) pairs.
fn start_histories(l: &Live) -> Vec<Vec<(String, String)>> {
    l.sent
        .iter()
        .filter(|e| e["type"] == "session.start")
        .map(|e| {
            e["session"]["input"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|m| {
                            (
                                m["role"].as_str().unwrap().to_owned(),
                                m["content"][0]["text"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn the_web_conversation_is_the_sessions_history_and_a_resumed_session_adds_the_phone_part() {
    use callway_gateway::core::call::TranscriptLine;
    let web = vec![
        TranscriptLine { speaker: Speaker::Agent, text: "Bonjour, je suis Claire.".into() },
        TranscriptLine { speaker: Speaker::Caller, text: "Je veux une démo lundi.".into() },
    ];
    let mut l = Live::with_context(|_| {}, CallContext { web_transcript: web, ..context() });
    l.start_stream();
    let pair = |r: &str, t: &str| (r.to_owned(), t.to_owned());
    let web_part =
        vec![pair("assistant", "Bonjour, je suis Claire."), pair("user", "Je veux une démo lundi.")];
    assert_eq!(
        start_histories(&l),
        std::slice::from_ref(&web_part),
        "the first session starts from the web conversation"
    );

    l.started();
    l.openai(&delta("output", "Bonjour Zoé, c'est Claire.", 0, 600));
    l.openai(&delta("input", "Oui, lundi ça me va.", 900, 1400));
    l.openai(&delta("output", "Parfait.", 1600, 1900));
    l.openai(r#"{"type":"session.closed","event_id":"e","reason":"connection_lost","session":{"id":"sess_1"},"usage":{"seconds":3}}"#);
    assert!(l.events.contains(&Event::OpenUpstream), "{:?}", l.events);
    l.reconnect();
    let histories = start_histories(&l);
    assert_eq!(histories.len(), 2, "{histories:?}");
    let mut resumed = web_part;
    resumed.extend([
        pair("assistant", "Bonjour Zoé, c'est Claire."),
        pair("user", "Oui, lundi ça me va."),
        pair("assistant", "Parfait."),
    ]);
    assert_eq!(histories[1], resumed, "web part first, then the phone conversation so far");
}

#[test]
fn without_a_web_conversation_the_first_session_has_no_history() {
    let mut l = Live::new(|_| {});
    l.start_stream();
    assert_eq!(start_histories(&l), [Vec::new()]);
}

#[test]
fn by_default_the_session_waits_for_twilios_start() {
    let mut l = Live::new(|_| {});
    assert!(l.sent.is_empty(), "no session (no billing) before Twilio's start");
    l.start_stream();
    assert_eq!(l.kinds(), ["session.start"]);
}

#[test]
fn silence_is_held_back_only_when_twilio_has_nothing_left_to_play() {
    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    let silence = samples::base64(&[0xFF; 800]);
    let voice = samples::base64(&samples::ulaw_tone(800));
    l.openai(&samples::live_delta(&silence));
    assert_eq!(l.media_out(), 0, "nothing queued at Twilio: silence held back");
    l.openai(&samples::live_delta(&voice));
    l.openai(&samples::live_delta(&silence));
    assert_eq!(l.media_out(), 2, "a pause inside speech keeps its length");
    // Twilio played everything (both marks echoed): silence is held back again.
    let marks: Vec<String> = l
        .twilio
        .iter()
        .filter(|e| e["event"] == "mark")
        .map(|e| e["mark"]["name"].as_str().unwrap().to_owned())
        .collect();
    for (i, m) in marks.iter().enumerate() {
        l.twilio(&samples::twilio_mark(100 + i as u64, m));
    }
    l.openai(&samples::live_delta(&silence));
    assert_eq!(l.media_out(), 2);
    assert_eq!(l.call.stats().live_silence_held_back, 2);

    let mut all = Live::new(|c| c.live_forward_silence = true);
    all.start_stream();
    all.started();
    all.openai(&samples::live_delta(&silence));
    assert_eq!(all.media_out(), 1, "LIVE_FORWARD_SILENCE forwards everything");
}

#[test]
fn transcript_fragments_become_turns() {
    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    l.openai(&delta("output", "Bonjour", 0, 300));
    l.openai(&delta("output", " Zoé.", 300, 600));
    l.openai(&delta("input", "Oui", 900, 1100));
    l.openai(&delta("input", " bonjour", 1100, 1400));
    // A long pause inside the caller's speech starts a new turn.
    l.openai(&delta("input", "Attendez", 3000, 3400));
    l.openai(&delta("output", "Je vous écoute.", 3600, 4200));
    l.twilio(&samples::twilio_stop("CA1"));
    let lines: Vec<(Speaker, &str)> = l
        .reports()
        .into_iter()
        .filter_map(|r| {
            if let CallEvent::Transcript { speaker, text, .. } = r {
                Some((*speaker, text.as_str()))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        lines,
        [
            (Speaker::Agent, "Bonjour Zoé."),
            (Speaker::Caller, "Oui bonjour"),
            (Speaker::Caller, "Attendez"),
            (Speaker::Agent, "Je vous écoute."),
        ]
    );
}

#[test]
fn a_tool_result_goes_back_as_an_item_and_a_response_create() {
    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    l.openai(r#"{"type":"response.event","event_id":"e","delegation_id":"del_1","event":{"type":"response.output_item.done","output_index":0,"item":{"id":"fc","type":"function_call","call_id":"call_1","name":"save_lead","arguments":"{\"first_name\":null,\"last_name\":\"Durand\",\"phone\":null}","status":"completed"}}}"#);
    assert!(l.events.iter().any(
        |e| matches!(e, Event::ToolCall { call_id, name, .. } if call_id == "call_1" && name == "save_lead")
    ));
    let before = l.sent.len();
    // Slow: a silent note to the model.
    l.advance(Duration::from_secs(5));
    assert_eq!(l.kinds()[before..], ["session.thinking.append"]);
    l.call.tool_result("call_1", true, r#"{"saved":true}"#, l.now);
    l.pump();
    assert_eq!(l.kinds()[before + 1..], ["response.item.create", "response.create"]);
    let item = &l.sent[before + 1]["item"];
    assert_eq!(
        (item["type"].as_str(), item["call_id"].as_str()),
        (Some("function_call_output"), Some("call_1"))
    );
    // An unknown tool is answered at once.
    l.openai(r#"{"type":"response.event","event_id":"e","event":{"type":"response.output_item.done","item":{"type":"function_call","call_id":"call_2","name":"launch_rocket","arguments":"{}"}}}"#);
    assert_eq!(l.sent[l.sent.len() - 2]["item"]["output"], r#"{"error":"unknown_tool"}"#);
}

#[test]
fn a_dtmf_digit_is_silent_context() {
    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    l.twilio(&format!(
        r#"{{"event":"dtmf","streamSid":"{}","sequenceNumber":"9","dtmf":{{"track":"inbound_track","digit":"5"}}}}"#,
        samples::STREAM_SID
    ));
    let last = l.sent.last().unwrap();
    assert_eq!(last["type"], "session.thinking.append", "{last}");
    assert!(last["content"].as_str().unwrap().ends_with('5'));
    assert!(last["delegation_id"].is_null());
}

#[test]
fn end_call_hangs_up_once_the_goodbye_has_been_said_and_played() {
    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    l.openai(r#"{"type":"response.event","event_id":"e","event":{"type":"response.output_item.done","item":{"type":"function_call","call_id":"call_9","name":"end_call","arguments":"{\"reason\":\"completed\"}"}}}"#);
    assert_eq!(*l.call.state(), CallState::Draining);
    assert_eq!(
        l.kinds()[l.sent.len() - 2..],
        ["response.item.create", "response.create"],
        "the model may say goodbye"
    );
    let hang_up = |l: &Live| l.events.iter().any(|e| matches!(e, Event::HangUp { .. }));
    // The goodbye starts after a second, lasts 600 ms.
    l.advance(Duration::from_secs(1));
    let voice = samples::base64(&samples::ulaw_tone(800));
    for _ in 0..6 {
        l.openai(&samples::live_delta(&voice));
        l.advance(Duration::from_millis(100));
    }
    l.advance(Duration::from_secs(1));
    assert!(!hang_up(&l), "quiet, but Twilio has not played the goodbye yet");
    let marks: Vec<String> = l
        .twilio
        .iter()
        .filter(|e| e["event"] == "mark")
        .map(|e| e["mark"]["name"].as_str().unwrap().to_owned())
        .collect();
    for (i, m) in marks.iter().enumerate() {
        l.twilio(&samples::twilio_mark(200 + i as u64, m));
    }
    assert!(hang_up(&l), "said, quiet and played: hang up");
}

#[test]
fn the_end_closes_the_session_and_waits_for_session_closed() {
    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    l.twilio(&samples::twilio_stop("CA1"));
    assert_eq!(l.kinds().last(), Some(&"session.close"));
    assert!(!l.openai_closed, "the socket stays open for session.closed");
    assert!(!matches!(l.call.state(), CallState::Closed(_)));
    l.openai(r#"{"type":"session.closed","event_id":"e","reason":"close_requested","session":{"id":"sess_1"},"usage":{"seconds":12.5}}"#);
    assert_eq!(*l.call.state(), CallState::Closed(CloseReason::CallerHungUp));
    assert!(l.openai_closed);
    assert!(l.reports().iter().any(|r| matches!(r, CallEvent::LiveUsage { seconds } if *seconds == 12.5)));

    // No answer: closed anyway after the bounded wait.
    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    l.twilio(&samples::twilio_stop("CA1"));
    l.advance(Duration::from_secs(1));
    assert!(!matches!(l.call.state(), CallState::Closed(_)));
    l.advance(Duration::from_secs(2));
    assert_eq!(*l.call.state(), CallState::Closed(CloseReason::CallerHungUp));
}

#[test]
fn an_expired_session_is_replaced_and_a_content_close_ends_the_call() {
    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    l.openai(r#"{"type":"session.closed","event_id":"e","reason":"expired","session":{"id":"sess_1"},"usage":{"seconds":3600}}"#);
    assert_eq!(l.events.iter().filter(|e| **e == Event::OpenUpstream).count(), 1, "a new session");
    assert_eq!(*l.call.state(), CallState::Live, "the caller stays on the line");

    let mut l = Live::new(|_| {});
    l.start_stream();
    l.started();
    l.openai(r#"{"type":"session.closed","event_id":"e","reason":"content","session":{"id":"sess_1"},"usage":{"seconds":5}}"#);
    assert_eq!(*l.call.state(), CallState::Closed(CloseReason::OpenAiContent));
}

#[test]
fn with_answering_machine_detection_the_session_starts_only_once_a_person_is_reported() {
    let mut l = Live::new(|c| c.amd_hold = Duration::from_secs(4));
    assert!(l.events.contains(&Event::AskAmd { wait_ms: 4000 }));
    l.start_stream();
    for i in 0..5 {
        l.twilio(&caller_frame(i + 1));
    }
    assert!(l.sent.is_empty(), "no session (billed from its start) while detection runs");
    l.call.amd_result(AmdOutcome::Person, l.now);
    l.pump();
    assert_eq!(l.kinds(), ["session.start"]);
    l.started();
    let kinds = l.kinds();
    assert_eq!(
        kinds[1], "session.input_audio.append",
        "what the caller said while held goes first: {kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"session.commentary.append"), "then the greeting");
}

#[test]
fn a_whole_default_detection_hold_of_caller_audio_is_kept_for_the_session() {
    // Twilio's verdict at the gateway's limit (4 s), then a session that takes 900 ms to
    // start: the caller's first words ("Allô ?") are still in the ring.
    let mut l = Live::new(|c| c.amd_hold = Duration::from_secs(4));
    l.start_stream();
    for i in 0..200 {
        l.twilio(&caller_frame(i + 1));
    }
    l.call.amd_result(AmdOutcome::Person, l.now);
    l.pump();
    for i in 200..245 {
        l.twilio(&caller_frame(i + 1));
    }
    assert_eq!(l.call.held_ms(), 245 * 20);
    l.started();
    assert_eq!(l.call.hold_dropped().bytes, 0, "nothing of the caller dropped");
    let appended: usize = l
        .sent
        .iter()
        .filter(|e| e["type"] == "session.input_audio.append")
        .map(|e| base64_simd::STANDARD.decode_to_vec(e["audio"].as_str().unwrap()).unwrap().len())
        .sum();
    assert_eq!(appended, 245 * 160, "every held frame reaches the session");
}

#[test]
fn with_answering_machine_detection_a_machine_never_costs_a_session() {
    let mut l = Live::new(|c| c.amd_hold = Duration::from_secs(4));
    l.start_stream();
    l.call.amd_result(AmdOutcome::Machine, l.now);
    l.pump();
    l.advance(Duration::from_secs(5));
    for i in 0..50 {
        l.twilio(&caller_frame(i + 1));
    }
    assert!(l.sent.is_empty(), "{:?}", l.kinds());
    assert_eq!(l.call.held_ms(), 0, "a machine's audio is not even held");
    l.twilio(&samples::twilio_stop("CA1"));
    assert_eq!(*l.call.state(), CallState::Closed(CloseReason::CallerHungUp));

    // Without an answer, the session starts at the gateway's limit.
    let mut l = Live::new(|c| c.amd_hold = Duration::from_secs(4));
    l.start_stream();
    l.advance(Duration::from_secs(4));
    assert_eq!(l.kinds(), ["session.start"]);
}

#[test]
fn a_transfer_is_announced_then_run_and_a_refusal_is_told_to_the_model() {
    let transfer = r#"{"type":"response.event","event_id":"e","event":{"type":"response.output_item.done","item":{"type":"function_call","call_id":"call_t","name":"transfer_to_human","arguments":"{\"reason\":\"asked_for_human\",\"summary\":\"Tarif pro.\"}"}}}"#;
    let requested = |l: &Live| {
        l.events
            .iter()
            .filter(|e| matches!(e, Event::ToolCall { name, .. } if name == "transfer_to_human"))
            .count()
    };
    for handed_over in [true, false] {
        let mut l = Live::with_context(|_| {}, CallContext { transfer: true, ..context() });
        l.start_stream();
        l.started();
        let tools = l.sent[0]["session"]["delegation"]["responses"]["tools"].to_string();
        assert!(tools.contains("transfer_to_human"), "offered: {tools}");
        l.openai(transfer);
        assert_eq!(*l.call.state(), CallState::Draining);
        assert_eq!(l.kinds()[l.sent.len() - 2..], ["response.item.create", "response.create"], "announce it");
        assert_eq!(requested(&l), 0);
        // Nothing said within the time the announcement may take to begin: run it.
        l.advance(Duration::from_secs(4));
        assert_eq!(requested(&l), 1);
        if handed_over {
            l.call.tool_result("call_t", true, r#"{"ok":true}"#, l.now);
            l.pump();
            l.twilio(&samples::twilio_stop("CA1"));
            l.openai(r#"{"type":"session.closed","event_id":"e","reason":"close_requested","session":{"id":"sess_1"},"usage":{"seconds":9}}"#);
            assert_eq!(*l.call.state(), CallState::Closed(CloseReason::Transferred));
        } else {
            l.call.tool_result("call_t", false, r#"{"ok":false,"error":"no_answer"}"#, l.now);
            l.pump();
            assert_eq!(*l.call.state(), CallState::Live);
            let note = l.sent.last().unwrap();
            assert_eq!(note["type"], "session.commentary.append");
            assert!(note["content"].as_str().unwrap().contains("no_answer"), "{note}");
        }
    }
}
