//! What a simulated call went through: the caller's report, built as the call runs.
//!
//! All times are stream time since the WebSocket opened (the `connected` message), on the
//! caller's own clock (tokio's clock when paced — virtual under `tokio::time::pause` — or the
//! frame count when unpaced), so tests compare them without reading a wall clock.

use std::time::Duration;

use serde::Serialize;

use super::connect::HandshakeFailure;
use crate::audio::SAMPLE_RATE;
use crate::codes;
use crate::playback::{MarkOutcome, PlayedSegment, samples_to_duration};

/// Serialises durations as fractional milliseconds.
pub(crate) mod ms {
    use std::time::Duration;

    /// A [`Duration`] as milliseconds.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    /// An optional [`Duration`] as milliseconds or `null`.
    pub mod option {
        use super::Duration;

        /// Serialises.
        pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
                None => s.serialize_none(),
            }
        }
    }
}

/// A warning Twilio would have raised (and shown in its debugger) for this stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// 319xx code.
    pub code: u32,
    /// Twilio's title.
    pub title: &'static str,
    /// What triggered it.
    pub detail: String,
    /// When.
    #[serde(with = "ms")]
    pub at: Duration,
}

/// A mark the server sent, and how it came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarkRecord {
    /// Its name.
    pub name: String,
    /// When the server's `mark` arrived.
    #[serde(with = "ms")]
    pub received_at: Duration,
    /// When the caller echoed it.
    #[serde(with = "ms")]
    pub echoed_at: Duration,
    /// Played, or flushed by a `clear`.
    pub outcome: MarkOutcome,
}

/// A `clear` the server sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClearRecord {
    /// When it arrived.
    #[serde(with = "ms")]
    pub at: Duration,
    /// Queued audio it dropped (bytes = samples).
    pub dropped_bytes: u64,
    /// Marks it flushed.
    pub flushed_marks: usize,
    /// End of the caller's utterance under way when the `clear` arrived (`None` when the caller
    /// was silent then).
    #[serde(with = "ms::option")]
    pub caller_speaking_until: Option<Duration>,
    /// Agent audio played after the `clear` while the caller was still speaking: audio of the
    /// interrupted response that the gateway kept sending. 0 for a correct gateway.
    pub played_after_clear_bytes: u64,
}

/// Why the caller hung up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupCause {
    /// The script ended ([`super::EndPolicy::ScriptEnd`]).
    ScriptEnd,
    /// The script ended and everything received had played.
    PlaybackDone,
    /// The script ended and the wait for playback ran out.
    MaxWait,
    /// The call reached its maximum duration.
    MaxDuration,
    /// Hang-up requested from outside (REST `Status=completed`).
    Requested,
}

/// How the call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CallEnd {
    /// The WebSocket never opened (see [`CallerReport::handshake_failure`]).
    HandshakeFailed,
    /// The caller hung up: `stop`, then a close handshake.
    CallerHungUp {
        /// Why.
        cause: HangupCause,
    },
    /// The server closed the WebSocket.
    ServerClosed {
        /// Close code, if the frame had one.
        code: Option<u16>,
        /// Close reason.
        reason: String,
    },
    /// The TCP connection ended without a close frame.
    ConnectionLost {
        /// What the socket reported.
        detail: String,
    },
    /// The server broke the WebSocket protocol (31924).
    ProtocolError {
        /// What was wrong.
        detail: String,
    },
}

/// One thing that happened on the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum TimelineEvent {
    /// `connected` sent.
    Connected,
    /// `start` sent.
    Started,
    /// `media` received.
    MediaReceived {
        /// Audio bytes.
        bytes: usize,
    },
    /// `mark` received.
    MarkReceived {
        /// Its name.
        name: String,
    },
    /// Mark echoed.
    MarkEchoed {
        /// Its name.
        name: String,
        /// Played or flushed.
        outcome: MarkOutcome,
    },
    /// `clear` received.
    ClearReceived {
        /// Audio dropped.
        dropped_bytes: u64,
    },
    /// `dtmf` sent.
    DtmfSent {
        /// The key.
        digit: char,
    },
    /// A warning was raised.
    Warning {
        /// Its code.
        code: u32,
    },
    /// The caller decided to hang up.
    HangUp {
        /// Why.
        cause: HangupCause,
    },
    /// `stop` sent.
    StopSent,
    /// Close frame sent.
    CloseSent,
    /// Close frame received.
    CloseReceived {
        /// Its code.
        code: Option<u16>,
    },
    /// Connection lost or broken.
    ConnectionEnded {
        /// Why.
        detail: String,
    },
}

/// A timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// When.
    #[serde(with = "ms")]
    pub at: Duration,
    /// What.
    #[serde(flatten)]
    pub event: TimelineEvent,
}

/// Everything a simulated call went through.
#[derive(Debug, Clone, Serialize)]
pub struct CallerReport {
    /// Stream URL.
    pub url: String,
    /// `AC…`.
    pub account_sid: String,
    /// `CA…`.
    pub call_sid: String,
    /// `MZ…`.
    pub stream_sid: String,
    /// `x-twilio-signature` sent on the upgrade (empty if the URL was refused before).
    pub signature: String,
    /// Why the WebSocket did not open, as Twilio's 319xx error.
    pub handshake_failure: Option<HandshakeFailure>,
    /// How the call ended.
    pub end: CallEnd,
    /// Whether the closing side got the other's close frame.
    pub close_handshake_completed: bool,
    /// Stream time when the call ended.
    #[serde(with = "ms")]
    pub duration: Duration,
    /// When `start` was sent.
    #[serde(with = "ms")]
    pub started_at: Duration,
    /// `media` messages sent.
    pub media_sent: u64,
    /// `dtmf` messages sent.
    pub dtmf_sent: u64,
    /// Last `sequenceNumber` used.
    pub last_sequence_number: u64,
    /// From `start` to the first agent audio received (played at once: nothing was queued).
    #[serde(with = "ms::option")]
    pub first_agent_audio: Option<Duration>,
    /// Agent audio received (bytes).
    pub audio_received_bytes: u64,
    /// `clear`s received.
    pub clears: Vec<ClearRecord>,
    /// Marks received and how each came back (in echo order).
    pub marks: Vec<MarkRecord>,
    /// Marks still queued when the call ended (never echoed).
    pub marks_unanswered: Vec<String>,
    /// Warnings Twilio would have raised.
    pub warnings: Vec<Warning>,
    /// The agent audio the caller heard, back to back (μ-law).
    #[serde(skip)]
    pub heard: Vec<u8>,
    /// When each part of `heard` was played.
    pub heard_segments: Vec<PlayedSegment>,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
}

impl CallerReport {
    /// Agent audio played after `clear`s while the caller was still speaking (0 for a correct
    /// gateway).
    pub fn audio_after_clear(&self) -> Duration {
        samples_to_duration(self.clears.iter().map(|c| c.played_after_clear_bytes).sum())
    }

    /// Agent audio heard.
    pub fn audio_played(&self) -> Duration {
        samples_to_duration(self.heard.len() as u64)
    }

    /// Marks echoed because their audio played.
    pub fn marks_played(&self) -> usize {
        self.marks.iter().filter(|m| m.outcome == MarkOutcome::Played).count()
    }

    /// Marks echoed by a `clear`.
    pub fn marks_flushed(&self) -> usize {
        self.marks.iter().filter(|m| m.outcome == MarkOutcome::Flushed).count()
    }

    /// The codes of the warnings, in order.
    pub fn warning_codes(&self) -> Vec<u32> {
        self.warnings.iter().map(|w| w.code).collect()
    }

    /// What the caller heard as one track from stream time 0 to the end of the call, with
    /// silence where nothing played (μ-law; write it with [`crate::audio::wav_bytes`]).
    pub fn heard_track(&self) -> Vec<u8> {
        let until = (self.duration.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000) as usize;
        let end = self.heard_segments.last().map_or(0, |s| s.end() as usize);
        let mut track = vec![crate::audio::SILENCE; until.max(end)];
        for s in &self.heard_segments {
            track[s.start as usize..s.end() as usize]
                .copy_from_slice(&self.heard[s.offset..s.offset + s.len]);
        }
        track
    }

    /// A one-paragraph summary for people.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "call {} stream {} -> {}", self.call_sid, self.stream_sid, self.url);
        if let Some(f) = &self.handshake_failure {
            let _ = writeln!(s, "handshake failed: {f}");
        }
        let _ = writeln!(
            s,
            "ended: {:?} after {:.3} s (close handshake: {})",
            self.end,
            self.duration.as_secs_f64(),
            if self.close_handshake_completed { "completed" } else { "not completed" }
        );
        let _ = writeln!(
            s,
            "sent: {} media, {} dtmf; last sequenceNumber {}",
            self.media_sent, self.dtmf_sent, self.last_sequence_number
        );
        match self.first_agent_audio {
            Some(d) => {
                let _ = writeln!(s, "first agent audio: {:.0} ms after start", d.as_secs_f64() * 1000.0);
            }
            None => {
                let _ = writeln!(s, "first agent audio: none");
            }
        }
        let _ = writeln!(
            s,
            "heard: {:.2} s of {:.2} s received; clears: {}; audio after clear: {:.0} ms",
            self.audio_played().as_secs_f64(),
            samples_to_duration(self.audio_received_bytes).as_secs_f64(),
            self.clears.len(),
            self.audio_after_clear().as_secs_f64() * 1000.0
        );
        let _ = writeln!(
            s,
            "marks: {} played, {} flushed, {} unanswered",
            self.marks_played(),
            self.marks_flushed(),
            self.marks_unanswered.len()
        );
        for w in &self.warnings {
            let _ = writeln!(
                s,
                "warning {} {} at {:.0} ms: {}",
                w.code,
                w.title,
                w.at.as_secs_f64() * 1000.0,
                w.detail
            );
        }
        s
    }
}

/// Builds a [`Warning`].
pub(crate) fn warning(code: u32, detail: impl Into<String>, at: Duration) -> Warning {
    Warning { code, title: codes::title(code), detail: detail.into(), at }
}
