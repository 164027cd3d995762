//! The WebRTC side of a session: the thin shell around str0m (sans-IO ICE-lite, DTLS-SRTP,
//! SCTP) and an [`RtcAgent`], the protocol spoken on the data channel: the Realtime GA
//! [`Session`] (`POST /v1/realtime/calls`) or a GPT-Live session (`POST /v1/live/sessions`,
//! `crate::live::webrtc`). One transport, two protocols, each agent's behaviour its own code.
//!
//! One task per call owns the loopback UDP socket, the `Rtc`, the Opus codec and the agent:
//! datagrams and str0m's timers go into the `Rtc`; text on the `oai-events` data channel goes
//! to [`RtcAgent::on_text`] and the agent's events go back on it as text; the caller's Opus
//! frames are decoded and handed to [`RtcAgent::on_input_samples`] (turn detection runs on
//! their energy); every 20 ms the agent gives a frame of its voice (or silence), Opus encoded
//! and sent on the audio track with a 48 kHz RTP clock.
//!
//! The agent's first event goes out when the data channel opens (`session.created` on
//! Realtime, `session.started` on Live), as the service does. The session ends when the
//! channel closes, ICE disconnects, the peer stays silent (no datagram) for [`IDLE_LIMIT`],
//! the session cap is reached, or the simulator shuts down. Faults (`Fault`) apply to
//! WebSocket sessions only.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opusic_c::{Application, Channels, Decoder, Encoder, SampleRate};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::time::{Instant, MissedTickBehavior};

use crate::playout::{FRAME_SAMPLES, RATE};
use crate::record::{RecordedEvent, SessionEnd, SessionRecord};
use crate::session::Session;
use crate::state::{Shared, shutdown_signalled};
use crate::ws::{Batch, render};

/// The protocol a WebRTC session speaks on its data channel, and its voice. Audio is mono at
/// [`RATE`] both ways (the shell converts from and to Opus at 48 kHz RTP time).
pub(crate) trait RtcAgent: Send + 'static {
    /// The data channel opened: the session's first event is due.
    fn on_open(&mut self, now: Instant);
    /// A text message on the channel; returns its event type for the record (`"?"` if none).
    fn on_text(&mut self, text: &str, now: Instant) -> String;
    /// A binary message on the channel (the API speaks text only).
    fn on_binary(&mut self);
    /// The sample rate [`RtcAgent::on_input_samples`] expects.
    fn input_rate(&self) -> u32;
    /// Decoded caller audio at [`RtcAgent::input_rate`].
    fn on_input_samples(&mut self, samples: &[i16], now: Instant);
    /// The next 20 ms of the agent's voice at [`RATE`], `None` for silence.
    fn pull_output_frame(&mut self) -> Option<Vec<i16>>;
    /// The events queued for the channel as wire text, in order: each checked against the
    /// server schema when `check` is set (violations kept in `batch`), recorded at `at` when
    /// given.
    fn take_outgoing(&mut self, check: bool, at: Option<Duration>, batch: &mut Batch) -> Vec<String>;
    /// When [`RtcAgent::on_timer`] has work.
    fn next_due(&self) -> Option<Instant>;
    /// Does the work due at `now`.
    fn on_timer(&mut self, now: Instant);
    /// The session cap (`cap`) is reached at `now`: queues what the protocol says then (the
    /// shell sends it and disconnects).
    fn expire(&mut self, now: Instant, cap: Duration);
    /// Whether the session has said goodbye (GPT-Live's `session.closed` after
    /// `session.close`): the shell then gives the peer [`CLOSE_GRACE`] to read it and hang up
    /// before it disconnects.
    fn closing(&self) -> bool {
        false
    }
    /// The connection is over without the protocol's own goodbye (peer gone, shutdown).
    fn lost(&mut self, _now: Instant) {}
    /// Moves `batch` and the agent's counters into the session record (with `end` if set).
    fn write_record(
        &mut self,
        shared: &Shared,
        record: &Mutex<SessionRecord>,
        batch: &mut Batch,
        end: Option<SessionEnd>,
    );
}

/// The Realtime GA session over WebRTC: `session.created` when the channel opens, the output
/// audio buffer's frames on the track.
impl RtcAgent for Session {
    fn on_open(&mut self, _now: Instant) {
        self.on_connect();
    }

    fn on_text(&mut self, text: &str, now: Instant) -> String {
        Session::on_text(self, text, now)
    }

    fn on_binary(&mut self) {
        Session::on_binary(self);
    }

    fn input_rate(&self) -> u32 {
        Session::input_rate(self)
    }

    fn on_input_samples(&mut self, samples: &[i16], now: Instant) {
        Session::on_input_samples(self, samples, now);
    }

    fn pull_output_frame(&mut self) -> Option<Vec<i16>> {
        Session::pull_output_frame(self)
    }

    fn take_outgoing(&mut self, check: bool, at: Option<Duration>, batch: &mut Batch) -> Vec<String> {
        std::mem::take(&mut self.out).into_iter().map(|out| render(self, out, check, at, batch).1).collect()
    }

    fn next_due(&self) -> Option<Instant> {
        Session::next_due(self)
    }

    fn on_timer(&mut self, now: Instant) {
        Session::on_timer(self, now);
    }

    fn expire(&mut self, _now: Instant, cap: Duration) {
        Session::expire(self, cap);
    }

    fn write_record(
        &mut self,
        shared: &Shared,
        record: &Mutex<SessionRecord>,
        batch: &mut Batch,
        end: Option<SessionEnd>,
    ) {
        batch.write(shared, record, self, false, end);
    }
}

/// The data channel the Realtime API speaks on.
pub(crate) const CHANNEL_LABEL: &str = "oai-events";

/// A call whose peer sends nothing for this long is over (ICE-lite sends no checks itself;
/// a browser sends consent checks every few seconds).
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// One audio frame.
const FRAME: Duration = Duration::from_millis(20);

/// How long a session that said goodbye waits for the peer to hang up before disconnecting.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Samples of the longest Opus packet (120 ms) at [`RATE`].
const MAX_PACKET_SAMPLES: usize = RATE as usize * 120 / 1000;

/// RTP ticks (48 kHz) per frame.
const FRAME_TICKS: u64 = 960;

/// What a call's driver needs besides the `Rtc`, the socket and the session.
pub(crate) struct RtcCtx {
    pub shared: Arc<Shared>,
    pub record: Arc<Mutex<SessionRecord>>,
    pub cap: Duration,
    pub record_events: bool,
    pub check_outgoing: bool,
}

/// Opus both ways, mono at the output buffer's rate (the RTP clock stays 48 kHz).
struct Opus {
    encoder: Encoder,
    decoder: Decoder,
    pcm: Vec<f32>,
    packet: Vec<u8>,
}

impl Opus {
    fn new() -> Result<Self, String> {
        let rate = SampleRate::Hz24000;
        let encoder = Encoder::new(Channels::Mono, rate, Application::Voip)
            .map_err(|e| format!("Opus encoder: {e:?}"))?;
        let decoder = Decoder::new(Channels::Mono, rate).map_err(|e| format!("Opus decoder: {e:?}"))?;
        debug_assert_eq!(RATE, 24_000);
        Ok(Self { encoder, decoder, pcm: vec![0.0; MAX_PACKET_SAMPLES], packet: vec![0; 1500] })
    }

    /// One 20 ms frame of samples → one Opus packet.
    fn encode(&mut self, frame: &[i16]) -> Option<Vec<u8>> {
        let input: Vec<f32> = frame.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let n = self.encoder.encode_float_to_slice(&input, &mut self.packet).ok()?;
        Some(self.packet[..n].to_vec())
    }

    /// One Opus packet → samples at [`RATE`]; `None` for a packet libopus refuses.
    fn decode(&mut self, packet: &[u8]) -> Option<Vec<i16>> {
        let n = self.decoder.decode_float_to_slice(packet, &mut self.pcm, false).ok()?;
        Some(self.pcm[..n].iter().map(|&x| (x.clamp(-1.0, 1.0) * 32767.0) as i16).collect())
    }
}

/// Samples at [`RATE`] → samples at `rate` (the session's input rate: 24 kHz or 8 kHz, the
/// latter by averaging each three).
fn to_input_rate(samples: Vec<i16>, rate: u32) -> Vec<i16> {
    if rate == RATE {
        return samples;
    }
    let step = (RATE / rate.max(1)).max(1) as usize;
    samples
        .chunks(step)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
        .collect()
}

struct Driver<A> {
    rtc: Rtc,
    socket: UdpSocket,
    session: A,
    ctx: RtcCtx,
    opus: Opus,
    started: Instant,
    channel: Option<ChannelId>,
    audio: Option<Mid>,
    /// Events rendered but not yet taken by the channel's send buffer.
    pending: VecDeque<String>,
    rtp_ticks: u64,
    last_heard: Instant,
    batch: Batch,
}

impl<A: RtcAgent> Driver<A> {
    fn at(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs str0m until it wants input: sends its datagrams, handles its events. Returns when
    /// its next timeout is due, or the end of the session.
    async fn drive(&mut self) -> Result<Instant, SessionEnd> {
        loop {
            let output =
                self.rtc.poll_output().map_err(|e| SessionEnd::ClientGone(format!("WebRTC: {e}")))?;
            match output {
                Output::Timeout(t) => return Ok(Instant::from_std(t)),
                Output::Transmit(t) => {
                    // A datagram the kernel refuses is as good as lost: UDP.
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(e) => self.on_event(e)?,
            }
        }
    }

    fn on_event(&mut self, e: Event) -> Result<(), SessionEnd> {
        match e {
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err(SessionEnd::ClientGone("ICE disconnected".into()));
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Audio => self.audio = Some(m.mid),
            Event::ChannelOpen(id, label) if label == CHANNEL_LABEL => {
                self.channel = Some(id);
                self.session.on_open(Instant::now());
            }
            Event::ChannelData(d) if Some(d.id) == self.channel => {
                let now = Instant::now();
                if d.binary {
                    self.session.on_binary();
                    self.received("?", format!("<binary message, {} bytes>", d.data.len()));
                } else {
                    let text = String::from_utf8_lossy(&d.data).into_owned();
                    let kind = self.session.on_text(&text, now);
                    self.received(&kind, text);
                }
            }
            Event::ChannelClose(id) if Some(id) == self.channel => {
                return Err(SessionEnd::ClientClosed(None));
            }
            Event::MediaData(m) if Some(m.mid) == self.audio => {
                self.batch.media_in += 1;
                if let Some(samples) = self.opus.decode(&m.data) {
                    let samples = to_input_rate(samples, self.session.input_rate());
                    self.session.on_input_samples(&samples, Instant::now());
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn received(&mut self, kind: &str, text: String) {
        if self.ctx.record_events {
            let at = self.at();
            self.batch.received.push(RecordedEvent { at, kind: kind.to_owned(), text: Arc::from(text) });
        }
    }

    /// Puts the session's events on the data channel, in order; what the channel's buffer
    /// cannot take now waits for the next turn.
    fn flush_events(&mut self) {
        let Some(id) = self.channel else { return };
        let at = self.ctx.record_events.then(|| self.at());
        let texts = self.session.take_outgoing(self.ctx.check_outgoing, at, &mut self.batch);
        self.pending.extend(texts);
        while let Some(text) = self.pending.front() {
            let Some(mut channel) = self.rtc.channel(id) else { return };
            match channel.write(false, text.as_bytes()) {
                Ok(true) => {
                    self.pending.pop_front();
                }
                Ok(false) | Err(_) => return,
            }
        }
    }

    /// One 20 ms tick of the audio track: the next frame of assistant audio, or silence.
    fn send_audio_frame(&mut self) {
        let frame = self.session.pull_output_frame().unwrap_or_else(|| vec![0; FRAME_SAMPLES]);
        let Some(mid) = self.audio else { return };
        let Some(packet) = self.opus.encode(&frame) else { return };
        let ticks = self.rtp_ticks;
        self.rtp_ticks += FRAME_TICKS;
        let Some(writer) = self.rtc.writer(mid) else { return };
        let Some(pt) = writer.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt()) else {
            return;
        };
        let time = MediaTime::new(ticks, str0m::media::Frequency::FORTY_EIGHT_KHZ);
        if writer.write(pt, std::time::Instant::now(), time, packet).is_ok() {
            self.batch.media_out += 1;
        }
    }

    async fn run(&mut self) -> SessionEnd {
        let mut shutdown = self.ctx.shared.shutdown.subscribe();
        let cap_at = self.started + self.ctx.cap;
        let mut ticker = tokio::time::interval(FRAME);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut buf = vec![0u8; 2048];
        let mut closed_at: Option<Instant> = None;
        loop {
            let rtc_due = match self.drive().await {
                Ok(t) => t,
                Err(end) => return end,
            };
            self.flush_events();
            self.session.write_record(&self.ctx.shared, &self.ctx.record, &mut self.batch, None);
            if !self.rtc.is_alive() {
                return SessionEnd::ClientGone("the WebRTC connection closed".into());
            }
            if self.session.closing() && closed_at.is_none() {
                closed_at = Some(Instant::now() + CLOSE_GRACE);
            }
            let session_due = self.session.next_due().unwrap_or(cap_at);
            let idle_at = self.last_heard + IDLE_LIMIT;
            let idle_at = closed_at.map_or(idle_at, |c| c.min(idle_at));
            let input = tokio::select! {
                biased;
                () = shutdown_signalled(&mut shutdown) => {
                    self.rtc.disconnect();
                    return SessionEnd::Shutdown;
                }
                got = self.socket.recv_from(&mut buf) => match got {
                    Ok((n, source)) => {
                        self.last_heard = Instant::now();
                        let destination = match self.socket.local_addr() {
                            Ok(a) => a,
                            Err(e) => return SessionEnd::ClientGone(format!("UDP socket: {e}")),
                        };
                        match buf[..n].try_into() {
                            Ok(contents) => Some(Input::Receive(
                                std::time::Instant::now(),
                                Receive { proto: Protocol::Udp, source, destination, contents },
                            )),
                            // Not STUN, DTLS, RTP or RTCP: dropped, as a peer would.
                            Err(_) => None,
                        }
                    }
                    // ICMP port unreachable and the like: the peer may come back.
                    Err(_) => None,
                },
                () = tokio::time::sleep_until(rtc_due) => Some(Input::Timeout(std::time::Instant::now())),
                _ = ticker.tick() => {
                    self.send_audio_frame();
                    Some(Input::Timeout(std::time::Instant::now()))
                }
                () = tokio::time::sleep_until(session_due.min(cap_at).min(idle_at)) => {
                    let now = Instant::now();
                    if cap_at <= now {
                        self.session.expire(now, self.ctx.cap);
                        self.flush_events();
                        let _ = self.drive().await;
                        self.rtc.disconnect();
                        return SessionEnd::ServerClosed { code: 1001, reason: "session_expired".into() };
                    }
                    if closed_at.is_some_and(|c| c <= now) {
                        self.rtc.disconnect();
                        return SessionEnd::ServerClosed { code: 1000, reason: "close_requested".into() };
                    }
                    if idle_at <= now {
                        return SessionEnd::ClientGone(format!("no datagram from the peer for {} s", IDLE_LIMIT.as_secs()));
                    }
                    self.session.on_timer(now);
                    None
                }
            };
            if let Some(input) = input
                && let Err(e) = self.rtc.handle_input(input)
            {
                tracing::debug!(error = %e, "WebRTC input refused");
            }
        }
    }
}

/// Runs a WebRTC session until it ends.
pub(crate) async fn run<A: RtcAgent>(rtc: Rtc, socket: UdpSocket, session: A, ctx: RtcCtx) {
    let shared = ctx.shared.clone();
    let record = ctx.record.clone();
    shared.session_started();
    let end = match Opus::new() {
        Ok(opus) => {
            let now = Instant::now();
            let mut driver = Driver {
                rtc,
                socket,
                session,
                ctx,
                opus,
                started: now,
                channel: None,
                audio: None,
                pending: VecDeque::new(),
                rtp_ticks: 0,
                last_heard: now,
                batch: Batch::default(),
            };
            let end = driver.run().await;
            driver.session.lost(Instant::now());
            driver.session.write_record(&driver.ctx.shared, &driver.ctx.record, &mut driver.batch, None);
            end
        }
        Err(e) => {
            tracing::error!(error = %e, "WebRTC call without Opus: is libopus installed (Debian libopus0)?");
            SessionEnd::ServerClosed { code: 1011, reason: e }
        }
    };
    crate::state::lock(&record).ended = Some(end);
    shared.session_finished();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_carries_a_tone_at_its_level_and_input_is_brought_to_the_session_rate() {
        let mut opus = Opus::new().expect("libopus");
        let tone = crate::audio::tone_linear(300.0, 20, 0.4, RATE);
        let mut decoded = None;
        for _ in 0..10 {
            let packet = opus.encode(&tone).expect("encodes");
            decoded = opus.decode(&packet);
        }
        let out = decoded.expect("decodes");
        assert_eq!(out.len(), FRAME_SAMPLES);
        let level = crate::audio::rms(&out);
        assert!((0.2..0.35).contains(&level), "level {level} (sent 0.28)");
        assert_eq!(to_input_rate(vec![3, 6, 9, 30, 30, 30], 8000), vec![6, 30]);
        assert_eq!(to_input_rate(vec![1, 2], RATE), vec![1, 2]);
    }
}
