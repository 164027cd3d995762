//! How a call is configured: where OpenAI is, the turn-taking policy, every timeout, and the
//! two phone tools offered to the model (strict JSON Schemas: every property required, nothing
//! else allowed).

use std::time::Duration;

pub use contract::realtime::{DEFAULT_MODEL, Eagerness, TurnDetection};
use contract::voice_api::VoiceApi;

use crate::core::openai::ToolDef;

/// Per-gateway settings for every call (from the environment; defaults are production values).
/// `Debug` never shows the API key.
#[derive(Clone)]
pub struct CallConfig {
    /// Which OpenAI voice API the calls use (`OPENAI_VOICE_API`).
    pub api: VoiceApi,
    /// OpenAI host for the upgrade's `Host` header (`api.openai.com`, or the EU host).
    pub openai_host: String,
    /// Request target (`/v1/realtime?model=gpt-realtime-2.1`, or `/v1/live/sessions`).
    pub openai_target: String,
    /// API key, sent as `Authorization: Bearer …` in the upgrade.
    pub openai_api_key: String,
    /// Model named in `session.update` (Realtime) or `session.start` (GPT-Live).
    pub model: String,
    /// Input transcription model (`gpt-4o-transcribe`); `None` for no caller transcripts.
    pub transcription_model: Option<String>,
    /// `REALTIME_TURN_DETECTION`: OpenAI detects turns (`server_vad`, `semantic_vad`), or the
    /// gateway commits (`none`).
    pub turn_detection: TurnDetection,
    /// `REALTIME_MIN_COMMIT_MS` (raised to 100 if lower: OpenAI refuses smaller commits).
    pub min_commit_ms: u32,
    /// `REALTIME_MAX_COMMIT_MS`.
    pub max_commit_ms: u32,
    /// Whether the caller can cut the greeting short. When false, barge-in is ignored while
    /// the greeting plays, and server VAD is set not to interrupt responses (the gateway
    /// cancels every other interrupted response itself).
    pub greeting_interruptible: bool,
    /// RMS (0.0–1.0) under which a caller chunk counts as silence (gateway commit policy and
    /// local barge-in when server VAD is off).
    pub silence_rms: f32,
    /// Close the call if Twilio sends no `start` within this (`GATEWAY_START_TIMEOUT_SECS`):
    /// the OpenAI session opened in advance is closed with it, before any response is asked
    /// for.
    pub start_timeout: Duration,
    /// Lost caller audio up to this long is replaced by silence so OpenAI's audio clock stays
    /// the call's; a longer gap is counted and left alone.
    pub max_gap_fill: Duration,
    /// Close the call if Twilio sends no media for this long.
    pub media_timeout: Duration,
    /// Ping OpenAI after this long without a byte from it.
    pub openai_ping_after: Duration,
    /// Consider OpenAI gone after this long without a byte (also the connect + handshake
    /// timeout).
    pub openai_silence_timeout: Duration,
    /// A tool with no answer after this gets a spoken "one moment" fallback.
    pub tool_timeout: Duration,
    /// Longest call.
    pub max_call: Duration,
    /// After `end_call`: longest wait for the goodbye audio to play before hanging up anyway.
    pub goodbye_timeout: Duration,
    /// After a hang-up request: longest wait for Twilio's `stop` before closing ourselves.
    pub drain_timeout: Duration,
    /// OpenAI reconnects allowed per call (session expiry, drops).
    pub max_reconnects: u32,
    /// The first reconnect is immediate; the n-th waits n-1 times this.
    pub reconnect_backoff: Duration,
    /// How long the greeting may wait for answering-machine detection (`AMD_HOLD_MS`); zero:
    /// the control plane is not asked and the agent greets as soon as it can (`amd.rs`).
    pub amd_hold: Duration,
    /// Seed of the call's ChaCha stream (WebSocket masks and keys); from the OS CSPRNG in
    /// production, fixed in tests.
    pub seed: [u8; 32],
    /// Send buffer towards Twilio. Agent audio bursts faster than real time, but
    /// [`super::Call::handle_upstream`] waits for room rather than dropping: this bounds memory,
    /// not audio. Must hold the largest delta (+12 %).
    pub twilio_send_capacity: usize,
    /// Send buffer towards OpenAI: must hold `session.update` plus the drained hold ring
    /// (5 s of audio is 53 KB of base64, drained in batches as room frees up).
    pub openai_send_capacity: usize,
    /// Per-response instructions when a tool is slow.
    pub tool_slow_instructions: String,
    /// Per-response instructions when a tool failed.
    pub tool_failed_instructions: String,
    /// Heading added to the instructions of a resumed session, before the last exchanges.
    pub resume_preamble: String,
    /// GPT-Live: the Responses model that runs the phone tools (`LIVE_DELEGATION_MODEL`).
    pub delegation_model: String,
    /// GPT-Live: that model's instructions.
    pub delegation_instructions: String,
    /// GPT-Live: send `session.start` as soon as the WebSocket is up rather than at Twilio's
    /// `start` (`LIVE_START_AT=upgrade|start`). Off by default: the connection is pre-warmed
    /// either way, and a session started before the caller's audio flows runs its output
    /// timeline ahead of it; measured over 6 runs: barge-in 70–108 ms against 47–56 ms, first
    /// audio no sooner (`benches/README.md`), and billed from the upgrade.
    pub live_start_at_upgrade: bool,
    /// GPT-Live: forward the output's silent chunks even when Twilio has nothing to play
    /// (`LIVE_FORWARD_SILENCE`).
    pub live_forward_silence: bool,
    /// GPT-Live: transcript fragments further apart than this end a turn.
    pub live_turn_gap_ms: u64,
    /// GPT-Live: after `end_call`, the goodbye is over once the agent has been quiet this long.
    pub live_goodbye_quiet: Duration,
    /// GPT-Live: after `end_call`, how long the goodbye may take to begin.
    pub live_goodbye_start: Duration,
    /// GPT-Live: longest wait for `session.closed` after `session.close`.
    pub live_close_wait: Duration,
    /// GPT-Live: the greeting commentary (`{first_name}` is replaced).
    pub live_greeting: String,
    /// GPT-Live: added to a resumed session's instructions (the exchanges go in as history).
    pub live_resume_note: String,
    /// GPT-Live: the output given to `end_call` (the model then says goodbye).
    pub live_end_call_output: String,
    /// GPT-Live: the output given to `transfer_to_human` (the model then announces it).
    pub live_transfer_output: String,
    /// Said to the model (with the control plane's output) when a transfer was refused.
    pub transfer_failed_instructions: String,
    /// After the announcement: longest wait for the control plane to move the call (its tool
    /// request is bounded by the shell before this).
    pub transfer_timeout: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            api: VoiceApi::Realtime,
            openai_host: "api.openai.com".into(),
            openai_target: format!("/v1/realtime?model={DEFAULT_MODEL}"),
            openai_api_key: String::new(),
            model: DEFAULT_MODEL.into(),
            transcription_model: Some("gpt-4o-transcribe".into()),
            turn_detection: TurnDetection::ServerVad,
            min_commit_ms: 120,
            max_commit_ms: 800,
            greeting_interruptible: true,
            silence_rms: 0.02,
            start_timeout: Duration::from_secs(5),
            max_gap_fill: Duration::from_millis(500),
            media_timeout: Duration::from_secs(10),
            openai_ping_after: Duration::from_secs(5),
            openai_silence_timeout: Duration::from_secs(15),
            tool_timeout: Duration::from_secs(4),
            max_call: Duration::from_secs(15 * 60),
            goodbye_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            max_reconnects: 3,
            reconnect_backoff: Duration::from_secs(1),
            amd_hold: Duration::ZERO,
            seed: [0; 32],
            twilio_send_capacity: 64 * 1024,
            openai_send_capacity: 64 * 1024,
            tool_slow_instructions: "Dis brièvement au prospect que tu vérifies et que cela prend un petit \
                moment. Ne promets rien d'autre."
                .into(),
            tool_failed_instructions: "L'opération n'a pas abouti. Excuse-toi brièvement auprès du prospect \
                et propose de continuer autrement."
                .into(),
            resume_preamble: "La connexion vient d'être rétablie pendant l'appel : ne salue pas à nouveau, \
                reprends naturellement là où vous en étiez. Derniers échanges :"
                .into(),
            delegation_model: DEFAULT_DELEGATION_MODEL.into(),
            delegation_instructions: "Tu exécutes les outils de l'agent vocal de Callway pendant un appel \
                téléphonique : corriger les coordonnées du prospect (save_lead) et raccrocher (end_call) quand \
                l'agent le décide. Réponds en une phrase courte, en français."
                .into(),
            live_start_at_upgrade: false,
            live_forward_silence: false,
            live_turn_gap_ms: 800,
            live_goodbye_quiet: Duration::from_millis(700),
            live_goodbye_start: Duration::from_secs(3),
            live_close_wait: Duration::from_secs(2),
            live_greeting: "Salue {first_name} par son prénom : tu le rappelles comme convenu sur le site. \
                Reprends là où la conversation s'est arrêtée."
                .into(),
            live_resume_note: "La connexion vient d'être rétablie pendant l'appel : ne salue pas à nouveau, \
                reprends naturellement là où vous en étiez (l'échange jusqu'ici est dans l'historique)."
                .into(),
            live_end_call_output: r#"{"ok":true,"next":"Dis au revoir en une phrase ; l'appel se termine ensuite."}"#
                .into(),
            live_transfer_output: r#"{"ok":true,"next":"Si ce n'est pas déjà fait, annonce en une phrase que tu transfères l'appel à un conseiller ; ne dis plus rien ensuite."}"#
                .into(),
            transfer_failed_instructions: "Le transfert à un conseiller n'a pas pu se faire : dis-le au prospect en \
                une phrase, propose qu'un conseiller le rappelle, et poursuis la conversation."
                .into(),
            transfer_timeout: Duration::from_secs(20),
        }
    }
}

impl std::fmt::Debug for CallConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallConfig")
            .field("api", &self.api)
            .field("openai_host", &self.openai_host)
            .field("openai_target", &self.openai_target)
            .field("openai_api_key", &"<redacted>")
            .field("model", &self.model)
            .field("transcription_model", &self.transcription_model)
            .field("turn_detection", &self.turn_detection)
            .field("min_commit_ms", &self.min_commit_ms)
            .field("max_commit_ms", &self.max_commit_ms)
            .field("greeting_interruptible", &self.greeting_interruptible)
            .field("silence_rms", &self.silence_rms)
            .field("start_timeout", &self.start_timeout)
            .field("max_gap_fill", &self.max_gap_fill)
            .field("media_timeout", &self.media_timeout)
            .field("openai_ping_after", &self.openai_ping_after)
            .field("openai_silence_timeout", &self.openai_silence_timeout)
            .field("tool_timeout", &self.tool_timeout)
            .field("max_call", &self.max_call)
            .field("goodbye_timeout", &self.goodbye_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("max_reconnects", &self.max_reconnects)
            .field("reconnect_backoff", &self.reconnect_backoff)
            .field("amd_hold", &self.amd_hold)
            .field("twilio_send_capacity", &self.twilio_send_capacity)
            .field("openai_send_capacity", &self.openai_send_capacity)
            .field("delegation_model", &self.delegation_model)
            .field("live_start_at_upgrade", &self.live_start_at_upgrade)
            .field("live_forward_silence", &self.live_forward_silence)
            .finish_non_exhaustive()
    }
}

impl CallConfig {
    /// The smallest commit ever sent (OpenAI needs 100 ms).
    pub(crate) fn min_commit_ms(&self) -> u32 {
        self.min_commit_ms.max(100)
    }

    /// The largest, never below the smallest.
    pub(crate) fn max_commit_ms(&self) -> u32 {
        self.max_commit_ms.max(self.min_commit_ms())
    }

    /// [`CallConfig::silence_rms`] as a mean square of 16-bit samples.
    pub(crate) fn silence_mean_square(&self) -> u64 {
        let a = f64::from(self.silence_rms.clamp(0.0, 1.0)) * 32768.0;
        (a * a) as u64
    }
}

/// The Responses model GPT-Live delegates the phone tools to when `LIVE_DELEGATION_MODEL` is
/// unset.
pub const DEFAULT_DELEGATION_MODEL: &str = "gpt-5-mini";

/// Name of the tool the model calls to correct the prospect's details.
pub const SAVE_LEAD: &str = "save_lead";
/// Name of the tool the model calls to end the phone call.
pub const END_CALL: &str = "end_call";
/// Name of the tool the model calls to hand the call to a person (offered only when the call's
/// context says a transfer target is configured).
pub const TRANSFER: &str = contract::internal_api::TRANSFER_TOOL;

/// The phone tools, as offered in `session.update` (strict: every property required,
/// `additionalProperties: false`; a detail not being corrected is `null`).
pub const PHONE_TOOLS: [ToolDef<'static>; 2] = [SAVE_LEAD_DEF, END_CALL_DEF];

/// [`PHONE_TOOLS`] and the warm transfer ([`TRANSFER`]), for calls whose context allows it.
pub const PHONE_TOOLS_WITH_TRANSFER: [ToolDef<'static>; 3] = [SAVE_LEAD_DEF, END_CALL_DEF, TRANSFER_DEF];

const SAVE_LEAD_DEF: ToolDef<'static> = ToolDef {
    name: SAVE_LEAD,
    description: "Corrige ou confirme les coordonnées du prospect pendant l'appel. Passe null pour ce \
            qui ne change pas.",
    parameters_json: r#"{"type":"object","properties":{"first_name":{"type":["string","null"],"description":"Prénom corrigé"},"last_name":{"type":["string","null"],"description":"Nom de famille corrigé"},"phone":{"type":["string","null"],"description":"Numéro tel que dicté"}},"required":["first_name","last_name","phone"],"additionalProperties":false}"#,
};

const END_CALL_DEF: ToolDef<'static> = ToolDef {
    name: END_CALL,
    description: "Raccroche l'appel, après avoir dit au revoir.",
    parameters_json: r#"{"type":"object","properties":{"reason":{"type":"string","enum":["completed","not_interested","wrong_person","callback_later"]}},"required":["reason"],"additionalProperties":false}"#,
};

const TRANSFER_DEF: ToolDef<'static> = ToolDef {
    name: TRANSFER,
    description: "Transfère l'appel à un conseiller humain : quand le prospect le demande, pour une question hors \
        de ton rôle, ou une réclamation. Annonce d'abord le transfert en une phrase, puis appelle cet outil ; \
        ne dis plus rien ensuite.",
    parameters_json: r#"{"type":"object","properties":{"reason":{"type":"string","enum":["asked_for_human","out_of_scope","complaint"]},"summary":{"type":"string","description":"Ce que le conseiller doit savoir, en deux ou trois phrases"}},"required":["reason","summary"],"additionalProperties":false}"#,
};
