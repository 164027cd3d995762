//! The official GA event schemas (vendored in `schemas/`, identical to `/work/shared/schemas/`)
//! and what the simulator does with them.
//!
//! - Every client event is checked against the client-events schema before it is acted on; a
//!   failure becomes an `error` event whose `code`, `message` and `param` follow the real
//!   service's wording (`unknown_parameter` "Unknown parameter: 'session.temperature'.",
//!   `missing_required_parameter`, `invalid_type`, `invalid_value`).
//! - Every server event can be checked against the server-events schema
//!   ([`validate_server_event`]); the simulator does so on everything it sends when
//!   [`crate::SimConfig::check_outgoing`] is on, and records violations.
//!
//! Validators are compiled once per process.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{Value, json};

use crate::api_error::ApiError;

/// The client-events schema (JSON Schema 2020-12), as vendored.
pub const CLIENT_EVENTS_SCHEMA: &str = include_str!("../schemas/openai-realtime-client-events.schema.json");
/// The server-events schema (JSON Schema 2020-12), as vendored.
pub const SERVER_EVENTS_SCHEMA: &str = include_str!("../schemas/openai-realtime-server-events.schema.json");

struct Schemas {
    client: Validator,
    server: Validator,
    client_by_type: HashMap<String, Validator>,
    client_types: Vec<String>,
    session: Validator,
}

pub(crate) fn compile(schema: &Value) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(schema)
        .unwrap_or_else(|e| panic!("vendored schema does not compile: {e}"))
}

pub(crate) fn with_defs(root: &Value, body: Value) -> Value {
    let mut v = body;
    v["$defs"] = root["$defs"].clone();
    v
}

/// One validator per event type of a schema's discriminator, and the types in its order.
pub(crate) fn per_type(root: &Value) -> (HashMap<String, Validator>, Vec<String>) {
    let mapping = root["discriminator"]["mapping"].as_object().expect("the schema has a mapping");
    let mut by_type = HashMap::new();
    let mut types = Vec::new();
    for (ty, target) in mapping {
        let target = target.as_str().expect("mapping targets are strings");
        by_type.insert(ty.clone(), compile(&with_defs(root, json!({"$ref": target}))));
        types.push(ty.clone());
    }
    (by_type, types)
}

fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| {
        let client: Value = serde_json::from_str(CLIENT_EVENTS_SCHEMA).expect("client schema is JSON");
        let server: Value = serde_json::from_str(SERVER_EVENTS_SCHEMA).expect("server schema is JSON");
        let (client_by_type, client_types) = per_type(&client);
        let session = compile(&with_defs(
            &client,
            json!({"anyOf": [
                {"$ref": "#/$defs/RealtimeSessionCreateRequest"},
                {"$ref": "#/$defs/RealtimeTranscriptionSessionCreateRequest"}
            ]}),
        ));
        Schemas { client: compile(&client), server: compile(&server), client_by_type, client_types, session }
    })
}

pub(crate) fn first_error(v: &Validator, instance: &Value) -> Option<String> {
    let errors: Vec<String> =
        v.iter_errors(instance).map(|e| format!("{} at `{}`", e, e.instance_path())).collect();
    if errors.is_empty() { None } else { Some(errors.join("; ")) }
}

/// Checks a server event against the server-events schema; `Err` describes every violation.
pub fn validate_server_event(event: &Value) -> Result<(), String> {
    first_error(&schemas().server, event).map_or(Ok(()), Err)
}

/// Checks a client event against the client-events schema; `Err` describes every violation.
pub fn validate_client_event(event: &Value) -> Result<(), String> {
    first_error(&schemas().client, event).map_or(Ok(()), Err)
}

/// Compiles the schemas now rather than on first use (for benchmarks that must not pay it
/// inside a measurement).
pub fn warm_up() {
    let _ = schemas();
}

/// Checks a client event as the service would, answering the first problem in OpenAI's words.
pub(crate) fn check_client_event(event: &Value) -> Result<(), ApiError> {
    let s = schemas();
    check_typed_event(event, &s.client_by_type, &s.client_types)
}

/// Checks `event` against the validator of its `type` in `by_type` (one per client event type
/// of a schema's discriminator, `types` in the schema's order), answering the first problem in
/// OpenAI's words. Shared by the Realtime and GPT-Live front ends.
pub(crate) fn check_typed_event(
    event: &Value,
    by_type: &HashMap<String, Validator>,
    types: &[String],
) -> Result<(), ApiError> {
    let Some(obj) = event.as_object() else {
        return Err(ApiError::invalid(
            "invalid_type",
            format!("Invalid type for event: expected an object, but got {} instead.", type_phrase(event)),
            None,
        ));
    };
    let ty = match obj.get("type") {
        None => return Err(ApiError::missing_parameter("type".into())),
        Some(Value::String(t)) => t,
        Some(other) => return Err(invalid_type("type".into(), "a string", other)),
    };
    let Some(validator) = by_type.get(ty.as_str()) else {
        let supported: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
        return Err(ApiError::invalid(
            "invalid_value",
            format!("Invalid value: '{ty}'. Supported values are: {}.", supported.join(", ")),
            Some("type".into()),
        ));
    };
    match validator.iter_errors(event).next() {
        None => Ok(()),
        Some(e) => Err(explain(&e, event, "")),
    }
}

/// Checks a session object (the `session` of `session.update` or of a client-secret request)
/// with parameter paths under `prefix`.
pub(crate) fn check_session(session: &Value, prefix: &str) -> Result<(), ApiError> {
    match schemas().session.iter_errors(session).next() {
        None => Ok(()),
        Some(e) => Err(explain(&e, session, prefix)),
    }
}

fn type_phrase(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expected_phrase(kind: &TypeKind) -> String {
    let one = |t: jsonschema::JsonType| match t.as_str() {
        "integer" => "an integer".to_owned(),
        "array" => "an array".to_owned(),
        "object" => "an object".to_owned(),
        "null" => "null".to_owned(),
        other => format!("a {other}"),
    };
    match kind {
        TypeKind::Single(t) => one(*t),
        TypeKind::Multiple(set) => set.iter().map(one).collect::<Vec<_>>().join(" or "),
    }
}

fn invalid_type(param: String, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid(
        "invalid_type",
        format!("Invalid type for '{param}': expected {expected}, but got {} instead.", type_phrase(got)),
        Some(param),
    )
}

/// A JSON pointer as OpenAI's dotted parameter path (`session.tools[0].name`), using the
/// instance to tell array indices from object keys.
fn dotted(pointer: &str, root: &Value, prefix: &str) -> String {
    let mut out = prefix.to_owned();
    let mut cur = Some(root);
    for raw in pointer.split('/').filter(|p| !p.is_empty()) {
        let key = raw.replace("~1", "/").replace("~0", "~");
        match cur {
            Some(Value::Array(a)) => {
                out.push_str(&format!("[{key}]"));
                cur = key.parse::<usize>().ok().and_then(|i| a.get(i));
            }
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key);
                cur = other.and_then(|o| o.get(&key));
            }
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn quote(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => format!("'{other}'"),
    }
}

/// Whether a branch of a union failed on its discriminator (`type` or `role` const at the
/// union's own level) or on the union level's type: the instance was not meant for it.
fn branch_mismatched(errors: &[ValidationError<'static>], at: &str) -> bool {
    errors.iter().any(|e| {
        let p = e.instance_path().as_str();
        match e.kind() {
            ValidationErrorKind::Type { .. } => p == at,
            ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. } => {
                p == format!("{at}/type") || p == format!("{at}/role")
            }
            _ => false,
        }
    })
}

fn explain(err: &ValidationError<'_>, root: &Value, prefix: &str) -> ApiError {
    let at = err.instance_path().as_str();
    let path = dotted(at, root, prefix);
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            ApiError::unknown_parameter(join(&path, unexpected.first().map_or("", String::as_str)))
        }
        ValidationErrorKind::Required { property } => {
            ApiError::missing_parameter(join(&path, property.as_str().unwrap_or_default()))
        }
        ValidationErrorKind::Type { kind } => invalid_type(path, &expected_phrase(kind), err.instance()),
        ValidationErrorKind::Constant { expected_value } => ApiError::invalid(
            "invalid_value",
            format!(
                "Invalid value: {}. Supported values are: {}.",
                quote(err.instance()),
                quote(expected_value)
            ),
            Some(path),
        ),
        ValidationErrorKind::Enum { options } => {
            let list: Vec<String> =
                options.as_array().map(|a| a.iter().map(quote).collect()).unwrap_or_default();
            ApiError::invalid(
                "invalid_value",
                format!(
                    "Invalid value: {}. Supported values are: {}.",
                    quote(err.instance()),
                    list.join(", ")
                ),
                Some(path),
            )
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            let matching: Vec<&Vec<ValidationError<'static>>> =
                context.iter().filter(|b| !b.is_empty() && !branch_mismatched(b, at)).collect();
            if let Some(best) = matching.iter().min_by_key(|b| b.len()) {
                return explain(&best[0], root, prefix);
            }
            // Every branch was for another shape: name what the discriminator allows.
            let inst = err.instance();
            if let Some(t) = inst.get("type") {
                let mut allowed: Vec<String> = Vec::new();
                for e in context.iter().flatten() {
                    if let ValidationErrorKind::Constant { expected_value } = e.kind()
                        && e.instance_path().as_str() == format!("{at}/type")
                    {
                        let q = quote(expected_value);
                        if !allowed.contains(&q) {
                            allowed.push(q);
                        }
                    }
                }
                if !allowed.is_empty() {
                    return ApiError::invalid(
                        "invalid_value",
                        format!("Invalid value: {}. Supported values are: {}.", quote(t), allowed.join(", ")),
                        Some(join(&path, "type")),
                    );
                }
            }
            let mut kinds: Vec<String> = Vec::new();
            for e in context.iter().flatten() {
                if let ValidationErrorKind::Type { kind } = e.kind()
                    && e.instance_path().as_str() == at
                {
                    let k = expected_phrase(kind);
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
            }
            if kinds.is_empty() {
                ApiError::invalid("invalid_value", format!("Invalid value for '{path}'."), Some(path))
            } else {
                invalid_type(path, &kinds.join(" or "), inst)
            }
        }
        _ => ApiError::invalid("invalid_value", format!("Invalid value for '{path}': {err}."), Some(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(v: Value) -> ApiError {
        check_client_event(&v).unwrap_err()
    }

    #[test]
    fn protocol_examples_are_valid() {
        let update = json!({"type":"session.update","session":{"type":"realtime","model":"gpt-realtime","output_modalities":["audio"],
            "instructions":"…",
            "audio":{"input":{"format":{"type":"audio/pcmu"},
                              "transcription":{"model":"gpt-4o-transcribe","language":"fr"},
                              "turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":500,"create_response":true,"interrupt_response":true}},
                     "output":{"format":{"type":"audio/pcmu"},"voice":"marin"}},
            "tools":[{"type":"function","name":"save_lead","description":"…","parameters":{"type":"object","properties":{},"required":[]}}],
            "tool_choice":"auto"}});
        check_client_event(&update).unwrap();
        validate_client_event(&update).unwrap();
        for ev in [
            json!({"type":"input_audio_buffer.append","audio":"AAAA"}),
            json!({"type":"input_audio_buffer.commit"}),
            json!({"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"{}"}}),
            json!({"type":"conversation.item.truncate","item_id":"item_1","content_index":0,"audio_end_ms":1840}),
            json!({"type":"response.create","response":{"instructions":"…"}}),
            json!({"type":"response.cancel","event_id":"e1"}),
        ] {
            check_client_event(&ev).unwrap();
        }
    }

    #[test]
    fn errors_name_the_parameter_like_openai() {
        let e = err(json!({"type":"session.update","session":{"type":"realtime","temperature":0.8}}));
        assert_eq!(e.code.as_deref(), Some("unknown_parameter"));
        assert_eq!(e.param.as_deref(), Some("session.temperature"));
        assert_eq!(e.message, "Unknown parameter: 'session.temperature'.");

        let e = err(
            json!({"type":"conversation.item.truncate","item_id":"i","content_index":0,"audio_end_ms":"5"}),
        );
        assert_eq!(e.code.as_deref(), Some("invalid_type"));
        assert_eq!(
            e.message,
            "Invalid type for 'audio_end_ms': expected an integer, but got a string instead."
        );

        let e = err(
            json!({"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"c"}}),
        );
        assert_eq!(
            (e.code.as_deref(), e.param.as_deref()),
            (Some("missing_required_parameter"), Some("item.output"))
        );

        let e = err(json!({"type":"response.audio.delta"}));
        assert_eq!((e.code.as_deref(), e.param.as_deref()), (Some("invalid_value"), Some("type")));
        assert!(e.message.starts_with("Invalid value: 'response.audio.delta'. Supported values are: "));

        let e = err(
            json!({"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"server_vad","threshold":"high"}}}}}),
        );
        assert_eq!(e.param.as_deref(), Some("session.audio.input.turn_detection.threshold"), "{e:?}");

        let e = err(
            json!({"type":"session.update","session":{"type":"realtime","tools":[{"type":"function","name":"f","strict":true}]}}),
        );
        assert_eq!(e.param.as_deref(), Some("session.tools[0].strict"), "{e:?}");

        let e = err(
            json!({"type":"conversation.item.create","item":{"type":"mesage","role":"user","content":[]}}),
        );
        assert_eq!(
            (e.code.as_deref(), e.param.as_deref()),
            (Some("invalid_value"), Some("item.type")),
            "{e:?}"
        );

        assert_eq!(err(json!([1])).code.as_deref(), Some("invalid_type"));
        assert_eq!(err(json!({"audio":"x"})).code.as_deref(), Some("missing_required_parameter"));
    }

    #[test]
    fn server_schema_rejects_beta_names_and_unknown_keys() {
        assert!(
            validate_server_event(&json!({"type":"input_audio_buffer.cleared","event_id":"event_1"})).is_ok()
        );
        assert!(validate_server_event(&json!({"type":"response.audio.delta","event_id":"e"})).is_err());
        assert!(
            validate_server_event(&json!({"type":"input_audio_buffer.cleared","event_id":"e","x":1}))
                .is_err()
        );
    }

    #[test]
    fn session_paths_take_a_prefix() {
        let e = check_session(&json!({"type":"realtime","modalities":["audio"]}), "session").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.modalities"), "{e:?}");
        check_session(&json!({"type":"realtime","model":"gpt-realtime"}), "session").unwrap();
    }
}
