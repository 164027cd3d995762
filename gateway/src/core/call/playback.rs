//! What the caller has heard of the agent: audio sent to Twilio per response, the marks Twilio
//! echoed back (played), and what a barge-in flushed. This is what `conversation.item.truncate`
//! needs: the model's memory must stop where the caller's ears did — never beyond what was sent.
//!
//! Marks are named [`MarkLabel`] `r{response}-c{chunk}-{end_ms}`: when Twilio echoes one, the
//! response's audio up to `end_ms` has played. After a `clear`, Twilio echoes every pending
//! mark at once: those mean *flushed*, so a flushed response ignores its later marks.
//!
//! Before Twilio's `start` nothing can be sent (the streamSid is unknown): agent audio is kept
//! here, decoded, in a bounded buffer, and sent when `start` arrives.

use crate::core::audio::BYTES_PER_MS;
use crate::core::twilio::MarkLabel;

/// Longest OpenAI id kept (`resp_…`, `item_…` are ~30 bytes).
pub(crate) const ID_MAX: usize = 64;

/// An OpenAI id copied without allocating.
pub(crate) type Id = heapless::Vec<u8, ID_MAX>;

pub(crate) fn id_from(bytes: &[u8]) -> Id {
    let mut id = Id::new();
    // An id longer than ID_MAX is kept empty: it then matches nothing (and is never truncated).
    let _ = id.extend_from_slice(bytes);
    id
}

/// Agent audio of the current response.
#[derive(Debug, Default)]
pub(crate) struct Playback {
    /// Our sequence number of the response (in mark labels), from 1.
    pub(crate) seq: u32,
    /// OpenAI's response id.
    pub(crate) response_id: Id,
    /// The assistant item the audio belongs to (for truncation).
    pub(crate) item_id: Id,
    /// Bytes of this response sent before `item_id` began (its offset on the response's
    /// audio timeline).
    pub(crate) item_start_bytes: u64,
    /// The audio item before `item_id` in this response (empty if none) and where it began.
    pub(crate) prev_item: (Id, u64),
    /// Chunks sent (the last mark's chunk number).
    pub(crate) chunk: u32,
    /// μ-law bytes sent to Twilio.
    pub(crate) sent_bytes: u64,
    /// Audio played, from echoed marks (ms).
    pub(crate) played_ms: u32,
    /// A `clear` flushed this response: its later marks mean nothing.
    pub(crate) flushed: bool,
    /// A barge-in interrupted these response ids (the one playing and the one active, usually
    /// the same): drop their later deltas.
    pub(crate) dropped: [Id; 2],
}

/// What to do with an audio delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Play it.
    Play,
    /// It belongs to an interrupted response.
    Drop,
}

impl Playback {
    /// Sorts a delta: a new response id starts a new playback (marks restart at 0 ms).
    #[inline]
    pub(crate) fn accept(&mut self, response_id: &[u8], item_id: &[u8]) -> Accept {
        if self.dropped.iter().any(|d| !d.is_empty() && d.as_slice() == response_id) {
            return Accept::Drop;
        }
        if self.response_id.as_slice() != response_id || self.seq == 0 {
            self.seq = self.seq.wrapping_add(1);
            self.response_id = id_from(response_id);
            self.item_id = id_from(item_id);
            self.item_start_bytes = 0;
            self.prev_item = (Id::new(), 0);
            self.chunk = 0;
            self.sent_bytes = 0;
            self.played_ms = 0;
            self.flushed = false;
        } else if self.item_id.as_slice() != item_id {
            // Another audio item in the same response (since gpt-realtime-2: a preamble, then
            // the answer): its audio starts where the previous item's ended.
            let prev = std::mem::replace(&mut self.item_id, id_from(item_id));
            self.prev_item = (prev, self.item_start_bytes);
            self.item_start_bytes = self.sent_bytes;
        }
        Accept::Play
    }

    /// The label of the mark that follows a chunk of `bytes` (not yet counted as sent).
    #[inline]
    pub(crate) fn label_after(&self, bytes: usize) -> MarkLabel {
        MarkLabel { response: self.seq, chunk: self.chunk + 1, end_ms: ms(self.sent_bytes + bytes as u64) }
    }

    /// The chunk was written for Twilio.
    #[inline]
    pub(crate) fn sent(&mut self, bytes: usize) {
        self.chunk += 1;
        self.sent_bytes += bytes as u64;
    }

    /// Agent audio sent so far in this response (ms).
    pub(crate) fn sent_ms(&self) -> u32 {
        ms(self.sent_bytes)
    }

    /// A mark came back. Returns false if it means nothing (flushed, or another response's).
    #[inline]
    pub(crate) fn on_mark(&mut self, label: MarkLabel) -> bool {
        if label.response != self.seq || self.flushed {
            return false;
        }
        self.played_ms = self.played_ms.max(label.end_ms.min(self.sent_ms()));
        true
    }

    /// Audio sent that Twilio has not reported played (and that a `clear` would flush).
    pub(crate) fn unplayed(&self) -> bool {
        !self.flushed && self.played_ms < self.sent_ms()
    }

    /// Where to truncate the response's audio: what was played, never more than what was sent
    /// (ms on the response's timeline).
    pub(crate) fn truncate_at_ms(&self) -> u32 {
        self.played_ms.min(self.sent_ms())
    }

    /// The OpenAI session ended: its items cannot be truncated in the next one.
    pub(crate) fn forget_items(&mut self) {
        self.item_id = Id::new();
        self.prev_item = (Id::new(), 0);
    }

    /// The `conversation.item.truncate`s a barge-in needs, each on its item's own timeline:
    /// the current item at what was heard of it (0 if the caller never reached it), and the
    /// item before it in the same response when the caller stopped hearing inside that one.
    pub(crate) fn truncations(&self) -> heapless::Vec<(Id, u32), 2> {
        let at = u64::from(self.truncate_at_ms());
        let start = u64::from(ms(self.item_start_bytes));
        let mut out = heapless::Vec::new();
        if at < start && !self.prev_item.0.is_empty() {
            let prev_start = u64::from(ms(self.prev_item.1));
            let _ = out.push((self.prev_item.0.clone(), clamp_ms(at.saturating_sub(prev_start))));
        }
        if !self.item_id.is_empty() {
            let _ = out.push((self.item_id.clone(), clamp_ms(at.saturating_sub(start))));
        }
        out
    }
}

fn clamp_ms(ms: u64) -> u32 {
    u32::try_from(ms).unwrap_or(u32::MAX)
}

fn ms(bytes: u64) -> u32 {
    u32::try_from(bytes / BYTES_PER_MS as u64).unwrap_or(u32::MAX)
}

/// Agent audio (μ-law) waiting for Twilio's `start`, bounded. Allocated on first use only:
/// since the greeting waits for `start`, most calls never hold agent audio.
#[derive(Debug)]
pub(crate) struct AgentHold {
    ulaw: Vec<u8>,
    /// Bytes at the front already sent.
    taken: usize,
    capacity: usize,
}

impl AgentHold {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { ulaw: Vec::new(), taken: 0, capacity }
    }

    /// Keeps what fits; returns the bytes that did not.
    pub(crate) fn push(&mut self, ulaw: &[u8]) -> usize {
        if self.taken > 0 {
            self.ulaw.drain(..self.taken);
            self.taken = 0;
        }
        let n = ulaw.len().min(self.capacity - self.ulaw.len());
        if n > 0 && self.ulaw.capacity() == 0 {
            self.ulaw.reserve_exact(self.capacity);
        }
        self.ulaw.extend_from_slice(&ulaw[..n]);
        ulaw.len() - n
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.taken == self.ulaw.len()
    }

    pub(crate) fn clear(&mut self) {
        self.ulaw.clear();
        self.taken = 0;
    }

    /// What is still to be sent.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.ulaw[self.taken..]
    }

    /// `n` bytes from the front were sent.
    pub(crate) fn consume(&mut self, n: usize) {
        self.taken += n;
        if self.taken >= self.ulaw.len() {
            self.clear();
        }
    }

    /// Gives the memory back once everything was sent: after `start` nothing is held again.
    pub(crate) fn release(&mut self) {
        if self.is_empty() {
            self.ulaw = Vec::new();
            self.capacity = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_after_a_flush_do_not_count_as_played() {
        let mut p = Playback::default();
        assert_eq!(p.accept(b"resp_1", b"item_1"), Accept::Play);
        for _ in 0..3 {
            let l = p.label_after(800);
            p.sent(800);
            assert_eq!(l.end_ms, p.sent_ms());
        }
        assert!(p.on_mark(MarkLabel { response: 1, chunk: 1, end_ms: 100 }));
        assert!(p.unplayed());
        p.flushed = true;
        assert!(!p.on_mark(MarkLabel { response: 1, chunk: 3, end_ms: 300 }));
        assert_eq!(p.truncate_at_ms(), 100);
    }

    #[test]
    fn a_second_item_is_truncated_on_its_own_timeline() {
        let mut p = Playback::default();
        p.accept(b"resp_1", b"item_pre");
        p.sent(800); // 100 ms of preamble
        p.accept(b"resp_1", b"item_ans");
        p.sent(1600); // 200 ms of answer
        assert!(p.on_mark(MarkLabel { response: 1, chunk: 2, end_ms: 250 }));
        let t = p.truncations();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].0.as_slice(), t[0].1),
            (&b"item_ans"[..], 150),
            "250 ms heard, 100 of them the preamble"
        );
        // Heard only part of the preamble: it is truncated there, the answer at 0.
        let mut p = Playback::default();
        p.accept(b"resp_1", b"item_pre");
        p.sent(800);
        p.accept(b"resp_1", b"item_ans");
        p.sent(800);
        assert!(p.on_mark(MarkLabel { response: 1, chunk: 1, end_ms: 60 }));
        let t: Vec<(Vec<u8>, u32)> = p.truncations().iter().map(|(i, ms)| (i.to_vec(), *ms)).collect();
        assert_eq!(t, [(b"item_pre".to_vec(), 60), (b"item_ans".to_vec(), 0)]);
    }

    #[test]
    fn a_new_response_restarts_the_audio_clock() {
        let mut p = Playback::default();
        p.accept(b"resp_1", b"item_1");
        p.sent(1600);
        p.accept(b"resp_2", b"item_2");
        assert_eq!((p.seq, p.sent_ms(), p.item_id.as_slice()), (2, 0, &b"item_2"[..]));
        assert!(!p.on_mark(MarkLabel { response: 1, chunk: 1, end_ms: 200 }), "old response's mark");
    }
}
