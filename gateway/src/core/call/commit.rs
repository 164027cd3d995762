//! The gateway's own turn taking when server VAD is off (`REALTIME_USE_SERVER_VAD=false`):
//! OpenAI then waits for `input_audio_buffer.commit` and `response.create`.
//!
//! Each chunk of caller audio is classed loud or silent by its energy (decoded μ-law). The
//! policy commits only between `min` (never under 100 ms: OpenAI refuses smaller commits) and
//! `max` ms of appended audio:
//! - the caller spoke, then a silent chunk, with at least `min` appended: end of turn — commit
//!   and ask for a response;
//! - `max` appended while the caller is still speaking: commit (keeps commits bounded), the
//!   turn goes on;
//! - `max` appended with no speech at all: clear the buffer (nothing worth an item).
//!
//! The first loud chunk of a turn is also reported, so the call can barge in locally.

/// What to send after an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitAction {
    /// Nothing.
    None,
    /// `input_audio_buffer.commit`, the turn goes on.
    Commit,
    /// `input_audio_buffer.commit` then `response.create`.
    CommitAndRespond,
    /// `input_audio_buffer.clear` (only silence so far).
    Clear,
}

#[derive(Debug)]
pub(crate) struct CommitPolicy {
    min_ms: u32,
    max_ms: u32,
    silence_mean_square: u64,
    uncommitted_ms: u32,
    speech: bool,
}

impl CommitPolicy {
    pub(crate) fn new(min_ms: u32, max_ms: u32, silence_mean_square: u64) -> Self {
        Self {
            min_ms: min_ms.max(100),
            max_ms: max_ms.max(min_ms.max(100)),
            silence_mean_square,
            uncommitted_ms: 0,
            speech: false,
        }
    }

    /// A new session: its input buffer is empty.
    pub(crate) fn reset(&mut self) {
        self.uncommitted_ms = 0;
        self.speech = false;
    }

    /// `ms` of audio with energy `mean_square` were appended. Returns the action and whether
    /// this chunk began the caller's speech.
    #[inline]
    pub(crate) fn on_append(&mut self, ms: u32, mean_square: u64) -> (CommitAction, bool) {
        self.uncommitted_ms = self.uncommitted_ms.saturating_add(ms);
        let loud = mean_square > self.silence_mean_square;
        let began = loud && !self.speech;
        self.speech |= loud;
        if self.uncommitted_ms < self.min_ms {
            return (CommitAction::None, began);
        }
        if !loud && self.speech {
            self.uncommitted_ms = 0;
            self.speech = false;
            return (CommitAction::CommitAndRespond, began);
        }
        if self.uncommitted_ms >= self.max_ms {
            self.uncommitted_ms = 0;
            return (if self.speech { CommitAction::Commit } else { CommitAction::Clear }, began);
        }
        (CommitAction::None, began)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: u64 = 1_000_000;

    #[test]
    fn never_commits_under_min_even_when_the_caller_stops_at_once() {
        let mut p = CommitPolicy::new(120, 800, 1000);
        assert_eq!(p.on_append(20, LOUD), (CommitAction::None, true));
        for _ in 0..4 {
            // 40..100 ms: silence, but under 120 ms appended.
            assert_eq!(p.on_append(20, 0).0, CommitAction::None);
        }
        assert_eq!(p.on_append(20, 0).0, CommitAction::CommitAndRespond, "at 120 ms");
    }

    #[test]
    fn a_configured_minimum_under_100_ms_is_raised_to_100() {
        let mut p = CommitPolicy::new(40, 800, 1000);
        p.on_append(20, LOUD);
        for _ in 0..3 {
            assert_eq!(p.on_append(20, 0).0, CommitAction::None);
        }
        assert_eq!(p.on_append(20, 0).0, CommitAction::CommitAndRespond, "at 100 ms, not 40");
    }

    #[test]
    fn long_speech_is_committed_at_max_and_the_turn_goes_on() {
        let mut p = CommitPolicy::new(120, 800, 1000);
        let actions: Vec<_> = (0..40).map(|_| p.on_append(20, LOUD).0).collect();
        assert_eq!(actions.iter().filter(|a| **a == CommitAction::Commit).count(), 1);
        assert_eq!(actions[39], CommitAction::Commit, "at 800 ms");
        assert_eq!(p.on_append(20, 0).0, CommitAction::None, "20 ms since the commit");
        for _ in 0..4 {
            p.on_append(20, 0);
        }
        assert_eq!(p.on_append(20, 0).0, CommitAction::CommitAndRespond);
    }

    #[test]
    fn silence_alone_is_cleared_not_committed() {
        let mut p = CommitPolicy::new(120, 800, 1000);
        let actions: Vec<_> = (0..40).map(|_| p.on_append(20, 0).0).collect();
        assert_eq!(actions[39], CommitAction::Clear);
        assert!(actions[..39].iter().all(|a| *a == CommitAction::None));
    }
}
