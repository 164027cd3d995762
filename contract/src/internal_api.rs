//! The internal API the gateway calls on the control plane (JSON over HTTPS), and how each
//! request is authenticated.
//!
//! # Authentication
//! Every request carries two headers:
//! - [`TIMESTAMP_HEADER`]: unix seconds when it was signed;
//! - [`SIGNATURE_HEADER`]: `v1=<hex HMAC-SHA256(INTERNAL_API_SECRET, ts \n METHOD \n path \n body)>`.
//!
//! The receiver refuses a timestamp more than [`MAX_SKEW_SECS`] away from its clock and compares
//! the tag in constant time, against the current secret and, during a rotation, the previous
//! one (`INTERNAL_API_SECRET_PREVIOUS`, [`InternalAuth::with_previous`]); signing always uses
//! the current one. Replays inside the window are harmless for these routes: token
//! redemption is single-use in the database and the other writes are idempotent by design.
//!
//! # Routes (all `POST`, JSON in and out)
//! - [`REDEEM_PATH`]: [`RedeemRequest`] → [`CallContext`] (404/409/410 with an [`ApiError`]).
//! - [`tool_path`]`(call_id, name)`: [`ToolRequest`] → [`ToolResponse`] (`save_lead`,
//!   `end_call`, and [`TRANSFER_TOOL`] when [`CallContext::transfer`]).
//! - [`events_path`]`(call_id)`: [`CallEventsBatch`] → `204`.
//! - [`amd_path`]`(call_id)`: [`AmdWait`] → [`AmdStatus`] (long poll, below).
//!
//! # Answering-machine detection: what the gateway must do
//! When the control plane runs with `ANSWERING_MACHINE_DETECTION=on`, Twilio's asynchronous
//! detection (`MachineDetection=DetectMessageEnd`, `AsyncAmd=true`) runs on every outbound call
//! while the `<Connect><Stream>` is already connected: the stream opens as usual and the result
//! reaches the control plane a few seconds later (a person after about 2–4 s of their first
//! words; a machine only once its greeting has ended, 10 s or more; `unknown` at the detection
//! timeout, 30 s). The control plane (`control-plane/src/amd.rs`) records the result on the
//! call's timeline and, on a machine or a fax, updates the live call through Twilio's REST API
//! (new TwiML `<Say>` + `<Hangup/>`, or `Status=completed`). The gateway:
//! 1. **Learns whether detection runs**, right after redeeming the token: `POST`
//!    [`amd_path`]`(call_id)` with [`AmdWait`] `{"wait_ms": N}`. The answer is [`AmdStatus`]:
//!    `detection: false` → no detection on this call: greet as today. `detection: true` with
//!    `answered_by` set → the result is already known. Otherwise the control plane holds the
//!    request until the result arrives or `wait_ms` (at most [`AMD_MAX_WAIT_MS`]) has passed,
//!    then answers with `answered_by: null`. The gateway asks once, with `wait_ms` its own
//!    hold limit (`AMD_HOLD_MS`, 4 s by default), so one request covers the whole hold.
//! 2. **Holds the greeting while detection runs**: the OpenAI session is opened and configured
//!    as usual (the pre-warm stays), caller audio is relayed (OpenAI's VAD and transcription may
//!    run), but no `response.create` for the greeting is sent and the model's turn detection
//!    must not create responses (`turn_detection.create_response: false` until released, or the
//!    gateway's own turn taking holding its commit). On GPT-Live, whose model speaks when it
//!    wants and whose session is billed from its start, `session.start` itself waits and the
//!    caller's audio waits in the hold ring. A person usually says « Allô ? » and waits: that
//!    speech is what lets Twilio decide `human`.
//! 3. **Releases** on `answered_by` `human` or `unknown` (the conversation starts: greeting as
//!    today, with what the caller already said in context), and also when the hold has lasted
//!    the gateway's own limit (a few seconds, e.g. 4 s, so a person never waits long if the
//!    callback is late: the conversation then starts and a late machine result still ends the
//!    call through Twilio).
//! 4. **Does nothing more** on `machine_*` or `fax`: it never greets; Twilio ends the stream
//!    (`stop`, then the WebSocket closes) when the control plane updates the call, and the
//!    gateway ends its call as on any `stop` (its end reason is the caller's hang-up; the
//!    timeline says `amd-machine_end_beep`, `voicemail-left`).
//!
//! Nothing else changes: tokens, events and tools work as before; a call without detection
//! costs one extra request that answers at once.

use ring::hmac;
use serde::{Deserialize, Serialize};

/// Header carrying the signing time (unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-callway-timestamp";
/// Header carrying `v1=<hex tag>`.
pub const SIGNATURE_HEADER: &str = "x-callway-signature";
/// Largest accepted distance between the signer's and the receiver's clocks.
pub const MAX_SKEW_SECS: u64 = 300;

/// Header by which the gateway says the newest [`CallContext`] shape it reads
/// ([`CONTEXT_VERSION`]), on every request. A header, not a body field, so that control planes
/// of every release ignore it: the control plane adds a field to the context only for a gateway
/// that announced a version reading it, and a gateway of an older release (no header, version 1)
/// keeps getting the shape it knows, whatever the order in which the two are upgraded.
pub const CONTEXT_VERSION_HEADER: &str = "x-callway-context-version";

/// The newest [`CallContext`] shape this build reads: 1 = up to [`CallContext::transfer`];
/// 2 adds [`CallContext::web_transcript`].
pub const CONTEXT_VERSION: u32 = 2;

/// The context version a request announced (1 without the header or with a value that is not a
/// number).
pub fn context_version(header: Option<&str>) -> u32 {
    header.and_then(|v| v.trim().parse().ok()).unwrap_or(1)
}
/// Redeem a stream token (single use) for the call's context.
pub const REDEEM_PATH: &str = "/internal/v1/stream-tokens/redeem";

/// Path of a phone-session tool (`save_lead`, `end_call`) for a call.
pub fn tool_path(call_id: &str, tool: &str) -> String {
    format!("/internal/v1/calls/{call_id}/tools/{tool}")
}

/// Path where the gateway asks for a call's answering-machine detection result (long poll).
pub fn amd_path(call_id: &str) -> String {
    format!("/internal/v1/calls/{call_id}/amd")
}

/// The longest an [`amd_path`] request is held by the control plane.
pub const AMD_MAX_WAIT_MS: u32 = 10_000;

/// Body of [`amd_path`]: how long to wait for a result not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmdWait {
    /// Milliseconds the control plane may hold the request (capped at [`AMD_MAX_WAIT_MS`]);
    /// 0 answers at once.
    pub wait_ms: u32,
}

/// Answer of [`amd_path`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmdStatus {
    /// Whether answering-machine detection runs on this call (`ANSWERING_MACHINE_DETECTION`).
    pub detection: bool,
    /// Twilio's `AnsweredBy` once known: `human`, `unknown`, `machine_start`,
    /// `machine_end_beep`, `machine_end_silence`, `machine_end_other` or `fax`.
    pub answered_by: Option<String>,
}

/// Path where the gateway posts a call's events (transcripts, usage, end).
pub fn events_path(call_id: &str) -> String {
    format!("/internal/v1/calls/{call_id}/events")
}

/// Signs internal requests (gateway side) and checks them (control plane side).
pub struct InternalAuth {
    key: hmac::Key,
    /// The secret before a rotation: accepted by [`InternalAuth::verify`], never signed with.
    previous: Option<hmac::Key>,
}

/// Why an internal request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InternalAuthError {
    /// A header is missing or not of the expected form.
    #[error("internal API request lacks a well-formed x-callway-timestamp / x-callway-signature")]
    Malformed,
    /// The timestamp is too far from the receiver's clock.
    #[error(
        "internal API request timestamp is {skew}s away from this server's clock (max {MAX_SKEW_SECS}s): check NTP on both hosts"
    )]
    Stale {
        /// Absolute distance in seconds.
        skew: u64,
    },
    /// The tag does not match (`INTERNAL_API_SECRET` differs, or the request was altered).
    #[error(
        "internal API signature is invalid: INTERNAL_API_SECRET must be the same on gateway and control plane"
    )]
    BadSignature,
}

impl InternalAuth {
    /// Over the shared `INTERNAL_API_SECRET`.
    pub fn new(secret: &[u8]) -> Self {
        Self::with_previous(secret, None)
    }

    /// Over `secret`, also accepting requests signed with `previous` (the value before a
    /// rotation, `INTERNAL_API_SECRET_PREVIOUS`) while gateways are moved to the new one.
    pub fn with_previous(secret: &[u8], previous: Option<&[u8]>) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            previous: previous.map(|p| hmac::Key::new(hmac::HMAC_SHA256, p)),
        }
    }

    fn tag(&self, ts: u64, method: &str, path: &str, body: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(ts.to_string().as_bytes());
        ctx.update(b"\n");
        ctx.update(method.as_bytes());
        ctx.update(b"\n");
        ctx.update(path.as_bytes());
        ctx.update(b"\n");
        ctx.update(body);
        ctx.sign()
    }

    /// The value of [`SIGNATURE_HEADER`] for a request signed at `ts`.
    pub fn sign(&self, ts: u64, method: &str, path: &str, body: &[u8]) -> String {
        let tag = self.tag(ts, method, path, body);
        let mut out = String::with_capacity(3 + 64);
        out.push_str("v1=");
        for b in tag.as_ref() {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        out
    }

    /// Checks a request's headers against its method, path and body at receiver time `now`.
    pub fn verify(
        &self,
        timestamp: &str,
        signature: &str,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), InternalAuthError> {
        let ts: u64 = timestamp.parse().map_err(|_| InternalAuthError::Malformed)?;
        let skew = ts.abs_diff(now);
        if skew > MAX_SKEW_SECS {
            return Err(InternalAuthError::Stale { skew });
        }
        let hex = signature.strip_prefix("v1=").ok_or(InternalAuthError::Malformed)?;
        let mut tag = [0u8; 32];
        if hex.len() != 64 {
            return Err(InternalAuthError::Malformed);
        }
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or(InternalAuthError::Malformed)?;
            let lo = hex_val(pair[1]).ok_or(InternalAuthError::Malformed)?;
            tag[i] = hi << 4 | lo;
        }
        let mut ctx_msg = Vec::with_capacity(32 + method.len() + path.len() + body.len());
        ctx_msg.extend_from_slice(ts.to_string().as_bytes());
        ctx_msg.push(b'\n');
        ctx_msg.extend_from_slice(method.as_bytes());
        ctx_msg.push(b'\n');
        ctx_msg.extend_from_slice(path.as_bytes());
        ctx_msg.push(b'\n');
        ctx_msg.extend_from_slice(body);
        let current = hmac::verify(&self.key, &ctx_msg, &tag).is_ok();
        let previous = self.previous.as_ref().is_some_and(|k| hmac::verify(k, &ctx_msg, &tag).is_ok());
        if current || previous { Ok(()) } else { Err(InternalAuthError::BadSignature) }
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Body of [`REDEEM_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// The stream token exactly as it appeared in the `<Stream url>` path.
    pub token: String,
    /// Twilio's `CallSid` if already known (it is, once `start` arrived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
}

/// What the gateway needs to run the phone leg of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallContext {
    /// Control-plane call id (UUID, hyphenated).
    pub call_id: String,
    /// Lead id (UUID, hyphenated).
    pub lead_id: String,
    /// The prospect's first name, to greet them.
    pub first_name: String,
    /// Summary of the web conversation, to continue from.
    pub summary: String,
    /// BCP-47 language of the conversation (`fr`).
    pub language: String,
    /// Realtime voice (`marin`).
    pub voice: String,
    /// Full instructions for the phone agent's Realtime session.
    pub instructions: String,
    /// Whether a warm transfer to a person is possible now (`TRANSFER_TARGET` set on the control
    /// plane, and the team inside its `TRANSFER_HOURS`): only then is [`TRANSFER_TOOL`] offered
    /// to the model. Left out of the JSON when
    /// false, so a gateway older than this field still reads contexts of control planes without
    /// a transfer target (upgrade the gateways before configuring one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transfer: bool,
    /// The web conversation as the visitor's page saw it, oldest line first (at most
    /// [`MAX_WEB_TRANSCRIPT_LINES`] lines, [`MAX_WEB_TRANSCRIPT_CHARS`] characters): GPT-Live
    /// starts the phone session with it as text history. Only sent to gateways that announced
    /// [`CONTEXT_VERSION`] 2 or more ([`CONTEXT_VERSION_HEADER`]); empty (left out) when the
    /// call was not asked for from a web conversation (the typed form, a retry of such a call).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub web_transcript: Vec<TranscriptLine>,
}

/// One line of a conversation, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptLine {
    /// Who said it (`caller` is the prospect, on the page as on the phone).
    pub speaker: Speaker,
    /// The words.
    pub text: String,
}

/// Most lines of [`CallContext::web_transcript`] (the most recent are kept).
pub const MAX_WEB_TRANSCRIPT_LINES: usize = 64;
/// Most characters of one line of [`CallContext::web_transcript`].
pub const MAX_WEB_TRANSCRIPT_LINE_CHARS: usize = 1000;
/// Most characters of [`CallContext::web_transcript`] in all: with the instructions, the
/// session's first message stays well inside the gateway's send buffer.
pub const MAX_WEB_TRANSCRIPT_CHARS: usize = 8000;

/// `lines` cut to the limits above: blank lines dropped, each line trimmed and cut at
/// [`MAX_WEB_TRANSCRIPT_LINE_CHARS`], then the most recent lines that fit
/// [`MAX_WEB_TRANSCRIPT_LINES`] and [`MAX_WEB_TRANSCRIPT_CHARS`] kept, in order. Returns them
/// and how many lines were left out.
pub fn bound_web_transcript(lines: Vec<TranscriptLine>) -> (Vec<TranscriptLine>, usize) {
    let given = lines.len();
    let cleaned: Vec<TranscriptLine> = lines
        .into_iter()
        .filter_map(|l| {
            let text = l.text.trim();
            (!text.is_empty()).then(|| TranscriptLine {
                speaker: l.speaker,
                text: text.chars().take(MAX_WEB_TRANSCRIPT_LINE_CHARS).collect(),
            })
        })
        .collect();
    let mut chars = 0;
    let mut keep = 0;
    for l in cleaned.iter().rev() {
        let n = l.text.chars().count();
        if keep == MAX_WEB_TRANSCRIPT_LINES || chars + n > MAX_WEB_TRANSCRIPT_CHARS {
            break;
        }
        chars += n;
        keep += 1;
    }
    let kept = cleaned[cleaned.len() - keep..].to_vec();
    let left_out = given - kept.len();
    (kept, left_out)
}

/// The phone tool that hands the call to a person (warm transfer), at [`tool_path`] like the
/// others. The model calls it after telling the caller it is transferring them; its arguments
/// are `{"reason": …, "summary": …}` ([`TransferArguments`]). The gateway runs it once that
/// announcement has played, as it runs `end_call` after the goodbye. The control plane sends
/// the summary to the person taking over (`TRANSFER_WEBHOOK_URL`), updates the live call with
/// TwiML `<Dial>` to `TRANSFER_TARGET` (which ends the media stream: Twilio's `stop`, then the
/// WebSocket closes), and records the transfer and its outcome on the call's timeline. Its
/// [`ToolResponse`] says whether the call was handed over; when it was not (no target,
/// Twilio refused) the conversation goes on and the model is told so.
pub const TRANSFER_TOOL: &str = "transfer_to_human";

/// Arguments of [`TRANSFER_TOOL`] as the model gives them (strict JSON Schema: both required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferArguments {
    /// Why: `asked_for_human`, `out_of_scope` or `complaint`.
    pub reason: String,
    /// What the person taking over must know, in a few sentences (the model's own words).
    pub summary: String,
}

/// Body of a tool route: the model's arguments, as the JSON string it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRequest {
    /// The Realtime `call_id` of the function call (for idempotency).
    pub tool_call_id: String,
    /// The arguments JSON string from `response.function_call_arguments.done`.
    pub arguments: String,
}

/// Answer of a tool route: what goes back to the model as `function_call_output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolResponse {
    /// Whether the tool did what was asked.
    pub ok: bool,
    /// JSON string handed to the model unchanged as the function call's `output`.
    pub output: String,
}

/// Which side ended or broke a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The caller / Twilio.
    Twilio,
    /// OpenAI Realtime.
    Openai,
    /// The gateway itself (timeouts, shutdown, limits).
    Gateway,
    /// The control plane (tool `end_call`, admin hang-up).
    ControlPlane,
}

/// Who spoke a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The prospect.
    Caller,
    /// The AI agent.
    Agent,
}

/// One thing that happened on a call, reported after the fact (never on the frame path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CallEvent {
    /// A finished transcript line.
    Transcript {
        /// Who spoke.
        speaker: Speaker,
        /// The words.
        text: String,
        /// Milliseconds since the stream started.
        at_ms: u64,
    },
    /// Token usage of one Realtime response (`response.done.response.usage`).
    Usage {
        /// Realtime response id.
        response_id: String,
        /// Input tokens.
        input_tokens: u64,
        /// Output tokens.
        output_tokens: u64,
        /// How those tokens split into audio, text and cached input (priced differently);
        /// absent from gateways older than this field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<TokenDetails>,
    },
    /// Which OpenAI voice API and model the call used (reported once, when the first session
    /// opens).
    Engine {
        /// `realtime` or `live` ([`crate::voice_api::VoiceApi::as_str`]).
        api: String,
        /// The model.
        model: String,
    },
    /// GPT-Live billed seconds so far (cumulative over the call's sessions; the last one
    /// reported is the call's total).
    LiveUsage {
        /// Seconds of session.
        seconds: f64,
    },
    /// The call's stream ended.
    Ended {
        /// Which side ended it.
        side: Side,
        /// Machine-readable reason (`caller_hung_up`, `openai_closed`, `max_duration`, …).
        reason: String,
        /// Milliseconds of stream.
        duration_ms: u64,
    },
}

/// The split of a Realtime response's tokens (`response.done.response.usage`'s
/// `input_token_details` and `output_token_details`). Each part is a subset of
/// [`CallEvent::Usage`]'s totals: text input is `input_tokens - input_audio_tokens`, uncached
/// input is `input_tokens - input_cached_tokens`, text output is
/// `output_tokens - output_audio_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenDetails {
    /// Input audio tokens, cached ones included.
    pub input_audio_tokens: u64,
    /// Input tokens served from the cache (text and audio).
    pub input_cached_tokens: u64,
    /// Of those, audio.
    pub input_cached_audio_tokens: u64,
    /// Output audio tokens.
    pub output_audio_tokens: u64,
}

/// Body of [`events_path`]: events in the order they happened. `seq` makes retries idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallEventsBatch {
    /// Position of the first event in the call's event stream (0-based).
    pub seq: u64,
    /// The events.
    pub events: Vec<CallEvent>,
}

/// Every non-2xx internal answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable machine code (`token_already_redeemed`, `token_unknown`, `bad_signature`, …).
    pub code: String,
    /// What happened and what to do, for the operator.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> CallContext {
        CallContext {
            call_id: "c".into(),
            lead_id: "l".into(),
            first_name: "Zoé".into(),
            summary: "s".into(),
            language: "fr".into(),
            voice: "marin".into(),
            instructions: "i".into(),
            transfer: false,
            web_transcript: Vec::new(),
        }
    }

    #[test]
    fn the_transfer_flag_is_left_out_unless_set_so_older_gateways_still_read_the_context() {
        let mut ctx = context();
        let json = serde_json::to_value(&ctx).unwrap();
        assert!(json.get("transfer").is_none(), "{json}");
        assert!(json.get("web_transcript").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<CallContext>(json).unwrap(), ctx, "and read back as false");
        ctx.transfer = true;
        let json = serde_json::to_value(&ctx).unwrap();
        assert_eq!(json["transfer"], true);
        assert!(serde_json::from_value::<CallContext>(json).unwrap().transfer);
    }

    fn line(speaker: Speaker, text: &str) -> TranscriptLine {
        TranscriptLine { speaker, text: text.into() }
    }

    #[test]
    fn the_web_transcript_travels_as_speaker_and_text_lines() {
        let ctx = CallContext {
            web_transcript: vec![line(Speaker::Agent, "Bonjour !"), line(Speaker::Caller, "Rappelez-moi")],
            ..context()
        };
        let json = serde_json::to_value(&ctx).unwrap();
        assert_eq!(
            json["web_transcript"],
            serde_json::json!([{"speaker": "agent", "text": "Bonjour !"}, {"speaker": "caller", "text": "Rappelez-moi"}])
        );
        assert_eq!(serde_json::from_value::<CallContext>(json).unwrap(), ctx);
        let unknown = serde_json::json!({"speaker": "visitor", "text": "x"});
        assert!(serde_json::from_value::<TranscriptLine>(unknown).is_err());
    }

    #[test]
    fn the_context_version_is_1_without_a_readable_header() {
        assert_eq!(context_version(None), 1);
        assert_eq!(context_version(Some("2")), 2);
        assert_eq!(context_version(Some(" 3 ")), 3);
        assert_eq!(context_version(Some("two")), 1);
        const { assert!(CONTEXT_VERSION >= 2, "this build reads web_transcript") };
    }

    #[test]
    fn a_web_transcript_is_bounded_by_dropping_its_oldest_lines_and_cutting_long_ones() {
        let (kept, left_out) = bound_web_transcript(vec![
            line(Speaker::Agent, "  Bonjour  "),
            line(Speaker::Caller, "   "),
            line(Speaker::Caller, &"é".repeat(MAX_WEB_TRANSCRIPT_LINE_CHARS + 5)),
        ]);
        assert_eq!(left_out, 1, "the blank line");
        assert_eq!(kept[0].text, "Bonjour");
        assert_eq!(kept[1].text.chars().count(), MAX_WEB_TRANSCRIPT_LINE_CHARS);

        let many: Vec<_> =
            (0..MAX_WEB_TRANSCRIPT_LINES + 10).map(|i| line(Speaker::Caller, &format!("l{i}"))).collect();
        let (kept, left_out) = bound_web_transcript(many);
        assert_eq!((kept.len(), left_out), (MAX_WEB_TRANSCRIPT_LINES, 10));
        assert_eq!(kept[0].text, "l10", "the oldest lines go first");
        assert_eq!(kept.last().unwrap().text, format!("l{}", MAX_WEB_TRANSCRIPT_LINES + 9));

        let long: Vec<_> = (0..20).map(|i| line(Speaker::Agent, &format!("{i:0>999}"))).collect();
        let (kept, _) = bound_web_transcript(long);
        let chars: usize = kept.iter().map(|l| l.text.chars().count()).sum();
        assert!(chars <= MAX_WEB_TRANSCRIPT_CHARS && chars + 1000 > MAX_WEB_TRANSCRIPT_CHARS, "{chars}");
        assert!(kept.last().unwrap().text.ends_with("19"), "the newest line is kept");
    }

    #[test]
    fn during_a_rotation_the_previous_secret_is_accepted_and_never_signed_with() {
        let (old, new) =
            (&b"internal-secret-before-rotation!!"[..], &b"internal-secret-after-rotation!!!"[..]);
        let gateway_old = InternalAuth::new(old);
        let gateway_new = InternalAuth::new(new);
        let control = InternalAuth::with_previous(new, Some(old));
        for signer in [&gateway_old, &gateway_new] {
            let sig = signer.sign(1_000, "POST", REDEEM_PATH, b"{}");
            assert_eq!(control.verify("1000", &sig, "POST", REDEEM_PATH, b"{}", 1_000), Ok(()));
        }
        // The control plane signs (if it ever does) with the new secret only.
        assert_eq!(
            control.sign(1_000, "POST", REDEEM_PATH, b"{}"),
            gateway_new.sign(1_000, "POST", REDEEM_PATH, b"{}")
        );
        // Once the window is over (no previous), the old secret is refused.
        let sig = gateway_old.sign(1_000, "POST", REDEEM_PATH, b"{}");
        assert_eq!(
            InternalAuth::new(new).verify("1000", &sig, "POST", REDEEM_PATH, b"{}", 1_000),
            Err(InternalAuthError::BadSignature)
        );
        let stranger =
            InternalAuth::new(b"a-third-secret-never-configured!!").sign(1_000, "POST", REDEEM_PATH, b"{}");
        assert_eq!(
            control.verify("1000", &stranger, "POST", REDEEM_PATH, b"{}", 1_000),
            Err(InternalAuthError::BadSignature)
        );
    }

    #[test]
    fn sign_verify_round_trip() {
        let a = InternalAuth::new(b"internal-secret-internal-secret!");
        let sig = a.sign(1_000, "POST", REDEEM_PATH, b"{}");
        assert!(sig.starts_with("v1=") && sig.len() == 67);
        assert_eq!(a.verify("1000", &sig, "POST", REDEEM_PATH, b"{}", 1_100), Ok(()));
        assert_eq!(
            a.verify("1000", &sig, "POST", REDEEM_PATH, b"{ }", 1_100),
            Err(InternalAuthError::BadSignature)
        );
        assert_eq!(
            a.verify("1000", &sig, "POST", "/other", b"{}", 1_100),
            Err(InternalAuthError::BadSignature)
        );
        assert_eq!(
            a.verify("1000", &sig, "POST", REDEEM_PATH, b"{}", 1_301),
            Err(InternalAuthError::Stale { skew: 301 })
        );
        assert_eq!(a.verify("x", &sig, "POST", REDEEM_PATH, b"{}", 1_000), Err(InternalAuthError::Malformed));
        assert_eq!(
            a.verify("1000", "v1=zz", "POST", REDEEM_PATH, b"{}", 1_000),
            Err(InternalAuthError::Malformed)
        );
        let other = InternalAuth::new(b"another-secret-another-secret!!!");
        assert_eq!(
            other.verify("1000", &sig, "POST", REDEEM_PATH, b"{}", 1_000),
            Err(InternalAuthError::BadSignature)
        );
    }

    #[test]
    fn events_serialize_tagged() {
        let b = CallEventsBatch {
            seq: 3,
            events: vec![CallEvent::Ended {
                side: Side::Twilio,
                reason: "caller_hung_up".into(),
                duration_ms: 42,
            }],
        };
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(
            j,
            r#"{"seq":3,"events":[{"kind":"ended","side":"twilio","reason":"caller_hung_up","duration_ms":42}]}"#
        );
        assert_eq!(serde_json::from_str::<CallEventsBatch>(&j).unwrap(), b);
    }
}
