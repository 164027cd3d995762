//! The official GPT-Live event schemas (vendored in `schemas/openai-live-*.schema.json`,
//! identical to `/work/shared/schemas/`) and what the Live front end does with them: every
//! client event is checked before it is acted on (a failure becomes an `error` event in
//! OpenAI's words, `unknown_parameter` for an unknown field), every server event can be checked
//! before it is sent. The checking itself is the Realtime front end's (`crate::schema`).

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

use crate::api_error::ApiError;
use crate::schema::{check_typed_event, compile, first_error, per_type};

/// The GPT-Live client-events schema (15 event types, JSON Schema 2020-12), as vendored.
pub const LIVE_CLIENT_EVENTS_SCHEMA: &str =
    include_str!("../../schemas/openai-live-client-events.schema.json");
/// The GPT-Live server-events schema (28 event types, JSON Schema 2020-12), as vendored.
pub const LIVE_SERVER_EVENTS_SCHEMA: &str =
    include_str!("../../schemas/openai-live-server-events.schema.json");

struct Schemas {
    client: Validator,
    server: Validator,
    client_by_type: HashMap<String, Validator>,
    client_types: Vec<String>,
}

fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| {
        let client: Value = serde_json::from_str(LIVE_CLIENT_EVENTS_SCHEMA).expect("client schema is JSON");
        let server: Value = serde_json::from_str(LIVE_SERVER_EVENTS_SCHEMA).expect("server schema is JSON");
        let (client_by_type, client_types) = per_type(&client);
        Schemas { client: compile(&client), server: compile(&server), client_by_type, client_types }
    })
}

/// Checks a server event against the GPT-Live server-events schema; `Err` describes every
/// violation.
pub fn validate_live_server_event(event: &Value) -> Result<(), String> {
    first_error(&schemas().server, event).map_or(Ok(()), Err)
}

/// Checks a client event against the GPT-Live client-events schema; `Err` describes every
/// violation.
pub fn validate_live_client_event(event: &Value) -> Result<(), String> {
    first_error(&schemas().client, event).map_or(Ok(()), Err)
}

/// Compiles the Live schemas now rather than on first use (the simulator starts it on a thread
/// at spawn: it takes about a second, which the first Live session would otherwise wait
/// inside a measured call).
pub fn warm_up() {
    let _ = schemas();
}

/// Checks a client event as the service would, answering the first problem in OpenAI's words.
pub(crate) fn check_live_client_event(event: &Value) -> Result<(), ApiError> {
    let s = schemas();
    check_typed_event(event, &s.client_by_type, &s.client_types)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_start_is_valid_and_realtime_shapes_are_not() {
        let start = json!({"type": "session.start", "session": {"model": "gpt-live-1",
            "instructions": "Tu es Claire.", "audio": {"format": {"type": "audio/pcmu", "rate": 8000},
            "output": {"voice": "marin"}},
            "delegation": {"type": "responses", "responses": {"model": "gpt-5-mini",
                "tools": [{"type": "function", "name": "save_lead", "parameters": {"type": "object"}}]}}}});
        check_live_client_event(&start).unwrap();
        let e = check_live_client_event(&json!({"type": "session.start", "session": {"model": "gpt-live-1",
            "temperature": 0.8}}))
        .unwrap_err();
        assert_eq!(
            (e.code.as_deref(), e.param.as_deref()),
            (Some("unknown_parameter"), Some("session.temperature"))
        );
        let e =
            check_live_client_event(&json!({"type": "input_audio_buffer.append", "audio": ""})).unwrap_err();
        assert_eq!((e.code.as_deref(), e.param.as_deref()), (Some("invalid_value"), Some("type")));
        assert!(
            validate_live_server_event(&json!({"type": "session.output_audio.delta", "delta": "//8="}))
                .is_ok()
        );
        assert!(
            validate_live_server_event(
                &json!({"type": "session.output_audio.delta", "delta": "", "item_id": "i"})
            )
            .is_err()
        );
    }
}
