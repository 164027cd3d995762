//! Every client event the gateway's OpenAI writer produces validates against the official GA
//! client-event schema (`../shared/schemas/openai-realtime-client-events.schema.json`), and
//! the schema itself rejects what the live API rejects (so the check can fail).

use callway_gateway::core::buf::{BufferFull, SliceWriter};
use callway_gateway::core::openai::{self, SessionConfig, ToolDef, TurnDetection};

fn validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/schemas/openai-realtime-client-events.schema.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e} (../shared must sit beside the checkout)"));
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::options().with_draft(jsonschema::Draft::Draft202012).build(&schema).expect("schema compiles")
}

fn written(f: impl FnOnce(&mut SliceWriter<'_>) -> Result<(), BufferFull>) -> serde_json::Value {
    let mut buf = vec![0u8; 16 * 1024];
    let mut w = SliceWriter::new(&mut buf);
    f(&mut w).expect("fits");
    serde_json::from_slice(w.as_written()).expect("writer produced JSON")
}

fn assert_valid(v: &jsonschema::Validator, event: &serde_json::Value) {
    let errors: Vec<String> = v.iter_errors(event).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{event}\n{}", errors.join("\n"));
}

const SAVE_LEAD_PARAMS: &str = r#"{"type":"object","properties":{"first_name":{"type":"string"},"last_name":{"type":"string"},"phone":{"type":"string"}},"required":["first_name","last_name","phone"],"additionalProperties":false}"#;

fn sessions() -> Vec<SessionConfig<'static>> {
    static TOOLS: [ToolDef<'static>; 2] = [
        ToolDef {
            name: "save_lead",
            description: "Corrige les coordonnées du prospect.",
            parameters_json: SAVE_LEAD_PARAMS,
        },
        ToolDef {
            name: "end_call",
            description: "Raccroche.",
            parameters_json: r#"{"type":"object","properties":{},"required":[]}"#,
        },
    ];
    let base = SessionConfig {
        model: "gpt-realtime",
        instructions: "Tu es Claire, de Callway. Le prospect s'appelle \"Zoé\".\nRésumé : …",
        voice: "marin",
        turn_detection: TurnDetection::ServerVad {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            create_response: true,
            interrupt_response: true,
        },
        transcription: Some(("gpt-4o-transcribe", "fr")),
        tools: &TOOLS,
    };
    vec![
        base,
        SessionConfig { turn_detection: TurnDetection::Disabled, transcription: None, tools: &[], ..base },
        SessionConfig {
            turn_detection: TurnDetection::SemanticVad {
                eagerness: "auto",
                create_response: true,
                interrupt_response: false,
            },
            ..base
        },
    ]
}

#[test]
fn every_written_event_validates() {
    let v = validator();
    let mut events = vec![
        serde_json::from_slice(&openai::append_parts(b"no+JhoaJjpzS/w==").concat()).unwrap(),
        serde_json::from_slice(openai::COMMIT).unwrap(),
        serde_json::from_slice(openai::CLEAR).unwrap(),
        serde_json::from_slice(openai::RESPONSE_CANCEL).unwrap(),
        written(|w| openai::write_response_create(w, None)),
        written(|w| openai::write_response_create(w, Some("Salue Zoé par son prénom."))),
        written(|w| openai::write_truncate(w, "item_123", 1840)),
        written(|w| openai::write_function_output(w, "call_abc", r#"{"ok":true,"lead_id":"42"}"#)),
        written(|w| openai::write_user_text(w, "Le prospect a appuyé sur la touche 1.")),
    ];
    for s in sessions() {
        events.push(written(|w| openai::write_session_update(w, &s)));
    }
    for e in &events {
        assert_valid(&v, e);
    }
}

#[test]
fn the_schema_rejects_what_the_api_rejects() {
    let v = validator();
    let bad = [
        serde_json::json!({"type":"input_audio_buffer.append","audio":"AA==","extra":1}),
        serde_json::json!({"type":"session.update","session":{"type":"realtime","temperature":0.8}}),
        serde_json::json!({"type":"response.audio.delta"}),
        serde_json::json!({"type":"conversation.item.truncate","item_id":"i","content_index":0}),
    ];
    for b in &bad {
        assert!(!v.is_valid(b), "schema accepted {b}");
    }
}
