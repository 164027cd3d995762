//! What a soak counts beside the load generator's frame counts: the faults it injected, the
//! stand-in's scripted turns, the OpenAI-style errors it answered (real-server rules), and
//! how the frames that never came back were settled ([`super::ledger`]).

use serde::Serialize;

use super::checks::CheckCounts;

/// `error` events the stand-in sent, by code (each one the real server would have sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// `response.cancel` with no active response.
    pub response_cancel_not_active: u64,
    /// `response.create` while a response is active.
    pub conversation_already_has_active_response: u64,
    /// `conversation.item.truncate` beyond the audio the item holds (`invalid_value`).
    pub truncate_beyond_item_audio: u64,
    /// `conversation.item.truncate` of an item the session does not have.
    pub item_truncate_invalid_item_id: u64,
}

impl ErrorCounts {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.response_cancel_not_active
            + self.conversation_already_has_active_response
            + self.truncate_beyond_item_audio
            + self.item_truncate_invalid_item_id
    }
}

/// A soak's own counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SoakCounts {
    /// Calls started (the first wave and every replacement).
    pub calls_started: u64,
    /// Calls hung up by the caller at a random time.
    pub hang_ups: u64,
    /// OpenAI sessions the stand-in reset.
    pub openai_drops: u64,
    /// Frames in flight at a hang-up that never came back.
    pub cut_by_hangup: u64,
    /// Frames in flight at an OpenAI drop (until the relay recovered) that never came back.
    pub cut_by_openai_drop: u64,
    /// Barge-ins the stand-in started (`speech_started` during agent audio).
    pub barge_ins: u64,
    /// Tool calls the stand-in made (`response.function_call_arguments.done`).
    pub tool_calls: u64,
    /// `function_call_output` items naming the pending call.
    pub tool_outputs: u64,
    /// `function_call_output` items naming no pending call (must be 0).
    pub tool_outputs_unknown: u64,
    /// `function_call_output` items without the stub control plane's `"saved":true` (must be 0).
    pub tool_outputs_not_saved: u64,
    /// Responses the stand-in created.
    pub responses: u64,
    /// `response.cancel`s that found a response to cancel.
    pub client_cancels: u64,
    /// Caller audio the stand-in could not keep while waiting for a response (bytes; must be 0).
    pub queue_overflow_bytes: u64,
    /// Replacement calls not started because every prepared identity was used.
    pub identities_exhausted: u64,
    /// `error` events sent, by code.
    pub errors: ErrorCounts,
    /// The cross-leg checks.
    pub checks: CheckCounts,
}
