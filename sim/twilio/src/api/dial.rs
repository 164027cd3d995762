//! `<Dial>`: the call is bridged to another party (a `<Number>` or a `<Sip>` URI), as a warm
//! transfer does. What the dialled party does is scripted per address
//! ([`super::ApiConfig::dial`], [`super::ApiHandle::set_dial`]); an address without a script
//! answers after the ring delay and talks for a second.
//!
//! When the dialled call ends Twilio requests `<Dial action>` (signed like every callback) with
//! the call's usual parameters (`AccountSid`, `CallSid`, `CallStatus`, `From`, `To`, …) and
//! `DialCallStatus` (`completed`, `busy`, `no-answer`, `failed`, `canceled`), `DialCallSid`
//! (the dialled leg, `CA…`), `DialCallDuration` (seconds the two were connected) and
//! `DialBridged`; the TwiML it answers is what the call runs next. Without `action` the document
//! goes on after `<Dial>` (and the call ends when nothing follows). A `callerId` that is not the
//! call's own `From` or `To`, a number of the account or a verified caller ID fails the dial
//! with warning 13214, as on Twilio. What was dialled and how it
//! went is recorded on the call's snapshot ([`DialRecord`]).

use std::time::Duration;

use serde::Serialize;

/// What the dialled party does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialScript {
    /// Answers after `after` of ringing and stays connected for `talk`, then hangs up
    /// (`DialCallStatus=completed`).
    Answer {
        /// Ringing time.
        after: Duration,
        /// Connected time.
        talk: Duration,
    },
    /// Busy after `after` of ringing (`busy`).
    Busy {
        /// Ringing time.
        after: Duration,
    },
    /// Rings until `<Dial timeout>` (or [`super::ApiConfig::no_answer_after`] when shorter):
    /// `no-answer`.
    NoAnswer,
    /// Cannot be reached (`failed`, no ringing).
    Failed,
}

impl DialScript {
    /// `DialCallStatus` this script ends with, when the caller stays on the line.
    pub fn status(&self) -> &'static str {
        match self {
            DialScript::Answer { .. } => "completed",
            DialScript::Busy { .. } => "busy",
            DialScript::NoAnswer => "no-answer",
            DialScript::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DialScript {
    type Err = String;

    /// `answer` (rings 1 s, talks 30 s), `answer:RING_MS:TALK_MS`, `busy` (after 1 s),
    /// `busy:RING_MS`, `no-answer`, `failed`.
    fn from_str(s: &str) -> Result<Self, String> {
        let ms = |v: &str| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("`{v}` in `{s}`: expected milliseconds"))
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["answer"] => {
                Ok(DialScript::Answer { after: Duration::from_secs(1), talk: Duration::from_secs(30) })
            }
            ["answer", ring, talk] => Ok(DialScript::Answer { after: ms(ring)?, talk: ms(talk)? }),
            ["busy"] => Ok(DialScript::Busy { after: Duration::from_secs(1) }),
            ["busy", ring] => Ok(DialScript::Busy { after: ms(ring)? }),
            ["no-answer"] => Ok(DialScript::NoAnswer),
            ["failed"] => Ok(DialScript::Failed),
            _ => Err(format!(
                "`{s}`: expected answer, answer:RING_MS:TALK_MS, busy, busy:RING_MS, no-answer or failed"
            )),
        }
    }
}

/// One `<Dial>` a call ran, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DialRecord {
    /// `number` or `sip`.
    pub kind: String,
    /// The number or SIP URI dialled.
    pub target: String,
    /// `callerId`, if given.
    pub caller_id: Option<String>,
    /// `timeout`, seconds.
    pub timeout_secs: u64,
    /// `action` URL, if given.
    pub action: Option<String>,
    /// The dialled leg's `CA…` sid.
    pub dial_call_sid: String,
    /// `DialCallStatus` once the dialled call ended.
    pub status: Option<String>,
    /// `DialCallDuration` (seconds connected), once ended.
    pub duration_secs: Option<u64>,
    /// HTTP status the `action` request was answered with.
    pub action_http_status: Option<u16>,
    /// When dialling started (simulator clock).
    #[serde(with = "crate::caller::report::ms")]
    pub at: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_read_from_the_command_line_form() {
        let d = |ms| Duration::from_millis(ms);
        assert_eq!("answer:200:1500".parse(), Ok(DialScript::Answer { after: d(200), talk: d(1500) }));
        assert_eq!("busy".parse(), Ok(DialScript::Busy { after: d(1000) }));
        assert_eq!("no-answer".parse::<DialScript>().map(|s| s.status()), Ok("no-answer"));
        assert!("answer:x:1".parse::<DialScript>().unwrap_err().contains("expected milliseconds"));
        assert!("voicemail".parse::<DialScript>().is_err());
    }
}
