//! Validation of `POST …/Calls.json` forms, in the order Twilio reports problems, with its codes.

use std::time::Duration;

use serde::Serialize;

use super::errors::ApiError;
use crate::{codes, twiml};

/// Longest `Twiml` parameter Twilio accepts.
pub const MAX_TWIML_CHARS: usize = 4000;
/// Longest `Timeout` (seconds).
pub const MAX_TIMEOUT_SECS: u64 = 600;

/// Call progress events a `StatusCallback` can be asked for.
pub const STATUS_CALLBACK_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// A create-call request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateCall {
    /// `To` (E.164).
    pub to: String,
    /// `From` (E.164, owned or verified).
    pub from: String,
    /// `Twiml`, if given.
    pub twiml: Option<String>,
    /// `Url`, if given.
    pub url: Option<String>,
    /// `Method` for `Url` (`POST` default).
    pub method: String,
    /// `StatusCallback`.
    pub status_callback: Option<String>,
    /// `StatusCallbackMethod` (`POST` default).
    pub status_callback_method: String,
    /// `StatusCallbackEvent`s (`completed` when none given).
    pub status_callback_events: Vec<String>,
    /// `Timeout`: how long to ring before `no-answer` (default 60 s).
    pub timeout: Duration,
    /// `TimeLimit`: longest call (default four hours).
    pub time_limit: Duration,
    /// Answering-machine detection, when `MachineDetection` is given.
    pub amd: Option<super::amd::AmdRequest>,
}

/// What validation needs to know about the account.
pub struct AccountView<'a> {
    /// Twilio numbers the account owns.
    pub owned: &'a [String],
    /// Verified caller IDs.
    pub verified: &'a [String],
    /// Trial account.
    pub trial: bool,
}

/// `+` then 2 to 15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else { return false };
    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// Looks like a phone number written some other way (spaces, dashes, no `+` …).
fn looks_like_number(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().all(|b| b.is_ascii_digit() || b" +-().".contains(&b))
}

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn non_empty<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    first(params, name).filter(|v| !v.trim().is_empty())
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()))
}

fn http_method(params: &[(String, String)], name: &str) -> Result<String, ApiError> {
    match first(params, name) {
        None | Some("") => Ok("POST".into()),
        Some(m) if m.eq_ignore_ascii_case("GET") || m.eq_ignore_ascii_case("POST") => {
            Ok(m.to_ascii_uppercase())
        }
        Some(m) => Err(ApiError::bad_request(
            codes::METHOD_INVALID,
            format!("{name} must be either GET or POST, not {m}"),
        )),
    }
}

/// Validates a create-call form.
pub fn validate_create(
    params: &[(String, String)],
    account: &AccountView<'_>,
) -> Result<CreateCall, ApiError> {
    let to = non_empty(params, "To")
        .ok_or_else(|| ApiError::bad_request(codes::TO_MISSING, "A 'To' phone number is required."))?;
    let from = non_empty(params, "From")
        .ok_or_else(|| ApiError::bad_request(codes::FROM_MISSING, "A 'From' phone number is required."))?;

    let twiml = first(params, "Twiml");
    let url = first(params, "Url");
    let app = first(params, "ApplicationSid");
    let given = [twiml, url, app].iter().filter(|v| v.is_some()).count();
    if given == 0 {
        return Err(ApiError::bad_request(
            codes::URL_INVALID,
            "Url parameter is required. Please provide a Url, Twiml or ApplicationSid.",
        ));
    }
    if given > 1 {
        return Err(ApiError::bad_request(
            codes::URL_INVALID,
            "Only one of Url, Twiml or ApplicationSid may be given.",
        ));
    }

    if !is_e164(to) {
        let (code, msg) = if looks_like_number(to) {
            (codes::NOT_E164, format!("The 'To' number {to} is not in E.164 format."))
        } else {
            (codes::TO_INVALID, format!("Invalid 'To' Phone Number: {to}"))
        };
        return Err(ApiError::bad_request(code, msg));
    }
    if !is_e164(from) {
        let (code, msg) = if looks_like_number(from) {
            (codes::NOT_E164, format!("The 'From' number {from} is not in E.164 format."))
        } else {
            (codes::FROM_INVALID, format!("Invalid 'From' Phone Number: {from}"))
        };
        return Err(ApiError::bad_request(code, msg));
    }
    let from_ok = account.owned.iter().any(|n| n == from) || account.verified.iter().any(|n| n == from);
    if !from_ok {
        return Err(ApiError::bad_request(
            codes::FROM_NOT_VERIFIED,
            format!(
                "The source phone number provided, {from}, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio."
            ),
        ));
    }
    if account.trial && !account.verified.iter().any(|n| n == to) {
        return Err(ApiError::bad_request(
            codes::TRIAL_TO_NOT_VERIFIED,
            format!(
                "The number {to} is unverified. Trial accounts cannot call unverified numbers; verify {to} at twilio.com/user/account/phone-numbers/verified, or purchase a Twilio number to call unverified numbers."
            ),
        ));
    }

    if let Some(t) = twiml {
        if t.chars().count() > MAX_TWIML_CHARS {
            return Err(ApiError::bad_request(
                codes::TWIML_TOO_LONG,
                format!("Twiml must be at most {MAX_TWIML_CHARS} characters (got {}).", t.chars().count()),
            ));
        }
        if let Err(twiml::TwimlError::Parse(why)) = twiml::parse(t) {
            return Err(ApiError::bad_request(codes::TWIML_PARSE, format!("Twiml is not valid XML: {why}")));
        }
    }
    if let Some(u) = url
        && !is_http_url(u)
    {
        return Err(ApiError::bad_request(codes::URL_INVALID, format!("Url is not a valid URL: {u}")));
    }
    if let Some(a) = app {
        return Err(ApiError::bad_request(
            codes::APPLICATION_INVALID,
            format!("ApplicationSid {a} is not a valid application."),
        ));
    }
    let method = http_method(params, "Method")?;

    let status_callback = first(params, "StatusCallback").filter(|s| !s.is_empty());
    if let Some(cb) = status_callback
        && !is_http_url(cb)
    {
        return Err(ApiError::bad_request(
            codes::STATUS_CALLBACK_INVALID,
            format!("The StatusCallback URL {cb} is not a valid URL."),
        ));
    }
    let status_callback_method = http_method(params, "StatusCallbackMethod")?;
    let mut events = Vec::new();
    for (_, v) in params.iter().filter(|(k, _)| k == "StatusCallbackEvent") {
        for e in v.split_whitespace() {
            if !STATUS_CALLBACK_EVENTS.contains(&e) {
                return Err(ApiError::bad_request(
                    codes::INVALID_PARAMETER,
                    format!("StatusCallbackEvent {e} is not one of initiated, ringing, answered, completed."),
                ));
            }
            if !events.iter().any(|x: &String| x == e) {
                events.push(e.to_owned());
            }
        }
    }
    if events.is_empty() {
        events.push("completed".to_owned());
    }

    let timeout = match first(params, "Timeout") {
        None | Some("") => 60,
        Some(t) => match t.parse::<u64>() {
            Ok(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    codes::INVALID_PARAMETER,
                    format!("Timeout must be an integer between 1 and {MAX_TIMEOUT_SECS}, not {t}."),
                ));
            }
        },
    };
    let time_limit = match first(params, "TimeLimit") {
        None | Some("") => 4 * 3600,
        Some(t) => t.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(
                codes::INVALID_PARAMETER,
                format!("TimeLimit must be a positive integer, not {t}."),
            )
        })?,
    };

    let amd = validate_amd(params)?;

    Ok(CreateCall {
        to: to.to_owned(),
        from: from.to_owned(),
        twiml: twiml.map(str::to_owned),
        url: url.map(str::to_owned),
        method,
        status_callback: status_callback.map(str::to_owned),
        status_callback_method,
        status_callback_events: events,
        timeout: Duration::from_secs(timeout),
        time_limit: Duration::from_secs(time_limit),
        amd,
    })
}

/// `MachineDetection` and its companions, checked as Twilio checks them.
fn validate_amd(params: &[(String, String)]) -> Result<Option<super::amd::AmdRequest>, ApiError> {
    let mode = match first(params, "MachineDetection") {
        None | Some("") => return Ok(None),
        Some(m @ ("Enable" | "DetectMessageEnd")) => m.to_owned(),
        Some(m) => {
            return Err(ApiError::bad_request(
                codes::INVALID_PARAMETER,
                format!("MachineDetection must be Enable or DetectMessageEnd, not {m}."),
            ));
        }
    };
    let asynchronous = match first(params, "AsyncAmd") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ApiError::bad_request(
                codes::INVALID_PARAMETER,
                format!("AsyncAmd must be true or false, not {v}."),
            ));
        }
    };
    let callback = first(params, "AsyncAmdStatusCallback").filter(|s| !s.is_empty());
    if let Some(cb) = callback
        && !is_http_url(cb)
    {
        return Err(ApiError::bad_request(
            codes::INVALID_PARAMETER,
            format!("The AsyncAmdStatusCallback URL {cb} is not a valid URL."),
        ));
    }
    let callback_method = http_method(params, "AsyncAmdStatusCallbackMethod")?;
    let timeout = match first(params, "MachineDetectionTimeout") {
        None | Some("") => 30,
        Some(t) => t.parse::<u64>().ok().filter(|n| (3..=59).contains(n)).ok_or_else(|| {
            ApiError::bad_request(
                codes::INVALID_PARAMETER,
                format!("MachineDetectionTimeout must be an integer between 3 and 59, not {t}."),
            )
        })?,
    };
    Ok(Some(super::amd::AmdRequest {
        mode,
        asynchronous,
        callback: callback.map(str::to_owned),
        callback_method,
        timeout: Duration::from_secs(timeout),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert!(is_e164("+33612345678"));
        assert!(!is_e164("33612345678"));
        assert!(!is_e164("+0612345678"));
        assert!(!is_e164("+33 6 12 34 56 78"));
        assert!(!is_e164("+1234567890123456"));
        assert!(looks_like_number("06 12 34 56 78"));
        assert!(!looks_like_number("abc"));
    }
}
