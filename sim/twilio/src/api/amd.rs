//! Answering-machine detection (AMD), as Twilio runs it on an outbound call created with
//! `MachineDetection=Enable|DetectMessageEnd`: the result is `AnsweredBy`, one of `human`,
//! `machine_start` (with `Enable` only), `machine_end_beep`, `machine_end_silence`,
//! `machine_end_other` (with `DetectMessageEnd` only), `fax` or `unknown`.
//!
//! - Asynchronous (`AsyncAmd=true`): the TwiML runs at once; when detection ends Twilio sends
//!   `AsyncAmdStatusCallback` (method `AsyncAmdStatusCallbackMethod`, POST by default), signed
//!   like every callback, with `AccountSid`, `CallSid`, `AnsweredBy` and
//!   `MachineDetectionDuration` (milliseconds).
//! - Synchronous (the default): the TwiML waits for the result.
//!
//! What answers is chosen per number by the simulator's script ([`super::ApiConfig::amd`]);
//! a number without a script is a person. The default timings follow Twilio's documentation:
//! a person is recognised in a few seconds; with `DetectMessageEnd` a machine is reported when
//! its greeting ends (a beep or silence after a typical 10 s greeting); `Enable` reports
//! `machine_start` as soon as the greeting is recognised; `unknown` comes at
//! `MachineDetectionTimeout` (default 30 s).

use std::time::Duration;

use serde::Serialize;

/// Who or what answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    /// A person.
    Human,
    /// A machine's greeting started (`MachineDetection=Enable`).
    MachineStart,
    /// A machine's greeting ended with a beep (`DetectMessageEnd`).
    MachineEndBeep,
    /// A machine's greeting ended with silence (`DetectMessageEnd`).
    MachineEndSilence,
    /// A machine's greeting ended some other way (`DetectMessageEnd`).
    MachineEndOther,
    /// A fax machine.
    Fax,
    /// Nothing could be decided before `MachineDetectionTimeout`.
    Unknown,
}

impl AnsweredBy {
    /// Twilio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::MachineStart => "machine_start",
            AnsweredBy::MachineEndBeep => "machine_end_beep",
            AnsweredBy::MachineEndSilence => "machine_end_silence",
            AnsweredBy::MachineEndOther => "machine_end_other",
            AnsweredBy::Fax => "fax",
            AnsweredBy::Unknown => "unknown",
        }
    }

    fn is_machine(self) -> bool {
        matches!(
            self,
            AnsweredBy::MachineStart
                | AnsweredBy::MachineEndBeep
                | AnsweredBy::MachineEndSilence
                | AnsweredBy::MachineEndOther
        )
    }
}

impl std::str::FromStr for AnsweredBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "human" => AnsweredBy::Human,
            "machine_start" => AnsweredBy::MachineStart,
            "machine_end_beep" => AnsweredBy::MachineEndBeep,
            "machine_end_silence" => AnsweredBy::MachineEndSilence,
            "machine_end_other" => AnsweredBy::MachineEndOther,
            "fax" => AnsweredBy::Fax,
            "unknown" => AnsweredBy::Unknown,
            other => {
                return Err(format!(
                    "{other:?} is not an AnsweredBy: human, machine_start, machine_end_beep, machine_end_silence, machine_end_other, fax or unknown"
                ));
            }
        })
    }
}

/// What answers one number, and after how long detection decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdScript {
    /// Who answers.
    pub answered_by: AnsweredBy,
    /// Time from the answer to the result; `None` = the realistic default ([`AmdScript::timing`]).
    pub after: Option<Duration>,
}

impl AmdScript {
    /// `answered_by` with the default timing.
    pub fn new(answered_by: AnsweredBy) -> Self {
        Self { answered_by, after: None }
    }

    /// `answered_by`, decided `after` the answer.
    pub fn after(answered_by: AnsweredBy, after: Duration) -> Self {
        Self { answered_by, after: Some(after) }
    }

    /// What detection reports under `mode` (`Enable` or `DetectMessageEnd`) and when: a
    /// machine is `machine_start` under `Enable`, `machine_end_*` under `DetectMessageEnd`.
    pub fn result(&self, mode: &str, timeout: Duration) -> (AnsweredBy, Duration) {
        let detect_end = mode == "DetectMessageEnd";
        let by = match self.answered_by {
            b if b.is_machine() && !detect_end => AnsweredBy::MachineStart,
            AnsweredBy::MachineStart if detect_end => AnsweredBy::MachineEndBeep,
            b => b,
        };
        (by, self.after.unwrap_or_else(|| Self::timing(by, timeout)).min(timeout))
    }

    /// Default time to a result: a person about 2.5 s after answering; a fax about 3 s; a
    /// machine's greeting recognised after about 4 s, its end (a 10 s greeting, then the beep
    /// or 2.5 s of silence) 11 or 13 s after the answer; `unknown` at the timeout.
    pub fn timing(by: AnsweredBy, timeout: Duration) -> Duration {
        match by {
            AnsweredBy::Human => Duration::from_millis(2_500),
            AnsweredBy::Fax => Duration::from_millis(3_000),
            AnsweredBy::MachineStart => Duration::from_millis(4_000),
            AnsweredBy::MachineEndBeep | AnsweredBy::MachineEndOther => Duration::from_millis(11_000),
            AnsweredBy::MachineEndSilence => Duration::from_millis(13_000),
            AnsweredBy::Unknown => timeout,
        }
    }
}

/// The AMD part of a create-call request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmdRequest {
    /// `MachineDetection`: `Enable` or `DetectMessageEnd`.
    pub mode: String,
    /// `AsyncAmd=true`.
    pub asynchronous: bool,
    /// `AsyncAmdStatusCallback`.
    pub callback: Option<String>,
    /// `AsyncAmdStatusCallbackMethod` (`POST` default).
    pub callback_method: String,
    /// `MachineDetectionTimeout` (default 30 s, 3 to 59).
    pub timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_is_reported_by_the_mode_asked_for_with_realistic_timing() {
        let t = Duration::from_secs(30);
        let beep = AmdScript::new(AnsweredBy::MachineEndBeep);
        assert_eq!(beep.result("DetectMessageEnd", t), (AnsweredBy::MachineEndBeep, Duration::from_secs(11)));
        assert_eq!(beep.result("Enable", t), (AnsweredBy::MachineStart, Duration::from_secs(4)));
        assert_eq!(AmdScript::new(AnsweredBy::Unknown).result("DetectMessageEnd", t).1, t);
        let quick = AmdScript::after(AnsweredBy::Fax, Duration::from_millis(200));
        assert_eq!(quick.result("DetectMessageEnd", t), (AnsweredBy::Fax, Duration::from_millis(200)));
        let short = Duration::from_secs(5);
        assert_eq!(AmdScript::new(AnsweredBy::MachineEndSilence).result("DetectMessageEnd", short).1, short);
        assert_eq!("machine_end_silence".parse(), Ok(AnsweredBy::MachineEndSilence));
        assert!("robot".parse::<AnsweredBy>().is_err());
    }
}
