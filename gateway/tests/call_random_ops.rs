//! Seeded random operation sequences against a call (both peers scripted, fake clock), checking
//! the invariants every scripted test relies on, whatever the order of events:
//! - nothing but WebSocket control frames reaches Twilio before `start`;
//! - every event sent to OpenAI is valid against the GA schema (checked by the harness);
//! - `conversation.item.truncate` never goes beyond the audio OpenAI generated for the item;
//! - `response.cancel` only while a response is active; never a second `response.create`
//!   while one is in flight;
//! - after `Closed`, nothing more is sent and no timer is left;
//! - the pair always settles (no livelock) and nothing panics.
//!
//! `OPS_TRACE=1` prints each step's operation (to replay a failing seed).

mod call_support;

use std::collections::HashMap;
use std::time::Duration;

use call_support::{Pair, config, silence_b64, tone_b64};
use callway_gateway::core::call::{CallConfig, CallState, Eagerness, TurnTaking};
use callway_gateway::core::ws::{Control, OpCode};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the scripted OpenAI knows.
#[derive(Default)]
struct Model {
    response_seq: u32,
    active: Option<String>,
    item: String,
    generated_ms: HashMap<String, u64>,
    create_outstanding: bool,
    seen_openai: usize,
    tool_calls: Vec<String>,
}

fn run(seed: u64, ops: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let cfg = CallConfig {
        turn_detection: match rng.below(3) {
            0 => TurnTaking::Off,
            1 => TurnTaking::SemanticVad { eagerness: Eagerness::Auto },
            _ => TurnTaking::ServerVad,
        },
        greeting_interruptible: rng.below(3) != 0,
        media_timeout: Duration::from_secs(30),
        ..config()
    };
    let mut p = Pair::new(cfg);
    // The setup sent session.update; the greeting's response.create waits for Twilio's start.
    let mut m = Model { seen_openai: p.openai.got.len(), ..Model::default() };
    let mut started = false;
    let mut closed_at: Option<(usize, usize)> = None;
    for step in 0..ops {
        let op = rng.below(100);
        if std::env::var("OPS_TRACE").is_ok() {
            eprintln!("step {step} op {op}");
        }
        match op {
            0..=24 => {
                let b64 = if rng.below(2) == 0 { tone_b64(20) } else { silence_b64(20) };
                p.caller_audio(&b64);
            }
            25..=27 => {
                if !started {
                    p.twilio_start();
                    started = true;
                }
            }
            28..=32 => {
                if m.active.is_none() {
                    m.response_seq += 1;
                    let id = format!("resp_{}", m.response_seq);
                    m.item = format!("item_{}", m.response_seq);
                    p.response_created(&id);
                    m.active = Some(id);
                }
            }
            33..=49 => {
                if let Some(id) = m.active.clone() {
                    let ms = 20 * (1 + rng.below(15)) as usize;
                    *m.generated_ms.entry(m.item.clone()).or_default() += ms as u64;
                    let item = m.item.clone();
                    p.delta(&id, &item, &tone_b64(ms));
                }
            }
            50..=55 => {
                if let Some(id) = m.active.take() {
                    p.response_done(&id, if rng.below(4) == 0 { "cancelled" } else { "completed" });
                    m.create_outstanding = false;
                }
            }
            56..=67 => {
                let marks = p.marks();
                if !marks.is_empty() {
                    let name = marks[rng.below(marks.len() as u64) as usize].clone();
                    p.echo_mark(&name);
                }
            }
            68..=73 => {
                let server_cancels = p.server.interrupts();
                p.speech_started();
                // With interrupt_response the real server cancels the response itself and
                // says so with response.done.
                if server_cancels && let Some(id) = m.active.take() {
                    p.response_done(&id, "cancelled");
                    m.create_outstanding = false;
                }
            }
            74..=76 => {
                let id = format!("call_{step}");
                let name = ["save_lead", "save_lead", "end_call", "other"][rng.below(4) as usize];
                p.function_call(&id, name, r#"{"first_name":null,"last_name":null,"phone":null}"#);
                m.tool_calls.push(id);
            }
            77..=79 => {
                if !m.tool_calls.is_empty() {
                    let id = m.tool_calls.remove(rng.below(m.tool_calls.len() as u64) as usize);
                    let now = p.now;
                    p.call.tool_result(&id, rng.below(3) != 0, r#"{"ok":true}"#, now);
                    p.drive();
                }
            }
            80..=81 => p.twilio_send(&format!(
                r#"{{"event":"dtmf","streamSid":"{}","sequenceNumber":"5","dtmf":{{"track":"inbound_track","digit":"{}"}}}}"#,
                call_support::STREAM_SID,
                rng.below(10)
            )),
            82..=91 => p.advance(Duration::from_millis(rng.below(3000))),
            92 => {
                p.drop_openai();
                m.active = None;
                m.create_outstanding = false;
            }
            93..=94 => {
                p.twilio_control(OpCode::Control(Control::Ping), b"t");
                p.openai_control(OpCode::Control(Control::Ping), b"o");
            }
            95 => {
                if rng.below(4) == 0 {
                    p.twilio_stop();
                }
            }
            _ => p.advance(Duration::from_millis(20)),
        }
        if !started {
            assert!(p.twilio.got.is_empty(), "seed {seed} step {step}: sent to Twilio before start");
        }
        // What the call sent OpenAI since the last step; the real server answers a cancel
        // with the response's response.done, whose consequences are checked the same way.
        while check_sent(&mut p, &mut m, seed, step) {}
        if let CallState::Closed(_) = p.call.state() {
            match closed_at {
                None => closed_at = Some((p.twilio.got.len(), p.openai.got.len())),
                Some(sent) => assert_eq!(
                    sent,
                    (p.twilio.got.len(), p.openai.got.len()),
                    "seed {seed} step {step}: sent after the end"
                ),
            }
            assert_eq!(p.call.poll_timeout(), None);
        }
    }
}

/// Checks what the call sent OpenAI since the last look. Returns true if it answered a
/// `response.cancel` (as the real server does, with `response.done`): check again.
fn check_sent(p: &mut Pair, m: &mut Model, seed: u64, step: usize) -> bool {
    for msg in &p.openai.got[m.seen_openai..] {
        if std::env::var("OPS_TRACE").is_ok() {
            eprintln!("  sent {}", msg["type"]);
        }
        match msg["type"].as_str().unwrap() {
            "conversation.item.truncate" => {
                let item = msg["item_id"].as_str().unwrap();
                let at = msg["audio_end_ms"].as_u64().unwrap();
                let generated = m.generated_ms.get(item).copied().unwrap_or(0);
                assert!(at <= generated, "seed {seed} step {step}: truncate {item} at {at} > {generated}");
            }
            "response.cancel" => {
                assert!(m.active.is_some(), "seed {seed} step {step}: cancel with nothing active")
            }
            "response.create" => {
                assert!(
                    !m.create_outstanding && m.active.is_none(),
                    "seed {seed} step {step}: response.create while one is in flight"
                );
                m.create_outstanding = true;
            }
            "session.update" => {
                // A new connection: nothing is active on it.
                m.active = None;
                m.create_outstanding = false;
            }
            _ => {}
        }
    }
    let cancelled = p.openai.got[m.seen_openai..].iter().any(|e| e["type"] == "response.cancel");
    m.seen_openai = p.openai.got.len();
    if cancelled && let Some(id) = m.active.take() {
        p.response_done(&id, "cancelled");
        m.create_outstanding = false;
        return true;
    }
    false
}

#[test]
fn random_operation_sequences_keep_the_call_invariants() {
    for seed in 1..=60 {
        run(seed, 250);
    }
}

#[test]
#[ignore = "debugging aid: OPS_SEED=n OPS_TRACE=1 cargo test --test call_random_ops -- --ignored one_seed"]
fn one_seed() {
    let seed = std::env::var("OPS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    run(seed, 250);
}
