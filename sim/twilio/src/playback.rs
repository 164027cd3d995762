//! The caller's loudspeaker: what Twilio does with the `media`, `mark` and `clear` messages a
//! server sends on a bidirectional stream (protocols.md A3).
//!
//! Audio is queued and played in order at 8000 bytes/s on a playback clock measured in samples
//! (one μ-law byte = one sample = 125 µs) of stream time. A `mark` is echoed once the audio queued
//! before it has played, or at once when nothing is queued. `clear` drops the queued audio and
//! echoes every pending mark at once (flushed, not played). More than ten minutes of queued audio
//! raises warning 31931 and the excess is dropped.
//!
//! The clock only moves when [`Playback::advance`] is called, so the same sequence of calls
//! always gives the same result: the caller drives it from tokio's clock (real or paused) or
//! from its virtual clock in fast mode.

use std::collections::VecDeque;
use std::time::Duration;

use crate::audio::{SAMPLE_RATE, SILENCE};

/// Ten minutes of μ-law: the most Twilio buffers.
pub const MAX_BUFFERED: u64 = 10 * 60 * SAMPLE_RATE as u64;

/// Stream time in samples to a [`Duration`].
pub fn samples_to_duration(samples: u64) -> Duration {
    Duration::from_micros(samples * 1_000_000 / u64::from(SAMPLE_RATE))
}

/// A [`Duration`] to stream time in samples (rounded down).
pub fn duration_to_samples(d: Duration) -> u64 {
    (d.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000) as u64
}

/// How a mark came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkOutcome {
    /// Echoed because the audio before it finished playing (or nothing was queued).
    Played,
    /// Echoed by a `clear` before the audio before it played.
    Flushed,
}

/// A mark due to be echoed to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkEcho {
    /// The name the server gave it.
    pub name: String,
    /// Stream time (samples) at which it became due.
    pub at: u64,
    /// Played or flushed.
    pub outcome: MarkOutcome,
}

/// A run of audio played without a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PlayedSegment {
    /// Stream time (samples) at which the run started.
    pub start: u64,
    /// Where the run starts in [`Playback::heard`].
    pub offset: usize,
    /// Length in bytes (= samples).
    pub len: usize,
}

impl PlayedSegment {
    /// Stream time (samples) just after the run.
    pub fn end(&self) -> u64 {
        self.start + self.len as u64
    }
}

enum Item {
    Audio { data: Vec<u8>, pos: usize },
    Mark(String),
}

/// The playback queue and what it has played.
pub struct Playback {
    queue: VecDeque<Item>,
    queued_audio: u64,
    clock: u64,
    heard: Vec<u8>,
    segments: Vec<PlayedSegment>,
    max_buffered: u64,
}

impl Default for Playback {
    fn default() -> Self {
        Self::new()
    }
}

impl Playback {
    /// An idle loudspeaker at stream time 0 with Twilio's ten-minute buffer.
    pub fn new() -> Self {
        Self::with_capacity(MAX_BUFFERED)
    }

    /// Same, buffering at most `max_buffered` bytes (for tests of the 31931 overflow).
    pub fn with_capacity(max_buffered: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            queued_audio: 0,
            clock: 0,
            heard: Vec::new(),
            segments: Vec::new(),
            max_buffered,
        }
    }

    /// The playback clock (samples of stream time).
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Bytes of audio waiting to be played.
    pub fn queued_audio(&self) -> u64 {
        self.queued_audio
    }

    /// Whether audio is queued (the caller is hearing the agent).
    pub fn is_playing(&self) -> bool {
        self.queued_audio > 0
    }

    /// Stream time at which the queued audio will have played.
    pub fn busy_until(&self) -> u64 {
        self.clock + self.queued_audio
    }

    /// Everything played so far, back to back (gaps not included; see [`Playback::segments`]).
    pub fn heard(&self) -> &[u8] {
        &self.heard
    }

    /// When each part of [`Playback::heard`] was played.
    pub fn segments(&self) -> &[PlayedSegment] {
        &self.segments
    }

    /// Stream time at which the first queued mark becomes due, if any mark is queued.
    pub fn next_mark_due(&self) -> Option<u64> {
        let mut at = self.clock;
        for item in &self.queue {
            match item {
                Item::Audio { data, pos } => at += (data.len() - pos) as u64,
                Item::Mark(_) => return Some(at),
            }
        }
        None
    }

    /// Plays up to stream time `to`, pushing the marks that become due to `echoes`.
    pub fn advance(&mut self, to: u64, echoes: &mut Vec<MarkEcho>) {
        if to < self.clock {
            return;
        }
        let mut budget = to - self.clock;
        while let Some(front) = self.queue.front_mut() {
            match front {
                Item::Mark(_) => {
                    if let Some(Item::Mark(name)) = self.queue.pop_front() {
                        echoes.push(MarkEcho { name, at: self.clock, outcome: MarkOutcome::Played });
                    }
                }
                Item::Audio { data, pos } => {
                    if budget == 0 {
                        break;
                    }
                    let n = budget.min((data.len() - *pos) as u64) as usize;
                    let start = self.clock;
                    let offset = self.heard.len();
                    self.heard.extend_from_slice(&data[*pos..*pos + n]);
                    match self.segments.last_mut() {
                        Some(last) if last.end() == start => last.len += n,
                        _ => self.segments.push(PlayedSegment { start, offset, len: n }),
                    }
                    *pos += n;
                    let done = *pos == data.len();
                    self.clock += n as u64;
                    budget -= n as u64;
                    self.queued_audio -= n as u64;
                    if done {
                        self.queue.pop_front();
                    }
                }
            }
        }
        self.clock += budget;
    }

    /// Queues `data` at stream time `now`. Returns how many bytes were dropped because the
    /// buffer was full (Twilio's warning 31931), 0 normally.
    pub fn push_audio(&mut self, now: u64, data: Vec<u8>, echoes: &mut Vec<MarkEcho>) -> u64 {
        self.advance(now, echoes);
        let room = self.max_buffered.saturating_sub(self.queued_audio);
        let mut data = data;
        let dropped = (data.len() as u64).saturating_sub(room);
        data.truncate(data.len() - dropped as usize);
        if !data.is_empty() {
            self.queued_audio += data.len() as u64;
            self.queue.push_back(Item::Audio { data, pos: 0 });
        }
        dropped
    }

    /// Queues a mark at stream time `now` (echoed at once if nothing is queued).
    pub fn push_mark(&mut self, now: u64, name: String, echoes: &mut Vec<MarkEcho>) {
        self.advance(now, echoes);
        if self.queue.is_empty() {
            echoes.push(MarkEcho { name, at: self.clock, outcome: MarkOutcome::Played });
        } else {
            self.queue.push_back(Item::Mark(name));
        }
    }

    /// Empties the queue at stream time `now`: pending marks are echoed as flushed. Returns the
    /// number of audio bytes dropped unplayed.
    pub fn clear(&mut self, now: u64, echoes: &mut Vec<MarkEcho>) -> u64 {
        self.advance(now, echoes);
        let dropped = self.queued_audio;
        for item in self.queue.drain(..) {
            if let Item::Mark(name) = item {
                echoes.push(MarkEcho { name, at: self.clock, outcome: MarkOutcome::Flushed });
            }
        }
        self.queued_audio = 0;
        dropped
    }

    /// Bytes played within the stream-time window `[from, to)`.
    pub fn played_between(&self, from: u64, to: u64) -> u64 {
        self.segments.iter().map(|s| s.end().min(to).saturating_sub(s.start.max(from))).sum()
    }

    /// What the caller heard as one track from stream time 0 to `until`, silence in the gaps.
    pub fn render(&self, until: u64) -> Vec<u8> {
        let mut track = vec![SILENCE; until as usize];
        for s in &self.segments {
            let start = s.start as usize;
            if start >= track.len() {
                break;
            }
            let n = s.len.min(track.len() - start);
            track[start..start + n].copy_from_slice(&self.heard[s.offset..s.offset + n]);
        }
        track
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(e: &[MarkEcho]) -> Vec<(&str, u64, MarkOutcome)> {
        e.iter().map(|m| (m.name.as_str(), m.at, m.outcome)).collect()
    }

    #[test]
    fn mark_waits_for_audio_before_it() {
        let mut p = Playback::new();
        let mut e = Vec::new();
        p.push_audio(100, vec![1; 800], &mut e);
        p.push_mark(100, "a".into(), &mut e);
        assert_eq!(p.next_mark_due(), Some(900));
        p.advance(899, &mut e);
        assert!(e.is_empty());
        p.advance(900, &mut e);
        assert_eq!(names(&e), vec![("a", 900, MarkOutcome::Played)]);
        assert_eq!(p.heard().len(), 800);
        assert_eq!(p.segments(), &[PlayedSegment { start: 100, offset: 0, len: 800 }]);
    }

    #[test]
    fn mark_with_nothing_queued_is_echoed_at_once() {
        let mut p = Playback::new();
        let mut e = Vec::new();
        p.push_mark(50, "now".into(), &mut e);
        assert_eq!(names(&e), vec![("now", 50, MarkOutcome::Played)]);
    }

    #[test]
    fn clear_flushes_marks_and_drops_audio() {
        let mut p = Playback::new();
        let mut e = Vec::new();
        p.push_audio(0, vec![1; 1600], &mut e);
        p.push_mark(0, "m1".into(), &mut e);
        p.push_audio(0, vec![2; 1600], &mut e);
        p.push_mark(0, "m2".into(), &mut e);
        p.advance(1000, &mut e);
        let dropped = p.clear(1000, &mut e);
        assert_eq!(dropped, 2200);
        assert_eq!(names(&e), vec![("m1", 1000, MarkOutcome::Flushed), ("m2", 1000, MarkOutcome::Flushed)]);
        p.advance(5000, &mut e);
        assert_eq!(p.heard().len(), 1000);
        assert_eq!(p.played_between(1000, 5000), 0);
    }

    #[test]
    fn overflow_drops_excess() {
        let mut p = Playback::with_capacity(100);
        let mut e = Vec::new();
        assert_eq!(p.push_audio(0, vec![1; 60], &mut e), 0);
        assert_eq!(p.push_audio(0, vec![1; 60], &mut e), 20);
        assert_eq!(p.queued_audio(), 100);
    }

    #[test]
    fn render_places_audio_on_the_timeline() {
        let mut p = Playback::new();
        let mut e = Vec::new();
        p.push_audio(2, vec![7; 2], &mut e);
        p.advance(10, &mut e);
        assert_eq!(p.render(6), vec![SILENCE, SILENCE, 7, 7, SILENCE, SILENCE]);
    }
}
