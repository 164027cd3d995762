//! What the simulated model says and does: scripted replies (audio plus transcript), tool calls
//! on a chosen user turn, and the transcripts of the caller's turns.
//!
//! Replies are taken in order, one per spoken response; once the list is exhausted the last
//! reply repeats. A user turn is one committed input-audio item (by server VAD or a manual
//! `input_audio_buffer.commit`); the first response created after the Nth such turn carries
//! the tool call scripted for turn N (once).

use std::path::Path;
use std::sync::Arc;

use crate::audio::{AudioFormat, silence_ulaw, tone_ulaw};

/// The audio of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioSource {
    /// A sine tone (amplitude 0.3 of full scale).
    Tone {
        /// Frequency in Hz.
        hz: f32,
        /// Duration in milliseconds.
        ms: u32,
    },
    /// Raw μ-law 8 kHz audio (for example a `.ul` file made with `sox … -e u-law`).
    Mulaw(Arc<[u8]>),
    /// Digital silence.
    Silence {
        /// Duration in milliseconds.
        ms: u32,
    },
}

impl AudioSource {
    /// The audio as μ-law 8 kHz.
    pub fn to_ulaw(&self) -> Vec<u8> {
        match self {
            Self::Tone { hz, ms } => tone_ulaw(*hz, *ms, 0.3),
            Self::Mulaw(bytes) => bytes.to_vec(),
            Self::Silence { ms } => silence_ulaw(*ms),
        }
    }

    /// The audio encoded in `format`.
    pub fn encode(&self, format: AudioFormat) -> Vec<u8> {
        format.from_ulaw(&self.to_ulaw())
    }
}

/// One spoken reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// What is heard.
    pub audio: AudioSource,
    /// What `response.output_audio_transcript.*` says was said (and the text of a text-only
    /// response).
    pub transcript: String,
}

impl Reply {
    /// A tone reply.
    pub fn tone(hz: f32, ms: u32, transcript: impl Into<String>) -> Self {
        Self { audio: AudioSource::Tone { hz, ms }, transcript: transcript.into() }
    }

    /// A reply from raw μ-law bytes.
    pub fn mulaw(bytes: impl Into<Arc<[u8]>>, transcript: impl Into<String>) -> Self {
        Self { audio: AudioSource::Mulaw(bytes.into()), transcript: transcript.into() }
    }

    /// A reply read from a raw μ-law 8 kHz file (no header).
    pub fn from_mulaw_file(path: impl AsRef<Path>, transcript: impl Into<String>) -> std::io::Result<Self> {
        Ok(Self::mulaw(std::fs::read(path)?, transcript))
    }

    /// A reply read from a 16-bit PCM mono WAV file of any rate (`espeak-ng -w` makes one),
    /// resampled to μ-law 8 kHz at `gain` (1.0 keeps the level).
    pub fn from_wav_file(
        path: impl AsRef<Path>,
        transcript: impl Into<String>,
        gain: f32,
    ) -> std::io::Result<Self> {
        let (samples, rate) = crate::audio::read_wav(&std::fs::read(path)?)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(Self::mulaw(crate::audio::to_ulaw_8k(&samples, rate, gain), transcript))
    }
}

/// A tool call the model makes on a given user turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The user turn (1-based) after which the call is made.
    pub on_user_turn: u32,
    /// Function name.
    pub name: String,
    /// JSON arguments, as the string the model streams. `{{output.KEY}}` stands for the value
    /// of `KEY` in the latest `function_call_output` of the conversation (what a model reads
    /// back from a tool's answer: `{"lead_id":"{{output.lead_id}}"}` after `save_lead`).
    pub arguments: String,
    /// A spoken item before the call in the same response (output index 0, the call at 1).
    pub preamble: Option<Reply>,
}

impl ToolCall {
    /// A call of `name` with `arguments` (a JSON text) after user turn `on_user_turn`.
    pub fn new(on_user_turn: u32, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self { on_user_turn, name: name.into(), arguments: arguments.into(), preamble: None }
    }

    /// Says `reply` before calling.
    pub fn with_preamble(mut self, reply: Reply) -> Self {
        self.preamble = Some(reply);
        self
    }
}

/// `arguments` with each `{{output.KEY}}` replaced by `KEY` of `output` (a JSON object: a
/// string value as is, another value as JSON text; an absent key, or no output, as empty).
pub(crate) fn fill_from_output(arguments: &str, output: Option<&serde_json::Value>) -> String {
    let mut out = String::with_capacity(arguments.len());
    let mut rest = arguments;
    while let Some(start) = rest.find("{{output.") {
        let Some(len) = rest[start..].find("}}") else { break };
        out.push_str(&rest[..start]);
        let key = &rest[start + "{{output.".len()..start + len];
        match output.and_then(|o| o.get(key)) {
            Some(serde_json::Value::String(s)) => out.push_str(s),
            Some(v) => out.push_str(&v.to_string()),
            None => {}
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The script of every session.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Spoken replies in order; the last repeats.
    pub replies: Vec<Reply>,
    /// Tool calls keyed by user turn.
    pub tool_calls: Vec<ToolCall>,
    /// Transcripts of the caller's turns, in order (the last repeats), reported by
    /// `conversation.item.input_audio_transcription.completed` when transcription is on.
    pub user_transcripts: Vec<String>,
}

impl Default for Script {
    /// One reply (a 1 s 440 Hz tone, "Bonjour, ici l'assistante Callway."), no tool calls, user
    /// transcripts "Allô ?".
    fn default() -> Self {
        Self {
            replies: vec![Reply::tone(440.0, 1000, "Bonjour, ici l'assistante Callway.")],
            tool_calls: Vec::new(),
            user_transcripts: vec!["Allô ?".to_owned()],
        }
    }
}

impl Script {
    /// A script with these replies and nothing else scripted.
    pub fn replies(replies: impl IntoIterator<Item = Reply>) -> Self {
        Self { replies: replies.into_iter().collect(), ..Self::default() }
    }

    /// Adds a tool call.
    pub fn with_tool_call(mut self, call: ToolCall) -> Self {
        self.tool_calls.push(call);
        self
    }

    /// Sets the caller transcripts.
    pub fn with_user_transcripts<S: Into<String>>(mut self, t: impl IntoIterator<Item = S>) -> Self {
        self.user_transcripts = t.into_iter().map(Into::into).collect();
        self
    }

    /// The `n`th (0-based) spoken reply.
    pub(crate) fn reply(&self, n: usize) -> Reply {
        self.replies
            .get(n)
            .or_else(|| self.replies.last())
            .cloned()
            .unwrap_or_else(|| Reply { audio: AudioSource::Silence { ms: 0 }, transcript: String::new() })
    }

    /// The transcript of user turn `n` (1-based).
    pub(crate) fn user_transcript(&self, n: u32) -> String {
        let i = (n as usize).saturating_sub(1);
        self.user_transcripts.get(i).or_else(|| self.user_transcripts.last()).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_transcripts_repeat_the_last() {
        let s = Script::replies([Reply::tone(300.0, 100, "a"), Reply::tone(300.0, 100, "b")])
            .with_user_transcripts(["one", "two"]);
        assert_eq!(s.reply(0).transcript, "a");
        assert_eq!(s.reply(5).transcript, "b");
        assert_eq!(s.user_transcript(1), "one");
        assert_eq!(s.user_transcript(9), "two");
        assert_eq!(Script::replies([]).reply(0).transcript, "");
        assert_eq!(AudioSource::Tone { hz: 440.0, ms: 250 }.encode(AudioFormat::Pcmu).len(), 2000);
        assert_eq!(AudioSource::Silence { ms: 10 }.encode(AudioFormat::Pcm24k).len(), 480);
    }

    #[test]
    fn arguments_take_values_from_the_latest_tool_output() {
        let out = serde_json::json!({"lead_id": "42", "n": 7});
        let args = r#"{"lead_id":"{{output.lead_id}}","n":{{output.n}},"x":"{{output.none}}"}"#;
        assert_eq!(fill_from_output(args, Some(&out)), r#"{"lead_id":"42","n":7,"x":""}"#);
        assert_eq!(fill_from_output(args, None), r#"{"lead_id":"","n":,"x":""}"#);
        assert_eq!(fill_from_output("{{output.open", Some(&out)), "{{output.open");
    }
}
