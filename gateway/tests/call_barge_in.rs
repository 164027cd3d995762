//! Barge-in: the caller speaks over the agent. Twilio's buffer is cleared, the model's memory
//! is truncated at what the caller actually heard (from echoed marks, never beyond what was
//! sent), the rest of the response is dropped, and it is cancelled only if still active and
//! OpenAI does not cancel it itself. Every test runs under the real server's rules
//! (`call_support::ServerRules`): an event it would answer with an error fails the test.

mod call_support;

use call_support::{Pair, config, silence_b64, tone_b64};
use callway_gateway::core::call::{CallConfig, TurnTaking};

/// A live call with `n` deltas of 100 ms of `resp_1`/`item_a` sent to Twilio.
fn speaking(cfg: CallConfig, n: usize) -> Pair {
    let mut p = Pair::live(cfg);
    p.response_created("resp_1");
    for _ in 0..n {
        p.delta("resp_1", "item_a", &tone_b64(100));
    }
    p.openai.clear();
    p.twilio.clear();
    p
}

#[test]
fn barge_in_truncates_at_played_position() {
    let mut p = speaking(config(), 5);
    p.echo_mark("r1-c1-100");
    p.echo_mark("r1-c2-200");
    p.speech_started();
    assert_eq!(p.twilio_events(), ["clear"], "Twilio's buffer is cleared at once");
    assert_eq!(p.twilio.got[0]["streamSid"], call_support::STREAM_SID);
    assert_eq!(
        p.openai.got,
        [
            serde_json::json!({"type":"conversation.item.truncate","item_id":"item_a","content_index":0,"audio_end_ms":200})
        ],
        "no response.cancel: with interrupt_response OpenAI cancelled it on speech_started"
    );
    assert_eq!(p.call.stats().barge_ins, 1);
}

#[test]
fn without_server_interruption_the_gateway_cancels_once() {
    // interrupt_response is off when the greeting must play through: later answers are
    // cancelled by the gateway, and only once however often the caller speaks again.
    let mut p = Pair::live(CallConfig { greeting_interruptible: false, ..config() });
    p.response_created("resp_g");
    p.delta("resp_g", "item_g", &tone_b64(100));
    p.response_done("resp_g", "completed");
    p.echo_mark("r1-c1-100");
    p.response_created("resp_2");
    p.delta("resp_2", "item_b", &tone_b64(300));
    p.openai.clear();
    p.speech_started();
    p.speech_started();
    assert_eq!(p.openai_types(), ["conversation.item.truncate", "response.cancel"]);
    p.response_done("resp_2", "cancelled");
    p.response_created("resp_3");
    p.delta("resp_3", "item_c", &tone_b64(100));
    p.openai.clear();
    p.speech_started();
    assert_eq!(
        p.openai_types(),
        ["conversation.item.truncate", "response.cancel"],
        "a new response: cancel again"
    );
}

#[test]
fn a_response_with_a_preamble_and_an_answer_truncates_each_item_on_its_own_timeline() {
    // Since gpt-realtime-2 one turn can give two audio items: a short preamble, then the answer.
    let mut p = speaking(config(), 0);
    p.delta("resp_1", "item_pre", &tone_b64(200));
    p.delta("resp_1", "item_ans", &tone_b64(300));
    p.echo_mark("r1-c1-200");
    p.echo_mark("r1-c2-350");
    p.speech_started();
    assert_eq!(
        p.openai.got,
        [
            serde_json::json!({"type":"conversation.item.truncate","item_id":"item_ans","content_index":0,"audio_end_ms":150})
        ],
        "350 ms heard, the first 200 of them the preamble"
    );
}

#[test]
fn a_barge_in_inside_the_preamble_truncates_it_and_the_unheard_answer() {
    let mut p = speaking(config(), 0);
    p.delta("resp_1", "item_pre", &tone_b64(200));
    p.delta("resp_1", "item_ans", &tone_b64(300));
    p.echo_mark("r1-c1-120");
    p.speech_started();
    let truncates: Vec<(String, u64)> = p
        .openai
        .of("conversation.item.truncate")
        .iter()
        .map(|t| (t["item_id"].as_str().unwrap().to_owned(), t["audio_end_ms"].as_u64().unwrap()))
        .collect();
    assert_eq!(truncates, [("item_pre".to_owned(), 120), ("item_ans".to_owned(), 0)]);
}

#[test]
fn after_a_reconnect_items_of_the_old_session_are_never_truncated() {
    let mut p = speaking(config(), 3);
    p.drop_openai();
    p.openai.clear();
    p.twilio.clear();
    p.speech_started();
    assert_eq!(p.twilio_events(), ["clear"], "the old audio still leaves Twilio's buffer");
    assert!(p.openai.of("conversation.item.truncate").is_empty(), "item_a does not exist in the new session");
}

#[test]
fn later_deltas_of_the_interrupted_response_are_dropped() {
    let mut p = speaking(config(), 2);
    p.speech_started();
    p.twilio.clear();
    p.delta("resp_1", "item_a", &tone_b64(100));
    p.delta("resp_1", "item_a", &tone_b64(100));
    assert!(p.twilio.got.is_empty());
    assert_eq!(p.call.stats().deltas_dropped, 2);
    p.response_done("resp_1", "cancelled");
    p.response_created("resp_2");
    p.delta("resp_2", "item_b", &tone_b64(100));
    assert_eq!(p.marks(), ["r2-c1-100"], "the next response plays");
}

#[test]
fn marks_echoed_after_a_clear_mean_flushed_not_played() {
    let mut p = speaking(config(), 5);
    p.echo_mark("r1-c1-100");
    p.speech_started();
    // Twilio echoes the pending marks when it clears: they were flushed, not played.
    for m in ["r1-c2-200", "r1-c3-300", "r1-c4-400", "r1-c5-500"] {
        p.echo_mark(m);
    }
    assert_eq!(p.call.stats().marks_ignored, 4);
    p.response_done("resp_1", "cancelled");
    p.openai.clear();
    p.twilio.clear();
    p.speech_started();
    assert!(p.openai.got.is_empty() && p.twilio.got.is_empty(), "nothing left to clear or truncate");
}

#[test]
fn no_cancel_when_the_response_is_already_done() {
    let mut p = speaking(config(), 3);
    p.response_done("resp_1", "completed");
    p.echo_mark("r1-c1-100");
    p.openai.clear();
    p.speech_started();
    assert_eq!(p.twilio_events(), ["clear"]);
    assert_eq!(p.openai_types(), ["conversation.item.truncate"], "no response.cancel: nothing active");
    assert_eq!(p.openai.got[0]["audio_end_ms"], 100);
}

#[test]
fn speech_after_everything_played_changes_nothing() {
    let mut p = speaking(config(), 2);
    p.response_done("resp_1", "completed");
    p.echo_mark("r1-c1-100");
    p.echo_mark("r1-c2-200");
    p.openai.clear();
    p.speech_started();
    assert!(p.twilio.got.is_empty(), "no clear");
    assert!(p.openai.got.is_empty(), "no truncate, no cancel");
    assert_eq!(p.call.stats().barge_ins, 0);
}

#[test]
fn a_mark_claiming_more_than_was_sent_never_truncates_past_what_was_sent() {
    let mut p = speaking(config(), 3);
    p.echo_mark("r1-c9-5000");
    p.speech_started();
    let truncate = p.openai.of("conversation.item.truncate");
    assert_eq!(truncate.len(), 1);
    assert_eq!(truncate[0]["audio_end_ms"], 300, "300 ms sent, not 5000");
    assert!(p.twilio.got.is_empty(), "all sent audio counts as played: nothing to clear");
}

#[test]
fn barge_in_before_start_drops_the_held_agent_audio() {
    let mut p = Pair::new(config());
    p.response_created("resp_1");
    p.delta("resp_1", "item_a", &tone_b64(200));
    p.openai.clear();
    p.speech_started();
    assert_eq!(p.openai_types(), ["conversation.item.truncate"], "OpenAI cancels it itself");
    assert_eq!(p.openai.got[0]["audio_end_ms"], 0, "the caller heard none of it");
    p.twilio_start();
    assert!(p.twilio.of("media").is_empty() && p.twilio.of("clear").is_empty());
}

#[test]
fn a_greeting_that_must_play_through_ignores_speech_then_later_answers_are_interruptible() {
    let mut p = Pair::live(CallConfig { greeting_interruptible: false, ..config() });
    assert_eq!(p.call.stats().barge_ins, 0);
    p.response_created("resp_g");
    p.delta("resp_g", "item_g", &tone_b64(300));
    p.openai.clear();
    p.twilio.clear();
    p.speech_started();
    assert!(p.twilio.got.is_empty() && p.openai.got.is_empty(), "the greeting plays through");
    p.delta("resp_g", "item_g", &tone_b64(100));
    assert_eq!(p.twilio.of("media").len(), 1, "and is not dropped");
    p.response_done("resp_g", "completed");
    p.echo_mark("r1-c2-400");
    p.response_created("resp_2");
    p.delta("resp_2", "item_b", &tone_b64(300));
    p.twilio.clear();
    p.speech_started();
    assert_eq!(p.twilio_events(), ["clear"]);
    assert_eq!(p.openai_types(), ["conversation.item.truncate", "response.cancel"]);
}

#[test]
fn a_greeting_that_must_play_through_turns_off_server_interruption() {
    let p = Pair::new(CallConfig { greeting_interruptible: false, ..config() });
    assert_eq!(p.openai.got[0]["session"]["audio"]["input"]["turn_detection"]["interrupt_response"], false);
    let p = Pair::new(config());
    assert_eq!(p.openai.got[0]["session"]["audio"]["input"]["turn_detection"]["interrupt_response"], true);
}

#[test]
fn without_server_vad_the_callers_first_loud_chunk_barges_in() {
    let mut p = speaking(CallConfig { turn_detection: TurnTaking::Off, ..config() }, 3);
    p.caller_audio(&silence_b64(20));
    assert!(p.twilio.got.is_empty(), "silence does not interrupt");
    p.echo_mark("r1-c1-100");
    p.caller_audio(&tone_b64(20));
    assert_eq!(p.twilio_events(), ["clear"]);
    let truncate = p.openai.of("conversation.item.truncate");
    assert_eq!(truncate[0]["audio_end_ms"], 100);
    assert_eq!(p.openai.of("response.cancel").len(), 1);
}

#[test]
fn a_barge_in_drops_both_the_response_playing_and_the_one_active() {
    // Found by the call_state_machine fuzz target: audio of a response other than the active
    // one was playing; after the clear, its later deltas still went out.
    let mut p = Pair::live(CallConfig { turn_detection: TurnTaking::Off, ..config() });
    p.response_created("resp_a");
    p.delta("resp_b", "item_b", &tone_b64(200));
    p.caller_audio(&tone_b64(20));
    assert_eq!(p.twilio_events().last().map(String::as_str), Some("clear"));
    p.twilio.clear();
    p.delta("resp_b", "item_b", &tone_b64(100));
    p.delta("resp_a", "item_a", &tone_b64(100));
    assert!(p.twilio.of("media").is_empty(), "nothing of either interrupted response plays");
}
