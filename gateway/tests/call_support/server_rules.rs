//! The rules the real Realtime server applies to what a client sends, for the checks the
//! schema cannot make (protocols.md C3, F): a `response.cancel` that finds no active response
//! gets `response_cancel_not_active`; a `conversation.item.truncate` past the audio an item
//! holds gets an invalid `audio_end_ms` error; with turn detection on and `interrupt_response`
//! true, the server cancels the active response itself on `speech_started`. Every test of the
//! call runs under these rules: the harness fails a test at the first event the real server
//! would have answered with an error.

use std::collections::HashMap;

use serde_json::Value;

/// What the server knows of the session and its responses.
#[derive(Debug, Default)]
pub struct ServerRules {
    /// Turn detection is on (server or semantic VAD).
    turn_detection: bool,
    /// `interrupt_response` of the session's turn detection.
    interrupt_response: bool,
    /// The response in progress, if any.
    active: Option<String>,
    /// Milliseconds of audio each assistant item holds.
    item_ms: HashMap<String, u64>,
}

impl ServerRules {
    /// A new connection: a new session, nothing active, no items.
    pub fn new_connection(&mut self) {
        *self = ServerRules::default();
    }

    /// Whether the server cancels the active response itself on `speech_started`.
    pub fn interrupts(&self) -> bool {
        self.turn_detection && self.interrupt_response
    }

    /// The server sent `response.created`.
    pub fn created(&mut self, id: &str) {
        self.active = Some(id.to_owned());
    }

    /// The server sent `response.done`.
    pub fn done(&mut self, id: &str) {
        if self.active.as_deref() == Some(id) {
            self.active = None;
        }
    }

    /// The server sent an audio delta of `bytes` μ-law bytes for `item`.
    pub fn audio(&mut self, item: &str, bytes: usize) {
        *self.item_ms.entry(item.to_owned()).or_default() += bytes as u64 / 8;
    }

    /// The server detected speech: with `interrupt_response` it cancels the active response.
    pub fn speech_started(&mut self) {
        if self.turn_detection && self.interrupt_response {
            self.active = None;
        }
    }

    /// A client event the call sent; `Err` with the real server's error code when it would
    /// refuse it.
    pub fn check(&mut self, event: &Value) -> Result<(), String> {
        match event["type"].as_str() {
            Some("session.update") => {
                if let Some(td) = event["session"]["audio"]["input"].get("turn_detection") {
                    self.turn_detection = !td.is_null();
                    self.interrupt_response = td["interrupt_response"].as_bool().unwrap_or(true);
                }
                Ok(())
            }
            Some("response.cancel") => match self.active.take() {
                Some(_) => Ok(()),
                None => Err("response_cancel_not_active: no active response to cancel".into()),
            },
            Some("conversation.item.truncate") => {
                let item = event["item_id"].as_str().unwrap_or_default();
                let end = event["audio_end_ms"].as_u64().unwrap_or(u64::MAX);
                match self.item_ms.get(item) {
                    None => Err(format!("item_truncate_invalid_item_id: no audio item {item}")),
                    Some(&ms) if end > ms => Err(format!(
                        "invalid_value: audio_end_ms {end} is beyond the {ms} ms of audio in {item}"
                    )),
                    Some(_) => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}
