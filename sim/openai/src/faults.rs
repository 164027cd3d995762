//! Faults on demand: what goes wrong with the real service, made to happen when a test wants.
//!
//! Faults are a list in [`crate::SimConfig::faults`], replaceable at run time with
//! [`crate::SimHandle::set_faults`]. Timed faults count from the moment a session is accepted,
//! on tokio's clock (so a test on a paused clock sees them without waiting).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

/// An HTTP refusal with OpenAI's error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 429 `rate_limit_exceeded` (type `requests`).
    RateLimited,
    /// 429 `insufficient_quota`.
    QuotaExceeded,
    /// 500 `server_error`.
    ServerError,
    /// 503 "The engine is currently overloaded".
    Overloaded,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Self::RateLimited | Self::QuotaExceeded => 429,
            Self::ServerError => 500,
            Self::Overloaded => 503,
        }
    }

    /// The JSON body, `{"error":{"message","type","param","code"}}`.
    pub fn body(self) -> Value {
        let (message, kind, code) = match self {
            Self::RateLimited => (
                "Rate limit reached for gpt-realtime in organization org-callwaysim on requests per min (RPM): Limit 100, Used 100, Requested 1. Please try again in 600ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
                "requests",
                Some("rate_limit_exceeded"),
            ),
            Self::QuotaExceeded => (
                "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
            Self::ServerError => (
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            ),
            Self::Overloaded => {
                ("The engine is currently overloaded, please try again later.", "server_error", None)
            }
        };
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
    }

    fn from_status(s: &str) -> Option<Self> {
        match s {
            "429" | "rate" => Some(Self::RateLimited),
            "quota" => Some(Self::QuotaExceeded),
            "500" => Some(Self::ServerError),
            "503" => Some(Self::Overloaded),
            _ => None,
        }
    }
}

/// How a stalled session behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StallMode {
    /// Keep reading (and recording) client events and answering WebSocket pings, send no event.
    #[default]
    Silent,
    /// Stop reading and writing altogether (no pong either): a black hole until the simulator
    /// shuts down.
    Frozen,
}

/// A fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Refuse the WebSocket handshake (after authentication) with this status and body, the
    /// next `times` attempts (`None`: every attempt).
    RefuseHandshake {
        /// Status and body.
        refusal: Refusal,
        /// How many attempts are refused.
        times: Option<u32>,
    },
    /// Refuse `POST /v1/realtime/client_secrets` (after authentication) the next `times`
    /// requests (`None`: all).
    RefuseClientSecrets {
        /// Status and body.
        refusal: Refusal,
        /// How many requests are refused.
        times: Option<u32>,
    },
    /// Close each session with a close frame `code` this long after it was accepted.
    CloseAfter {
        /// Delay from acceptance.
        after: Duration,
        /// WebSocket close code (1011 is what a server error looks like).
        code: u16,
    },
    /// Drop each session's TCP connection without a close frame this long after acceptance.
    DropAfter {
        /// Delay from acceptance.
        after: Duration,
    },
    /// Like [`Fault::DropAfter`], but the last thing on the wire is the start of a WebSocket
    /// message whose rest never comes (a server that died while writing). Realtime sessions
    /// only; a GPT-Live session just drops.
    DropMidMessage {
        /// Delay from acceptance.
        after: Duration,
    },
    /// Stop sending on each session this long after acceptance.
    StallAfter {
        /// Delay from acceptance.
        after: Duration,
        /// Silent or frozen.
        mode: StallMode,
    },
    /// GPT-Live sessions only: send an `error` event of type `server_error` (code
    /// `server_error`) this long after acceptance; the session goes on, as after the real
    /// service's transient errors.
    ErrorAfter {
        /// Delay from acceptance.
        after: Duration,
    },
    /// GPT-Live sessions only: answer `session.start` with `session.started` only this long
    /// after it arrives (a slow start; audio sent meanwhile is refused as before the start).
    SlowStart {
        /// Extra delay before `session.started`.
        delay: Duration,
    },
}

/// A `--fault` value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultParseError(pub String);

impl fmt::Display for FaultParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultParseError {}

fn parse_duration(s: &str) -> Result<Duration, FaultParseError> {
    let bad = || FaultParseError(format!("bad duration `{s}` (use 500ms, 5s or 2m)"));
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(bad()),
    }
}

impl FromStr for Fault {
    type Err = FaultParseError;

    /// `refuse-handshake=429|quota|500|503[:N]`, `refuse-secrets=…[:N]`,
    /// `close-after=5s[:CODE]`, `drop-after=5s`, `drop-mid-message=5s` (Realtime only),
    /// `stall-after=5s[:silent|frozen]`, `error-after=5s`, `slow-start=2s` (the last two
    /// GPT-Live only).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) =
            s.split_once('=').ok_or_else(|| FaultParseError(format!("`{s}`: expected NAME=VALUE")))?;
        let (main, extra) = match value.split_once(':') {
            Some((m, e)) => (m, Some(e)),
            None => (value, None),
        };
        let times = || -> Result<Option<u32>, FaultParseError> {
            extra.map(|e| e.parse().map_err(|_| FaultParseError(format!("bad count `{e}`")))).transpose()
        };
        let refusal = || {
            Refusal::from_status(main)
                .ok_or_else(|| FaultParseError(format!("bad refusal `{main}` (429, quota, 500 or 503)")))
        };
        match name {
            "refuse-handshake" => Ok(Self::RefuseHandshake { refusal: refusal()?, times: times()? }),
            "refuse-secrets" => Ok(Self::RefuseClientSecrets { refusal: refusal()?, times: times()? }),
            "close-after" => Ok(Self::CloseAfter {
                after: parse_duration(main)?,
                code: extra
                    .map(|e| e.parse().map_err(|_| FaultParseError(format!("bad close code `{e}`"))))
                    .transpose()?
                    .unwrap_or(1011),
            }),
            "drop-after" => Ok(Self::DropAfter { after: parse_duration(main)? }),
            "drop-mid-message" => Ok(Self::DropMidMessage { after: parse_duration(main)? }),
            "stall-after" => Ok(Self::StallAfter {
                after: parse_duration(main)?,
                mode: match extra {
                    None | Some("silent") => StallMode::Silent,
                    Some("frozen") => StallMode::Frozen,
                    Some(e) => {
                        return Err(FaultParseError(format!("bad stall mode `{e}` (silent or frozen)")));
                    }
                },
            }),
            "error-after" => Ok(Self::ErrorAfter { after: parse_duration(main)? }),
            "slow-start" => Ok(Self::SlowStart { delay: parse_duration(main)? }),
            _ => Err(FaultParseError(format!(
                "unknown fault `{name}` (refuse-handshake, refuse-secrets, close-after, drop-after, drop-mid-message, stall-after, error-after, slow-start)"
            ))),
        }
    }
}

/// The timed faults of one session, resolved at acceptance.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SessionFaults {
    pub close_after: Option<(Duration, u16)>,
    pub drop_after: Option<Duration>,
    /// Whether the drop leaves a message half-written.
    pub drop_mid_message: bool,
    pub stall_after: Option<(Duration, StallMode)>,
    pub error_after: Option<Duration>,
    pub slow_start: Option<Duration>,
}

/// A session's timed faults (and its cap) as instants on tokio's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultTimes {
    pub cap: Instant,
    pub close: Option<(Instant, u16)>,
    pub drop: Option<Instant>,
    pub stall: Option<(Instant, StallMode)>,
    pub error: Option<Instant>,
}

impl SessionFaults {
    /// The faults' instants for a session accepted at `accepted` and capped at `cap`.
    pub(crate) fn times(&self, accepted: Instant, cap: Duration) -> FaultTimes {
        let at = |d: Duration| accepted + d;
        FaultTimes {
            cap: at(cap),
            close: self.close_after.map(|(d, code)| (at(d), code)),
            drop: self.drop_after.map(at),
            stall: self.stall_after.map(|(d, mode)| (at(d), mode)),
            error: self.error_after.map(at),
        }
    }

    pub(crate) fn from_list(faults: &[Fault]) -> Self {
        let mut s = Self::default();
        for f in faults {
            match *f {
                Fault::CloseAfter { after, code } => s.close_after = Some((after, code)),
                Fault::DropAfter { after } => (s.drop_after, s.drop_mid_message) = (Some(after), false),
                Fault::DropMidMessage { after } => (s.drop_after, s.drop_mid_message) = (Some(after), true),
                Fault::StallAfter { after, mode } => s.stall_after = Some((after, mode)),
                Fault::ErrorAfter { after } => s.error_after = Some(after),
                Fault::SlowStart { delay } => s.slow_start = Some(delay),
                Fault::RefuseHandshake { .. } | Fault::RefuseClientSecrets { .. } => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_faults() {
        assert_eq!(
            "refuse-handshake=429:2".parse::<Fault>().unwrap(),
            Fault::RefuseHandshake { refusal: Refusal::RateLimited, times: Some(2) }
        );
        assert_eq!(
            "refuse-secrets=500".parse::<Fault>().unwrap(),
            Fault::RefuseClientSecrets { refusal: Refusal::ServerError, times: None }
        );
        assert_eq!(
            "close-after=1500ms".parse::<Fault>().unwrap(),
            Fault::CloseAfter { after: Duration::from_millis(1500), code: 1011 }
        );
        assert_eq!(
            "stall-after=2m:frozen".parse::<Fault>().unwrap(),
            Fault::StallAfter { after: Duration::from_secs(120), mode: StallMode::Frozen }
        );
        assert_eq!(
            "drop-mid-message=250ms".parse::<Fault>().unwrap(),
            Fault::DropMidMessage { after: Duration::from_millis(250) }
        );
        assert_eq!(
            "drop-after=3".parse::<Fault>().unwrap(),
            Fault::DropAfter { after: Duration::from_secs(3) }
        );
        assert_eq!(
            "error-after=2s".parse::<Fault>().unwrap(),
            Fault::ErrorAfter { after: Duration::from_secs(2) }
        );
        assert_eq!(
            "slow-start=750ms".parse::<Fault>().unwrap(),
            Fault::SlowStart { delay: Duration::from_millis(750) }
        );
        for bad in ["nope=1", "close-after=fast", "refuse-handshake=404", "stall-after=1s:loud", "x"] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }

    #[test]
    fn refusal_bodies_have_the_documented_shape() {
        for r in [Refusal::RateLimited, Refusal::QuotaExceeded, Refusal::ServerError, Refusal::Overloaded] {
            let b = r.body();
            let e = b["error"].as_object().unwrap();
            let mut keys: Vec<_> = e.keys().cloned().collect();
            keys.sort();
            assert_eq!(keys, ["code", "message", "param", "type"]);
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        assert_eq!(Refusal::QuotaExceeded.status(), 429);
        assert_eq!(Refusal::Overloaded.status(), 503);
    }
}
