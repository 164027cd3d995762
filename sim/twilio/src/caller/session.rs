//! The call itself: one loop over the stream clock, the server's messages and the hang-up
//! signal. A separate task writes to the socket, so a slow reader never stalls playback.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::clock::StreamClock;
use super::connect::{self, ConnectSettings, WsStream};
use super::messages::{self, ServerMessage, StartInfo};
use super::report::{
    self, CallEnd, CallerReport, ClearRecord, HangupCause, MarkRecord, TimelineEntry, TimelineEvent, Warning,
};
use super::script::{AgentView, ScriptCursor};
use super::{CallerConfig, CallerEvent, EndPolicy, HangupHandle, Pacing};
use crate::audio::{self, FRAME_BYTES};
use crate::codes;
use crate::playback::{MarkEcho, Playback, duration_to_samples, samples_to_duration};

/// Frames of silence that end an utterance (200 ms), for the audio-after-clear measure.
const UTTERANCE_GAP: u64 = 1600;

pub(super) async fn run(
    cfg: CallerConfig,
    events: Option<mpsc::UnboundedSender<CallerEvent>>,
    hangup: HangupHandle,
) -> CallerReport {
    let settings = ConnectSettings {
        url: &cfg.url,
        auth_token: &cfg.auth_token,
        ca_pem: cfg.ca_pem.as_deref(),
        timeout: cfg.connect_timeout,
        allow_insecure_ws: cfg.allow_insecure_ws,
    };
    match connect::connect(&settings).await {
        Ok((ws, signature)) => Session::new(cfg, signature, events).run(ws, hangup).await,
        Err(failure) => {
            let signature = if failure.code == codes::STREAM_HANDSHAKE && failure.http_status.is_none()
                || failure.code == codes::STREAM_NOT_WSS
                || failure.code == codes::STREAM_BAD_URL
            {
                String::new()
            } else {
                connect::upgrade_signature(&cfg.url, &cfg.auth_token)
            };
            let mut s = Session::new(cfg, signature, events);
            s.end = Some(CallEnd::HandshakeFailed);
            let mut r = s.into_report(0);
            r.handshake_failure = Some(failure);
            r
        }
    }
}

/// How many times faster than tokio's clock the stream clock runs when paced.
fn speed(pacing: Pacing) -> u32 {
    match pacing {
        Pacing::Accelerated(n) => n.max(1),
        Pacing::RealTime | Pacing::Unpaced => 1,
    }
}

enum Flow {
    Continue,
    End,
}

struct Session {
    cfg: CallerConfig,
    signature: String,
    events: Option<mpsc::UnboundedSender<CallerEvent>>,
    out: Option<mpsc::UnboundedSender<Message>>,
    clock: StreamClock,
    playback: Playback,
    cursor: ScriptCursor,
    seq: u64,
    chunk: u64,
    started: bool,
    start_at: u64,
    next_tick: u64,
    dtmf_idx: usize,
    script_done_at: Option<u64>,
    voice_runs: Vec<(u64, u64)>,
    pending_marks: VecDeque<(String, u64)>,
    // report
    end: Option<CallEnd>,
    close_handshake_completed: bool,
    media_sent: u64,
    dtmf_sent: u64,
    first_agent_audio: Option<u64>,
    audio_received: u64,
    clears: Vec<(u64, u64, usize)>,
    marks: Vec<MarkRecord>,
    warnings: Vec<Warning>,
    timeline: Vec<TimelineEntry>,
}

impl Session {
    fn new(cfg: CallerConfig, signature: String, events: Option<mpsc::UnboundedSender<CallerEvent>>) -> Self {
        let start_at = duration_to_samples(cfg.start_delay);
        Self {
            cursor: ScriptCursor::new(&cfg.script),
            playback: Playback::with_capacity(cfg.playback_capacity),
            clock: StreamClock::new(speed(cfg.pacing), true),
            cfg,
            signature,
            events,
            out: None,
            seq: 0,
            chunk: 0,
            started: false,
            start_at,
            next_tick: start_at,
            dtmf_idx: 0,
            script_done_at: None,
            voice_runs: Vec::new(),
            pending_marks: VecDeque::new(),
            end: None,
            close_handshake_completed: false,
            media_sent: 0,
            dtmf_sent: 0,
            first_agent_audio: None,
            audio_received: 0,
            clears: Vec::new(),
            marks: Vec::new(),
            warnings: Vec::new(),
            timeline: Vec::new(),
        }
    }

    fn at(&self, samples: u64) -> Duration {
        samples_to_duration(samples)
    }

    fn record(&mut self, samples: u64, event: TimelineEvent) {
        self.timeline.push(TimelineEntry { at: self.at(samples), event });
    }

    fn warn(&mut self, samples: u64, code: u32, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::debug!(code, %detail, "stream warning");
        self.warnings.push(report::warning(code, detail, self.at(samples)));
        self.record(samples, TimelineEvent::Warning { code });
    }

    fn send(&mut self, text: String) {
        if let Some(out) = &self.out {
            let _ = out.send(Message::text(text));
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    async fn run(mut self, ws: WsStream, hangup: HangupHandle) -> CallerReport {
        let (sink, mut rx) = ws.split();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(sink, out_rx));
        self.out = Some(out_tx);
        // Stream time 0 is now, when the WebSocket is open.
        self.clock = StreamClock::new(speed(self.cfg.pacing), true);

        self.send(messages::connected());
        self.record(0, TimelineEvent::Connected);

        let mut hangup_cause = None;
        loop {
            let paced = self.cfg.pacing != Pacing::Unpaced
                || !self.started
                || self.cursor.waiting()
                || self.cursor.finished();
            self.clock.set_paced(paced);
            if !paced {
                // Unpaced, the clock stands on the next frame's time.
                let now = self.clock.now();
                if now < self.next_tick {
                    self.clock.step(self.next_tick - now);
                }
            }
            if paced {
                let wake = self.next_wake();
                let deadline = self.clock.deadline(wake);
                let flow = tokio::select! {
                    biased;
                    _ = hangup.0.notified() => {
                        hangup_cause = Some(HangupCause::Requested);
                        Flow::End
                    }
                    msg = rx.next() => self.on_inbound(msg),
                    _ = tokio::time::sleep_until(deadline) => Flow::Continue,
                };
                if let Flow::End = flow {
                    break;
                }
            } else {
                let mut ended = false;
                while let Some(msg) = rx.next().now_or_never() {
                    if let Flow::End = self.on_inbound(msg) {
                        ended = true;
                        break;
                    }
                }
                if ended {
                    break;
                }
                if hangup.0.notified().now_or_never().is_some() {
                    hangup_cause = Some(HangupCause::Requested);
                    break;
                }
                tokio::task::yield_now().await;
            }

            let now = self.clock.now();
            self.advance_playback(now);
            if let Some(cause) = self.should_hang_up(now) {
                hangup_cause = Some(cause);
                break;
            }
            if !self.started && now >= self.start_at {
                self.send_start(now);
            }
            if self.started {
                if self.clock.is_paced() {
                    while self.next_tick <= now {
                        let t = self.next_tick;
                        self.tick(t);
                        self.next_tick += FRAME_BYTES as u64;
                    }
                } else {
                    self.tick(now);
                    self.clock.step(FRAME_BYTES as u64);
                    self.next_tick = self.clock.now();
                }
            }
        }

        let end_time = self.clock.now();
        if let Some(cause) = hangup_cause {
            self.hang_up(cause, &mut rx).await;
        }
        self.out = None;
        let _ = writer.await;
        self.into_report(end_time)
    }

    fn next_wake(&self) -> u64 {
        let mut wake = if self.started { self.next_tick } else { self.start_at };
        if let Some(due) = self.playback.next_mark_due() {
            wake = wake.min(due);
        }
        if self.playback.is_playing() {
            wake = wake.min(self.playback.busy_until());
        }
        wake
    }

    fn send_start(&mut self, now: u64) {
        let seq = self.next_seq();
        let tracks = vec!["inbound".to_owned()];
        let msg = messages::start(
            seq,
            &StartInfo {
                account_sid: &self.cfg.account_sid,
                stream_sid: &self.cfg.stream_sid,
                call_sid: &self.cfg.call_sid,
                tracks: &tracks,
                custom_parameters: &self.cfg.custom_parameters,
            },
        );
        self.send(msg);
        self.started = true;
        self.start_at = now;
        self.next_tick = self.start_at;
        self.record(now, TimelineEvent::Started);
        if let Some(tx) = &self.events {
            let _ = tx.send(CallerEvent::Started { stream_sid: self.cfg.stream_sid.clone() });
        }
    }

    /// Sends what is due at stream time `t`: DTMF presses, then one media frame.
    fn tick(&mut self, t: u64) {
        let since_start = t.saturating_sub(self.start_at);
        while let Some(press) = self.cfg.dtmf.get(self.dtmf_idx).copied() {
            if duration_to_samples(press.at) > since_start {
                break;
            }
            self.dtmf_idx += 1;
            let seq = self.next_seq();
            let msg = messages::dtmf(seq, &self.cfg.stream_sid, press.digit);
            self.send(msg);
            self.dtmf_sent += 1;
            self.record(t, TimelineEvent::DtmfSent { digit: press.digit });
        }
        let view = AgentView {
            now: t,
            heard_len: self.playback.heard().len(),
            playing: self.playback.is_playing(),
            last_play_end: self.playback.segments().last().map(|s| s.end()),
        };
        let frame = match self.cursor.next_frame(view) {
            Some(frame) => {
                if self.cursor.finished() && self.script_done_at.is_none() {
                    // The script ends with this frame.
                    self.script_done_at = Some(t + FRAME_BYTES as u64);
                }
                frame
            }
            None => {
                self.script_done_at.get_or_insert(t);
                audio::silence(FRAME_BYTES)
            }
        };
        if audio::is_voiced(&frame) {
            match self.voice_runs.last_mut() {
                Some((_, end)) if *end + UTTERANCE_GAP >= t => *end = t + FRAME_BYTES as u64,
                _ => self.voice_runs.push((t, t + FRAME_BYTES as u64)),
            }
        }
        self.chunk += 1;
        let seq = self.next_seq();
        let payload = STANDARD.encode(&frame);
        let msg = messages::media(seq, self.chunk, since_start / 8, &payload, &self.cfg.stream_sid);
        self.send(msg);
        self.media_sent += 1;
    }

    fn should_hang_up(&mut self, now: u64) -> Option<HangupCause> {
        if !self.started {
            return None;
        }
        if let Some(max) = self.cfg.max_duration
            && now >= self.start_at + duration_to_samples(max)
        {
            return Some(HangupCause::MaxDuration);
        }
        let done = self.script_done_at.filter(|d| now >= *d)?;
        match self.cfg.end {
            EndPolicy::ScriptEnd => Some(HangupCause::ScriptEnd),
            EndPolicy::ScriptEndAndPlayback { max_wait } => {
                if !self.playback.is_playing() && self.playback.next_mark_due().is_none() {
                    Some(HangupCause::PlaybackDone)
                } else if now >= done + duration_to_samples(max_wait) {
                    Some(HangupCause::MaxWait)
                } else {
                    None
                }
            }
            EndPolicy::ServerCloses => None,
        }
    }

    fn advance_playback(&mut self, now: u64) {
        let mut echoes = Vec::new();
        self.playback.advance(now, &mut echoes);
        self.send_echoes(echoes);
    }

    fn send_echoes(&mut self, echoes: Vec<MarkEcho>) {
        for echo in echoes {
            let seq = self.next_seq();
            let msg = messages::mark(seq, &self.cfg.stream_sid, &echo.name);
            self.send(msg);
            let received_at = match self.pending_marks.pop_front() {
                Some((name, at)) if name == echo.name => at,
                Some((_, at)) => at,
                None => echo.at,
            };
            self.record(
                echo.at,
                TimelineEvent::MarkEchoed { name: echo.name.clone(), outcome: echo.outcome },
            );
            self.marks.push(MarkRecord {
                name: echo.name,
                received_at: self.at(received_at),
                echoed_at: self.at(echo.at),
                outcome: echo.outcome,
            });
        }
    }

    fn on_inbound(&mut self, msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> Flow {
        let now = self.clock.now();
        self.advance_playback(now);
        match msg {
            None => {
                self.record(
                    now,
                    TimelineEvent::ConnectionEnded {
                        detail: "TCP connection closed without a close frame".into(),
                    },
                );
                self.end = Some(CallEnd::ConnectionLost {
                    detail: "TCP connection closed without a close frame".into(),
                });
                Flow::End
            }
            Some(Err(e)) => {
                let detail = e.to_string();
                self.warn(now, codes::STREAM_PROTOCOL, detail.clone());
                self.record(now, TimelineEvent::ConnectionEnded { detail: detail.clone() });
                self.end = Some(CallEnd::ProtocolError { detail });
                Flow::End
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                let reason = frame.map(|f| f.reason.as_str().to_owned()).unwrap_or_default();
                self.record(now, TimelineEvent::CloseReceived { code });
                self.end = Some(CallEnd::ServerClosed { code, reason });
                self.close_handshake_completed = true;
                Flow::End
            }
            Some(Ok(Message::Binary(b))) => {
                self.warn(
                    now,
                    codes::STREAM_MALFORMED,
                    format!("binary frame of {} bytes (only JSON text is understood)", b.len()),
                );
                Flow::Continue
            }
            Some(Ok(Message::Text(text))) => {
                if !self.started {
                    self.warn(
                        now,
                        codes::STREAM_INVALID_MESSAGE,
                        "message received before `start` (the streamSid is not known yet)",
                    );
                    return Flow::Continue;
                }
                match messages::parse_server_message(text.as_str(), &self.cfg.stream_sid) {
                    Err(invalid) => self.warn(now, invalid.code, invalid.detail),
                    Ok(ServerMessage::Media(audio)) => self.on_media(now, audio),
                    Ok(ServerMessage::Mark(name)) => {
                        self.record(now, TimelineEvent::MarkReceived { name: name.clone() });
                        self.pending_marks.push_back((name.clone(), now));
                        let mut echoes = Vec::new();
                        self.playback.push_mark(now, name, &mut echoes);
                        self.send_echoes(echoes);
                    }
                    Ok(ServerMessage::Clear) => {
                        let mut echoes = Vec::new();
                        let dropped = self.playback.clear(now, &mut echoes);
                        self.record(now, TimelineEvent::ClearReceived { dropped_bytes: dropped });
                        self.clears.push((now, dropped, echoes.len()));
                        self.send_echoes(echoes);
                    }
                }
                Flow::Continue
            }
            Some(Ok(_)) => Flow::Continue, // ping, pong (answered by tungstenite), raw frames
        }
    }

    fn on_media(&mut self, now: u64, audio: Vec<u8>) {
        let bytes = audio.len();
        self.record(now, TimelineEvent::MediaReceived { bytes });
        if self.first_agent_audio.is_none() && bytes > 0 {
            self.first_agent_audio = Some(now);
        }
        self.audio_received += bytes as u64;
        let mut echoes = Vec::new();
        let dropped = self.playback.push_audio(now, audio, &mut echoes);
        self.send_echoes(echoes);
        if dropped > 0 {
            self.warn(
                now,
                codes::STREAM_BUFFER_FULL,
                format!("more than ten minutes of audio buffered: {dropped} bytes dropped"),
            );
        }
    }

    async fn hang_up(&mut self, cause: HangupCause, rx: &mut SplitStream<WsStream>) {
        let now = self.clock.now();
        self.advance_playback(now);
        self.record(now, TimelineEvent::HangUp { cause });
        self.end = Some(CallEnd::CallerHungUp { cause });
        let seq = self.next_seq();
        let msg = messages::stop(seq, &self.cfg.account_sid, &self.cfg.call_sid, &self.cfg.stream_sid);
        self.send(msg);
        self.record(now, TimelineEvent::StopSent);
        if let Some(out) = &self.out {
            let _ = out.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })));
        }
        self.record(now, TimelineEvent::CloseSent);
        self.clock.set_paced(true);
        let wait_close = async {
            loop {
                match rx.next().await {
                    None | Some(Err(_)) => return None,
                    Some(Ok(Message::Close(frame))) => {
                        return Some(frame.as_ref().map(|f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => {} // after `stop`, Twilio ignores what the server sends
                }
            }
        };
        if let Ok(Some(code)) = crate::time::timeout(self.cfg.close_timeout, wait_close).await {
            let t = self.clock.now();
            self.record(t, TimelineEvent::CloseReceived { code });
            self.close_handshake_completed = true;
        }
    }

    fn into_report(self, end_time: u64) -> CallerReport {
        let clears = self
            .clears
            .iter()
            .map(|&(at, dropped, flushed)| {
                let speaking_until = self
                    .voice_runs
                    .iter()
                    .find(|(s, e)| *s <= at && at < *e + UTTERANCE_GAP)
                    .map(|&(_, e)| e.max(at));
                let played = speaking_until.map_or(0, |until| self.playback.played_between(at, until));
                ClearRecord {
                    at: samples_to_duration(at),
                    dropped_bytes: dropped,
                    flushed_marks: flushed,
                    caller_speaking_until: speaking_until.map(samples_to_duration),
                    played_after_clear_bytes: played,
                }
            })
            .collect();
        CallerReport {
            url: self.cfg.url.clone(),
            account_sid: self.cfg.account_sid.clone(),
            call_sid: self.cfg.call_sid.clone(),
            stream_sid: self.cfg.stream_sid.clone(),
            signature: self.signature,
            handshake_failure: None,
            end: self.end.unwrap_or(CallEnd::ConnectionLost { detail: "call ended".into() }),
            close_handshake_completed: self.close_handshake_completed,
            duration: samples_to_duration(end_time),
            started_at: samples_to_duration(self.start_at),
            media_sent: self.media_sent,
            dtmf_sent: self.dtmf_sent,
            last_sequence_number: self.seq,
            first_agent_audio: self
                .first_agent_audio
                .map(|t| samples_to_duration(t.saturating_sub(self.start_at))),
            audio_received_bytes: self.audio_received,
            clears,
            marks: self.marks,
            marks_unanswered: self.pending_marks.into_iter().map(|(n, _)| n).collect(),
            warnings: self.warnings,
            heard: self.playback.heard().to_vec(),
            heard_segments: self.playback.segments().to_vec(),
            timeline: self.timeline,
        }
    }
}

async fn write_loop(mut sink: SplitSink<WsStream, Message>, mut rx: mpsc::UnboundedReceiver<Message>) {
    while let Some(msg) = rx.recv().await {
        let is_close = matches!(msg, Message::Close(_));
        if sink.send(msg).await.is_err() {
            return;
        }
        if is_close {
            break;
        }
    }
    // Flushes a close reply tungstenite queued after the server's close frame.
    let _ = sink.close().await;
}
