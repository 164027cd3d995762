//! Events the call receives and does nothing with, counted by kind over a fixed label set
//! (for `/metrics`: a label set bounded whatever the peers send). An event type OpenAI adds
//! later counts as `openai/unknown`; a Twilio message that is not one of its six events as
//! `twilio/unknown_event`.

/// Every label, as `(peer, kind)`, in counter order.
pub const IGNORED_LABELS: [(&str, &str); 44] = [
    ("twilio", "unparsable"),
    ("twilio", "unknown_event"),
    ("twilio", "before_start"),
    ("twilio", "foreign_stream"),
    ("twilio", "duplicate_start"),
    ("openai", "unparsable"),
    ("openai", "unknown"),
    ("openai", "session.created"),
    ("openai", "session.updated"),
    ("openai", "conversation.created"),
    ("openai", "conversation.item.added"),
    ("openai", "conversation.item.created"),
    ("openai", "conversation.item.done"),
    ("openai", "conversation.item.deleted"),
    ("openai", "conversation.item.retrieved"),
    ("openai", "conversation.item.truncated"),
    ("openai", "conversation.item.input_audio_transcription.delta"),
    ("openai", "conversation.item.input_audio_transcription.segment"),
    ("openai", "conversation.item.input_audio_transcription.failed"),
    ("openai", "input_audio_buffer.committed"),
    ("openai", "input_audio_buffer.cleared"),
    ("openai", "input_audio_buffer.speech_stopped"),
    ("openai", "input_audio_buffer.timeout_triggered"),
    ("openai", "input_audio_buffer.dtmf_event_received"),
    ("openai", "output_audio_buffer.started"),
    ("openai", "output_audio_buffer.stopped"),
    ("openai", "output_audio_buffer.cleared"),
    ("openai", "response.output_item.added"),
    ("openai", "response.output_item.done"),
    ("openai", "response.content_part.added"),
    ("openai", "response.content_part.done"),
    ("openai", "response.output_audio.done"),
    ("openai", "response.output_audio_transcript.delta"),
    ("openai", "response.output_text.delta"),
    ("openai", "response.function_call_arguments.delta"),
    ("openai", "rate_limits.updated"),
    // GPT-Live
    ("openai", "session.started"),
    ("openai", "session.instructions.appended"),
    ("openai", "session.thinking.appended"),
    ("openai", "session.commentary.appended"),
    ("openai", "session.delegation.created"),
    ("openai", "session.input_audio.muted"),
    ("openai", "session.input_audio.unmuted"),
    ("openai", "response.event"),
];

/// Where the Twilio labels are.
pub(crate) mod twilio {
    pub(crate) const UNPARSABLE: usize = 0;
    pub(crate) const UNKNOWN_EVENT: usize = 1;
    pub(crate) const BEFORE_START: usize = 2;
    pub(crate) const FOREIGN_STREAM: usize = 3;
    pub(crate) const DUPLICATE_START: usize = 4;
}

/// Where the first OpenAI labels are.
pub(crate) mod openai {
    pub(crate) const UNPARSABLE: usize = 5;
    pub(crate) const UNKNOWN: usize = 6;
    /// The first label named after an event type.
    pub(crate) const FIRST_TYPE: usize = 7;
}

/// Per-call counts, one per [`IGNORED_LABELS`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IgnoredCounts(pub [u32; IGNORED_LABELS.len()]);

impl Default for IgnoredCounts {
    fn default() -> Self {
        Self([0; IGNORED_LABELS.len()])
    }
}

impl IgnoredCounts {
    /// Counts one event of label `index`.
    #[inline]
    pub(crate) fn add(&mut self, index: usize) {
        self.0[index] = self.0[index].saturating_add(1);
    }

    /// Counts an OpenAI event of type `kind` that the call does not act on.
    #[inline]
    pub(crate) fn add_openai(&mut self, kind: &str) {
        let index = IGNORED_LABELS[openai::FIRST_TYPE..]
            .iter()
            .position(|(_, k)| *k == kind)
            .map_or(openai::UNKNOWN, |i| i + openai::FIRST_TYPE);
        self.add(index);
    }

    /// `(peer, kind, count)` of every label counted at least once.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'static str, u32)> + '_ {
        IGNORED_LABELS.iter().zip(self.0).filter(|(_, n)| *n > 0).map(|((p, k), n)| (*p, *k, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_name_their_labels() {
        assert_eq!(IGNORED_LABELS[twilio::UNPARSABLE], ("twilio", "unparsable"));
        assert_eq!(IGNORED_LABELS[twilio::UNKNOWN_EVENT], ("twilio", "unknown_event"));
        assert_eq!(IGNORED_LABELS[twilio::BEFORE_START], ("twilio", "before_start"));
        assert_eq!(IGNORED_LABELS[twilio::FOREIGN_STREAM], ("twilio", "foreign_stream"));
        assert_eq!(IGNORED_LABELS[twilio::DUPLICATE_START], ("twilio", "duplicate_start"));
        assert_eq!(IGNORED_LABELS[openai::UNPARSABLE], ("openai", "unparsable"));
        assert_eq!(IGNORED_LABELS[openai::UNKNOWN], ("openai", "unknown"));
        assert!(IGNORED_LABELS[openai::FIRST_TYPE..].iter().all(|(p, k)| *p == "openai" && k.contains('.')));
    }

    #[test]
    fn openai_types_map_to_their_label_and_anything_else_to_unknown() {
        let mut c = IgnoredCounts::default();
        c.add_openai("rate_limits.updated");
        c.add_openai("rate_limits.updated");
        c.add_openai("response.brand_new_event");
        let seen: Vec<_> = c.iter().collect();
        assert_eq!(seen, [("openai", "unknown", 1), ("openai", "rate_limits.updated", 2)]);
    }
}
