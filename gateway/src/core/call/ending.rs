//! How a call ends: `end_call` drains (the goodbye plays, then the shell hangs up), every
//! other reason closes both sides at once with the right close code and reports the end.

use super::*;

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
            goodbye_deadline: now + self.cfg.goodbye_timeout,
            drain_deadline: None,
        });
        if reason == CloseReason::AgentEndedCall {
            self.check_goodbye(now);
        } else {
            self.emit_hang_up(now);
        }
    }

    /// Hangs up once the goodbye has been fully generated and played.
    pub(super) fn check_goodbye(&mut self, now: Instant) {
        let waiting = self.ending.as_ref().is_some_and(|e| e.drain_deadline.is_none());
        if waiting && !self.responses.active && !self.play.unplayed() && self.agent_hold.is_empty() {
            self.emit_hang_up(now);
        }
    }

    pub(super) fn emit_hang_up(&mut self, now: Instant) {
        let drain = now + self.cfg.drain_timeout;
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

    /// Ends the call: close frames to both sides, the end reported, [`Event::Closed`].
    pub(super) fn close(&mut self, reason: CloseReason, now: Instant) {
        if self.is_closed() {
            return;
        }
        let code = match reason {
            CloseReason::TwilioProtocol { code } => code,
            CloseReason::Shutdown => close_code::GOING_AWAY,
            _ => close_code::NORMAL,
        };
        if !self.twilio_close_sent {
            self.send_twilio(|enc, out| enc.close(out, code, reason.code()));
            self.twilio_close_sent = true;
        }
        if matches!(self.up, Upstream::Open) && !self.openai_close_sent {
            let code =
                if reason == CloseReason::Shutdown { close_code::GOING_AWAY } else { close_code::NORMAL };
            self.send_openai(|enc, out| enc.close(out, code, ""));
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
