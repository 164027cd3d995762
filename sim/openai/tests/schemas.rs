//! The vendored schemas are the shared ones, and they are what the simulator checks with.

use callway_sim_openai::schema::{
    CLIENT_EVENTS_SCHEMA, SERVER_EVENTS_SCHEMA, validate_client_event, validate_server_event,
};
use serde_json::{Value, json};

const SHARED: &str = "/work/shared/schemas";

#[test]
fn vendored_schemas_are_byte_identical_to_the_shared_copy() {
    let shared = std::path::Path::new(SHARED);
    if !shared.is_dir() {
        eprintln!("{SHARED} absent: nothing to compare (the crate builds from its own copy)");
        return;
    }
    for (name, vendored) in [
        ("openai-realtime-client-events.schema.json", CLIENT_EVENTS_SCHEMA),
        ("openai-realtime-server-events.schema.json", SERVER_EVENTS_SCHEMA),
    ] {
        let theirs = std::fs::read(shared.join(name)).unwrap();
        assert!(theirs == vendored.as_bytes(), "{name} differs from {SHARED}: re-vendor it");
    }
}

#[test]
fn the_schemas_cover_11_client_and_46_server_event_types() {
    let count = |s: &str| {
        let v: Value = serde_json::from_str(s).unwrap();
        v["discriminator"]["mapping"].as_object().unwrap().len()
    };
    assert_eq!(count(CLIENT_EVENTS_SCHEMA), 11);
    assert_eq!(count(SERVER_EVENTS_SCHEMA), 46);
    assert!(validate_client_event(&json!({"type":"input_audio_buffer.commit"})).is_ok());
    assert!(validate_client_event(&json!({"type":"input_audio_buffer.commit","extra":1})).is_err());
    assert!(
        validate_server_event(&json!({"type":"response.output_audio.delta","event_id":"e","response_id":"r",
        "item_id":"i","output_index":0,"content_index":0,"delta":"AA=="}))
        .is_ok()
    );
    assert!(validate_server_event(&json!({"type":"response.audio.delta","event_id":"e"})).is_err());
}
