//! Server voice-activity detection on audio energy, in audio time.
//!
//! The real service runs a model; the simulator runs an energy gate that follows the session's
//! `turn_detection` parameters, so a test decides what is speech by the samples it appends:
//!
//! - audio is cut into 20 ms frames on the session's input timeline (milliseconds of audio
//!   appended since the session began, the clock of `audio_start_ms`/`audio_end_ms`);
//! - a frame is **speech** when its RMS level (full scale 1.0) is at least `threshold / 10`
//!   (the default 0.5 gives 0.05, about −26 dBFS; digital silence is 0, a 0.3-amplitude tone
//!   0.21);
//! - the first speech frame gives `speech_started` with `audio_start_ms` = frame start minus
//!   `prefix_padding_ms` (never before the start of the uncommitted buffer);
//! - once `silence_duration_ms` of consecutive non-speech frames follow, `speech_stopped` with
//!   `audio_end_ms` = the end of that silence (as documented by OpenAI, the value includes the
//!   silence duration).
//!
//! `semantic_vad` is run the same way, its `eagerness` mapped to a silence duration (high
//! 250 ms, medium/auto 500 ms, low 1000 ms).
//!
//! Nothing here reads a clock: detection depends only on the audio, so tests are deterministic.

/// Frame length.
pub(crate) const FRAME_MS: u64 = 20;

/// Detection parameters (from `turn_detection`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct VadParams {
    /// 0.0–1.0; speech when RMS ≥ threshold / 10.
    pub threshold: f32,
    /// Audio kept before the detected start.
    pub prefix_padding_ms: u64,
    /// Silence that ends a turn.
    pub silence_duration_ms: u64,
}

/// What the detector saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VadEvent {
    /// Speech began (ms on the input timeline, padding applied).
    Started {
        /// `audio_start_ms`.
        audio_start_ms: u64,
    },
    /// Speech ended (ms on the input timeline, silence included).
    Stopped {
        /// `audio_end_ms`.
        audio_end_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Silence,
    Speech { silence_run_ms: u64 },
}

/// The detector for one session.
#[derive(Debug, Clone)]
pub(crate) struct Vad {
    params: VadParams,
    frame_samples: usize,
    pending: Vec<i16>,
    /// Start (ms on the input timeline) of the frame being filled.
    frame_start_ms: u64,
    /// Where the current buffer began as far as the detector knows (its last stop).
    floor_ms: u64,
    state: State,
}

impl Vad {
    /// A detector whose timeline starts at `position_ms`, for samples at `sample_rate`.
    pub(crate) fn new(params: VadParams, sample_rate: u32, position_ms: u64) -> Self {
        let frame_samples = (sample_rate as usize * FRAME_MS as usize) / 1000;
        Self {
            params,
            frame_samples,
            pending: Vec::with_capacity(frame_samples),
            frame_start_ms: position_ms,
            floor_ms: position_ms,
            state: State::Silence,
        }
    }

    /// Whether speech is in progress.
    #[cfg(test)]
    pub(crate) fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// Forgets partial frames and any speech in progress (after a commit or clear); the
    /// timeline continues at `position_ms`.
    pub(crate) fn reset(&mut self, position_ms: u64) {
        self.pending.clear();
        self.frame_start_ms = position_ms;
        self.floor_ms = position_ms;
        self.state = State::Silence;
    }

    /// Feeds samples; `buffer_start_ms` is where the uncommitted buffer begins (the earliest
    /// `audio_start_ms` may go; a stop detected within these samples moves it further).
    pub(crate) fn push(&mut self, samples: &[i16], buffer_start_ms: u64, out: &mut Vec<VadEvent>) {
        let threshold = self.params.threshold / 10.0;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.frame_samples - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() < self.frame_samples {
                break;
            }
            let speech = crate::audio::rms(&self.pending) >= threshold;
            self.pending.clear();
            let start = self.frame_start_ms;
            let end = start + FRAME_MS;
            self.frame_start_ms = end;
            match (self.state, speech) {
                (State::Silence, true) => {
                    let floor = buffer_start_ms.max(self.floor_ms);
                    let audio_start_ms = start.saturating_sub(self.params.prefix_padding_ms).max(floor);
                    out.push(VadEvent::Started { audio_start_ms });
                    self.state = State::Speech { silence_run_ms: 0 };
                }
                (State::Silence, false) => {}
                (State::Speech { .. }, true) => self.state = State::Speech { silence_run_ms: 0 },
                (State::Speech { silence_run_ms }, false) => {
                    let run = silence_run_ms + FRAME_MS;
                    if run >= self.params.silence_duration_ms {
                        out.push(VadEvent::Stopped { audio_end_ms: end });
                        self.floor_ms = end;
                        self.state = State::Silence;
                    } else {
                        self.state = State::Speech { silence_run_ms: run };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{AudioFormat, silence_ulaw, tone_ulaw};

    fn params() -> VadParams {
        VadParams { threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 }
    }

    fn feed(vad: &mut Vad, ulaw: &[u8], chunk: usize) -> Vec<VadEvent> {
        let mut out = Vec::new();
        for c in ulaw.chunks(chunk) {
            vad.push(&AudioFormat::Pcmu.decode(c), 0, &mut out);
        }
        out
    }

    #[test]
    fn detects_a_turn_whatever_the_chunking() {
        let mut audio = silence_ulaw(1000);
        audio.extend(tone_ulaw(300.0, 800, 0.4));
        audio.extend(silence_ulaw(700));
        for chunk in [160, 7, 800, audio.len()] {
            let mut vad = Vad::new(params(), 8000, 0);
            assert_eq!(
                feed(&mut vad, &audio, chunk),
                vec![VadEvent::Started { audio_start_ms: 700 }, VadEvent::Stopped { audio_end_ms: 2300 }],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn short_pauses_do_not_end_a_turn_and_quiet_audio_is_not_speech() {
        let mut audio = tone_ulaw(300.0, 200, 0.4);
        audio.extend(silence_ulaw(300));
        audio.extend(tone_ulaw(300.0, 200, 0.4));
        audio.extend(tone_ulaw(300.0, 500, 0.01)); // −43 dBFS: below 0.05 RMS
        let mut vad = Vad::new(params(), 8000, 0);
        let ev = feed(&mut vad, &audio, 160);
        assert_eq!(
            ev,
            vec![VadEvent::Started { audio_start_ms: 0 }, VadEvent::Stopped { audio_end_ms: 1200 }]
        );
    }

    #[test]
    fn threshold_and_buffer_start_are_honoured() {
        let audio = tone_ulaw(300.0, 100, 0.1); // RMS ≈ 0.07
        let mut strict = Vad::new(VadParams { threshold: 0.9, ..params() }, 8000, 5000);
        assert!(feed(&mut strict, &audio, 160).is_empty());
        let mut loose = Vad::new(VadParams { threshold: 0.5, ..params() }, 8000, 4800);
        let mut out = Vec::new();
        loose.push(&AudioFormat::Pcmu.decode(&audio), 4900, &mut out);
        assert_eq!(out, vec![VadEvent::Started { audio_start_ms: 4900 }]);
        assert!(loose.in_speech());
        loose.reset(6000);
        assert!(!loose.in_speech());
    }
}
