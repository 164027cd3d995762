//! Where each caller frame sits on the call's timeline. Twilio numbers its messages
//! (`sequenceNumber`, increasing per stream) and stamps each `media` with `media.timestamp`
//! (ms since the stream started): together they tell a lost frame (a jump in time), a
//! duplicate or a frame arriving after a later one (a sequence number already passed).
//!
//! OpenAI's audio clock is the audio appended to it: a lost frame would shift everything after
//! it — VAD timings, `audio_start_ms`, and the truncation of the agent's answer. So a gap up to
//! a bound is filled with μ-law silence (`0xFF`) before the frame that follows it; a longer gap
//! is counted as unfillable and not filled (that is no longer a lost packet but a stream that
//! stalled, and inventing seconds of audio would mislead the model); late and duplicate frames
//! are dropped. Pure arithmetic: no allocation.

/// What to do with a caller frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Append it; first append this much silence (ms) for the frames that were lost.
    Append {
        /// Silence to insert before the frame (0: none).
        fill_ms: u32,
    },
    /// A duplicate, or a frame older than one already appended: drop it.
    Drop,
}

/// Gaps below this are timestamp rounding, not lost audio.
const TOLERANCE_MS: u64 = 10;

/// The caller stream's clock.
#[derive(Debug, Default)]
pub(crate) struct MediaClock {
    /// `sequenceNumber` of the last frame appended.
    last_seq: Option<u64>,
    /// Where the audio appended so far ends (ms since the stream started).
    end_ms: u64,
    /// Gaps filled, and the silence they took (ms).
    pub(crate) gaps_filled: u64,
    pub(crate) filled_ms: u64,
    /// Gaps longer than the bound (not filled).
    pub(crate) gaps_unfillable: u64,
    /// Duplicate or late frames dropped.
    pub(crate) dropped_late: u64,
}

impl MediaClock {
    /// Places a frame of `duration_ms` stamped `timestamp_ms`, numbered `seq`; gaps up to
    /// `max_fill_ms` are filled.
    #[inline]
    pub(crate) fn place(
        &mut self,
        seq: u64,
        timestamp_ms: u64,
        duration_ms: u32,
        max_fill_ms: u32,
    ) -> Placement {
        let Some(last) = self.last_seq else {
            // The first frame sets the clock (what came before it was never audio to us).
            self.last_seq = Some(seq);
            self.end_ms = timestamp_ms + u64::from(duration_ms);
            return Placement::Append { fill_ms: 0 };
        };
        if seq <= last || timestamp_ms + u64::from(duration_ms) <= self.end_ms {
            self.dropped_late += 1;
            return Placement::Drop;
        }
        self.last_seq = Some(seq);
        let gap = timestamp_ms.saturating_sub(self.end_ms);
        let end = timestamp_ms.max(self.end_ms) + u64::from(duration_ms);
        let fill_ms = if gap < TOLERANCE_MS {
            0
        } else if gap <= u64::from(max_fill_ms) {
            self.gaps_filled += 1;
            self.filled_ms += gap;
            gap as u32
        } else {
            self.gaps_unfillable += 1;
            0
        };
        self.end_ms = end;
        Placement::Append { fill_ms }
    }
}

/// Base64 of `n` bytes of μ-law silence (`0xFF`), into `out` (at least `n / 3 * 4 + 4` bytes);
/// returns the encoded length. `0xFF 0xFF 0xFF` encodes as `////`.
pub(crate) fn silence_base64(n: usize, out: &mut [u8]) -> usize {
    let full = n / 3 * 4;
    out[..full].fill(b'/');
    match n % 3 {
        0 => full,
        1 => {
            out[full..full + 4].copy_from_slice(b"/w==");
            full + 4
        }
        _ => {
            out[full..full + 4].copy_from_slice(b"//8=");
            full + 4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(clock: &mut MediaClock, seq_ts: &[(u64, u64)]) -> Vec<Placement> {
        seq_ts.iter().map(|&(seq, ts)| clock.place(seq, ts, 20, 500)).collect()
    }

    #[test]
    fn a_steady_stream_needs_nothing() {
        let mut c = MediaClock::default();
        let p = frames(&mut c, &[(2, 0), (3, 20), (5, 40), (6, 60)]);
        assert!(
            p.iter().all(|p| *p == Placement::Append { fill_ms: 0 }),
            "{p:?}: sequence gaps alone are marks"
        );
    }

    #[test]
    fn lost_frames_are_filled_up_to_the_bound_and_counted() {
        let mut c = MediaClock::default();
        let p = frames(&mut c, &[(2, 0), (3, 20), (6, 80), (7, 100)]);
        assert_eq!(p[2], Placement::Append { fill_ms: 40 });
        assert_eq!(p[3], Placement::Append { fill_ms: 0 });
        assert_eq!((c.gaps_filled, c.filled_ms), (1, 40));
        let mut c = MediaClock::default();
        let p = frames(&mut c, &[(2, 0), (40, 520), (80, 1540)]);
        assert_eq!(p[1], Placement::Append { fill_ms: 500 }, "exactly the bound");
        assert_eq!(p[2], Placement::Append { fill_ms: 0 }, "beyond it: never filled");
        assert_eq!((c.gaps_filled, c.filled_ms, c.gaps_unfillable), (1, 500, 1));
    }

    #[test]
    fn duplicates_and_late_frames_are_dropped_without_moving_the_clock() {
        let mut c = MediaClock::default();
        let p = frames(&mut c, &[(2, 0), (3, 20), (3, 20), (5, 60), (4, 40), (6, 80)]);
        assert_eq!(
            p,
            [
                Placement::Append { fill_ms: 0 },
                Placement::Append { fill_ms: 0 },
                Placement::Drop,
                Placement::Append { fill_ms: 20 },
                Placement::Drop,
                Placement::Append { fill_ms: 0 },
            ]
        );
        assert_eq!(c.dropped_late, 2);
    }

    #[test]
    fn silence_base64_decodes_to_0xff() {
        let mut out = [0u8; 700];
        for n in [0, 1, 2, 3, 160, 161, 480, 500] {
            let len = silence_base64(n, &mut out);
            let decoded = base64_simd::STANDARD.decode_to_vec(&out[..len]).unwrap();
            assert_eq!(decoded, vec![0xff; n], "{n}");
        }
    }
}
