//! The output audio buffer of a WebRTC session: the assistant's audio waiting to be played to
//! the client, 20 ms at a time, free of I/O.
//!
//! Over WebSocket the client receives `response.output_audio.delta` events and plays them
//! itself. Over WebRTC the *server* plays the audio on the media track, so it keeps a buffer
//! (responses are generated faster than real time) and reports it on the data channel:
//! `output_audio_buffer.started` when a response's audio begins to play,
//! `output_audio_buffer.stopped` once the response is done and all its audio has been played,
//! `output_audio_buffer.cleared` when the buffer is emptied (client `output_audio_buffer.clear`,
//! or the caller speaking over the agent with `interrupt_response`). The session (`session.rs`)
//! feeds it and turns what it reports into those events; the WebRTC shell (`rtc/`) pulls one
//! frame per 20 ms tick and encodes it.
//!
//! Samples are linear 16-bit at [`RATE`] Hz whatever the session's `format` says: on WebRTC the
//! audio is Opus and the `format` fields do not apply.

use std::collections::VecDeque;

/// Sample rate of the buffer (and of the Opus encoder fed from it).
pub(crate) const RATE: u32 = 24_000;

/// Samples in one 20 ms frame at [`RATE`].
pub(crate) const FRAME_SAMPLES: usize = RATE as usize / 50;

/// What the buffer reports while it plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlayoutEvent {
    /// The first frame of this response's audio was played.
    Started(String),
    /// This response is done and its last frame was played.
    Stopped(String),
}

/// Audio of one output item, in order.
#[derive(Debug)]
struct Segment {
    response_id: String,
    item_id: String,
    samples: VecDeque<i16>,
    /// Samples of this item already played.
    played: usize,
}

/// What a clear removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cleared {
    /// The response whose audio was playing (or first waiting).
    pub response_id: String,
    /// Each item cut, with the milliseconds of it that were played.
    pub items: Vec<(String, u64)>,
}

/// The buffer.
#[derive(Debug, Default)]
pub(crate) struct Playout {
    segments: VecDeque<Segment>,
    /// The response reported as started and not yet as stopped.
    playing: Option<String>,
    /// Responses whose generation has ended (`response.done`), oldest first.
    finished: Vec<String>,
}

impl Playout {
    /// Queues audio of `item_id` (of `response_id`) after what is already queued.
    pub(crate) fn push(&mut self, response_id: &str, item_id: &str, samples: &[i16]) {
        match self.segments.back_mut() {
            Some(s) if s.item_id == item_id => s.samples.extend(samples),
            _ => self.segments.push_back(Segment {
                response_id: response_id.to_owned(),
                item_id: item_id.to_owned(),
                samples: samples.iter().copied().collect(),
                played: 0,
            }),
        }
    }

    /// Notes that `response_id` will produce no more audio; reports its stop if it was playing
    /// and nothing of it is left.
    pub(crate) fn finish(&mut self, response_id: &str, out: &mut Vec<PlayoutEvent>) {
        if self.segments.iter().any(|s| s.response_id == response_id) {
            self.finished.push(response_id.to_owned());
            self.stop_if_drained(out);
        } else if self.playing.as_deref() == Some(response_id) {
            self.playing = None;
            out.push(PlayoutEvent::Stopped(response_id.to_owned()));
        }
    }

    /// Whether audio is queued.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.samples.is_empty())
    }

    /// The next 20 ms frame, or `None` when nothing is queued (the shell sends silence).
    /// A partly filled frame is padded with silence.
    pub(crate) fn pull(&mut self, out: &mut Vec<PlayoutEvent>) -> Option<Vec<i16>> {
        let mut frame = Vec::with_capacity(FRAME_SAMPLES);
        while frame.len() < FRAME_SAMPLES {
            let Some(seg) = self.segments.front_mut() else { break };
            if seg.samples.is_empty() {
                if self.segments.len() > 1 {
                    self.advance(out);
                    continue;
                }
                break;
            }
            if self.playing.as_deref() != Some(seg.response_id.as_str()) {
                self.playing = Some(seg.response_id.clone());
                out.push(PlayoutEvent::Started(seg.response_id.clone()));
            }
            let take = (FRAME_SAMPLES - frame.len()).min(seg.samples.len());
            frame.extend(seg.samples.drain(..take));
            seg.played += take;
        }
        self.stop_if_drained(out);
        if frame.is_empty() {
            return None;
        }
        frame.resize(FRAME_SAMPLES, 0);
        Some(frame)
    }

    /// Drops everything queued. `None` if there was nothing to clear.
    pub(crate) fn clear(&mut self) -> Option<Cleared> {
        let response_id = self.playing.take().or_else(|| {
            self.segments.iter().find(|s| !s.samples.is_empty()).map(|s| s.response_id.clone())
        })?;
        let items = self
            .segments
            .drain(..)
            .map(|s| (s.item_id, (s.played as u64 * 1000) / u64::from(RATE)))
            .collect();
        self.finished.clear();
        Some(Cleared { response_id, items })
    }

    /// Pops the exhausted front segment, reporting a stop when the next belongs to another
    /// response.
    fn advance(&mut self, out: &mut Vec<PlayoutEvent>) {
        if let Some(done) = self.segments.pop_front() {
            let next_same = self.segments.front().is_some_and(|n| n.response_id == done.response_id);
            if !next_same && self.playing.as_deref() == Some(done.response_id.as_str()) {
                self.playing = None;
                self.finished.retain(|f| *f != done.response_id);
                out.push(PlayoutEvent::Stopped(done.response_id));
            }
        }
    }

    /// A finished response whose audio is all played stops.
    fn stop_if_drained(&mut self, out: &mut Vec<PlayoutEvent>) {
        while let Some(front) = self.segments.front() {
            let all_played = self
                .segments
                .iter()
                .filter(|s| s.response_id == front.response_id)
                .all(|s| s.samples.is_empty());
            if !all_played || !self.finished.contains(&front.response_id) {
                return;
            }
            let id = front.response_id.clone();
            self.segments.retain(|s| s.response_id != id);
            self.finished.retain(|f| *f != id);
            if self.playing.as_deref() == Some(id.as_str()) {
                self.playing = None;
                out.push(PlayoutEvent::Stopped(id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull_all(p: &mut Playout, ev: &mut Vec<PlayoutEvent>) -> usize {
        let mut frames = 0;
        while p.pull(ev).is_some() {
            frames += 1;
        }
        frames
    }

    #[test]
    fn plays_in_frames_then_stops_once_the_response_is_done() {
        let mut p = Playout::default();
        let mut ev = Vec::new();
        p.push("r1", "i1", &[1; FRAME_SAMPLES * 2 + 10]);
        assert_eq!(pull_all(&mut p, &mut ev), 3, "two full frames and a padded one");
        assert_eq!(ev, vec![PlayoutEvent::Started("r1".into())]);
        // Still generating: no stop yet, and more audio continues the same response.
        p.push("r1", "i1", &[1; FRAME_SAMPLES]);
        assert_eq!(pull_all(&mut p, &mut ev), 1);
        assert_eq!(ev.len(), 1);
        p.finish("r1", &mut ev);
        assert_eq!(ev, vec![PlayoutEvent::Started("r1".into()), PlayoutEvent::Stopped("r1".into())]);
    }

    #[test]
    fn a_done_response_stops_after_its_last_frame_and_the_next_starts() {
        let mut p = Playout::default();
        let mut ev = Vec::new();
        p.push("r1", "i1", &[1; FRAME_SAMPLES]);
        p.finish("r1", &mut ev);
        p.push("r2", "i2", &[2; FRAME_SAMPLES]);
        p.finish("r2", &mut ev);
        assert!(ev.is_empty());
        assert_eq!(p.pull(&mut ev).map(|f| f[0]), Some(1));
        assert_eq!(ev, vec![PlayoutEvent::Started("r1".into()), PlayoutEvent::Stopped("r1".into())]);
        assert_eq!(p.pull(&mut ev).map(|f| f[0]), Some(2));
        assert_eq!(p.pull(&mut ev), None);
        assert_eq!(&ev[2..], &[PlayoutEvent::Started("r2".into()), PlayoutEvent::Stopped("r2".into())]);
    }

    #[test]
    fn clear_reports_what_was_played_of_each_item() {
        let mut p = Playout::default();
        let mut ev = Vec::new();
        assert_eq!(p.clear(), None);
        p.push("r1", "pre", &[1; FRAME_SAMPLES]);
        p.push("r1", "ans", &[1; FRAME_SAMPLES * 10]);
        for _ in 0..3 {
            p.pull(&mut ev);
        }
        let c = p.clear().expect("audio was queued");
        assert_eq!(c, Cleared { response_id: "r1".into(), items: vec![("ans".into(), 40)] });
        assert!(p.is_empty());
        assert_eq!(p.pull(&mut ev), None);
        // A response without audio (a tool call) never starts nor stops.
        p.finish("r9", &mut ev);
        assert_eq!(ev, vec![PlayoutEvent::Started("r1".into())]);
    }
}
