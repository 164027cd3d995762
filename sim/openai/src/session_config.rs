//! The GA session object: defaults at `session.created`, how `session.update` merges into it,
//! and the settings the simulator derives from it (formats, turn detection, transcription).
//!
//! Only the schema's keys appear (`RealtimeSessionCreateRequest`), so `session.created` and
//! `session.updated` validate against the server-events schema.

use serde_json::{Map, Value, json};

use crate::audio::AudioFormat;
use crate::vad::VadParams;

/// The instructions the service starts with (abridged).
const DEFAULT_INSTRUCTIONS: &str =
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI.";

/// `server_vad` defaults.
fn server_vad_defaults() -> Value {
    json!({"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200,
           "idle_timeout_ms":null,"create_response":true,"interrupt_response":true})
}

/// The session a new connection starts with.
pub(crate) fn default_session(model: &str) -> Value {
    json!({
        "type": "realtime",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": null,
        "truncation": "auto",
        "prompt": null,
        "include": null,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": null,
                "noise_reduction": null,
                "turn_detection": server_vad_defaults(),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
        },
    })
}

/// Fills what a client left out of a `turn_detection` object (a new object replaces the old).
fn normalize_turn_detection(td: &mut Value) {
    let defaults = match td.get("type").and_then(Value::as_str) {
        Some("server_vad") => server_vad_defaults(),
        Some("semantic_vad") => {
            json!({"type":"semantic_vad","eagerness":"auto","create_response":true,"interrupt_response":true})
        }
        _ => return,
    };
    if let (Some(obj), Value::Object(d)) = (td.as_object_mut(), defaults) {
        for (k, v) in d {
            match obj.get(&k) {
                Some(x) if !x.is_null() => {}
                _ => {
                    obj.insert(k, v);
                }
            }
        }
    }
}

fn merge_object(into: &mut Map<String, Value>, from: &Map<String, Value>, deep: &[&str]) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(dst)), Value::Object(src)) if deep.contains(&k.as_str()) => {
                let nested: &[&str] = if k == "audio" { &["input", "output"] } else { &[] };
                merge_object(dst, src, nested);
            }
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Applies a (schema-valid) `session.update` session object to the current session: keys
/// present replace the current ones, `audio.input`/`audio.output` merge key by key.
pub(crate) fn merge_update(current: &mut Value, update: &Value) {
    if let (Some(dst), Some(src)) = (current.as_object_mut(), update.as_object()) {
        merge_object(dst, src, &["audio"]);
    }
    if let Some(td) = current.pointer_mut("/audio/input/turn_detection") {
        normalize_turn_detection(td);
    }
}

/// Server or semantic VAD as configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TurnDetection {
    /// Detection parameters.
    pub params: VadParams,
    /// Start a response when a turn ends.
    pub create_response: bool,
    /// Cancel the active response when speech starts.
    pub interrupt_response: bool,
}

/// What the simulator reads from the session object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Derived {
    /// Input audio format.
    pub input_format: AudioFormat,
    /// Output audio format.
    pub output_format: AudioFormat,
    /// `None` when `turn_detection` is null.
    pub turn: Option<TurnDetection>,
    /// Whether input transcription is configured.
    pub transcription: bool,
    /// Whether responses speak (`output_modalities` contains `audio`).
    pub audio_out: bool,
    /// Output voice.
    pub voice: String,
}

fn bool_or(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// Reads the settings of a session object.
pub(crate) fn derive(session: &Value) -> Derived {
    let input = session.pointer("/audio/input").cloned().unwrap_or(Value::Null);
    let output = session.pointer("/audio/output").cloned().unwrap_or(Value::Null);
    let td = input.get("turn_detection").cloned().unwrap_or(Value::Null);
    let turn = match td.get("type").and_then(Value::as_str) {
        Some("server_vad") => Some(TurnDetection {
            params: VadParams {
                threshold: td.get("threshold").and_then(Value::as_f64).unwrap_or(0.5) as f32,
                prefix_padding_ms: td.get("prefix_padding_ms").and_then(Value::as_u64).unwrap_or(300),
                silence_duration_ms: td.get("silence_duration_ms").and_then(Value::as_u64).unwrap_or(200),
            },
            create_response: bool_or(&td, "create_response", true),
            interrupt_response: bool_or(&td, "interrupt_response", true),
        }),
        Some("semantic_vad") => Some(TurnDetection {
            params: VadParams {
                threshold: 0.5,
                prefix_padding_ms: 300,
                silence_duration_ms: match td.get("eagerness").and_then(Value::as_str) {
                    Some("high") => 250,
                    Some("low") => 1000,
                    _ => 500,
                },
            },
            create_response: bool_or(&td, "create_response", true),
            interrupt_response: bool_or(&td, "interrupt_response", true),
        }),
        _ => None,
    };
    Derived {
        input_format: input.get("format").and_then(AudioFormat::from_json).unwrap_or_default(),
        output_format: output.get("format").and_then(AudioFormat::from_json).unwrap_or_default(),
        turn,
        transcription: input.get("transcription").is_some_and(|t| !t.is_null()),
        audio_out: session
            .get("output_modalities")
            .and_then(Value::as_array)
            .is_none_or(|m| m.iter().any(|x| x == "audio")),
        voice: output.get("voice").and_then(Value::as_str).unwrap_or("marin").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::validate_server_event;

    #[test]
    fn defaults_validate_and_derive() {
        let s = default_session("gpt-realtime");
        validate_server_event(&json!({"type":"session.created","event_id":"event_1","session":s})).unwrap();
        let d = derive(&s);
        assert_eq!((d.input_format, d.output_format), (AudioFormat::Pcm24k, AudioFormat::Pcm24k));
        assert!(d.turn.is_some_and(|t| t.create_response && t.interrupt_response));
        assert!(!d.transcription && d.audio_out);
    }

    #[test]
    fn update_merges_nested_audio_and_fills_vad_defaults() {
        let mut s = default_session("gpt-realtime");
        merge_update(
            &mut s,
            &json!({"type":"realtime","instructions":"Sois brève.","audio":{"input":{"format":{"type":"audio/pcmu"},
                "transcription":{"model":"gpt-4o-transcribe","language":"fr"},
                "turn_detection":{"type":"server_vad","silence_duration_ms":700,"create_response":false}}}}),
        );
        assert_eq!(s["instructions"], "Sois brève.");
        assert_eq!(s["audio"]["output"]["voice"], "marin", "output kept");
        let d = derive(&s);
        assert_eq!(d.input_format, AudioFormat::Pcmu);
        assert_eq!(d.output_format, AudioFormat::Pcm24k);
        let t = d.turn.unwrap();
        assert_eq!(t.params.silence_duration_ms, 700);
        assert_eq!(t.params.prefix_padding_ms, 300);
        assert!(!t.create_response && t.interrupt_response);
        assert!(d.transcription);
        merge_update(
            &mut s,
            &json!({"type":"realtime","audio":{"input":{"turn_detection":null}},"output_modalities":["text"]}),
        );
        let d = derive(&s);
        assert!(d.turn.is_none() && !d.audio_out);
        validate_server_event(&json!({"type":"session.updated","event_id":"event_2","session":s})).unwrap();
    }
}
