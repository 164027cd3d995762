//! Tool calls: the model calls a function after a scripted user turn, streams its arguments,
//! and says nothing about the result until the client answers with a `function_call_output`
//! item and `response.create`.

mod common;

use callway_sim_openai::audio::{silence_ulaw, tone_ulaw};
use callway_sim_openai::{OpenAiSim, Reply, Script, SimConfig, ToolCall};
use common::*;
use serde_json::{Value, json};

const ARGS: &str = r#"{"first_name":"Zoé","last_name":"Martin","phone":"+33612345678","consent":true}"#;

fn script() -> Script {
    Script::replies([
        Reply::tone(440.0, 300, "Bonjour, quel est votre nom ?"),
        Reply::tone(440.0, 300, "C'est noté, merci Zoé."),
    ])
    .with_tool_call(ToolCall::new(2, "save_lead", ARGS))
}

async fn user_turn(c: &mut Client) {
    c.append_ulaw(&tone_ulaw(250.0, 300, 0.4), 160).await;
    c.send(json!({"type":"input_audio_buffer.commit"})).await;
    c.expect("input_audio_buffer.committed").await;
    c.until("conversation.item.done").await;
}

#[tokio::test]
async fn a_tool_call_on_the_scripted_turn_and_its_round_trip() {
    let sim = OpenAiSim::spawn(SimConfig { script: script(), ..fast_config() }).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(Value::Null, false)).await;
    c.expect("session.updated").await;

    // Turn 1: a spoken reply.
    user_turn(&mut c).await;
    c.send(json!({"type":"response.create"})).await;
    let ev = c.response_done().await;
    assert_eq!(deltas_of(&ev, "response.output_audio_transcript.delta"), "Bonjour, quel est votre nom ?");

    // Turn 2: the call.
    user_turn(&mut c).await;
    c.send(json!({"type":"response.create"})).await;
    let ev = c.response_done().await;
    assert_eq!(
        kinds(&ev)[..3],
        ["response.created", "response.output_item.added", "conversation.item.added"].map(String::from)
    );
    assert_eq!(ev[1]["item"]["type"], "function_call");
    assert!(!ev.iter().any(|e| e["type"] == "response.output_audio.delta"), "a call, no speech");
    assert_eq!(deltas_of(&ev, "response.function_call_arguments.delta"), ARGS);
    assert!(ev.iter().filter(|e| e["type"] == "response.function_call_arguments.delta").count() > 1);
    let call = ev.iter().find(|e| e["type"] == "response.function_call_arguments.done").unwrap();
    assert_eq!((call["name"].as_str(), call["arguments"].as_str()), (Some("save_lead"), Some(ARGS)));
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    assert!(call_id.starts_with("call_"));
    let done = &ev.last().unwrap()["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["type"], "function_call");
    assert_eq!(done["output"][0]["call_id"], *call_id);

    // The client runs the tool and answers; the model speaks only when asked.
    c.send(json!({"type":"conversation.item.create","item":{"type":"function_call_output","call_id":call_id,
        "output":"{\"lead_id\":\"42\"}"}}))
        .await;
    let added = c.expect("conversation.item.added").await;
    assert_eq!(added["item"]["type"], "function_call_output");
    c.expect("conversation.item.done").await;
    c.send(json!({"type":"response.create"})).await;
    let ev = c.response_done().await;
    assert_eq!(deltas_of(&ev, "response.output_audio_transcript.delta"), "C'est noté, merci Zoé.");

    // Turn 3: no call scripted, the last reply repeats.
    user_turn(&mut c).await;
    c.send(json!({"type":"response.create"})).await;
    let ev = c.response_done().await;
    assert!(!ev.iter().any(|e| e["type"] == "response.function_call_arguments.done"));

    let rec = sim.session(0).unwrap();
    let outputs = rec.received_of("conversation.item.create");
    assert_eq!(outputs[0]["item"]["call_id"], *call_id, "the answer is on record for assertions");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_call_triggers_on_the_vad_turn_too_and_may_have_a_spoken_preamble() {
    let sim = OpenAiSim::spawn(SimConfig {
        script: Script::replies([Reply::tone(440.0, 200, "Après.")]).with_tool_call(
            ToolCall::new(1, "save_lead", ARGS).with_preamble(Reply::tone(440.0, 200, "Je note.")),
        ),
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(server_vad(300, true, true), false)).await;
    c.expect("session.updated").await;
    let mut audio = tone_ulaw(250.0, 400, 0.4);
    audio.extend(silence_ulaw(400));
    c.append_ulaw(&audio, 160).await;
    c.until("input_audio_buffer.committed").await;
    let ev = c.response_done().await;
    let done = &ev.last().unwrap()["response"];
    assert_eq!(done["output"][0]["type"], "message");
    assert_eq!(done["output"][0]["content"][0]["transcript"], "Je note.");
    assert_eq!(done["output"][1]["type"], "function_call");
    let call = ev.iter().find(|e| e["type"] == "response.function_call_arguments.done").unwrap();
    assert_eq!(call["output_index"], 1);
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_output_for_an_unknown_call_is_an_error() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(json!({"type":"conversation.item.create","event_id":"evt_o",
        "item":{"type":"function_call_output","call_id":"call_unknown","output":"{}"}}))
        .await;
    let e = c.expect("error").await;
    assert_error_event(&e, "invalid_value", Some("evt_o"));
    assert_eq!(e["error"]["param"], "item.call_id");
    sim.shutdown().await;
}
