//! One simulated Twilio call: the signed WebSocket upgrade, `connected` and `start`, a `media`
//! frame on every tick of its phase, `mark`s echoed back once the audio before them has played
//! (one frame period later, as Twilio does), `stop` and the close handshake at the end.
//!
//! A call never writes on its own: what it has to send goes into its [`Outbox`] and the call
//! puts itself on the loop's dirty list, and the loop writes every dirty call once per tick
//! (media and due marks together). Only the upgrade request and `connected` + `start` are
//! flushed at once.
//!
//! Frames coming back are recognised by the id in their first bytes ([`super::frame`]) and
//! timed from their *scheduled* send time. In relay mode a call starts its media when the
//! gateway has played it the stand-in's greeting (so the OpenAI session is up and the gateway
//! relays frames one by one instead of holding them); in echo-floor mode once `connected` and
//! then `start` have come back (see `upgrade_answer`: the echo server does not set
//! `TCP_NODELAY`).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::ws::upgrade::{self, ClientHandshake, HandshakeError, Parse};
use callway_gateway::core::ws::{
    Control, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role, close_code,
};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::conn::{Flushed, Outbox, ReadOutcome, Sock};
use super::frame::{FrameId, FrameTemplate, decoded_len, for_each_frame_id};
use super::options::Mode;
use super::recorder::{Progress, Recorder, RunClock};
use super::scan::{TwilioIn, twilio_message};
use super::setup::{CallIdentity, splitmix};
use super::soak::SoakShared;
use super::soak::ledger::{FLIGHT_MS, Fault, Ledger};
use callway_gateway::core::twilio::MarkLabel;

/// Receive buffer of a call: the gateway's `media` + `mark` are under 1 KiB.
const RECV: usize = 16 * 1024;
/// Longest mark name echoed (the gateway's labels are at most 34 bytes).
const MARK_MAX: usize = 48;

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Idle,
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent, waiting for the 101.
    Upgrading,
    /// Upgraded (echo-floor mode): `connected` sent, waiting for its echo to send `start`.
    AwaitConnectedEcho,
    /// Echo-floor mode: `start` sent, waiting for its echo to start the media.
    AwaitStartEcho,
    /// Upgraded (relay mode): waiting for the greeting before sending media.
    AwaitGreeting,
    /// Sending media every frame period.
    Streaming,
    /// `stop` and a close frame sent: waiting for the gateway's close frame.
    HangingUp,
    /// Done, cleanly.
    Closed,
    /// Done, with a failure recorded.
    Failed,
}

impl State {
    /// Whether the call is over.
    pub fn is_done(self) -> bool {
        matches!(self, State::Closed | State::Failed)
    }
}

/// Per-loop structures a call adds itself to: the media wheel (by phase), the mark wheel (mark
/// echoes by due tick) and the list of calls with bytes to write this tick.
#[derive(Debug)]
pub struct Wheels {
    /// `media[phase]`: calls streaming in that phase.
    pub media: Vec<Vec<u32>>,
    /// `marks[tick % len]`: calls with a mark echo due at that tick.
    pub marks: Vec<Vec<u32>>,
    /// Calls with bytes to write.
    pub dirty: Vec<u32>,
}

impl Wheels {
    /// For `frame_ticks` phases.
    pub fn new(frame_ticks: u64) -> Self {
        let n = frame_ticks as usize;
        Self { media: vec![Vec::new(); n], marks: vec![Vec::new(); 2 * n + 1], dirty: Vec::new() }
    }
}

/// What a call reads of its loop.
pub struct CallEnv<'a> {
    /// The run's clock and schedule.
    pub clock: &'a RunClock,
    /// The last tick processed.
    pub tick: u64,
    /// Relay or echo floor.
    pub mode: Mode,
    /// The frame template.
    pub template: &'a FrameTemplate,
    /// Measurements.
    pub rec: &'a mut Recorder,
    /// Counters for the monitor.
    pub progress: &'a Progress,
    /// Wheels and the dirty list.
    pub wheels: &'a mut Wheels,
    /// A soak's shared state (none in a load run).
    pub soak: Option<&'a mut SoakShared>,
}

#[derive(Debug, Clone, Copy)]
struct PendingMark {
    due: u64,
    len: u8,
    name: [u8; MARK_MAX],
}

/// Everything of a call but its socket and decoder (so a decoded message, which borrows
/// those, can be handled against the rest).
#[derive(Debug)]
struct Core {
    global: u32,
    local: u32,
    state: State,
    out: Outbox,
    enc: Encoder,
    handshake: Option<ClientHandshake>,
    /// Twilio's `sequenceNumber` of the next message.
    twilio_seq: u64,
    /// Sequence number of the next media frame.
    next_seq: u32,
    /// Tick of frame 0.
    first_tick: u64,
    /// Frames received, one bit each.
    seen: Vec<u64>,
    received: u64,
    marks: VecDeque<PendingMark>,
    dirty: bool,
    /// `"},"streamSid":"MZ…"}`: the end of every media message.
    media_tail: Box<[u8]>,
    /// `","streamSid":"MZ…","mark":{"name":"`: the middle of every mark echo.
    mark_mid: Box<[u8]>,
    /// The whole `start` message.
    start_msg: Box<[u8]>,
    /// Fault windows (a soak's hang-ups and OpenAI drops).
    ledger: Ledger,
    /// The last tick the media wheel met this call.
    wheel_pass: u64,
    /// When the agent audio received so far has played out (ns since the origin): Twilio plays
    /// it in real time and echoes each mark when the audio before it has played.
    play_until: u64,
    /// When `connected` and `start` went out (ns since the origin): the first agent audio is
    /// measured from there.
    opened_at: u64,
    /// The gateway's response number in the last mark label received (a soak only).
    heard_response: u32,
    /// The last mark echoed as played: its response number and end (ms) (a soak only).
    played: (u32, u32),
}

/// One simulated call.
#[derive(Debug)]
pub struct Caller {
    stream: Option<Sock>,
    target: Option<SocketAddr>,
    recv: RecvBuf,
    dec: Decoder,
    core: Core,
}

fn digits(n: u64, buf: &mut itoa::Buffer) -> &[u8] {
    buf.format(n).as_bytes()
}

impl Caller {
    /// Call `global` (its index in the run), slot `local` in its loop.
    pub fn new(global: u32, local: u32, identity: &CallIdentity, seed: u64) -> Self {
        let mut enc_seed = [0u8; 32];
        for (i, chunk) in enc_seed.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&splitmix(seed ^ (u64::from(global) << 8) ^ i as u64).to_le_bytes());
        }
        let sid = &identity.stream_sid;
        Self {
            stream: None,
            target: None,
            recv: RecvBuf::with_capacity(0),
            dec: Decoder::new(Role::Client, Limits::TWILIO),
            core: Core {
                global,
                local,
                state: State::Idle,
                out: Outbox::default(),
                enc: Encoder::client_with_seed(enc_seed),
                handshake: None,
                twilio_seq: 1,
                next_seq: 0,
                first_tick: 0,
                seen: Vec::new(),
                received: 0,
                marks: VecDeque::new(),
                dirty: false,
                media_tail: format!(r#""}},"streamSid":"{sid}"}}"#).into_bytes().into(),
                mark_mid: format!(r#"","streamSid":"{sid}","mark":{{"name":""#).into_bytes().into(),
                start_msg: start_message(identity, global).into_bytes().into(),
                ledger: Ledger::default(),
                wheel_pass: u64::MAX,
                play_until: 0,
                opened_at: 0,
                heard_response: 0,
                played: (0, 0),
            },
        }
    }

    /// The call's index in the run.
    pub fn global(&self) -> u32 {
        self.core.global
    }

    /// Where the call is.
    pub fn state(&self) -> State {
        self.core.state
    }

    /// Frames sent and not (yet) back.
    pub fn outstanding(&self) -> u64 {
        u64::from(self.core.next_seq) - self.core.received
    }

    /// Whether the call belongs in the media wheel's list of `phase` at tick `t`: streaming, of
    /// that phase, and not met yet in this tick's pass (a slot that took a new call may sit in
    /// a list twice, or in its previous call's phase).
    pub fn in_media_wheel(&mut self, t: u64, phase: u64, s: &super::pacing::Schedule) -> bool {
        let c = &mut self.core;
        let keep = c.state == State::Streaming && s.phase(c.global) == phase && c.wheel_pass != t;
        if keep {
            c.wheel_pass = t;
        }
        keep
    }

    /// Tick of the first media frame.
    pub fn first_tick(&self) -> u64 {
        self.core.first_tick
    }

    /// Opens the TCP connection (non-blocking), with TLS over it when `tls` is given, and
    /// registers it edge-triggered.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        tls: Option<&Arc<rustls::ClientConfig>>,
        registry: &Registry,
        token: Token,
        env: &mut CallEnv<'_>,
    ) {
        self.target = Some(addr);
        let result = TcpStream::connect(addr).and_then(|mut s| {
            registry.register(&mut s, token, Interest::READABLE | Interest::WRITABLE)?;
            Ok(match tls {
                None => Sock::plain(s),
                Some(config) => {
                    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                    let session =
                        rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
                    Sock::tls(s, session)
                }
            })
        });
        match result {
            Ok(s) => {
                self.stream = Some(s);
                self.recv = RecvBuf::with_capacity(RECV);
                self.core.state = State::Connecting;
            }
            Err(e) => self.fail(format!("cannot connect to {addr}: {e}"), env),
        }
    }

    /// Handles a readiness event.
    pub fn on_event(
        &mut self,
        readable: bool,
        writable: bool,
        env: &mut CallEnv<'_>,
        identity: &CallIdentity,
        host: &str,
    ) {
        if self.core.state == State::Connecting {
            let Some(stream) = self.stream.as_mut() else { return };
            match stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    let addr = self.target.map_or_else(|| "the gateway".to_owned(), |a| a.to_string());
                    return self.fail(format!("cannot connect to {addr}: {e}"), env);
                }
                Ok(None) => {}
            }
            match stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return, // not yet
                Err(e) => return self.fail(format!("cannot connect: {e}"), env),
            }
            let _ = stream.set_nodelay(true);
            self.send_upgrade(identity, host, env);
            return;
        }
        if writable && self.stream.as_ref().is_some_and(|s| s.wants_flush(&self.core.out)) {
            self.flush(env);
        }
        if readable {
            self.read(env);
        }
    }

    fn send_upgrade(&mut self, identity: &CallIdentity, host: &str, env: &mut CallEnv<'_>) {
        let mut key = [0u8; 16];
        let k = splitmix(u64::from(self.core.global) ^ 0x5eed);
        key[..8].copy_from_slice(&k.to_le_bytes());
        key[8..].copy_from_slice(&splitmix(k).to_le_bytes());
        let mut head = [0u8; 2048];
        let headers =
            [("x-twilio-signature", identity.signature.as_str()), ("User-Agent", "Twilio.TmeWs/1.0")];
        match upgrade::write_client_request(&mut head, host, &identity.path, &headers, key) {
            Ok((n, handshake)) => {
                self.core.out.push_raw(&head[..n]);
                self.core.handshake = Some(handshake);
                self.core.state = State::Upgrading;
                self.flush(env);
            }
            Err(e) => self.fail(format!("upgrade request does not fit: {e}"), env),
        }
    }

    fn read(&mut self, env: &mut CallEnv<'_>) {
        loop {
            let Some(stream) = self.stream.as_mut() else { return };
            let outcome = match stream.read_into(&mut self.recv) {
                Ok(o) => o,
                Err(e) => return self.fail(format!("read from the gateway failed: {e}"), env),
            };
            match outcome {
                ReadOutcome::Eof => {
                    self.process(env);
                    return self.peer_gone(env);
                }
                ReadOutcome::BufferFull => {
                    return self.fail("a message from the gateway is larger than 16 KiB".into(), env);
                }
                ReadOutcome::Drained(0) => return,
                ReadOutcome::Drained(_) => {
                    self.process(env);
                    return;
                }
                ReadOutcome::More(_) => self.process(env),
            }
            if self.core.state.is_done() {
                return;
            }
        }
    }

    fn peer_gone(&mut self, env: &mut CallEnv<'_>) {
        match self.core.state {
            State::HangingUp => self.finish(State::Closed, env),
            State::Closed | State::Failed => {}
            State::Upgrading => {
                self.fail("the gateway closed the connection without answering the upgrade".into(), env)
            }
            _ => self.fail("the gateway closed the TCP connection without a close frame".into(), env),
        }
    }

    /// Handles everything complete in the receive buffer.
    fn process(&mut self, env: &mut CallEnv<'_>) {
        if self.core.state == State::Upgrading && !self.upgrade_answer(env) {
            return;
        }
        let now = env.clock.now_ns();
        loop {
            if self.core.state.is_done() {
                return;
            }
            let (consumed, close) = match self.dec.decode(&mut self.recv) {
                Ok(Decoded::Incomplete { .. }) => return,
                Err(e) => {
                    let reason = format!("bad WebSocket frame from the gateway: {e}");
                    return self.fail(reason, env);
                }
                Ok(Decoded::Frame { consumed, message }) => match message {
                    Some(Message::Text(text)) => {
                        self.core.on_text(text, now, env);
                        (consumed, None)
                    }
                    Some(Message::Ping(p)) => {
                        let core = &mut self.core;
                        core.out.push_frame(&mut core.enc, OpCode::Control(Control::Pong), &[p]);
                        core.mark_dirty(env);
                        (consumed, None)
                    }
                    Some(Message::Close(c)) => (consumed, Some(c.map(|(code, _)| code))),
                    Some(Message::Pong(_) | Message::Binary(_)) | None => (consumed, None),
                },
            };
            self.recv.consume(consumed);
            if let Some(code) = close {
                return self.on_close(code, env);
            }
        }
    }

    /// Reads the answer to the upgrade; `false` while incomplete or refused.
    fn upgrade_answer(&mut self, env: &mut CallEnv<'_>) -> bool {
        let Some(hs) = self.core.handshake.as_ref() else { return false };
        match hs.read_response(self.recv.data()) {
            Ok(Parse::Partial) => false,
            Ok(Parse::Complete(head_len)) => {
                self.recv.consume(head_len);
                self.core.handshake = None;
                match env.mode {
                    Mode::Relay => {
                        self.core.opened_at = env.clock.now_ns();
                        self.core.send_opening();
                        self.core.state = State::AwaitGreeting;
                    }
                    Mode::EchoFloor => {
                        // The echo server writes each echo on its own without TCP_NODELAY: with
                        // two of its echoes unacknowledged, Nagle holds the second until our
                        // (delayed) ACK rides on our next frame, 20 ms later, and every echo
                        // after it stays 20 ms late. So nothing is sent before the previous
                        // message's echo is back: `connected`, its echo, `start`, its echo,
                        // then media (each frame then acknowledges the previous echo).
                        self.core.send_connected();
                        self.core.state = State::AwaitConnectedEcho;
                    }
                }
                self.flush(env);
                true
            }
            Err(HandshakeError::Refused { status, head_len }) => {
                let body = String::from_utf8_lossy(&self.recv.data()[head_len..]);
                let body: String = body.trim().chars().take(300).collect();
                self.fail(format!("the gateway refused the upgrade: HTTP {status}: {body}"), env);
                false
            }
            Err(e) => {
                self.fail(format!("bad upgrade answer from the gateway: {e}"), env);
                false
            }
        }
    }

    fn on_close(&mut self, code: Option<u16>, env: &mut CallEnv<'_>) {
        if self.core.state == State::HangingUp {
            return self.finish(State::Closed, env);
        }
        // The gateway ended the call before we hung up: answer its close, then report it.
        let core = &mut self.core;
        let echo = code.unwrap_or(close_code::NORMAL);
        core.out.push_frame(&mut core.enc, OpCode::Control(Control::Close), &[&echo.to_be_bytes()]);
        self.flush(env);
        self.fail(format!("the gateway closed the stream early (close code {echo})"), env);
    }

    /// Sends the frame due at tick `t` (the loop calls this on the ticks of the call's phase).
    #[inline]
    pub fn send_media(&mut self, t: u64, env: &mut CallEnv<'_>) {
        if self.core.state == State::Streaming && t >= self.core.first_tick {
            self.core.push_media(env);
        }
    }

    /// Sends the mark echoes due by tick `t`.
    pub fn send_due(&mut self, t: u64, env: &mut CallEnv<'_>) {
        if !matches!(self.core.state, State::Streaming | State::AwaitGreeting) {
            self.core.marks.clear();
            return;
        }
        let mut popped = false;
        while let Some(m) = self.core.marks.front().copied() {
            if m.due > t {
                if !popped {
                    // Due beyond the wheel's turn (long agent audio): come back then.
                    let len = env.wheels.marks.len();
                    env.wheels.marks[(m.due as usize) % len].push(self.core.local);
                }
                break;
            }
            popped = true;
            self.core.marks.pop_front();
            let name = &m.name[..usize::from(m.len)];
            if env.soak.is_some()
                && let Some(l) = MarkLabel::parse(name)
            {
                let p = &mut self.core.played;
                *p = if l.response == p.0 { (p.0, p.1.max(l.end_ms)) } else { (l.response, l.end_ms) };
            }
            self.core.push_mark_echo(name, env);
        }
    }

    /// A fault the soak injects now: frames in flight are accounted to it ([`Ledger`]).
    pub fn fault(&mut self, kind: Fault, env: &CallEnv<'_>) {
        let frame_ms = (env.clock.schedule.frame_ns() / 1_000_000).max(1) as u32;
        let c = &mut self.core;
        c.ledger.open(kind, &c.seen, c.next_seq, FLIGHT_MS / frame_ms);
    }

    /// Hangs up in the middle of the call (a soak's random hang-up): `stop` and close at once,
    /// the frames in flight cut by the hang-up.
    pub fn hang_up_early(&mut self, identity: &CallIdentity, env: &mut CallEnv<'_>) {
        self.fault(Fault::HangUp, env);
        if let Some(s) = env.soak.as_deref_mut() {
            s.counts.hang_ups += 1;
        }
        self.hang_up(identity, env);
    }

    /// Hangs up: `stop`, then a close frame; the call is over when the gateway's close comes.
    pub fn hang_up(&mut self, identity: &CallIdentity, env: &mut CallEnv<'_>) {
        match self.core.state {
            State::Streaming | State::AwaitGreeting | State::AwaitConnectedEcho | State::AwaitStartEcho => {}
            State::Idle => return self.finish(State::Closed, env),
            State::Connecting | State::Upgrading => {
                return self.fail("still connecting when the run ended".into(), env);
            }
            _ => return,
        }
        if self.core.state == State::Streaming {
            Progress::sub(&env.progress.streaming, 1);
        }
        self.core.marks.clear();
        let core = &mut self.core;
        let mut seq = itoa::Buffer::new();
        let seq = digits(core.twilio_seq, &mut seq);
        core.twilio_seq += 1;
        let sid = identity.stream_sid.as_bytes();
        core.out.push_text(
            &mut core.enc,
            &[
                br#"{"event":"stop","sequenceNumber":""#,
                seq,
                br#"","stop":{"accountSid":""#,
                identity.account_sid.as_bytes(),
                br#"","callSid":""#,
                identity.call_sid.as_bytes(),
                br#""},"streamSid":""#,
                sid,
                br#""}"#,
            ],
        );
        core.out.push_frame(
            &mut core.enc,
            OpCode::Control(Control::Close),
            &[&close_code::NORMAL.to_be_bytes()],
        );
        core.state = State::HangingUp;
        core.mark_dirty(env);
    }

    /// Gives up on a call that did not finish in time.
    pub fn abandon(&mut self, env: &mut CallEnv<'_>) {
        if !self.core.state.is_done() {
            let why = match self.core.state {
                State::HangingUp => "no close frame from the gateway after hang-up".to_owned(),
                s => format!("still {s:?} when the run ended"),
            };
            self.fail(why, env);
        }
    }

    /// Writes what is waiting (the loop calls this for dirty calls once per tick).
    pub fn flush(&mut self, env: &mut CallEnv<'_>) {
        self.core.dirty = false;
        let Some(stream) = self.stream.as_mut() else {
            self.core.out.clear();
            return;
        };
        match stream.flush(&mut self.core.out) {
            Ok(Flushed::All | Flushed::Partial) => {}
            Err(e) => self.fail(format!("write to the gateway failed: {e}"), env),
        }
    }

    fn finish(&mut self, state: State, env: &mut CallEnv<'_>) {
        if self.core.state.is_done() {
            return;
        }
        if self.core.state == State::Streaming {
            Progress::sub(&env.progress.streaming, 1);
        }
        self.core.state = state;
        if let Some(s) = env.soak.as_deref_mut() {
            let settled = self.core.ledger.settle(&self.core.seen, self.core.next_seq);
            s.counts.cut_by_hangup += settled.cut_by_hangup;
            s.counts.cut_by_openai_drop += settled.cut_by_openai_drop;
            s.checks.forget(self.core.global);
        }
        self.core.marks.clear();
        self.core.out.clear();
        self.stream = None; // closes the socket (and removes it from epoll)
        self.recv = RecvBuf::with_capacity(0);
        Progress::add(&env.progress.finished, 1);
    }

    fn fail(&mut self, why: String, env: &mut CallEnv<'_>) {
        if self.core.state.is_done() {
            return;
        }
        env.rec.failure(why);
        Progress::add(&env.progress.failed, 1);
        self.finish(State::Failed, env);
    }
}

impl Core {
    fn mark_dirty(&mut self, env: &mut CallEnv<'_>) {
        if !self.dirty {
            self.dirty = true;
            env.wheels.dirty.push(self.local);
        }
    }

    /// `connected` and `start` (sequence number 1), right after the 101.
    fn send_opening(&mut self) {
        self.send_connected();
        self.out.push_text(&mut self.enc, &[&self.start_msg]);
        self.twilio_seq = 2;
    }

    /// `connected` alone.
    fn send_connected(&mut self) {
        self.out.push_text(&mut self.enc, &[br#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#]);
    }

    /// Media starts on the next tick of the call's phase.
    fn start_media(&mut self, env: &mut CallEnv<'_>) {
        let s = &env.clock.schedule;
        self.first_tick = s.first_media_tick(self.global, env.tick);
        self.state = State::Streaming;
        env.wheels.media[s.phase(self.global) as usize].push(self.local);
        Progress::add(&env.progress.streaming, 1);
    }

    #[inline]
    fn push_media(&mut self, env: &mut CallEnv<'_>) {
        let seq = self.next_seq;
        let frame_ms = env.clock.schedule.frame_ns() / 1_000_000;
        let id = FrameId { call: self.global, seq }.encode_b64();
        let (mut b1, mut b2, mut b3) = (itoa::Buffer::new(), itoa::Buffer::new(), itoa::Buffer::new());
        let twilio_seq = digits(self.twilio_seq, &mut b1);
        let chunk = digits(u64::from(seq) + 1, &mut b2);
        let timestamp = digits(u64::from(seq) * frame_ms, &mut b3);
        self.out.push_text(
            &mut self.enc,
            &[
                br#"{"event":"media","sequenceNumber":""#,
                twilio_seq,
                br#"","media":{"track":"inbound","chunk":""#,
                chunk,
                br#"","timestamp":""#,
                timestamp,
                br#"","payload":""#,
                &id,
                &env.template.tail_b64,
                &self.media_tail,
            ],
        );
        self.twilio_seq += 1;
        self.next_seq += 1;
        env.rec.counts.sent += 1;
        Progress::add(&env.progress.sent, 1);
        self.mark_dirty(env);
    }

    fn push_mark_echo(&mut self, name: &[u8], env: &mut CallEnv<'_>) {
        let mut b = itoa::Buffer::new();
        let seq = digits(self.twilio_seq, &mut b);
        self.twilio_seq += 1;
        self.out.push_text(
            &mut self.enc,
            &[br#"{"event":"mark","sequenceNumber":""#, seq, &self.mark_mid, name, br#""}}"#],
        );
        env.rec.counts.marks_echoed += 1;
        self.mark_dirty(env);
    }

    fn on_text(&mut self, text: &[u8], now: u64, env: &mut CallEnv<'_>) {
        match twilio_message(text) {
            TwilioIn::Media { payload } => self.on_media(payload, now, env),
            TwilioIn::Mark { name } => {
                if name.len() > MARK_MAX || !matches!(self.state, State::Streaming | State::AwaitGreeting) {
                    return;
                }
                if env.soak.is_some()
                    && let Some(l) = MarkLabel::parse(name)
                {
                    self.heard_response = l.response;
                }
                // Twilio echoes a mark once the audio before it has played.
                let due = env.clock.schedule.tick_of(self.play_until.max(now)).max(env.tick + 1);
                let mut m = PendingMark { due, len: name.len() as u8, name: [0; MARK_MAX] };
                m.name[..name.len()].copy_from_slice(name);
                self.marks.push_back(m);
                let len = env.wheels.marks.len();
                env.wheels.marks[(due as usize) % len].push(self.local);
            }
            TwilioIn::Clear => {
                env.rec.counts.clears += 1;
                // Twilio drops the unplayed audio and echoes every pending mark at once (they
                // mean flushed, not played).
                let played = if self.played.0 == self.heard_response { self.played.1 } else { 0 };
                while let Some(m) = self.marks.pop_front() {
                    self.push_mark_echo(&m.name[..usize::from(m.len)], env);
                }
                self.play_until = now;
                if let Some(s) = env.soak.as_deref_mut() {
                    s.checks.clear(self.global, played);
                }
            }
            TwilioIn::Other { event } => match (self.state, event) {
                (State::AwaitConnectedEcho, b"connected") => {
                    self.out.push_text(&mut self.enc, &[&self.start_msg]);
                    self.twilio_seq = 2;
                    self.state = State::AwaitStartEcho;
                    self.mark_dirty(env);
                }
                (State::AwaitStartEcho, b"start") => self.start_media(env),
                _ => {}
            },
            TwilioIn::Malformed => env.rec.counts.malformed += 1,
        }
    }

    fn on_media(&mut self, payload: &[u8], now: u64, env: &mut CallEnv<'_>) {
        let frame_bytes = env.template.frame_bytes;
        let schedule = env.clock.schedule;
        let timeline = env.clock.timeline;
        if let Some(bytes) = decoded_len(payload) {
            self.play_until = self.play_until.max(now) + (bytes as u64 / 8) * 1_000_000;
        }
        let Self { global, first_tick, seen, received, next_seq, ledger, .. } = self;
        let mut scratch = std::mem::take(&mut env.rec.scratch);
        let rec = &mut *env.rec;
        let scan = for_each_frame_id(payload, frame_bytes, &mut scratch, |id| {
            if id.call != *global {
                rec.counts.misrouted += 1;
                return;
            }
            if id.seq >= *next_seq {
                rec.counts.unknown += 1;
                return;
            }
            let (word, bit) = ((id.seq / 64) as usize, id.seq % 64);
            if seen.len() <= word {
                seen.resize(word + 1, 0);
            }
            if seen[word] & (1 << bit) != 0 {
                rec.counts.duplicated += 1;
                return;
            }
            seen[word] |= 1 << bit;
            *received += 1;
            rec.counts.received += 1;
            ledger.on_back(id.seq);
            rec.round_trip(&timeline, schedule.frame_at(*first_tick, id.seq), now);
        });
        env.rec.scratch = scratch;
        if scan.frames > 0 {
            Progress::add(&env.progress.received, u64::from(scan.frames));
        }
        env.rec.counts.other_audio += u64::from(scan.other_blocks);
        if scan.undecodable {
            env.rec.counts.undecodable += 1;
        }
        if self.state == State::AwaitGreeting {
            // The greeting (or any audio) came through: the OpenAI leg is up.
            env.rec.first_audio.record(now.saturating_sub(self.opened_at));
            self.start_media(env);
        }
    }
}

/// Twilio's `start` for a call (protocols.md A2), with the call's index as a custom parameter.
fn start_message(id: &CallIdentity, global: u32) -> String {
    format!(
        concat!(
            r#"{{"event":"start","sequenceNumber":"1","start":{{"accountSid":"{ac}","streamSid":"{mz}","#,
            r#""callSid":"{ca}","tracks":["inbound"],"mediaFormat":{{"encoding":"audio/x-mulaw","#,
            r#""sampleRate":8000,"channels":1}},"customParameters":{{"loadgen_call":"{i}"}}}},"#,
            r#""streamSid":"{mz}"}}"#
        ),
        ac = id.account_sid,
        mz = id.stream_sid,
        ca = id.call_sid,
        i = global
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::pacing::{Schedule, Timeline};
    use callway_gateway::core::twilio::{TwilioEvent, parse_event};
    use std::time::{Duration, Instant};

    fn identity() -> CallIdentity {
        CallIdentity {
            path: "/api/twilio/media-stream/x".into(),
            signature: "sig".into(),
            stream_sid: "MZ00000000000000000000000000000001".into(),
            call_sid: "CA00000000000000000000000000000001".into(),
            account_sid: "AC00000000000000000000000000000001".into(),
        }
    }

    struct World {
        clock: RunClock,
        template: FrameTemplate,
        rec: Recorder,
        progress: Progress,
        wheels: Wheels,
    }

    impl World {
        fn new() -> Self {
            let ms = Duration::from_millis;
            let schedule = Schedule::new(ms(1), ms(20), 10, ms(0)).unwrap();
            let timeline = Timeline::new(ms(0), ms(0), ms(60_000), ms(0), ms(0));
            World {
                clock: RunClock { schedule, timeline, origin: Instant::now() },
                template: FrameTemplate::new(20),
                rec: Recorder::default(),
                progress: Progress::default(),
                wheels: Wheels::new(20),
            }
        }

        fn env(&mut self, tick: u64) -> CallEnv<'_> {
            CallEnv {
                clock: &self.clock,
                tick,
                mode: Mode::Relay,
                template: &self.template,
                rec: &mut self.rec,
                progress: &self.progress,
                wheels: &mut self.wheels,
                soak: None,
            }
        }
    }

    /// The text messages in `out`, unmasked (client frames).
    fn sent_texts(out: &mut Outbox) -> Vec<Vec<u8>> {
        let mut wire = Vec::new();
        out.flush(&mut wire).unwrap();
        let mut buf = RecvBuf::with_capacity(1 << 16);
        buf.push(&wire);
        let mut dec = Decoder::new(Role::Server, Limits::TWILIO);
        let mut texts = Vec::new();
        while let Ok(Decoded::Frame { consumed, message }) = dec.decode(&mut buf) {
            if let Some(Message::Text(t)) = message {
                texts.push(t.to_vec());
            }
            buf.consume(consumed);
        }
        texts
    }

    #[test]
    fn media_and_mark_echoes_pass_the_gateways_parser() {
        let mut w = World::new();
        let mut c = Caller::new(3, 0, &identity(), 1);
        c.core.state = State::Streaming;
        c.core.twilio_seq = 2;
        c.core.push_media(&mut w.env(3));
        c.core.push_media(&mut w.env(23));
        c.core.push_mark_echo(b"r2-c1-20", &mut w.env(30));
        assert_eq!(w.wheels.dirty, vec![0], "dirty once");
        let mut texts = sent_texts(&mut c.core.out);
        assert_eq!(texts.len(), 3);
        for (i, t) in texts.iter_mut().take(2).enumerate() {
            match parse_event(t).unwrap() {
                TwilioEvent::Media(m) => {
                    let bytes = base64_simd::STANDARD.decode_to_vec(m.payload).unwrap();
                    assert_eq!(bytes.len(), 160);
                    assert_eq!(FrameId::decode(&bytes), Some(FrameId { call: 3, seq: i as u32 }));
                }
                other => panic!("{other:?}"),
            }
        }
        let v: serde_json::Value = serde_json::from_slice(&texts[1]).unwrap();
        assert_eq!((v["sequenceNumber"].as_str(), v["media"]["chunk"].as_str()), (Some("3"), Some("2")));
        assert_eq!(v["media"]["timestamp"], "20");
        assert!(matches!(parse_event(&mut texts[2]).unwrap(), TwilioEvent::Mark { .. }));
        let v: serde_json::Value = serde_json::from_slice(&texts[2]).unwrap();
        assert_eq!((v["sequenceNumber"].as_str(), v["mark"]["name"].as_str()), (Some("4"), Some("r2-c1-20")));
        assert_eq!(w.rec.counts.sent, 2);
    }

    #[test]
    fn frames_coming_back_are_timed_once_and_marks_wait_a_frame() {
        let mut w = World::new();
        let mut c = Caller::new(3, 0, &identity(), 1);
        c.core.state = State::AwaitGreeting;
        // The greeting: not a frame, but it starts the media on the call's next phase tick.
        let greeting = base64_simd::STANDARD.encode_to_string([0xFFu8; 160]);
        let msg = format!(r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{greeting}"}}}}"#);
        c.core.on_text(msg.as_bytes(), 1_000_000, &mut w.env(1));
        assert_eq!(c.state(), State::Streaming);
        assert_eq!(c.first_tick(), 3, "phase 3, first phase tick after tick 1");
        assert_eq!(w.wheels.media[3], vec![0]);
        assert_eq!(w.rec.counts.other_audio, 1);
        c.send_media(3, &mut w.env(3));
        let mut frame = vec![0xFFu8; 160];
        frame[..12].copy_from_slice(&FrameId { call: 3, seq: 0 }.encode());
        let payload = base64_simd::STANDARD.encode_to_string(&frame);
        let back = format!(r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{payload}"}}}}"#);
        c.core.on_text(back.as_bytes(), 3_700_000, &mut w.env(3));
        c.core.on_text(back.as_bytes(), 3_800_000, &mut w.env(3));
        assert_eq!((w.rec.counts.received, w.rec.counts.duplicated), (1, 1));
        assert_eq!(c.outstanding(), 0);
        let s = w.rec.window.summary();
        assert_eq!(s.count, 1);
        assert!((s.p50_ms - 0.7).abs() < 0.01, "timed from the scheduled send at 3 ms: {s:?}");
        // Another call's frame is misrouted; a frame never sent is unknown.
        frame[..12].copy_from_slice(&FrameId { call: 4, seq: 0 }.encode());
        let other = base64_simd::STANDARD.encode_to_string(&frame);
        c.core.on_text(
            format!(r#"{{"event":"media","media":{{"payload":"{other}"}}}}"#).as_bytes(),
            4_000_000,
            &mut w.env(4),
        );
        frame[..12].copy_from_slice(&FrameId { call: 3, seq: 9 }.encode());
        let later = base64_simd::STANDARD.encode_to_string(&frame);
        c.core.on_text(
            format!(r#"{{"event":"media","media":{{"payload":"{later}"}}}}"#).as_bytes(),
            4_000_000,
            &mut w.env(4),
        );
        assert_eq!((w.rec.counts.misrouted, w.rec.counts.unknown), (1, 1));
        // A mark is echoed once the audio before it has played, in real time: five 20 ms
        // payloads came from 1 ms on (the greeting, the frame twice, two foreign ones), so the
        // mark after them is due at 101 ms.
        c.core.on_text(
            br#"{"event":"mark","streamSid":"MZ1","mark":{"name":"r2-c1-20"}}"#,
            4_000_000,
            &mut w.env(4),
        );
        assert_eq!(w.wheels.marks[101 % w.wheels.marks.len()], vec![0]);
        c.core.out.clear();
        c.send_due(60, &mut w.env(60)); // the wheel's slot of tick 101 comes first at 60
        assert!(c.core.out.is_empty());
        assert_eq!(w.wheels.marks[101 % w.wheels.marks.len()], vec![0, 0], "back on the wheel");
        c.send_due(100, &mut w.env(100));
        assert!(c.core.out.is_empty());
        c.send_due(101, &mut w.env(101));
        assert_eq!(w.rec.counts.marks_echoed, 1);
    }

    #[test]
    fn a_clear_echoes_the_pending_marks_at_once_and_reports_what_had_played() {
        let mut w = World::new();
        let mut shared =
            SoakShared { checks: crate::loadgen::soak::checks::Checks::new(4), ..SoakShared::default() };
        let mut c = Caller::new(3, 0, &identity(), 1);
        c.core.state = State::Streaming;
        let audio = base64_simd::STANDARD.encode_to_string([0xFFu8; 800]); // 100 ms
        let media = format!(r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{audio}"}}}}"#);
        for (i, end) in [100u32, 200, 300].iter().enumerate() {
            let mut e = w.env(0);
            e.soak = Some(&mut shared);
            c.core.on_text(media.as_bytes(), 0, &mut e);
            let mark =
                format!(r#"{{"event":"mark","streamSid":"MZ1","mark":{{"name":"r4-c{}-{end}"}}}}"#, i + 1);
            c.core.on_text(mark.as_bytes(), 0, &mut e);
        }
        // The first 100 ms played: its mark is echoed at 100 ms, the others wait.
        {
            let mut e = w.env(100);
            e.soak = Some(&mut shared);
            c.send_due(100, &mut e);
        }
        assert_eq!((w.rec.counts.marks_echoed, c.core.played), (1, (4, 100)));
        shared.checks.barge_in(3, 0);
        {
            let mut e = w.env(150);
            e.soak = Some(&mut shared);
            c.core.on_text(br#"{"event":"clear","streamSid":"MZ1"}"#, 150_000_000, &mut e);
        }
        assert_eq!(w.rec.counts.marks_echoed, 3, "both pending marks echoed with the clear");
        assert!(c.core.marks.is_empty());
        // The truncate is checked against the 100 ms played, not the 300 ms flushed.
        shared.checks.truncate(3, 120);
        assert_eq!((shared.checks.counts.cleared, shared.checks.counts.truncates_beyond_played), (1, 1));
    }

    #[test]
    fn start_has_twilios_shape() {
        let id = CallIdentity {
            path: String::new(),
            signature: String::new(),
            stream_sid: "MZ1".into(),
            call_sid: "CA1".into(),
            account_sid: "AC1".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&start_message(&id, 4)).unwrap();
        assert_eq!(v["event"], "start");
        assert_eq!(v["sequenceNumber"], "1");
        assert_eq!(v["streamSid"], "MZ1");
        assert_eq!(v["start"]["callSid"], "CA1");
        assert_eq!(v["start"]["accountSid"], "AC1");
        assert_eq!(v["start"]["mediaFormat"]["sampleRate"], 8000);
        assert_eq!(v["start"]["customParameters"]["loadgen_call"], "4");
        // The gateway's own parser accepts it.
        let mut raw = start_message(&id, 4).into_bytes();
        let ev = callway_gateway::core::twilio::parse_event(&mut raw).unwrap();
        assert!(matches!(ev, callway_gateway::core::twilio::TwilioEvent::Start(_)));
    }
}
