//! Every client event the gateway's GPT-Live writer produces validates against the vendored
//! Live client-event schema (`../shared/schemas/openai-live-client-events.schema.json`), the
//! phone tools included, and the schema rejects what the API rejects (so the check can fail).

use callway_gateway::core::buf::{BufferFull, SliceWriter};
use callway_gateway::core::call::PHONE_TOOLS;
use callway_gateway::core::live::{self, HistoryRole, LiveStart, TextKind};

fn validator() -> jsonschema::Validator {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/schemas/openai-live-client-events.schema.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e} (../shared must sit beside the checkout)"));
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::options().with_draft(jsonschema::Draft::Draft202012).build(&schema).expect("schema compiles")
}

fn written(f: impl FnOnce(&mut SliceWriter<'_>) -> Result<(), BufferFull>) -> serde_json::Value {
    let mut buf = vec![0u8; 32 * 1024];
    let mut w = SliceWriter::new(&mut buf);
    f(&mut w).expect("fits");
    serde_json::from_slice(w.as_written()).expect("writer produced JSON")
}

fn raw(parts: &[&[u8]]) -> serde_json::Value {
    serde_json::from_slice(&parts.concat()).expect("JSON")
}

fn assert_valid(v: &jsonschema::Validator, event: &serde_json::Value) {
    let errors: Vec<String> = v.iter_errors(event).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{event}\n{}", errors.join("\n"));
}

#[test]
fn every_written_event_validates() {
    let v = validator();
    let history = [(HistoryRole::User, "Allô ?"), (HistoryRole::Assistant, "Bonjour « Zoé »\n")];
    for history in [&history[..], &[]] {
        let start = LiveStart {
            model: "gpt-live-1.1",
            instructions: "Tu es Claire, de Callway. Résumé : …",
            history,
            voice: "marin",
            delegation_model: "gpt-5-mini",
            delegation_instructions: "Exécute les outils.",
            tools: &PHONE_TOOLS,
        };
        assert_valid(&v, &written(|w| live::write_session_start(w, &start)));
    }
    assert_valid(&v, &raw(&live::append_parts(b"//8=")));
    for kind in [TextKind::Instructions, TextKind::Thinking, TextKind::Commentary] {
        assert_valid(&v, &written(|w| live::write_text(w, kind, "L'appelant a tapé 5", None)));
        assert_valid(&v, &written(|w| live::write_text(w, kind, "x", Some("del_1"))));
    }
    assert_valid(&v, &written(|w| live::write_function_output(w, "call_1", r#"{"saved":true}"#)));
    assert_valid(&v, &raw(&[live::RESPONSE_CREATE]));
    assert_valid(&v, &raw(&[live::SESSION_CLOSE]));
}

#[test]
fn the_schema_rejects_what_the_api_rejects() {
    let v = validator();
    for bad in [
        serde_json::json!({"type": "session.start", "session": {"model": "gpt-live-1", "turn_detection": null}}),
        serde_json::json!({"type": "session.input_audio.append"}),
        serde_json::json!({"type": "input_audio_buffer.append", "audio": "//8="}),
        serde_json::json!({"type": "session.commentary.append", "text": "x"}),
    ] {
        assert!(!v.is_valid(&bad), "schema accepted {bad}");
    }
}
