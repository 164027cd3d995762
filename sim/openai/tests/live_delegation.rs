//! GPT-Live delegation: with Responses delegation a scripted tool call becomes
//! `session.delegation.created` and a Responses stream in `response.event` whose
//! `function_call` the application answers with `response.item.create` and `response.create`;
//! with client delegation the application answers with a commentary. Text appends and their
//! acknowledgements. Paused tokio clock.

mod common;
mod live_client;

use callway_sim_openai::audio::{silence_ulaw, tone_ulaw};
use callway_sim_openai::{OpenAiSim, Reply, Script, SimConfig, ToolCall};
use live_client::*;
use serde_json::{Value, json};

fn config() -> SimConfig {
    SimConfig {
        script: Script::replies([Reply::tone(440.0, 300, "C'est noté, Zoé.")])
            .with_tool_call(
                ToolCall::new(1, "save_lead", r#"{"first_name":"Zoé"}"#).with_preamble(Reply::tone(
                    500.0,
                    200,
                    "Un instant.",
                )),
            )
            .with_user_transcripts(["Je m'appelle Zoé"]),
        // 300 ms to first audio: with the turn's audio alone (2300 ms, the stream 200 ms
        // ahead) nothing is said until the test sends more.
        ttfb: std::time::Duration::from_millis(300),
        ..SimConfig::default()
    }
}

/// One caller turn: loud from 1000 to 1800 ms, over at 2300 ms with the audio.
fn one_turn() -> Vec<u8> {
    let mut a = silence_ulaw(1000);
    a.extend(tone_ulaw(250.0, 800, 0.4));
    a.extend(silence_ulaw(500));
    a
}

fn nested(events: &[Value]) -> Vec<Value> {
    events.iter().filter(|e| e["type"] == "response.event").map(|e| e["event"].clone()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_responses_function_call_round_trip() {
    let sim = OpenAiSim::spawn(config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.append(&one_turn(), 160).await;
    let mut events = c.until("session.delegation.created").await;
    assert_eq!(text_of(&events, "session.input_transcript.delta"), "Je m'appelle Zoé");
    let created = events.pop().unwrap();
    assert_eq!(created["offset_ms"], 2300, "delegated when the turn ended");
    let d = &created["delegation"];
    assert_eq!((d["type"].as_str(), d["target"].as_str()), (Some("delegation"), Some("responses")));
    let delegation_id = d["id"].as_str().unwrap().to_owned();
    let events = c.until("response.event").await;
    assert_eq!(events.len(), 1, "the Responses stream follows at once: {events:?}");
    let mut stream = nested(&events);
    loop {
        let v = c.next().await;
        if v["type"] == "response.event" {
            assert_eq!(v["delegation_id"], *delegation_id);
            let done = v["event"]["type"] == "response.completed";
            stream.push(v["event"].clone());
            if done {
                break;
            }
        }
    }
    assert_eq!(stream[0]["type"], "response.created");
    assert_eq!(stream[0]["response"]["id"], d["response_id"]);
    assert_eq!(stream[0]["response"]["model"], "gpt-5-mini");
    let call = stream.iter().find(|e| e["type"] == "response.output_item.done").unwrap()["item"].clone();
    assert_eq!((call["type"].as_str(), call["name"].as_str()), (Some("function_call"), Some("save_lead")));
    assert_eq!(call["arguments"], r#"{"first_name":"Zoé"}"#);
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    assert!(stream.iter().enumerate().all(|(i, e)| e["sequence_number"] == i));

    // Asking before answering the call is refused; an output for another call too.
    c.send(json!({"type": "response.create", "event_id": "evt_r0"})).await;
    let e = c.expect("error").await;
    assert_live_error(&e, "missing_tool_output", Some("evt_r0"));
    assert!(e["error"]["message"].as_str().unwrap().contains(&call_id));
    c.send(
        json!({"type": "response.item.create", "event_id": "evt_x", "item": {"type": "function_call_output",
        "call_id": "call_unknown", "output": "{}"}}),
    )
    .await;
    let e = c.expect("error").await;
    assert_eq!(e["error"]["param"], "item.call_id");

    // The output is not acknowledged: the next answer is the thinking's.
    c.send(json!({"type": "response.item.create", "item": {"type": "function_call_output",
        "call_id": call_id, "output": r#"{"lead_id":"42"}"#}}))
        .await;
    c.send(json!({"type": "session.thinking.append", "content": "save_lead a répondu.", "event_id": "evt_t",
            "delegation_id": delegation_id}))
        .await;
    let events = c.until("session.thinking.appended").await;
    assert!(
        events
            .iter()
            .all(|e| e["type"] == "session.output_transcript.delta"
                || e["type"] == "session.thinking.appended"),
        "{:?}",
        kinds(&events)
    );
    c.send(json!({"type": "response.create", "event_id": "evt_r1"})).await;
    let mut stream = Vec::new();
    while stream.last().is_none_or(|e: &Value| e["type"] != "response.completed") {
        let v = c.next().await;
        if v["type"] == "response.event" {
            assert_eq!(v["delegation_id"], *delegation_id, "the same delegation");
            stream.push(v["event"].clone());
        }
    }
    let message = &stream.last().unwrap()["response"]["output"][0];
    assert_eq!(message["content"][0]["text"], "C'est noté, Zoé.");
    // The agent says it aloud once audio comes (the preamble was said before).
    c.append(&silence_ulaw(2000), 160).await;
    let mut said = text_of(&c.log, "session.output_transcript.delta");
    while !said.ends_with("C'est noté, Zoé.") {
        c.next().await;
        said = text_of(&c.log, "session.output_transcript.delta");
    }
    assert!(said.starts_with("Un instant."), "the preamble first: {said}");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn client_delegation_announces_the_work_and_a_commentary_brings_the_answer() {
    let sim = OpenAiSim::spawn(config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(start_with_format(json!({"type": "audio/pcmu", "rate": 8000}))).await;
    c.append(&one_turn(), 160).await;
    let created = c.until("session.delegation.created").await.pop().unwrap();
    let d = created["delegation"].as_object().unwrap();
    let mut keys: Vec<&str> = d.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "target", "type"], "metadata only, no task text");
    assert_eq!(d["target"], "client");
    let id = d["id"].as_str().unwrap().to_owned();

    c.send(json!({"type": "response.create", "event_id": "evt_r"})).await;
    assert_live_error(&c.expect("error").await, "invalid_request", Some("evt_r"));
    c.send(json!({"type": "session.commentary.append", "content": "x", "delegation_id": "del_nope", "event_id": "evt_n"}))
        .await;
    let e = c.expect("error").await;
    assert_live_error(&e, "invalid_value", Some("evt_n"));
    assert_eq!(e["error"]["param"], "delegation_id");
    c.send(json!({"type": "session.instructions.append", "content": "Reste polie.", "delegation_id": id, "event_id": "evt_i"}))
        .await;
    let ack = c.until("session.instructions.appended").await.pop().unwrap();
    assert_eq!(ack["client_event_id"], "evt_i");
    c.send(json!({"type": "session.commentary.append", "content": "Le prospect est enregistré.",
        "delegation_id": id, "event_id": "evt_c"}))
        .await;
    let ack = c.until("session.commentary.appended").await.pop().unwrap();
    assert_eq!(ack["client_event_id"], "evt_c");
    c.append(&silence_ulaw(1500), 160).await;
    while !text_of(&c.log, "session.output_transcript.delta").ends_with("C'est noté, Zoé.") {
        c.next().await;
    }
    assert!(c.log.iter().all(|e| e["type"] != "response.event"), "no Responses with client delegation");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn text_appends_need_a_delegation_id_and_at_most_500_tokens() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.send(json!({"type": "session.instructions.append", "content": "x".repeat(2001), "event_id": "evt_l",
        "delegation_id": null}))
        .await;
    let e = c.expect("error").await;
    assert_live_error(&e, "string_above_max_length", Some("evt_l"));
    c.send(
        json!({"type": "session.instructions.append", "content": "x".repeat(2000), "delegation_id": null}),
    )
    .await;
    let ack = c.expect("session.instructions.appended").await;
    assert_eq!(ack["start_ms"], ack["end_ms"]);
    for kind in ["session.instructions.append", "session.thinking.append", "session.commentary.append"] {
        c.send(json!({"type": kind, "content": "Sans délégation.", "event_id": "evt_m"})).await;
        let e = c.expect("error").await;
        assert_live_error(&e, "missing_required_parameter", Some("evt_m"));
        assert_eq!(e["error"]["param"], "delegation_id", "G: required, may be null");
    }
    sim.shutdown().await;
}
