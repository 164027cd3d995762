//! Reading the JSON events the load generator receives by byte search (`memchr`), never by
//! building a JSON tree: the harness must cost less per frame than the gateway it measures.
//!
//! Two readers, one per outside party the harness plays:
//! - [`twilio_message`]: what the simulated Twilio caller gets from the gateway (`media`,
//!   `mark`, `clear`) or, in echo-floor mode, its own messages echoed back;
//! - [`client_event`]: what the OpenAI stand-in gets from the gateway
//!   (`input_audio_buffer.append` on the hot path, then `session.update`, `response.create`, …).
//!
//! Both only look for the few keys they need and trust the rest: the gateway's own fast paths
//! and schema tests are what check its output, not the load generator.

use memchr::memmem;

/// A message on the Twilio leg, as far as the caller cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioIn<'a> {
    /// `media`: the base64 `payload`.
    Media {
        /// Base64 μ-law, unchanged.
        payload: &'a [u8],
    },
    /// `mark`: the name to echo back once the audio before it has played.
    Mark {
        /// The mark's name.
        name: &'a [u8],
    },
    /// `clear`: buffered audio dropped (a barge-in; never expected in a load test).
    Clear,
    /// Another event (`connected`, `start`, `stop` echoed in echo-floor mode).
    Other {
        /// The event name.
        event: &'a [u8],
    },
    /// No `"event":"…"` or a `media`/`mark` without its field.
    Malformed,
}

/// The string value starting right after `key` (which must end with `"`): the bytes up to the
/// next `"`. Values we read (base64, mark names, event names) contain no escapes.
pub fn str_after<'a>(msg: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = memmem::find(msg, key)? + key.len();
    let len = memchr::memchr(b'"', &msg[start..])?;
    Some(&msg[start..start + len])
}

/// The unsigned integer right after `key` (which ends with `:`); `None` without digits or on
/// overflow.
pub fn number_after(msg: &[u8], key: &[u8]) -> Option<u64> {
    let start = memmem::find(msg, key)? + key.len();
    let digits = msg[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    msg[start..start + digits]
        .iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Classifies a text message received on the Twilio leg.
#[inline]
pub fn twilio_message(msg: &[u8]) -> TwilioIn<'_> {
    let Some(event) = str_after(msg, br#""event":""#) else { return TwilioIn::Malformed };
    match event {
        b"media" => match str_after(msg, br#""payload":""#) {
            Some(payload) => TwilioIn::Media { payload },
            None => TwilioIn::Malformed,
        },
        b"mark" => match str_after(msg, br#""name":""#) {
            Some(name) => TwilioIn::Mark { name },
            None => TwilioIn::Malformed,
        },
        b"clear" => TwilioIn::Clear,
        event => TwilioIn::Other { event },
    }
}

/// A client event on the OpenAI leg, as far as the stand-in cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent<'a> {
    /// `input_audio_buffer.append`: the base64 audio, to echo.
    Append {
        /// Base64 audio, unchanged.
        audio: &'a [u8],
    },
    /// `session.update`.
    SessionUpdate,
    /// `response.create`.
    ResponseCreate,
    /// `response.cancel`.
    ResponseCancel,
    /// Any other type (`conversation.item.truncate`, `input_audio_buffer.commit`, …).
    Other {
        /// The event type.
        kind: &'a [u8],
    },
    /// No `"type":"…"`, or an append without its audio.
    Malformed,
}

/// The exact prefix of the gateway's appends (`core::openai::append_parts`).
const APPEND_PREFIX: &[u8] = br#"{"type":"input_audio_buffer.append","audio":""#;

/// Classifies a text message received on the OpenAI leg.
#[inline]
pub fn client_event(msg: &[u8]) -> ClientEvent<'_> {
    // Hot path: the append exactly as the gateway writes it.
    if let Some(rest) = msg.strip_prefix(APPEND_PREFIX)
        && let Some(audio) = rest.strip_suffix(br#""}"#)
        && memchr::memchr(b'"', audio).is_none()
    {
        return ClientEvent::Append { audio };
    }
    let Some(kind) = str_after(msg, br#""type":""#) else { return ClientEvent::Malformed };
    match kind {
        b"input_audio_buffer.append" => match str_after(msg, br#""audio":""#) {
            Some(audio) => ClientEvent::Append { audio },
            None => ClientEvent::Malformed,
        },
        b"session.update" => ClientEvent::SessionUpdate,
        b"response.create" => ClientEvent::ResponseCreate,
        b"response.cancel" => ClientEvent::ResponseCancel,
        kind => ClientEvent::Other { kind },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_media_and_mark() {
        let media = br#"{"event":"media","streamSid":"MZ1","media":{"payload":"/////w=="}}"#;
        assert_eq!(twilio_message(media), TwilioIn::Media { payload: b"/////w==" });
        let mark = br#"{"event":"mark","streamSid":"MZ1","mark":{"name":"r2-c7-140"}}"#;
        assert_eq!(twilio_message(mark), TwilioIn::Mark { name: b"r2-c7-140" });
        assert_eq!(twilio_message(br#"{"event":"clear","streamSid":"MZ1"}"#), TwilioIn::Clear);
    }

    #[test]
    fn echoed_twilio_messages() {
        // Echo-floor mode: our own `media` comes back with every Twilio field.
        let media = br#"{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"no+JhoaJjpzS"},"streamSid":"MZ1"}"#;
        assert_eq!(twilio_message(media), TwilioIn::Media { payload: b"no+JhoaJjpzS" });
        let connected = br#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
        assert_eq!(twilio_message(connected), TwilioIn::Other { event: b"connected" });
        assert_eq!(twilio_message(b"{}"), TwilioIn::Malformed);
        assert_eq!(twilio_message(br#"{"event":"media","streamSid":"MZ1"}"#), TwilioIn::Malformed);
        assert_eq!(twilio_message(br#"{"event":"mark""#), TwilioIn::Malformed);
    }

    #[test]
    fn appends_fast_and_slow() {
        assert_eq!(
            client_event(br#"{"type":"input_audio_buffer.append","audio":"AAAA/w=="}"#),
            ClientEvent::Append { audio: b"AAAA/w==" }
        );
        // Another key order (not the gateway's) still reads.
        assert_eq!(
            client_event(br#"{"audio":"AAAA","type":"input_audio_buffer.append","event_id":"e1"}"#),
            ClientEvent::Append { audio: b"AAAA" }
        );
        assert_eq!(client_event(br#"{"type":"input_audio_buffer.append"}"#), ClientEvent::Malformed);
    }

    #[test]
    fn other_client_events() {
        assert_eq!(
            client_event(br#"{"type":"session.update","session":{"type":"realtime","instructions":"x"}}"#),
            ClientEvent::SessionUpdate
        );
        assert_eq!(client_event(br#"{"type":"response.create"}"#), ClientEvent::ResponseCreate);
        assert_eq!(
            client_event(br#"{"type":"response.create","response":{"instructions":"y"}}"#),
            ClientEvent::ResponseCreate
        );
        assert_eq!(client_event(br#"{"type":"response.cancel"}"#), ClientEvent::ResponseCancel);
        assert_eq!(
            client_event(
                br#"{"type":"conversation.item.truncate","item_id":"i","content_index":0,"audio_end_ms":20}"#
            ),
            ClientEvent::Other { kind: b"conversation.item.truncate" }
        );
        assert_eq!(client_event(b"[]"), ClientEvent::Malformed);
    }

    #[test]
    fn numbers_after_a_key() {
        let t = br#"{"type":"conversation.item.truncate","item_id":"i","audio_end_ms":1840}"#;
        assert_eq!(number_after(t, br#""audio_end_ms":"#), Some(1840));
        assert_eq!(str_after(t, br#""item_id":""#), Some(&b"i"[..]));
        assert_eq!(number_after(br#"{"audio_end_ms":-5}"#, br#""audio_end_ms":"#), None);
        assert_eq!(number_after(br#"{"n":99999999999999999999999}"#, br#""n":"#), None);
        assert_eq!(number_after(b"{}", br#""n":"#), None);
    }
}
