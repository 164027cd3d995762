//! Twilio: the inline TwiML of an outbound call (pure), and the REST client (`Calls.create`,
//! hang-up, `OutgoingCallerIds`) with its errors mapped to answers a person understands.
//!
//! # Retries
//! `Calls.create` is not idempotent: a retry after an ambiguous failure (a 5xx, a timeout once
//! the request was sent) could ring the prospect twice. So it is retried only when Twilio
//! certainly did nothing: a `429` (rate limited, honouring `Retry-After`, at most
//! [`MAX_429_RETRIES`] times) or a connection that never opened. Reads (`OutgoingCallerIds`)
//! and the hang-up (setting `Status=completed` twice is harmless) may be retried freely.

use std::time::Duration;

use serde::Deserialize;

/// Twilio's limit on inline TwiML (error 32018 beyond).
pub const MAX_TWIML_LEN: usize = 4000;
/// How many times a `429` on `Calls.create` is retried.
pub const MAX_429_RETRIES: u32 = 2;
/// Longest `Retry-After` we wait for inside a web request.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);

/// Escapes a string for an XML attribute value.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Why TwiML could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TwimlError {
    /// Twilio refuses `<Stream url>` with a query string (error 31920) and non-`wss` schemes.
    #[error("stream URL must be wss:// without a query string: {0}")]
    BadStreamUrl(String),
    /// Over Twilio's 4000 characters.
    #[error("TwiML is {0} characters, over Twilio's limit of {MAX_TWIML_LEN}")]
    TooLong(usize),
    /// Twilio wants each parameter's name + value under 500 characters.
    #[error("stream parameter {0} is too long (name + value must be under 500 characters)")]
    ParameterTooLong(String),
}

/// `<Response><Connect><Stream url=…>` with `<Parameter>`s, then `<Hangup/>`: the call is
/// bridged to the gateway and hung up when the stream ends.
pub fn connect_stream_twiml(
    stream_url: &str,
    status_callback: Option<&str>,
    params: &[(&str, &str)],
) -> Result<String, TwimlError> {
    if !stream_url.starts_with("wss://") || stream_url.contains('?') {
        return Err(TwimlError::BadStreamUrl(stream_url.to_owned()));
    }
    let mut out = String::with_capacity(512);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url=""#);
    out.push_str(&xml_escape(stream_url));
    out.push('"');
    if let Some(cb) = status_callback {
        out.push_str(r#" statusCallback=""#);
        out.push_str(&xml_escape(cb));
        out.push_str(r#"" statusCallbackMethod="POST""#);
    }
    out.push('>');
    for (name, value) in params {
        if name.len() + value.len() >= 500 {
            return Err(TwimlError::ParameterTooLong((*name).to_owned()));
        }
        out.push_str(r#"<Parameter name=""#);
        out.push_str(&xml_escape(name));
        out.push_str(r#"" value=""#);
        out.push_str(&xml_escape(value));
        out.push_str(r#"" />"#);
    }
    out.push_str("</Stream></Connect><Hangup /></Response>");
    if out.chars().count() >= MAX_TWIML_LEN {
        return Err(TwimlError::TooLong(out.chars().count()));
    }
    Ok(out)
}

/// A Twilio REST client for one account.
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    api_base: String,
    account_sid: String,
    auth_token: String,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct CreateCall<'a> {
    /// E.164 destination.
    pub to: &'a str,
    /// E.164 caller id (`TWILIO_PHONE_NUMBER_FROM`).
    pub from: &'a str,
    /// Inline TwiML.
    pub twiml: &'a str,
    /// Call status callback URL.
    pub status_callback: &'a str,
    /// Seconds to let it ring.
    pub timeout_secs: u32,
    /// Longest call, seconds.
    pub time_limit_secs: u32,
}

/// Twilio's error body.
#[derive(Debug, Clone, Deserialize)]
pub struct TwilioErrorBody {
    /// Twilio error code (21211…).
    pub code: Option<u32>,
    /// Twilio's message.
    pub message: Option<String>,
}

/// Why a Twilio request failed, classified for the answer we give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TwilioError {
    /// Twilio says the destination is not a valid phone number (21211, 21217, 13224).
    #[error("Twilio refused the destination number (code {code})")]
    InvalidNumber {
        /// Twilio code.
        code: u32,
    },
    /// Trial account: the destination is not a verified caller id (21219, 21608), or our own
    /// verified-numbers check said so.
    #[error("the destination number is not verified on this Twilio (trial) account")]
    UnverifiedNumber,
    /// Our `From` is not a Twilio number of this account (21210).
    #[error("TWILIO_PHONE_NUMBER_FROM is not a number of this Twilio account (code 21210)")]
    FromNotVerified,
    /// 401 / 20003: wrong account SID or auth token.
    #[error("Twilio refused our credentials (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)")]
    Auth,
    /// 429 after our retries.
    #[error("Twilio is rate limiting this account (429 after {MAX_429_RETRIES} retries)")]
    RateLimited,
    /// Twilio failed (5xx) or could not be reached: the call may or may not exist.
    #[error("Twilio is unavailable ({0})")]
    Unavailable(String),
    /// Any other 4xx.
    #[error("Twilio refused the request: HTTP {status}, code {code:?}: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Twilio code.
        code: Option<u32>,
        /// Twilio message.
        message: String,
    },
}

impl TwilioError {
    /// Stable machine code for JSON answers.
    pub fn code(&self) -> &'static str {
        match self {
            TwilioError::InvalidNumber { .. } => "twilio_invalid_number",
            TwilioError::UnverifiedNumber => "number_not_verified",
            TwilioError::FromNotVerified => "twilio_from_not_verified",
            TwilioError::Auth => "twilio_auth_failed",
            TwilioError::RateLimited => "twilio_rate_limited",
            TwilioError::Unavailable(_) => "twilio_unavailable",
            TwilioError::Rejected { .. } => "twilio_rejected",
        }
    }

    /// Classifies an error answer.
    pub fn from_response(status: u16, body: &str) -> Self {
        let parsed: Option<TwilioErrorBody> = serde_json::from_str(body).ok();
        let code = parsed.as_ref().and_then(|b| b.code);
        let message = parsed.and_then(|b| b.message).unwrap_or_default();
        match (status, code) {
            (_, Some(c @ (21211 | 21217 | 13224 | 21214))) => TwilioError::InvalidNumber { code: c },
            (_, Some(21219 | 21608)) => TwilioError::UnverifiedNumber,
            (_, Some(21210)) => TwilioError::FromNotVerified,
            (401 | 403, _) | (_, Some(20003)) => TwilioError::Auth,
            (429, _) | (_, Some(20429)) => TwilioError::RateLimited,
            (500..=599, _) => TwilioError::Unavailable(format!("HTTP {status}")),
            _ => TwilioError::Rejected { status, code, message },
        }
    }
}

#[derive(Deserialize)]
struct CallResource {
    sid: String,
    status: Option<String>,
}

#[derive(Deserialize)]
struct CallerIds {
    outgoing_caller_ids: Vec<CallerId>,
}

#[derive(Deserialize)]
struct CallerId {
    phone_number: String,
}

/// A created call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCall {
    /// `CA…`.
    pub sid: String,
    /// Twilio's initial status (`queued`).
    pub status: String,
}

impl TwilioClient {
    /// A client for `account_sid` against `api_base` (`https://api.twilio.com`, or a simulator).
    pub fn new(http: reqwest::Client, api_base: &str, account_sid: &str, auth_token: &str) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
        }
    }

    fn account_url(&self, rest: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}/{rest}", self.api_base, self.account_sid)
    }

    /// `Calls.create` with inline TwiML. Retries only a `429` and a connection that never opened.
    pub async fn create_call(&self, c: &CreateCall<'_>) -> Result<CreatedCall, TwilioError> {
        let timeout = c.timeout_secs.to_string();
        let limit = c.time_limit_secs.to_string();
        let form: Vec<(&str, &str)> = vec![
            ("To", c.to),
            ("From", c.from),
            ("Twiml", c.twiml),
            ("StatusCallback", c.status_callback),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("Timeout", &timeout),
            ("TimeLimit", &limit),
        ];
        let body = serde_urlencoded::to_string(&form).map_err(|e| TwilioError::Unavailable(e.to_string()))?;
        let url = self.account_url("Calls.json");
        let mut attempt = 0u32;
        loop {
            let res = self
                .http
                .post(&url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            let res = match res {
                Ok(r) => r,
                Err(e) if e.is_connect() && attempt < MAX_429_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(TwilioError::Unavailable(describe(&e))),
            };
            let status = res.status().as_u16();
            if status == 429 && attempt < MAX_429_RETRIES {
                attempt += 1;
                let wait = retry_after(&res).unwrap_or_else(|| backoff(attempt)).min(MAX_RETRY_WAIT);
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = res.text().await.map_err(|e| TwilioError::Unavailable(describe(&e)))?;
            if (200..300).contains(&status) {
                let call: CallResource = serde_json::from_str(&text)
                    .map_err(|e| TwilioError::Unavailable(format!("unreadable Call resource: {e}")))?;
                return Ok(CreatedCall {
                    sid: call.sid,
                    status: call.status.unwrap_or_else(|| "queued".into()),
                });
            }
            return Err(TwilioError::from_response(status, &text));
        }
    }

    /// Whether `e164` is among the account's verified caller ids (trial accounts can only call
    /// those). `GET OutgoingCallerIds.json?PhoneNumber=…`.
    pub async fn is_verified_caller_id(&self, e164: &str) -> Result<bool, TwilioError> {
        let url = self.account_url("OutgoingCallerIds.json");
        let mut attempt = 0;
        loop {
            let res = self
                .http
                .get(&url)
                .query(&[("PhoneNumber", e164), ("PageSize", "50")])
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    let ids: CallerIds = r
                        .json()
                        .await
                        .map_err(|e| TwilioError::Unavailable(format!("unreadable caller ids: {e}")))?;
                    return Ok(ids.outgoing_caller_ids.iter().any(|c| c.phone_number == e164));
                }
                Ok(r) if (r.status().as_u16() == 429 || r.status().is_server_error()) && attempt < 2 => {}
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    return Err(TwilioError::from_response(status, &text));
                }
                Err(e) if attempt < 2 && (e.is_connect() || e.is_timeout()) => {}
                Err(e) => return Err(TwilioError::Unavailable(describe(&e))),
            }
            attempt += 1;
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// Ends a call (`POST Calls/{sid}.json Status=completed`). Safe to repeat.
    pub async fn hang_up(&self, call_sid: &str) -> Result<(), TwilioError> {
        let url = self.account_url(&format!("Calls/{call_sid}.json"));
        let mut attempt = 0;
        loop {
            let res = self
                .http
                .post(&url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .form(&[("Status", "completed")])
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if (r.status().as_u16() == 429 || r.status().is_server_error()) && attempt < 2 => {}
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    return Err(TwilioError::from_response(status, &text));
                }
                Err(e) if attempt < 2 => {
                    let _ = e;
                }
                Err(e) => return Err(TwilioError::Unavailable(describe(&e))),
            }
            attempt += 1;
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * u64::from(attempt))
}

fn retry_after(res: &reqwest::Response) -> Option<Duration> {
    let v = res.headers().get("retry-after")?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An error's description without the URL (which holds the account SID).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_matches_twilio_library_shape() {
        let t = connect_stream_twiml(
            "wss://edge.example.eu/api/twilio/media-stream/v1.abc.def",
            None,
            &[("lead_id", "42")],
        )
        .unwrap();
        assert_eq!(
            t,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://edge.example.eu/api/twilio/media-stream/v1.abc.def"><Parameter name="lead_id" value="42" /></Stream></Connect><Hangup /></Response>"#
        );
    }

    #[test]
    fn twiml_escapes_and_refuses_query_strings() {
        let t = connect_stream_twiml(
            "wss://e.example/s/v1.x",
            Some("https://cp.example/twilio/stream-status?call_id=1&x=2"),
            &[("name", r#"a"<b>&'c"#)],
        )
        .unwrap();
        assert!(t.contains(r#"value="a&quot;&lt;b&gt;&amp;&apos;c""#));
        assert!(t.contains("call_id=1&amp;x=2"));
        assert_eq!(
            connect_stream_twiml("wss://e.example/s?token=1", None, &[]),
            Err(TwimlError::BadStreamUrl("wss://e.example/s?token=1".into()))
        );
        assert!(matches!(
            connect_stream_twiml("https://e.example/s", None, &[]),
            Err(TwimlError::BadStreamUrl(_))
        ));
        let long = "x".repeat(499);
        assert!(matches!(
            connect_stream_twiml("wss://e.example/s", None, &[("n", &long)]),
            Err(TwimlError::ParameterTooLong(_))
        ));
        let many: Vec<(&str, &str)> = (0..10).map(|_| ("p", long.as_str().get(..400).unwrap())).collect();
        assert!(matches!(
            connect_stream_twiml("wss://e.example/s", None, &many),
            Err(TwimlError::TooLong(_))
        ));
    }

    #[test]
    fn errors_are_classified() {
        let e = |s, b: &str| TwilioError::from_response(s, b);
        assert_eq!(
            e(400, r#"{"code":21211,"message":"bad To","status":400}"#),
            TwilioError::InvalidNumber { code: 21211 }
        );
        assert_eq!(
            e(400, r#"{"code":21219,"message":"unverified","status":400}"#),
            TwilioError::UnverifiedNumber
        );
        assert_eq!(e(400, r#"{"code":21210,"message":"From","status":400}"#), TwilioError::FromNotVerified);
        assert_eq!(e(401, r#"{"code":20003,"message":"auth","status":401}"#), TwilioError::Auth);
        assert_eq!(e(429, r#"{"code":20429,"message":"Too many","status":429}"#), TwilioError::RateLimited);
        assert_eq!(e(500, "oops"), TwilioError::Unavailable("HTTP 500".into()));
        assert!(matches!(
            e(400, r#"{"code":12345,"message":"x"}"#),
            TwilioError::Rejected { status: 400, .. }
        ));
    }
}
