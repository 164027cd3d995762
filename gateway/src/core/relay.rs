//! The frame path, composed: one WebSocket frame in, the frames for the other side out.
//!
//! - Twilio → OpenAI: [`read_frame`] decodes and unmasks the Twilio frame in place,
//!   [`crate::core::twilio::parse_event`] takes the `payload` slice, [`write_append`] wraps it
//!   unchanged in `input_audio_buffer.append` and masks the frame into the upstream send
//!   buffer.
//! - OpenAI → Twilio: [`read_frame`] on the upstream buffer, [`crate::core::openai::parse_server_event`]
//!   takes the `delta` slice, [`write_media_with_mark`] writes a Twilio `media` frame with the
//!   audio unchanged, followed by a `mark` naming the response, chunk and the audio time it
//!   marks (for barge-in truncation).
//!
//! Nothing here allocates (the `zero_alloc` test proves it over 10 000 frames each way); the
//! only copies are the socket read into the receive buffer and the audio into the send buffer.
//! Which frames to forward (call state, barge-in) is the call state machine's decision.

use crate::core::buf::{BufferFull, RecvBuf};
use crate::core::twilio::{self, MARK_LABEL_MAX, MarkLabel};
use crate::core::ws::{Data, Decoded, Decoder, Encoder, Message, OpCode, WsError};
use crate::core::{audio, openai};

const TEXT: OpCode = OpCode::Data(Data::Text);

/// Decodes one frame from `buf` (see [`Decoder::decode`]); a re-export so callers of the frame
/// path need one module.
#[inline]
pub fn read_frame<'a>(dec: &'a mut Decoder, buf: &'a mut RecvBuf) -> Result<Decoded<'a>, WsError> {
    dec.decode(buf)
}

/// Writes `input_audio_buffer.append` carrying Twilio's base64 audio unchanged.
#[inline]
pub fn write_append(upstream: &mut Encoder, out: &mut [u8], audio_b64: &[u8]) -> Result<usize, BufferFull> {
    upstream.frame_parts(out, TEXT, true, &openai::append_parts(audio_b64))
}

/// Writes Twilio `media` with the agent's base64 audio unchanged, then the `mark` for `label`,
/// back to back in `out`. Returns the bytes written.
#[inline]
pub fn write_media_with_mark(
    downstream: &mut Encoder,
    out: &mut [u8],
    stream_sid: &[u8],
    audio_b64: &[u8],
    label: MarkLabel,
) -> Result<usize, BufferFull> {
    let n = downstream.frame_parts(out, TEXT, true, &twilio::media_parts(stream_sid, audio_b64))?;
    let mut name = [0u8; MARK_LABEL_MAX];
    let name = label.write(&mut name);
    let m = downstream.frame_parts(&mut out[n..], TEXT, true, &twilio::mark_parts(stream_sid, name))?;
    Ok(n + m)
}

/// Writes Twilio `clear` (barge-in: drop the buffered agent audio).
pub fn write_clear(downstream: &mut Encoder, out: &mut [u8], stream_sid: &[u8]) -> Result<usize, BufferFull> {
    downstream.frame_parts(out, TEXT, true, &twilio::clear_parts(stream_sid))
}

/// Milliseconds of μ-law in a base64 chunk (rounded down), without decoding it.
#[inline]
pub fn audio_ms(audio_b64: &[u8]) -> u32 {
    audio::base64_decoded_len(audio_b64).map_or(0, |n| (n / audio::BYTES_PER_MS) as u32)
}

/// Tracks the agent audio sent for the current response, to name marks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AgentAudioClock {
    response: u32,
    chunk: u32,
    sent_ms: u32,
}

impl AgentAudioClock {
    /// A new response starts: its audio time restarts at 0.
    pub fn start_response(&mut self) {
        self.response = self.response.wrapping_add(1);
        self.chunk = 0;
        self.sent_ms = 0;
    }

    /// Accounts for a chunk of `ms` about to be sent; the label of the mark that follows it.
    #[inline]
    pub fn next_chunk(&mut self, ms: u32) -> MarkLabel {
        self.chunk += 1;
        self.sent_ms = self.sent_ms.saturating_add(ms);
        MarkLabel { response: self.response, chunk: self.chunk, end_ms: self.sent_ms }
    }

    /// Agent audio sent so far in this response (ms).
    pub fn sent_ms(&self) -> u32 {
        self.sent_ms
    }
}

/// Is this decoded message a text payload? The frame path handles only text; control frames
/// and binary go to the call state machine.
#[inline]
pub fn as_text<'m, 'a>(message: &'m mut Message<'a>) -> Option<&'m mut [u8]> {
    match message {
        Message::Text(t) => Some(t),
        _ => None,
    }
}
