//! How a call ends: `end_call` drains (the goodbye plays, then the shell hangs up), a warm
//! transfer likewise (the announcement plays, then the shell runs `transfer_to_human`; a refused
//! transfer resumes the conversation), every other reason closes both sides at once with the right close code and reports the end (on
//! GPT-Live after the session's own close, `live.rs`).

use super::*;
use crate::core::live as live_proto;

impl Core {
    pub(super) fn begin_ending(&mut self, reason: CloseReason, tool: Option<(String, String)>, now: Instant) {
        if self.ending.is_some() || self.is_closed() {
            return;
        }
        self.state = CallState::Draining;
        let (tool_call_id, arguments) = tool.unzip();
        self.ending = Some(Ending {
            reason,
            tool_call_id,
            arguments,
            handed_over: false,
            began: now,
            goodbye_deadline: now + self.cfg.goodbye_timeout,
            drain_deadline: None,
        });
        if matches!(reason, CloseReason::AgentEndedCall | CloseReason::Transferred) {
            // The goodbye, or the transfer's announcement, plays first.
            self.check_goodbye(now);
        } else {
            self.emit_hang_up(now);
        }
    }

    /// Hangs up once the goodbye has been fully generated and played.
    pub(super) fn check_goodbye(&mut self, now: Instant) {
        let Some(ending) = self.ending.as_ref().filter(|e| e.drain_deadline.is_none()) else { return };
        // On GPT-Live nothing says the goodbye is over but the audio going quiet.
        let quiet = !self.is_live() || now >= self.live_goodbye_at(ending.began);
        if quiet && !self.responses.active && !self.play.unplayed() && self.agent_hold.is_empty() {
            self.emit_hang_up(now);
        }
    }

    pub(super) fn emit_hang_up(&mut self, now: Instant) {
        let drain = now + self.cfg.drain_timeout;
        if let Some(e) = self.ending.as_mut()
            && e.drain_deadline.is_none()
            && e.reason == CloseReason::Transferred
        {
            // The announcement has played: the control plane moves the call (the shell's
            // tool request is bounded; its answer sets the drain, or resumes the call).
            e.drain_deadline = Some(now + self.cfg.transfer_timeout);
            self.events.push_back(Event::ToolCall {
                call_id: e.tool_call_id.clone().unwrap_or_default(),
                name: TRANSFER.to_owned(),
                arguments: e.arguments.take().unwrap_or_default(),
            });
            return;
        }
        if let Some(e) = self.ending.as_mut()
            && e.drain_deadline.is_none()
        {
            e.drain_deadline = Some(drain);
            self.events.push_back(Event::HangUp {
                tool_call_id: e.tool_call_id.take(),
                arguments: e.arguments.take(),
            });
        }
    }

    /// The control plane answered the transfer: handed over (Twilio's `stop` comes next; the
    /// drain bounds the wait), or not, and the conversation goes on with the model told why.
    /// Whether `call_id` was the transfer's.
    pub(super) fn on_transfer_result(&mut self, call_id: &str, ok: bool, output: &str, now: Instant) -> bool {
        let Some(e) = self.ending.as_mut().filter(|e| {
            e.reason == CloseReason::Transferred
                && e.drain_deadline.is_some()
                && !e.handed_over
                && e.tool_call_id.as_deref() == Some(call_id)
        }) else {
            return false;
        };
        if ok {
            e.handed_over = true;
            e.drain_deadline = Some(now + self.cfg.drain_timeout);
            self.stats.transfers += 1;
            return true;
        }
        self.ending = None;
        self.state = CallState::Live;
        self.stats.transfers_refused += 1;
        if self.is_live() {
            // Its function call was answered when it came; the model hears why it failed.
            let note = format!("{} {output}", self.cfg.transfer_failed_instructions);
            self.send_openai_json(|w| {
                live_proto::write_text(w, live_proto::TextKind::Commentary, &note, None)
            });
        } else if self.send_openai_json(|w| openai::write_function_output(w, call_id, output)) {
            self.request_response(Reply::ToolFailed);
        }
        true
    }

    /// Ends the call: close frames to both sides, the end reported, [`Event::Closed`]. On
    /// GPT-Live the session is closed first (`session.close`, a bounded wait for
    /// `session.closed`): the call is over for Twilio at once, for OpenAI when it confirms.
    pub(super) fn close(&mut self, reason: CloseReason, now: Instant) {
        if self.is_closed() || self.live.closing.is_some() {
            return;
        }
        if self.is_live() && self.begin_live_close(reason, now) {
            return;
        }
        self.close_now(reason, now);
    }

    /// Closes both sides now.
    pub(super) fn close_now(&mut self, reason: CloseReason, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self.is_live() {
            self.flush_live_turns(now);
        }
        if !self.twilio_close_sent {
            let code = twilio_close_code(reason);
            self.send_twilio(|enc, out| enc.close(out, code, reason.code()));
            self.twilio_close_sent = true;
        }
        if matches!(self.up, Upstream::Open | Upstream::Starting { .. }) && !self.openai_close_sent {
            let code =
                if reason == CloseReason::Shutdown { close_code::GOING_AWAY } else { close_code::NORMAL };
            self.send_openai_any(|enc, out| enc.close(out, code, ""));
            self.openai_close_sent = true;
        }
        self.up = Upstream::Down;
        self.hold.clear();
        self.agent_hold.clear();
        self.tools.clear();
        self.state = CallState::Closed(reason);
        self.events.push_back(Event::Report(CallEvent::Ended {
            side: reason.side(),
            reason: reason.code().to_owned(),
            duration_ms: self.since_start_ms(now),
        }));
        self.events.push_back(Event::Closed { reason });
    }
}

/// The close code Twilio gets for `reason`.
pub(super) fn twilio_close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::TwilioProtocol { code } => code,
        CloseReason::Shutdown => close_code::GOING_AWAY,
        _ => close_code::NORMAL,
    }
}
