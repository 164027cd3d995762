//! Answering-machine detection, the gateway's part (`contract::internal_api`, "what the
//! gateway must do"): the greeting is held while Twilio decides who answered.
//!
//! With [`CallConfig::amd_hold`] set, a new call asks the control plane once
//! ([`Event::AskAmd`], a long poll of at most that long) and holds the agent's first words:
//! - **Realtime**: the session is configured as usual but its turn detection does not create
//!   responses (`create_response: false`) and the gateway's own turn taking commits without
//!   asking for one; the caller's audio is relayed, so « Allô ? » is in the conversation when
//!   the greeting comes.
//! - **GPT-Live**: `session.start` waits (a Live session is billed from its start and the
//!   model speaks when it wants); the caller's audio waits in the hold ring and goes out first
//!   once the session has started.
//!
//! [`Call::amd_result`] then releases the greeting (a person, `unknown`, no detection on this
//! call, or no answer in time), or keeps the agent silent for good (a machine or a fax: the
//! control plane has Twilio play the voicemail message or hang up, which ends the stream). The
//! gateway's own limit ([`CallConfig::amd_hold`] from the call's start, a timer) releases the
//! greeting whatever the control plane does, so a person never waits longer than that.

use super::*;

/// What the control plane said about who answered (its [`contract::internal_api::AmdStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdOutcome {
    /// Detection does not run on this call: greet at once.
    NotRunning,
    /// A person (`human`), or detection could not tell (`unknown`): greet.
    Person,
    /// A machine (`machine_*`) or a fax: never greet; Twilio ends the stream.
    Machine,
    /// No result within the wait, or the control plane could not be asked: greet (a late
    /// machine result still ends the call through Twilio).
    Undecided,
}

impl AmdOutcome {
    /// From the control plane's answer: `detection` and Twilio's `AnsweredBy`.
    pub fn from_status(detection: bool, answered_by: Option<&str>) -> Self {
        match (detection, answered_by) {
            (false, _) => AmdOutcome::NotRunning,
            (true, None) => AmdOutcome::Undecided,
            (true, Some(a)) if a.starts_with("machine") || a == "fax" => AmdOutcome::Machine,
            (true, Some(_)) => AmdOutcome::Person,
        }
    }

    /// For logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AmdOutcome::NotRunning => "not_running",
            AmdOutcome::Person => "person",
            AmdOutcome::Machine => "machine",
            AmdOutcome::Undecided => "undecided",
        }
    }
}

/// Where the greeting stands with respect to detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AmdGate {
    /// Not held (no detection asked for, or released).
    Open,
    /// Held until the control plane answers, or until this time at the latest.
    Holding { until: Instant },
    /// A machine answered: the agent stays silent until Twilio ends the stream.
    Machine,
}

impl AmdGate {
    /// For a new call: held when detection is to be asked about.
    pub(super) fn new(cfg: &CallConfig, now: Instant) -> Self {
        if cfg.amd_hold.is_zero() { AmdGate::Open } else { AmdGate::Holding { until: now + cfg.amd_hold } }
    }
}

impl Core {
    /// Whether the agent must not speak yet (or ever, after a machine).
    #[inline]
    pub(super) fn amd_held(&self) -> bool {
        !matches!(self.amd, AmdGate::Open)
    }

    /// The control plane answered (or could not be asked).
    pub(super) fn on_amd_outcome(&mut self, outcome: AmdOutcome, now: Instant) {
        if !matches!(self.amd, AmdGate::Holding { .. }) || self.is_closed() {
            // Released by the gateway's limit already: a late result is the control plane's
            // (it ends the call through Twilio on a machine).
            return;
        }
        match outcome {
            AmdOutcome::Machine => {
                self.amd = AmdGate::Machine;
                // The caller side is a recording from now on: the audio held for a session that
                // will never start is of no use.
                self.hold.clear();
            }
            AmdOutcome::NotRunning | AmdOutcome::Person | AmdOutcome::Undecided => {
                self.release_greeting(now);
            }
        }
    }

    /// The hold is over: the session may answer and the agent greets.
    pub(super) fn release_greeting(&mut self, now: Instant) {
        if !matches!(self.amd, AmdGate::Holding { .. }) {
            return;
        }
        self.amd = AmdGate::Open;
        if self.is_live() {
            if !self.stream_sid.is_empty() || self.cfg.live_start_at_upgrade {
                self.send_live_start(now);
            }
        } else if matches!(self.up, Upstream::Open) && self.cfg.turn_detection.by_server() {
            // Turn detection may create responses again.
            self.write_realtime_session();
        }
        self.greet_if_ready();
    }

    /// The gateway's own limit: greet even without an answer.
    pub(super) fn amd_hold_expired(&mut self, now: Instant) {
        self.release_greeting(now);
    }
}
