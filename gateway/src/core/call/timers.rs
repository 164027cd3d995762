//! The call's one timer: the earliest of its deadlines (no `start`, no media, max length,
//! OpenAI keep-alive and silence, reconnect backoff, the answering-machine hold, slow tools, goodbye, drain, GPT-Live's
//! quiet goodbye and close wait), and what
//! each does when it fires.

use super::*;

impl Core {
    pub(super) fn next_timer(&self) -> Option<(Instant, Timer)> {
        if self.is_closed() {
            return None;
        }
        if let Some((_, until)) = self.live.closing {
            // Over for Twilio: only the wait for `session.closed` is left.
            return Some((until, Timer::LiveCloseWait));
        }
        let mut best: Option<(Instant, Timer)> = None;
        let mut consider = |at: Instant, timer: Timer| {
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, timer));
            }
        };
        if self.stream_sid.is_empty() {
            consider(self.created + self.cfg.start_timeout, Timer::NoStart);
        } else {
            consider(self.last_media + self.cfg.media_timeout, Timer::NoMedia);
        }
        if self.ending.is_none() {
            consider(self.created + self.cfg.max_call, Timer::MaxCall);
        }
        if let AmdGate::Holding { until } = self.amd {
            consider(until, Timer::AmdHold);
        }
        let silence = self.cfg.openai_silence_timeout;
        match &self.up {
            Upstream::Connecting { since }
            | Upstream::Handshaking { since, .. }
            | Upstream::Starting { since, .. } => {
                consider(*since + silence, Timer::OpenAiSilent);
            }
            Upstream::Open => {
                if !self.ping_outstanding {
                    consider(self.last_upstream_rx + self.cfg.openai_ping_after, Timer::OpenAiPing);
                }
                consider(self.last_upstream_rx + silence, Timer::OpenAiSilent);
            }
            Upstream::Backoff { until } => consider(*until, Timer::Reconnect),
            Upstream::Down => {}
        }
        for (i, tool) in self.tools.iter().enumerate() {
            if !tool.fallback_sent {
                consider(tool.deadline, Timer::Tool(i));
            }
        }
        if let Some(e) = &self.ending {
            match e.drain_deadline {
                None if self.is_live() => {
                    consider(e.goodbye_deadline, Timer::Goodbye);
                    // The goodbye is over when the agent's audio has gone quiet (checked once per
                    // quiet time: later voiced audio moves it).
                    let at = self.live_goodbye_at(e.began);
                    if self.live.goodbye_checked != Some(at) {
                        consider(at, Timer::LiveQuiet);
                    }
                }
                None => consider(e.goodbye_deadline, Timer::Goodbye),
                Some(at) => consider(at, Timer::Drain),
            }
        }
        best
    }

    pub(super) fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::NoStart => self.close(CloseReason::NoStart, now),
            Timer::NoMedia => self.close(CloseReason::TwilioSilent, now),
            Timer::MaxCall => self.begin_ending(CloseReason::MaxDuration, None, now),
            Timer::OpenAiPing => {
                self.ping_outstanding = true;
                self.send_openai(|enc, out| enc.ping(out, PING_PAYLOAD));
            }
            Timer::OpenAiSilent => {
                if matches!(self.up, Upstream::Open) && !self.openai_close_sent {
                    self.send_openai(|enc, out| enc.close(out, close_code::GOING_AWAY, ""));
                    self.openai_close_sent = true;
                }
                self.upstream_lost(CloseReason::OpenAiSilent, now);
            }
            Timer::Tool(i) => {
                self.tools[i].fallback_sent = true;
                self.stats.tool_fallbacks += 1;
                self.request_response(Reply::ToolSlow);
            }
            Timer::Reconnect => {
                self.up = Upstream::Connecting { since: now };
                self.events.push_back(Event::OpenUpstream);
            }
            Timer::Goodbye => self.emit_hang_up(now),
            Timer::LiveQuiet => {
                // If Twilio has not played everything yet, its marks decide (check_goodbye on
                // each), the goodbye deadline bounding the wait.
                self.live.goodbye_checked = self.ending.as_ref().map(|e| self.live_goodbye_at(e.began));
                self.check_goodbye(now);
            }
            Timer::LiveCloseWait => self.finish_live_close(now),
            Timer::AmdHold => self.amd_hold_expired(now),
            Timer::Drain => {
                let reason = self.ending.as_ref().map_or(CloseReason::Shutdown, |e| e.reason);
                self.close(reason, now);
            }
        }
    }
}
