//! What the caller says: a list of segments (μ-law audio, tones, silence, and waits for the
//! agent to finish a turn), and DTMF presses on a schedule. Turned into 20 ms frames on demand.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::audio::{self, FRAME_BYTES, SILENCE};

/// One part of the caller's script.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// μ-law 8 kHz bytes, sent as they are.
    Audio(Arc<[u8]>),
    /// A sine tone (amplitude 0.3 of full scale).
    Tone {
        /// Frequency in Hz.
        hz: f64,
        /// Length in milliseconds.
        ms: u64,
    },
    /// Silence.
    Silence {
        /// Length in milliseconds.
        ms: u64,
    },
    /// Silence until the agent has spoken and then been quiet for `settle_ms` (like a person
    /// waiting for their turn), or `timeout_ms` after the segment began.
    AwaitAgent {
        /// Quiet time after the agent's audio that ends the turn.
        settle_ms: u64,
        /// Longest wait.
        timeout_ms: u64,
    },
}

impl FromStr for Segment {
    type Err = String;

    /// `file:PATH` (raw μ-law or WAV), `tone:HZ:MS`, `silence:MS`, `await-agent:SETTLE_MS:TIMEOUT_MS`.
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("`{v}` in `{s}`: {e}"));
        match s.split_once(':') {
            Some(("file", path)) => audio::load(std::path::Path::new(path))
                .map(|b| Segment::Audio(b.into()))
                .map_err(|e| e.to_string()),
            Some(("tone", rest)) => {
                let (hz, ms) = rest.split_once(':').ok_or_else(|| format!("`{s}`: expected tone:HZ:MS"))?;
                let hz = hz.parse::<f64>().map_err(|e| format!("`{hz}` in `{s}`: {e}"))?;
                Ok(Segment::Tone { hz, ms: num(ms)? })
            }
            Some(("silence", ms)) => Ok(Segment::Silence { ms: num(ms)? }),
            Some(("await-agent", rest)) => {
                let (settle, timeout) = rest
                    .split_once(':')
                    .ok_or_else(|| format!("`{s}`: expected await-agent:SETTLE_MS:TIMEOUT_MS"))?;
                Ok(Segment::AwaitAgent { settle_ms: num(settle)?, timeout_ms: num(timeout)? })
            }
            _ => Err(format!(
                "`{s}`: expected file:PATH, tone:HZ:MS, silence:MS or await-agent:SETTLE_MS:TIMEOUT_MS"
            )),
        }
    }
}

/// A key press at a point of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPress {
    /// Stream time of the press (from the `start` message).
    pub at: Duration,
    /// `0`-`9`, `*`, `#`.
    pub digit: char,
}

impl FromStr for DtmfPress {
    type Err = String;

    /// `MS:DIGIT`, e.g. `1500:5`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (ms, digit) = s.split_once(':').ok_or_else(|| format!("`{s}`: expected MS:DIGIT"))?;
        let ms = ms.parse::<u64>().map_err(|e| format!("`{ms}` in `{s}`: {e}"))?;
        let mut chars = digit.chars();
        match (chars.next(), chars.next()) {
            (Some(d), None) if d.is_ascii_digit() || d == '*' || d == '#' => {
                Ok(DtmfPress { at: Duration::from_millis(ms), digit: d })
            }
            _ => Err(format!("`{digit}` in `{s}`: a DTMF digit is one of 0-9 * #")),
        }
    }
}

/// What the script needs to know about the agent's audio (from the playback queue).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentView {
    pub now: u64,
    pub heard_len: usize,
    pub playing: bool,
    pub last_play_end: Option<u64>,
}

enum Part {
    Bytes(Arc<[u8]>),
    Await { settle: u64, timeout: u64 },
}

struct WaitState {
    started: u64,
    heard_at_start: usize,
}

/// Hands out the script 20 ms at a time.
pub(crate) struct ScriptCursor {
    parts: Vec<Part>,
    idx: usize,
    pos: usize,
    wait: Option<WaitState>,
}

impl ScriptCursor {
    pub fn new(script: &[Segment]) -> Self {
        let parts = script
            .iter()
            .map(|s| match s {
                Segment::Audio(b) => Part::Bytes(b.clone()),
                Segment::Tone { hz, ms } => Part::Bytes(audio::tone(*hz, *ms, 0.3).into()),
                Segment::Silence { ms } => Part::Bytes(audio::silence(audio::bytes_for_ms(*ms)).into()),
                Segment::AwaitAgent { settle_ms, timeout_ms } => Part::Await {
                    settle: audio::bytes_for_ms(*settle_ms) as u64,
                    timeout: audio::bytes_for_ms(*timeout_ms) as u64,
                },
            })
            .collect();
        Self { parts, idx: 0, pos: 0, wait: None }
    }

    /// Whether the script is over.
    pub fn finished(&self) -> bool {
        self.idx >= self.parts.len()
    }

    /// Whether the caller is waiting for the agent (time must then run at real pace).
    pub fn waiting(&self) -> bool {
        matches!(self.parts.get(self.idx), Some(Part::Await { .. }))
    }

    /// The next 20 ms frame, or `None` once the script is over.
    pub fn next_frame(&mut self, view: AgentView) -> Option<Vec<u8>> {
        if self.finished() {
            return None;
        }
        let mut frame = Vec::with_capacity(FRAME_BYTES);
        while frame.len() < FRAME_BYTES && self.idx < self.parts.len() {
            match &self.parts[self.idx] {
                Part::Bytes(b) => {
                    let n = (FRAME_BYTES - frame.len()).min(b.len() - self.pos);
                    frame.extend_from_slice(&b[self.pos..self.pos + n]);
                    self.pos += n;
                    if self.pos == b.len() {
                        self.idx += 1;
                        self.pos = 0;
                    }
                }
                Part::Await { settle, timeout } => {
                    let w = self
                        .wait
                        .get_or_insert(WaitState { started: view.now, heard_at_start: view.heard_len });
                    let agent_spoke = view.heard_len > w.heard_at_start;
                    let settled =
                        !view.playing && view.last_play_end.is_some_and(|end| view.now >= end + settle);
                    if (agent_spoke && settled) || view.now >= w.started + timeout {
                        self.wait = None;
                        self.idx += 1;
                    } else {
                        break;
                    }
                }
            }
        }
        frame.resize(FRAME_BYTES, SILENCE);
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(now: u64, heard_len: usize, playing: bool, last_play_end: Option<u64>) -> AgentView {
        AgentView { now, heard_len, playing, last_play_end }
    }

    #[test]
    fn parses_specs() {
        assert_eq!("tone:440:500".parse::<Segment>(), Ok(Segment::Tone { hz: 440.0, ms: 500 }));
        assert_eq!("silence:20".parse::<Segment>(), Ok(Segment::Silence { ms: 20 }));
        assert_eq!(
            "await-agent:800:10000".parse::<Segment>(),
            Ok(Segment::AwaitAgent { settle_ms: 800, timeout_ms: 10000 })
        );
        assert!("tone:440".parse::<Segment>().is_err());
        assert!("file:/nonexistent.ul".parse::<Segment>().is_err());
        assert_eq!(
            "1500:#".parse::<DtmfPress>(),
            Ok(DtmfPress { at: Duration::from_millis(1500), digit: '#' })
        );
        assert!("1500:x".parse::<DtmfPress>().is_err());
    }

    #[test]
    fn frames_span_segments_and_pad_the_end() {
        let mut c = ScriptCursor::new(&[
            Segment::Audio(vec![1u8; 100].into()),
            Segment::Audio(vec![2u8; 100].into()),
        ]);
        let f1 = c.next_frame(view(0, 0, false, None)).unwrap();
        assert_eq!(&f1[..100], &[1u8; 100][..]);
        assert_eq!(&f1[100..], &[2u8; 60][..]);
        let f2 = c.next_frame(view(160, 0, false, None)).unwrap();
        assert_eq!(&f2[..40], &[2u8; 40][..]);
        assert!(f2[40..].iter().all(|&b| b == SILENCE));
        assert!(c.finished());
        assert!(c.next_frame(view(320, 0, false, None)).is_none());
    }

    #[test]
    fn await_agent_waits_for_a_turn() {
        let mut c = ScriptCursor::new(&[
            Segment::AwaitAgent { settle_ms: 100, timeout_ms: 10_000 },
            Segment::Tone { hz: 440.0, ms: 20 },
        ]);
        assert!(c.waiting());
        // Agent not heard yet: silence.
        assert!(c.next_frame(view(0, 0, false, None)).unwrap().iter().all(|&b| b == SILENCE));
        // Agent talking.
        c.next_frame(view(160, 160, true, Some(320)));
        assert!(c.waiting());
        // Agent done at 320, settle is 800 samples.
        c.next_frame(view(960, 320, false, Some(320)));
        assert!(c.waiting());
        let f = c.next_frame(view(1120, 320, false, Some(320))).unwrap();
        assert!(!c.waiting());
        assert!(audio::is_voiced(&f));
    }

    #[test]
    fn await_agent_times_out() {
        let mut c = ScriptCursor::new(&[Segment::AwaitAgent { settle_ms: 100, timeout_ms: 40 }]);
        c.next_frame(view(0, 0, false, None));
        assert!(c.waiting());
        c.next_frame(view(320, 0, false, None));
        assert!(c.finished());
    }
}
