//! A GPT-Live session's configuration: what `session.start` may say, checked as the service
//! does beyond the schema (the model, the audio format's rate, the documented limits on
//! instructions and input history), and the resolved `session` object `session.started`,
//! `session.updated` and `session.closed` report.
//!
//! Limits from `protocols.md` G: instructions at most 16 384 tokens, input history at most 128
//! messages, text appended mid-session at most 500 tokens. Tokens are counted as the simulator
//! counts them (a token per 4 bytes, rounded up); the error codes for an exceeded limit
//! (`string_above_max_length`, `array_above_max_length`, the API's usual ones) are the
//! simulator's choice, G does not show them.

use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::audio::AudioFormat;

/// Most tokens `session.start`'s `instructions` may hold.
pub(crate) const MAX_INSTRUCTION_TOKENS: usize = 16_384;
/// Most messages in `session.start`'s `input`.
pub(crate) const MAX_INPUT_MESSAGES: usize = 128;
/// Most tokens of a `session.{instructions,thinking,commentary}.append`.
pub(crate) const MAX_APPEND_TOKENS: usize = 500;
/// The voice when `audio.output.voice` is absent (the simulator's choice).
const DEFAULT_VOICE: &str = "marin";

/// Tokens of `text` as the simulator counts them.
pub(crate) fn tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// A Live audio format: the same format both ways for the whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiveFormat {
    /// `{"type":"audio/pcmu","rate":8000}`.
    Pcmu,
    /// `{"type":"audio/pcma","rate":8000}`.
    Pcma,
    /// `{"type":"audio/pcm","rate":16000}`.
    Pcm16k,
    /// `{"type":"audio/pcm","rate":24000}` (the simulator's default when `audio.format` is
    /// absent).
    Pcm24k,
}

impl LiveFormat {
    /// Reads `session.audio.format` (the schema has checked its shape): G.711 at 8000 only.
    fn from_json(v: &Value) -> Result<Self, ApiError> {
        let rate = v["rate"].as_u64().unwrap_or_default();
        let bad_rate = |ty: &str| {
            ApiError::invalid(
                "invalid_value",
                format!("Invalid value: {rate}. '{ty}' supports a rate of 8000 only."),
                Some("session.audio.format.rate".into()),
            )
        };
        match (v["type"].as_str().unwrap_or_default(), rate) {
            ("audio/pcmu", 8000) => Ok(Self::Pcmu),
            ("audio/pcma", 8000) => Ok(Self::Pcma),
            ("audio/pcm", 16000) => Ok(Self::Pcm16k),
            ("audio/pcm", _) => Ok(Self::Pcm24k),
            (ty, _) => Err(bad_rate(ty)),
        }
    }

    /// The `format` object.
    pub(crate) fn to_json(self) -> Value {
        match self {
            Self::Pcmu => json!({"type": "audio/pcmu", "rate": 8000}),
            Self::Pcma => json!({"type": "audio/pcma", "rate": 8000}),
            Self::Pcm16k => json!({"type": "audio/pcm", "rate": 16000}),
            Self::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
        }
    }

    /// Samples per second.
    pub(crate) fn sample_rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Pcm16k => 16000,
            Self::Pcm24k => 24000,
        }
    }

    /// Bytes per millisecond.
    pub(crate) fn bytes_per_ms(self) -> usize {
        match self {
            Self::Pcmu | Self::Pcma => 8,
            Self::Pcm16k => 32,
            Self::Pcm24k => 48,
        }
    }

    /// The Realtime format with the same byte layout (PCM16 at either rate decodes alike).
    fn layout(self) -> AudioFormat {
        match self {
            Self::Pcmu => AudioFormat::Pcmu,
            Self::Pcma => AudioFormat::Pcma,
            Self::Pcm16k | Self::Pcm24k => AudioFormat::Pcm24k,
        }
    }

    /// Linear samples at [`LiveFormat::sample_rate`].
    pub(crate) fn decode(self, bytes: &[u8]) -> Vec<i16> {
        self.layout().decode(bytes)
    }

    /// `ms` of digital silence (`0xFF` in µ-law, `0xD5` in A-law, zeros in PCM).
    pub(crate) fn silence(self, ms: usize) -> Vec<u8> {
        self.layout().encode(&vec![0; ms * self.sample_rate() as usize / 1000])
    }

    /// 8 kHz µ-law (a scripted reply) in this format (16 kHz by linear interpolation).
    pub(crate) fn encode_ulaw(self, ulaw: &[u8]) -> Vec<u8> {
        if self != Self::Pcm16k {
            return self.layout().from_ulaw(ulaw);
        }
        let s = AudioFormat::Pcmu.decode(ulaw);
        let mut out = Vec::with_capacity(s.len() * 4);
        for (i, &a) in s.iter().enumerate() {
            let b = s.get(i + 1).copied().unwrap_or(a);
            let mid = ((i32::from(a) + i32::from(b)) / 2) as i16;
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&mid.to_le_bytes());
        }
        out
    }
}

/// Where delegated work goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delegation {
    /// `{"type":"client"}` (the default): the application does the work.
    Client,
    /// `{"type":"responses", "responses":{model, }}`: a Responses model run by the session.
    Responses {
        /// The Responses model.
        model: String,
    },
}

impl Delegation {
    /// The `target` of `session.delegation.created`.
    pub(crate) fn target(&self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Responses { .. } => "responses",
        }
    }

    /// Reads a (schema-checked) `delegation` object (`param` names it in errors). `decisions`
    /// delegation is refused: the simulator does not run it.
    fn read(v: &Value, param: &str) -> Result<Self, ApiError> {
        match v["type"].as_str() {
            None | Some("client") => Ok(Self::Client),
            Some("responses") => {
                Ok(Self::Responses { model: v["responses"]["model"].as_str().unwrap_or_default().to_owned() })
            }
            Some(other) => Err(ApiError::invalid(
                "invalid_value",
                format!(
                    "Delegation type '{other}' is not supported by the simulator (client and responses are)."
                ),
                Some(format!("{param}.type")),
            )),
        }
    }
}

/// A checked `session.start`.
#[derive(Debug, Clone)]
pub(crate) struct StartConfig {
    /// Both ways.
    pub format: LiveFormat,
    /// Where delegated work goes.
    pub delegation: Delegation,
    /// The resolved `session` object without `id` and `expires_at`.
    pub resource: Value,
}

/// Checks the `session` of a (schema-valid) `session.start` beyond the schema.
pub(crate) fn check_start(session: &Value) -> Result<StartConfig, ApiError> {
    let model = session["model"].as_str().unwrap_or_default().to_owned();
    if let Some(e) = crate::models::live_refusal(&model) {
        return Err(e);
    }
    if let Some(text) = session["instructions"].as_str()
        && tokens(text) > MAX_INSTRUCTION_TOKENS
    {
        return Err(ApiError::invalid(
            "string_above_max_length",
            format!(
                "Invalid 'session.instructions': string too long. Expected at most {MAX_INSTRUCTION_TOKENS} tokens, got {}.",
                tokens(text)
            ),
            Some("session.instructions".into()),
        ));
    }
    if let Some(input) = session["input"].as_array()
        && input.len() > MAX_INPUT_MESSAGES
    {
        return Err(ApiError::invalid(
            "array_above_max_length",
            format!(
                "Invalid 'session.input': array too long. Expected an array with maximum length {MAX_INPUT_MESSAGES}, but got an array with length {} instead.",
                input.len()
            ),
            Some("session.input".into()),
        ));
    }
    let format = match session.pointer("/audio/format").filter(|f| !f.is_null()) {
        Some(f) => LiveFormat::from_json(f)?,
        None => LiveFormat::Pcm24k,
    };
    let delegation_v =
        session.get("delegation").filter(|d| !d.is_null()).cloned().unwrap_or(json!({"type": "client"}));
    let delegation = Delegation::read(&delegation_v, "session.delegation")?;
    let voice = session
        .pointer("/audio/output/voice")
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or(json!(DEFAULT_VOICE));
    let mut resource = session.clone();
    resource["status"] = json!("active");
    resource["audio"] = json!({"format": format.to_json(), "output": {"voice": voice}});
    resource["delegation"] = delegation_v;
    Ok(StartConfig { format, delegation, resource })
}

/// Fields `session.start` sets that `session.update` may not change.
const IMMUTABLE: &[&str] = &["model", "instructions", "audio", "input", "store", "client"];

/// The `immutable_field_update` error for a `session.update` whose `session` names a field
/// fixed at the start (checked before the schema, whose update object does not list them, so
/// that the client learns why rather than `unknown_parameter`); `None` when there is none.
pub(crate) fn immutable_field(update: &Value) -> Option<ApiError> {
    let key = IMMUTABLE.iter().find(|k| update.get(**k).is_some())?;
    Some(ApiError::invalid(
        "immutable_field_update",
        format!(
            "Cannot update '{key}' after the session has started: only delegation (and triggers) can change."
        ),
        Some(format!("session.{key}")),
    ))
}

/// Merges a schema-valid update into `resource`, returning the resulting delegation.
pub(crate) fn apply_update(resource: &mut Value, update: &Value) -> Result<Delegation, ApiError> {
    let current = Delegation::read(&resource["delegation"], "session.delegation")?;
    if let Some(d) = update.get("delegation").filter(|d| !d.is_null()) {
        let kind = d["type"].as_str().unwrap_or_default();
        if kind != current.target() {
            return Err(ApiError::invalid(
                "immutable_field_update",
                format!(
                    "Cannot change the delegation type from '{}' to '{kind}' after the session has started.",
                    current.target()
                ),
                Some("session.delegation.type".into()),
            ));
        }
        let target = &mut resource["delegation"];
        if let Some(obj) = d.as_object() {
            for (k, v) in obj {
                match (k.as_str(), v) {
                    ("responses", Value::Object(fields)) => {
                        for (fk, fv) in fields {
                            if !fv.is_null() {
                                target["responses"][fk] = fv.clone();
                            }
                        }
                    }
                    (_, Value::Null) => {}
                    _ => target[k] = v.clone(),
                }
            }
        }
    }
    if let Some(t) = update.get("triggers") {
        resource["triggers"] = t.clone();
    }
    Delegation::read(&resource["delegation"], "session.delegation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rates_and_defaults() {
        let c = check_start(
            &json!({"model": "gpt-live-1.1", "audio": {"format": {"type": "audio/pcmu", "rate": 8000}}}),
        )
        .unwrap();
        assert_eq!(c.format, LiveFormat::Pcmu);
        assert_eq!(c.resource["audio"]["output"]["voice"], "marin");
        assert_eq!(c.resource["delegation"], json!({"type": "client"}));
        let e = check_start(
            &json!({"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcma", "rate": 16000}}}),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.audio.format.rate"));
        assert_eq!(check_start(&json!({"model": "gpt-live-1"})).unwrap().format, LiveFormat::Pcm24k);
        assert_eq!(LiveFormat::Pcmu.silence(20), vec![0xFF; 160]);
        assert_eq!(LiveFormat::Pcma.silence(1), vec![0xD5; 8]);
        assert_eq!(LiveFormat::Pcm16k.encode_ulaw(&[0xFF; 80]).len(), 10 * LiveFormat::Pcm16k.bytes_per_ms());
    }

    #[test]
    fn limits_and_models() {
        let long = "x".repeat(4 * MAX_INSTRUCTION_TOKENS + 1);
        let e = check_start(&json!({"model": "gpt-live-1", "instructions": long})).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("string_above_max_length"));
        let input: Vec<Value> =
            (0..129).map(|_| json!({"role": "user", "content": [{"text": "a"}]})).collect();
        let e = check_start(&json!({"model": "gpt-live-1", "input": input})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.input"));
        let e = check_start(&json!({"model": "gpt-realtime-2.1"})).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("invalid_model"));
    }

    #[test]
    fn updates_change_the_delegation_only() {
        let mut r = check_start(&json!({"model": "gpt-live-1", "delegation": {"type": "responses",
            "responses": {"model": "gpt-5-mini", "instructions": "a"}}}))
        .unwrap()
        .resource;
        assert_eq!(
            immutable_field(&json!({"instructions": "b"})).unwrap().param.as_deref(),
            Some("session.instructions")
        );
        let d = apply_update(
            &mut r,
            &json!({"delegation": {"type": "responses", "responses": {"instructions": "b"}}}),
        )
        .unwrap();
        assert_eq!(d, Delegation::Responses { model: "gpt-5-mini".into() });
        assert_eq!(r["delegation"]["responses"]["instructions"], "b");
        let e = apply_update(&mut r, &json!({"delegation": {"type": "client"}})).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("immutable_field_update"));
    }
}
