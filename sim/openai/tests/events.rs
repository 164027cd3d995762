//! Client events: `session.update`, schema checking with errors of the real shape (never a
//! panic, never a silent drop), and conversation items.

mod common;

use callway_sim_openai::OpenAiSim;
use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn session_update_returns_the_merged_ga_session() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(server_vad(500, true, true), true)).await;
    let s = c.expect("session.updated").await["session"].clone();
    assert_eq!(s["audio"]["input"]["format"], json!({"type": "audio/pcmu"}));
    assert_eq!(s["audio"]["output"]["format"], json!({"type": "audio/pcmu"}));
    assert_eq!(s["audio"]["output"]["voice"], "marin");
    assert_eq!(s["audio"]["input"]["transcription"]["model"], "gpt-4o-transcribe");
    assert_eq!(s["audio"]["input"]["turn_detection"]["silence_duration_ms"], 500);
    assert_eq!(s["tools"][0]["name"], "save_lead");
    assert_eq!(s["instructions"], "Tu es l'assistante de Callway.");

    // A partial update changes only what it names.
    c.send(json!({"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":null}}}}))
        .await;
    let s = c.expect("session.updated").await["session"].clone();
    assert_eq!(s["audio"]["input"]["turn_detection"], serde_json::Value::Null);
    assert_eq!(s["audio"]["input"]["format"], json!({"type": "audio/pcmu"}), "kept");
    assert_eq!(s["instructions"], "Tu es l'assistante de Callway.", "kept");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_events_get_error_events_of_the_real_shape_and_the_session_goes_on() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    let cases = [
        (
            json!({"type":"session.update","event_id":"evt_1","session":{"type":"realtime","temperature":0.8}}),
            "unknown_parameter",
            Some("session.temperature"),
        ),
        (json!({"type":"input_audio_buffer.append"}), "missing_required_parameter", Some("audio")),
        (
            json!({"type":"conversation.item.truncate","item_id":"item_1","content_index":0,"audio_end_ms":"9"}),
            "invalid_type",
            Some("audio_end_ms"),
        ),
        (json!({"type":"response.audio.delta","event_id":"evt_4"}), "invalid_value", Some("type")),
        (
            json!({"type":"session.update","session":{"type":"realtime","audio":{"output":{"format":{"type":"g711_ulaw"}}}}}),
            "invalid_value",
            Some("session.audio.output.format.type"),
        ),
        (json!({"type":"input_audio_buffer.append","audio":"***"}), "invalid_value", Some("audio")),
    ];
    for (event, code, param) in &cases {
        c.send(event.clone()).await;
        let err = c.expect("error").await;
        let eid = event.get("event_id").and_then(|v| v.as_str());
        assert_error_event(&err, code, eid);
        assert_eq!(err["error"]["param"].as_str(), *param, "{event} -> {err}");
    }
    assert_eq!(
        sim.session(0).unwrap().sent_of("error")[0]["error"]["message"],
        "Unknown parameter: 'session.temperature'."
    );

    c.send_raw(Message::text("{not json")).await;
    assert_error_event(&c.expect("error").await, "invalid_json", None);
    c.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_error_event(&c.expect("error").await, "invalid_json", None);

    // Still alive and well.
    c.send(json!({"type":"input_audio_buffer.clear","event_id":"evt_ok"})).await;
    c.expect("input_audio_buffer.cleared").await;
    let rec = sim.session(0).unwrap();
    assert_eq!(rec.received.len(), cases.len() + 3, "every frame is recorded, valid or not");
    assert_eq!(rec.received[0].kind, "session.update");
    assert_eq!(rec.received[cases.len()].kind, "?");
    assert!(rec.ended.is_none());
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn session_rules_beyond_the_schema() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(json!({"type":"session.update","session":{"type":"transcription"}})).await;
    let e = c.expect("error").await;
    assert_eq!(
        e["error"]["message"],
        "Passing a transcription session update event to a realtime session is not allowed."
    );
    c.send(json!({"type":"session.update","session":{"type":"realtime","model":"gpt-realtime-mini"}})).await;
    assert_eq!(c.expect("error").await["error"]["param"], "session.model");

    // The voice may change until the assistant has spoken.
    c.send(
        json!({"type":"session.update","session":{"type":"realtime","audio":{"output":{"voice":"cedar"}}}}),
    )
    .await;
    assert_eq!(c.expect("session.updated").await["session"]["audio"]["output"]["voice"], "cedar");
    c.send(json!({"type":"response.create"})).await;
    c.response_done().await;
    c.send(
        json!({"type":"session.update","session":{"type":"realtime","audio":{"output":{"voice":"marin"}}}}),
    )
    .await;
    let e = c.expect("error").await;
    assert_error_event(&e, "cannot_update_voice", None);
    assert_eq!(e["error"]["message"], "Cannot update a conversation's voice if assistant audio is present.");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn conversation_items_are_created_retrieved_and_deleted() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(json!({"type":"conversation.item.create","item":{"type":"message","role":"user",
        "content":[{"type":"input_text","text":"L'appelant a tapé 1."}]}}))
        .await;
    let added = c.expect("conversation.item.added").await;
    let id = added["item"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("item_"));
    assert_eq!(added["previous_item_id"], serde_json::Value::Null);
    assert_eq!(added["item"]["content"][0]["text"], "L'appelant a tapé 1.");
    c.expect("conversation.item.done").await;

    c.send(json!({"type":"conversation.item.create","previous_item_id":id,
        "item":{"id":"item_mine","type":"message","role":"system","content":[{"type":"input_text","text":"Sois brève."}]}}))
        .await;
    let added = c.expect("conversation.item.added").await;
    assert_eq!(
        (added["item"]["id"].as_str(), added["previous_item_id"].as_str()),
        (Some("item_mine"), Some(&*id))
    );
    c.expect("conversation.item.done").await;
    c.send(json!({"type":"conversation.item.create","item":{"id":"item_mine","type":"message","role":"user","content":[]}}))
        .await;
    assert_eq!(c.expect("error").await["error"]["param"], "item.id", "ids are unique");

    c.send(json!({"type":"conversation.item.retrieve","item_id":id})).await;
    assert_eq!(c.expect("conversation.item.retrieved").await["item"]["id"], *id);
    c.send(json!({"type":"conversation.item.delete","item_id":id})).await;
    assert_eq!(c.expect("conversation.item.deleted").await["item_id"], *id);
    c.send(json!({"type":"conversation.item.delete","item_id":id,"event_id":"evt_del"})).await;
    assert_eq!(c.expect("error").await["error"]["event_id"], "evt_del");
    c.send(json!({"type":"conversation.item.retrieve","item_id":id})).await;
    c.expect("error").await;
    c.send(json!({"type":"conversation.item.create","previous_item_id":"item_none",
        "item":{"type":"message","role":"user","content":[{"type":"input_text","text":"x"}]}}))
        .await;
    assert_eq!(c.expect("error").await["error"]["param"], "previous_item_id");
    c.send(json!({"type":"output_audio_buffer.clear"})).await;
    c.expect("error").await;
    assert_schema_clean(&sim);
    sim.shutdown().await;
}
