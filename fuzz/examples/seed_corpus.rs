//! Writes the seed corpora in `fuzz/corpus/<target>/` from real message shapes: Twilio's events
//! (protocols.md A2), OpenAI Realtime server events (C4), Twilio's and OpenAI's upgrade
//! exchanges, and WebSocket frames built with the gateway's own encoder.
//!
//! ```text
//! cd fuzz && cargo run --example seed_corpus
//! ```
//!
//! Each target's directory is emptied and rewritten, so the committed seeds are exactly what
//! this program makes (deterministic: fixed mask seeds, fixed secrets and clocks).

use std::fs;
use std::path::{Path, PathBuf};

use callway_fuzz::fixtures;
use callway_gateway::core::ws::upgrade::write_client_request;
use callway_gateway::core::ws::{Control, Data, Encoder, OpCode};
use callway_gateway::samples;
use callway_gateway::samples::{
    STREAM_SID, base64, client_text_frame, openai_delta, server_text_frame, twilio_mark, twilio_media,
    twilio_start, ulaw_tone,
};
use contract::stream_token::{StreamClaims, StreamTokenMinter};
use contract::twilio_signature::TwilioSigner;

struct Corpus {
    dir: PathBuf,
    count: usize,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Self {
        let dir = root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("clear corpus dir");
        }
        fs::create_dir_all(&dir).expect("create corpus dir");
        Self { dir, count: 0 }
    }

    fn add(&mut self, name: &str, bytes: impl AsRef<[u8]>) {
        self.count += 1;
        fs::write(self.dir.join(format!("{:02}-{name}", self.count)), bytes).expect("write seed");
    }
}

fn twilio_events() -> Vec<(&'static str, String)> {
    let token = fixtures::valid_token();
    let tone = base64(&ulaw_tone(160));
    vec![
        ("connected", r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.to_owned()),
        ("start", twilio_start("CA5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c", &token)),
        ("media-20ms", twilio_media(3, 2, &tone)),
        ("media-short", twilio_media(4, 3, "no+JhoaJjpzS/w==")),
        ("media-empty", twilio_media(5, 4, "")),
        (
            "media-any-order",
            format!(
                r#"{{ "streamSid" : "{STREAM_SID}", "event":"media", "media": {{"payload":"AA==", "timestamp":"20","chunk":"1","track":"inbound"}}, "sequenceNumber":"9", "extra": 1 }}"#
            ),
        ),
        ("media-escaped-track", twilio_media(6, 5, "AAAA").replace("\"inbound\"", "\"in\\u0062ound\"")),
        ("media-bad-payload", twilio_media(7, 6, "no J")),
        ("media-bad-chunk", twilio_media(8, 7, "AAAA").replace("\"chunk\":\"7\"", "\"chunk\":\"x\"")),
        ("mark", twilio_mark(9, "r7-c3-1840")),
        (
            "mark-any-order",
            format!(
                r#"{{"mark":{{"name":"greeting"}},"event":"mark","streamSid":"{STREAM_SID}","sequenceNumber":"10"}}"#
            ),
        ),
        (
            "dtmf",
            format!(
                r#"{{"event":"dtmf","streamSid":"{STREAM_SID}","sequenceNumber":"11","dtmf":{{"track":"inbound_track","digit":"1"}}}}"#
            ),
        ),
        (
            "stop",
            format!(
                r#"{{"event":"stop","sequenceNumber":"12","stop":{{"accountSid":"AC00000000000000000000000000000000","callSid":"CA5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c"}},"streamSid":"{STREAM_SID}"}}"#
            ),
        ),
        ("unknown-event", r#"{"event":"hello","sequenceNumber":"1"}"#.to_owned()),
        ("not-json", "not json".to_owned()),
    ]
}

/// GPT-Live server events (protocols.md §G), as the simulator and the schema shape them.
fn live_events() -> Vec<(&'static str, String)> {
    let voiced = samples::base64(&samples::ulaw_tone(800));
    let silence = samples::base64(&[0xFF; 800]);
    vec![
        ("delta", samples::live_delta(&voiced)),
        ("delta-silence", samples::live_delta(&silence)),
        ("delta-timed", format!(r#"{{"type":"session.output_audio.delta","delta":"{voiced}","start_ms":100,"end_ms":200}}"#)),
        ("started", r#"{"type":"session.started","event_id":"e1","client_event_id":null,"session":{"id":"sess_1","expires_at":1796583625,"model":"gpt-live-1.1","status":"active","audio":{"format":{"type":"audio/pcmu","rate":8000},"output":{"voice":"marin"}}}}"#.into()),
        ("input-transcript", r#"{"type":"session.input_transcript.delta","event_id":"e2","delta":" Oui","start_ms":1200,"end_ms":1500}"#.into()),
        ("output-transcript", r#"{"type":"session.output_transcript.delta","event_id":"e3","delta":"Bonjour é","start_ms":0,"end_ms":400}"#.into()),
        ("function-call", r#"{"type":"response.event","event_id":"e4","delegation_id":"del_1","event":{"type":"response.output_item.done","output_index":0,"sequence_number":6,"item":{"id":"fc_1","type":"function_call","status":"completed","call_id":"call_1","name":"save_lead","arguments":"{"first_name":null,"last_name":"Durand","phone":null}"}}}"#.into()),
        ("response-text", r#"{"type":"response.event","event_id":"e5","delegation_id":"del_1","event":{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"x","sequence_number":3}}"#.into()),
        ("usage", r#"{"type":"session.usage.updated","event_id":"e6","usage":{"seconds":60.0}}"#.into()),
        ("closed", r#"{"type":"session.closed","event_id":"e7","reason":"expired","session":{"id":"sess_1"},"usage":{"seconds":3600}}"#.into()),
        ("error", r#"{"type":"error","event_id":"e8","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"Unknown parameter: 'session.x'.","param":"session.x","client_event_id":"evt_1"}}"#.into()),
        ("appended", r#"{"type":"session.commentary.appended","event_id":"e9","client_event_id":null,"start_ms":10,"end_ms":10}"#.into()),
        // A field given twice (the full parser refuses it; the fast path must give up too).
        ("delta-twice", format!(r#"{{"type":"session.output_audio.delta","delta":"{silence}","delta":"{voiced}"}}"#)),
    ]
}

fn openai_events() -> Vec<(&'static str, String)> {
    let tone = base64(&ulaw_tone(160));
    let mut delta_obfuscated = openai_delta(4951, "/////w==");
    delta_obfuscated.insert_str(delta_obfuscated.len() - 1, r#","obfuscation":"a1b2""#);
    vec![
        ("delta-20ms", openai_delta(4950, &tone)),
        ("delta-short", openai_delta(4951, "/////w==")),
        ("delta-obfuscation", delta_obfuscated),
        (
            "delta-any-order",
            r#"{"delta":"AAAA","type":"response.output_audio.delta","content_index":0,"output_index":0,"item_id":"item_1","response_id":"resp_1"}"#.to_owned(),
        ),
        (
            "delta-object-field",
            r#"{"type":"response.output_audio.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"obfuscation":{"x":1},"delta":"AAAA"}"#.to_owned(),
        ),
        ("delta-bad-audio", openai_delta(4952, "not audio!")),
        (
            "session-created",
            r#"{"type":"session.created","event_id":"event_1","session":{"type":"realtime","object":"realtime.session","id":"sess_1","model":"gpt-realtime","output_modalities":["audio"],"audio":{"input":{"format":{"type":"audio/pcmu"}},"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}}}}"#.to_owned(),
        ),
        ("session-updated", r#"{"type":"session.updated","event_id":"event_2","session":{"type":"realtime"}}"#.to_owned()),
        (
            "speech-started",
            r#"{"type":"input_audio_buffer.speech_started","event_id":"event_3","audio_start_ms":1000,"item_id":"item_1"}"#.to_owned(),
        ),
        (
            "speech-stopped",
            r#"{"type":"input_audio_buffer.speech_stopped","event_id":"event_4","audio_end_ms":2340,"item_id":"item_1"}"#.to_owned(),
        ),
        (
            "committed",
            r#"{"type":"input_audio_buffer.committed","event_id":"event_5","previous_item_id":null,"item_id":"item_1"}"#.to_owned(),
        ),
        ("cleared", r#"{"type":"input_audio_buffer.cleared","event_id":"event_6"}"#.to_owned()),
        (
            "response-created",
            r#"{"type":"response.created","event_id":"event_7","response":{"object":"realtime.response","id":"resp_1","status":"in_progress","output":[]}}"#.to_owned(),
        ),
        (
            "audio-done",
            r#"{"type":"response.output_audio.done","event_id":"event_8","response_id":"resp_1","item_id":"item_2","output_index":0,"content_index":0}"#.to_owned(),
        ),
        (
            "agent-transcript",
            r#"{"type":"response.output_audio_transcript.done","event_id":"event_9","response_id":"resp_1","item_id":"item_2","output_index":0,"content_index":0,"transcript":"Bonjour, ici Léa. \"Vous\" avez une minute ?"}"#.to_owned(),
        ),
        (
            "caller-transcript",
            r#"{"type":"conversation.item.input_audio_transcription.completed","event_id":"event_10","item_id":"item_1","content_index":0,"transcript":"Oui, allez-y."}"#.to_owned(),
        ),
        (
            "function-call",
            r#"{"type":"response.function_call_arguments.done","event_id":"event_11","response_id":"resp_2","item_id":"item_3","output_index":0,"call_id":"call_1","name":"save_lead","arguments":"{\"first_name\":\"Zoé\"}"}"#.to_owned(),
        ),
        (
            "response-done",
            r#"{"type":"response.done","event_id":"event_12","response":{"id":"resp_1","object":"realtime.response","status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"},"output":[],"usage":{"total_tokens":5,"input_tokens":3,"output_tokens":2}}}"#.to_owned(),
        ),
        (
            "error",
            r#"{"type":"error","event_id":"event_13","error":{"type":"invalid_request_error","code":"session_expired","message":"Your session hit the maximum duration of 60 minutes.","param":null,"event_id":null}}"#.to_owned(),
        ),
        (
            "rate-limits",
            r#"{"type":"rate_limits.updated","event_id":"event_14","rate_limits":[{"name":"tokens","limit":40000,"remaining":39000,"reset_seconds":1.5}]}"#.to_owned(),
        ),
        (
            "transcript-delta",
            r#"{"type":"response.output_audio_transcript.delta","event_id":"event_15","response_id":"resp_1","item_id":"item_2","output_index":0,"content_index":0,"delta":"Bon"}"#.to_owned(),
        ),
        ("no-type", r#"{"no_type":1}"#.to_owned()),
    ]
}

fn upgrade_requests() -> Vec<(&'static str, Vec<u8>)> {
    let token = fixtures::valid_token();
    let path = format!("/api/twilio/media-stream/{token}");
    let origin = fixtures::PUBLIC_ORIGIN;
    let signer = TwilioSigner::new(fixtures::TWILIO_AUTH_TOKEN);
    let sig = signer.sign(&format!("{origin}{path}"), &[]);
    let req = |path: &str, sig: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: edge.example.eu\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-twilio-signature: {sig}\r\nUser-Agent: Twilio.TmeWs/1.0\r\n\r\n"
        )
    };
    let good = req(&path, &sig);
    let with_frame = [good.as_bytes(), &client_text_frame(r#"{"event":"connected"}"#)].concat();
    let seeds = vec![
        ("twilio-signed", good.clone()),
        ("twilio-trailing-slash", req(&format!("{path}/"), &sig)),
        ("twilio-query", req(&format!("{path}?x=1"), &sig)),
        ("twilio-unsigned", good.replace(&format!("x-twilio-signature: {sig}\r\n"), "")),
        ("twilio-bad-signature", req(&path, "24fy8gg1vgNB/teYcvsiUvJw6Zo=")),
        ("twilio-fake-token", req("/api/twilio/media-stream/v1.abc.def", "24fy8gg1vgNB/teYcvsiUvJw6Zo=")),
        (
            "rfc6455",
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n".to_owned(),
        ),
        (
            "lowercase-lf-only",
            "GET / HTTP/1.1\nhost: h\nupgrade: WebSocket\nconnection: keep-alive, upgrade\nsec-websocket-version: 13\nsec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\n\n".to_owned(),
        ),
        ("post", good.replacen("GET ", "POST ", 1)),
        ("http10", good.replacen("HTTP/1.1\r\n", "HTTP/1.0\r\n", 1)),
        ("version-8", good.replace("Version: 13", "Version: 8")),
        ("bad-key", good.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=!")),
        (
            "duplicate-key",
            good.replacen("\r\n\r\n", "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 1),
        ),
        ("no-host", good.replace("Host: edge.example.eu\r\n", "")),
        ("partial", good[..good.len() / 2].to_owned()),
    ];
    let mut seeds: Vec<(&str, Vec<u8>)> = seeds.into_iter().map(|(n, s)| (n, s.into_bytes())).collect();
    seeds.push(("frame-after-head", with_frame));
    seeds
}

fn upgrade_responses() -> Vec<(&'static str, Vec<u8>)> {
    let accept = fixtures::CLIENT_ACCEPT;
    let ok = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    let with_frame = [ok.as_bytes(), &server_text_frame(&openai_delta(1, "AAAA"))].concat();
    let seeds = vec![
        ("ok", ok.clone()),
        (
            "openai-101",
            format!(
                "HTTP/1.1 101 Switching Protocols\r\ndate: Thu, 26 Nov 2026 10:00:00 GMT\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: {accept}\r\nopenai-version: 2020-10-01\r\nx-request-id: req_0123456789abcdef\r\nstrict-transport-security: max-age=31536000\r\n\r\n"
            ),
        ),
        ("wrong-accept", ok.replace("s3pP", "AAAA")),
        ("no-upgrade", ok.replace("Upgrade: websocket\r\n", "")),
        (
            "401",
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 95\r\n\r\n{\"error\":{\"message\":\"Incorrect API key provided.\",\"type\":\"invalid_request_error\",\"code\":null}}".to_owned(),
        ),
        ("403-lf-only", "HTTP/1.1 403 Forbidden\nContent-Length: 0\n\n".to_owned()),
        ("partial", ok[..30].to_owned()),
    ];
    let mut seeds: Vec<(&str, Vec<u8>)> = seeds.into_iter().map(|(n, s)| (n, s.into_bytes())).collect();
    seeds.push(("frame-after-head", with_frame));
    seeds
}

/// A frame spec for the decoders' structured mode (`callway_fuzz::ws`).
fn spec(out: &mut Vec<u8>, opcode: u8, fin: bool, payload: &[u8]) {
    let long = payload.len() > 255;
    out.push(opcode | if fin { 0x80 } else { 0 } | if long { 0x40 } else { 0 });
    if long {
        out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    } else {
        out.push(payload.len() as u8);
    }
    out.extend_from_slice(payload);
}

fn decoder_seeds(c: &mut Corpus, masked: bool, texts: &[String]) {
    let mut enc = if masked { Encoder::client_with_seed([0x5a; 32]) } else { Encoder::server() };
    let mut frame = |op: OpCode, fin: bool, payload: &[u8]| {
        let mut out = vec![0u8; payload.len() + 14];
        let n = enc.frame_parts(&mut out, op, fin, &[payload]).expect("sized");
        out.truncate(n);
        out
    };
    let text = OpCode::Data(Data::Text);
    // Raw mode: [flags, chunk count, chunk sizes..., wire bytes].
    for (i, t) in texts.iter().enumerate() {
        let mut seed = vec![0x00, 0x00];
        seed.extend(frame(text, true, t.as_bytes()));
        c.add(&format!("raw-text-{i}"), seed);
    }
    let mut all = vec![0x00, 0x03, 0, 6, 40];
    for t in texts {
        all.extend(frame(text, true, t.as_bytes()));
    }
    c.add("raw-all-split", all);
    let mut frag = vec![0x00, 0x02, 2, 9];
    frag.extend(frame(text, false, "héllo ".as_bytes()));
    frag.extend(frame(OpCode::Control(Control::Ping), true, b"keepalive"));
    frag.extend(frame(OpCode::Data(Data::Continue), false, &"wörld".as_bytes()[..2]));
    frag.extend(frame(OpCode::Data(Data::Continue), true, &"wörld".as_bytes()[2..]));
    c.add("raw-fragmented", frag);
    let mut close = vec![0x00, 0x00];
    close.extend(frame(OpCode::Control(Control::Pong), true, b""));
    let mut reason = 1000u16.to_be_bytes().to_vec();
    reason.extend_from_slice(b"bye");
    close.extend(frame(OpCode::Control(Control::Close), true, &reason));
    close.extend(frame(text, true, b"late"));
    c.add("raw-close-then-data", close);
    let mut bin = vec![0x00, 0x00];
    bin.extend(frame(OpCode::Data(Data::Binary), true, &ulaw_tone(400)));
    c.add("raw-binary-16bit-length", bin);
    // Production limits, a buffer a third of a 30 000-byte frame (a fill spec, so the seed
    // stays small): BufferTooSmall territory.
    let mut big = vec![0x01 | 0x02 | (16 << 2), 0x01, 200];
    big.extend_from_slice(&[0x82 | 0x40 | 0x20]);
    big.extend_from_slice(&30_000u16.to_le_bytes());
    big.push(0xff);
    c.add("spec-big-small-buffer", big);
    let mut len64 = vec![0x02, 0x00];
    len64.extend(frame(OpCode::Data(Data::Binary), true, &ulaw_tone(70_000))[..20].iter());
    c.add("raw-64bit-length-header", len64);
    // Structured mode: [flags | 1, chunk count, chunk sizes..., specs].
    let mut s = vec![0x01, 0x00];
    spec(&mut s, 0x1, true, texts[0].as_bytes());
    c.add("spec-text", s);
    let mut s = vec![0x01, 0x02, 0, 4];
    spec(&mut s, 0x1, false, "Zo".as_bytes());
    spec(&mut s, 0x9, true, b"p");
    spec(&mut s, 0x0, false, &"é".as_bytes()[..1]);
    spec(&mut s, 0x0, true, &"é!".as_bytes()[1..]);
    spec(&mut s, 0x2, true, &[0, 1, 2, 0xff]);
    spec(&mut s, 0x8, true, &[0x03, 0xe9]);
    c.add("spec-fragments-close", s);
    let mut s = vec![0x01 | (4 << 2), 0x00];
    spec(&mut s, 0x2, false, &[7; 300]);
    spec(&mut s, 0x0, false, &[8; 300]);
    spec(&mut s, 0x0, true, &[9; 300]);
    c.add("spec-binary-fragments-small-buffer", s);
    let mut s = vec![0x01, 0x00];
    // A 2000-byte fill frame (over the small 1024-byte frame limit).
    s.extend_from_slice(&[0x82 | 0x40 | 0x20, 0xd0, 0x07, b'x']);
    c.add("spec-fill-too-large", s);
    let mut s = vec![0x01, 0x00];
    spec(&mut s, 0x3, true, b"reserved");
    c.add("spec-reserved-opcode", s);
}

/// An SDP offer as Chromium writes one for the page (audio with Opus, the data channel).
fn browser_offer() -> String {
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Fz9q",
        "a=ice-pwd:Bq2nQ8uR1kQy2k3yCkd0L0vT",
        "a=fingerprint:sha-256 0F:3A:6C:1D:9E:55:0B:71:2C:88:4E:19:A7:3B:5D:60:11:FE:92:47:C3:0D:8A:6E:B4:25:7F:13:C9:E0:54:AB",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Fz9q",
        "a=ice-pwd:Bq2nQ8uR1kQy2k3yCkd0L0vT",
        "a=fingerprint:sha-256 0F:3A:6C:1D:9E:55:0B:71:2C:88:4E:19:A7:3B:5D:60:11:FE:92:47:C3:0D:8A:6E:B4:25:7F:13:C9:E0:54:AB",
        "a=setup:actpass",
        "a=mid:1",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
        "",
    ]
    .join("\r\n")
}

/// A 16-bit PCM mono WAV file, optionally with a `LIST` chunk before `fmt ` (as espeak-ng and
/// sox write some).
fn wav_file(samples: &[i16], rate: u32, list: bool) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    if list {
        body.extend_from_slice(b"LIST\x05\0\0\0INFOx\0");
    }
    body.extend_from_slice(b"fmt \x10\0\0\0");
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&rate.to_le_bytes());
    body.extend_from_slice(&(rate * 2).to_le_bytes());
    body.extend_from_slice(&2u16.to_le_bytes());
    body.extend_from_slice(&16u16.to_le_bytes());
    body.extend_from_slice(b"data");
    body.extend_from_slice(&((samples.len() * 2) as u32).to_le_bytes());
    body.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&body);
    file
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");

    let twilio = twilio_events();
    for target in ["twilio_event", "twilio_differential"] {
        let mut c = Corpus::new(&root, target);
        for (name, json) in &twilio {
            c.add(name, json);
        }
    }
    let openai = openai_events();
    for target in ["openai_event", "openai_differential"] {
        let mut c = Corpus::new(&root, target);
        for (name, json) in &openai {
            c.add(name, json);
        }
    }

    let mut c = Corpus::new(&root, "openai_live_event");
    for (name, json) in live_events() {
        c.add(name, json);
    }

    let mut c = Corpus::new(&root, "upgrade_request");
    for (name, req) in upgrade_requests() {
        c.add(name, req);
    }
    let mut c = Corpus::new(&root, "upgrade_response");
    for (name, res) in upgrade_responses() {
        c.add(name, res);
    }
    // Our own client request (what we send OpenAI) is a valid server-side request too.
    let mut out = [0u8; 512];
    let (n, _) = write_client_request(
        &mut out,
        "api.openai.com",
        "/v1/realtime?model=gpt-realtime",
        &[("Authorization", "Bearer sk-fuzz")],
        fixtures::CLIENT_KEY,
    )
    .expect("fits");
    Corpus { dir: root.join("upgrade_request"), count: 100 }.add("our-client-request", &out[..n]);

    let twilio_texts: Vec<String> = twilio.iter().take(6).map(|(_, j)| j.clone()).collect();
    decoder_seeds(&mut Corpus::new(&root, "ws_server_decoder"), true, &twilio_texts);
    let openai_texts: Vec<String> = openai.iter().take(6).map(|(_, j)| j.clone()).collect();
    decoder_seeds(&mut Corpus::new(&root, "ws_client_decoder"), false, &openai_texts);

    let mut c = Corpus::new(&root, "stream_token");
    let claims = StreamClaims {
        call_id: [0x11; 16],
        lead_id: [0x22; 16],
        expires_at: fixtures::NOW + 600,
        nonce: [7; 12],
    };
    let mint =
        |secret: &[u8], claims: &StreamClaims| StreamTokenMinter::new(secret).expect("strong").mint(claims);
    let raw = |t: &str| [&[0u8][..], t.as_bytes()].concat();
    let valid = mint(fixtures::TOKEN_SECRET, &claims);
    c.add("valid", raw(&valid));
    c.add("old-secret", raw(&mint(fixtures::OLD_TOKEN_SECRET, &claims)));
    c.add("foreign-secret", raw(&mint(fixtures::FOREIGN_SECRET, &claims)));
    let expired = StreamClaims { expires_at: fixtures::NOW - 31, ..claims };
    c.add("expired", raw(&mint(fixtures::TOKEN_SECRET, &expired)));
    let leeway = StreamClaims { expires_at: fixtures::NOW - 30, ..claims };
    c.add("within-leeway", raw(&mint(fixtures::TOKEN_SECRET, &leeway)));
    let mut flipped = valid.clone().into_bytes();
    flipped[50] ^= 1;
    c.add("flipped", [&[0u8][..], &flipped].concat());
    c.add("fake", raw("v1.abc.def"));
    c.add("v2", raw(&valid.replacen("v1.", "v2.", 1)));
    c.add("truncated", raw(&valid[..valid.len() - 1]));
    for (i, fill) in [0u8, 0x5a, 0xff].into_iter().enumerate() {
        let mut seed = vec![1u8];
        seed.extend((0..96).map(|j| fill ^ (j as u8)));
        c.add(&format!("round-trip-{i}"), seed);
    }

    // The call state machine reads operations with `arbitrary`: any bytes are a scenario.
    // Seeds of several lengths from a fixed xorshift stream give the fuzzer long scenarios
    // (calls that start, speak, barge in, reconnect) to mutate from the first run.
    let mut c = Corpus::new(&root, "call_state_machine");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (i, len) in [64usize, 256, 1024, 4096, 8192].into_iter().enumerate() {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        c.add(&format!("scenario-{i}"), bytes);
    }

    // POST /v1/realtime/calls bodies: byte 0 even = raw (byte 1 picks the content type: 0 SDP,
    // 1 multipart with boundary XyZ), odd = a generated form.
    let mut c = Corpus::new(&root, "calls_body");
    let offer = browser_offer();
    c.add("sdp-offer", [&[0u8, 0][..], offer.as_bytes()].concat());
    let form = |parts: &[(&str, &str)]| {
        let mut out = String::new();
        for (name, value) in parts {
            out.push_str(&format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        out.push_str("--XyZ--\r\n");
        out
    };
    let session = r#"{"type":"realtime","model":"gpt-realtime-2.1","audio":{"output":{"voice":"marin"}}}"#;
    for (name, body) in [
        ("multipart-sdp-session", form(&[("sdp", &offer), ("session", session)])),
        ("multipart-session-first", form(&[("session", session), ("sdp", &offer)])),
        ("multipart-sdp-only", form(&[("sdp", &offer)])),
        ("multipart-no-sdp", form(&[("session", session)])),
        ("multipart-unknown-part", form(&[("sdp", &offer), ("voice", "marin")])),
        ("multipart-bad-json", form(&[("sdp", &offer), ("session", "{\"type\":")])),
        ("multipart-empty-part", form(&[("sdp", "")])),
        ("multipart-no-end", "--XyZ\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\nv=0".to_owned()),
    ] {
        c.add(name, [&[0u8, 1][..], body.as_bytes()].concat());
    }
    c.add("generated", [&[1u8, 8, 0, 0, 0][..], b"v=0\r\n\x01"].concat());

    // WAV files: byte 0 even = the file, odd = a generated one.
    let mut c = Corpus::new(&root, "wav");
    let tone: Vec<i16> = (0..160).map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16).collect();
    for (name, rate) in [("pcm16-8k", 8000u32), ("pcm16-16k", 16_000), ("pcm16-22050", 22_050)] {
        c.add(name, [&[0u8][..], &wav_file(&tone, rate, false)].concat());
    }
    c.add("with-list-chunk", [&[0u8][..], &wav_file(&tone, 22_050, true)].concat());
    let mut stereo = wav_file(&tone, 8000, false);
    stereo[22] = 2;
    c.add("stereo", [&[0u8][..], &stereo].concat());
    c.add("header-only", [&[0u8][..], &b"RIFF\x04\0\0\0WAVE"[..]].concat());
    c.add("generated", [&[1u8][..], &[0x40, 0x1f, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 2, 0][..]].concat());

    for target in [
        "calls_body",
        "wav",
        "call_state_machine",
        "twilio_event",
        "twilio_differential",
        "openai_event",
        "openai_differential",
        "openai_live_event",
        "upgrade_request",
        "upgrade_response",
        "ws_server_decoder",
        "ws_client_decoder",
        "stream_token",
    ] {
        let n = fs::read_dir(root.join(target)).expect("written").count();
        println!("{target}: {n} seeds");
    }
}
