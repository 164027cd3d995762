//! Twilio: the inline TwiML of an outbound call (pure), the REST client (`Calls.create`,
//! hang-up, `OutgoingCallerIds`) with its errors mapped to answers a person understands, and
//! the regional API host ([`TwilioRegion`]).
//!
//! # Regions
//! Twilio picks the region that processes (and stores) a call by the API host name:
//! `api.twilio.com` is the United States (US1); `api.{edge}.{region}.twilio.com` is another
//! region, entered through the edge named: `api.dublin.ie1.twilio.com` for Ireland (IE1, the
//! EU choice), `api.sydney.au1.twilio.com` for Australia. The short `api.ie1.twilio.com` form
//! processed in US1 and stopped answering on 2026-04-28, and Frankfurt (`de1`) is an edge, not a
//! processing region (Twilio's API domain migration guide, 2026). Credentials are per region:
//! with IE1, `TWILIO_AUTH_TOKEN` is the IE1 auth token, which also signs IE1's callbacks and
//! stream upgrades.
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

/// Edge and region pairs that process REST requests outside the United States
/// (`api.{edge}.{region}.twilio.com`).
pub const REGIONAL_PAIRS: &[(&str, &str)] = &[("ie1", "dublin"), ("au1", "sydney")];

/// Where Twilio processes the account's calls: `TWILIO_REGION` + `TWILIO_EDGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioRegion {
    /// `ie1`, `au1`.
    pub region: String,
    /// `dublin`, `sydney`.
    pub edge: String,
}

/// Why `TWILIO_REGION` / `TWILIO_EDGE` were refused; each message says what to set instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegionError {
    /// A region without its edge: the `api.{region}.twilio.com` form is retired.
    #[error(
        "TWILIO_REGION={0} needs TWILIO_EDGE too: api.{0}.twilio.com processed in US1 and no longer answers since 2026-04-28 (set {1})"
    )]
    RegionWithoutEdge(String, String),
    /// An edge without a region.
    #[error("TWILIO_EDGE={0} needs TWILIO_REGION too (set {1}), or unset both for US1 (api.twilio.com)")]
    EdgeWithoutRegion(String, String),
    /// `us1` is the default host.
    #[error("TWILIO_REGION=us1 is the default (api.twilio.com): unset TWILIO_REGION and TWILIO_EDGE")]
    Us1,
    /// Not a region that processes REST requests.
    #[error(
        "TWILIO_REGION={0} is not a Twilio processing region (Frankfurt de1 and the other legacy codes are edges only): use ie1 with TWILIO_EDGE=dublin for the EU, au1 with sydney, or unset both for US1"
    )]
    UnknownRegion(String),
    /// The edge does not serve that region's REST API.
    #[error(
        "TWILIO_EDGE={edge} does not serve TWILIO_REGION={region}'s REST API: use TWILIO_EDGE={expected}"
    )]
    EdgeMismatch {
        /// As configured.
        region: String,
        /// As configured.
        edge: String,
        /// The documented edge of `region`.
        expected: String,
    },
}

fn pair_hint(region: Option<&str>, edge: Option<&str>) -> String {
    let found = REGIONAL_PAIRS.iter().find(|(r, e)| Some(*r) == region || Some(*e) == edge);
    let (r, e) = found.copied().unwrap_or(REGIONAL_PAIRS[0]);
    format!("TWILIO_REGION={r} TWILIO_EDGE={e}")
}

impl TwilioRegion {
    /// Validates `TWILIO_REGION` and `TWILIO_EDGE` (both or neither; case-insensitive).
    /// `Ok(None)`: US1 through `api.twilio.com`.
    pub fn from_settings(region: Option<&str>, edge: Option<&str>) -> Result<Option<Self>, RegionError> {
        let region = region.map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_lowercase);
        let edge = edge.map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_lowercase);
        match (region, edge) {
            (None, None) => Ok(None),
            (Some(r), _) if r == "us1" => Err(RegionError::Us1),
            (Some(r), _) if !REGIONAL_PAIRS.iter().any(|(pr, _)| *pr == r) => {
                Err(RegionError::UnknownRegion(r))
            }
            (Some(r), None) => {
                let hint = pair_hint(Some(&r), None);
                Err(RegionError::RegionWithoutEdge(r, hint))
            }
            (None, Some(e)) => {
                let hint = pair_hint(None, Some(&e));
                Err(RegionError::EdgeWithoutRegion(e, hint))
            }
            (Some(r), Some(e)) => match REGIONAL_PAIRS.iter().find(|(pr, _)| *pr == r) {
                Some((_, expected)) if *expected == e => Ok(Some(TwilioRegion { region: r, edge: e })),
                Some((_, expected)) => {
                    Err(RegionError::EdgeMismatch { region: r, edge: e, expected: (*expected).to_owned() })
                }
                None => Err(RegionError::UnknownRegion(r)),
            },
        }
    }

    /// `api.{edge}.{region}.twilio.com`.
    pub fn api_host(&self) -> String {
        format!("api.{}.{}.twilio.com", self.edge, self.region)
    }

    /// `https://api.{edge}.{region}.twilio.com`.
    pub fn api_base(&self) -> String {
        format!("https://{}", self.api_host())
    }
}

/// A Twilio REST client for one account.
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    api_base: String,
    /// `Host` sent instead of `api_base`'s (a regional host named through a stand-in).
    host_header: Option<String>,
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
    /// `AsyncAmdStatusCallback`: asks for asynchronous answering-machine detection
    /// (`MachineDetection=DetectMessageEnd`, `AsyncAmd=true`) reporting there.
    pub amd_callback: Option<&'a str>,
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
    #[error(
        "Twilio refused our credentials (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, and TWILIO_REGION/TWILIO_EDGE: credentials are valid in one region only)"
    )]
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
            host_header: None,
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
        }
    }

    /// Names `host` in every request's `Host` header while connecting to `api_base`: how a
    /// regional host (`api.dublin.ie1.twilio.com`) is addressed through a simulator or another
    /// stand-in set in `TWILIO_API_BASE`.
    pub fn with_host_header(mut self, host: Option<String>) -> Self {
        self.host_header = host;
        self
    }

    /// The base URL requests go to.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url).basic_auth(&self.account_sid, Some(&self.auth_token));
        match &self.host_header {
            Some(host) => builder.header(reqwest::header::HOST, host),
            None => builder,
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
        let mut form = form;
        if let Some(cb) = c.amd_callback {
            form.extend([
                ("MachineDetection", "DetectMessageEnd"),
                ("AsyncAmd", "true"),
                ("AsyncAmdStatusCallback", cb),
                ("AsyncAmdStatusCallbackMethod", "POST"),
            ]);
        }
        let body = serde_urlencoded::to_string(&form).map_err(|e| TwilioError::Unavailable(e.to_string()))?;
        let url = self.account_url("Calls.json");
        let mut attempt = 0u32;
        loop {
            let res = self
                .request(reqwest::Method::POST, &url)
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
                .request(reqwest::Method::GET, &url)
                .query(&[("PhoneNumber", e164), ("PageSize", "50")])
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
        self.update_call(call_sid, &[("Status", "completed")]).await
    }

    /// Replaces what a live call runs with `twiml` (`POST Calls/{sid}.json Twiml=…`): its media
    /// stream gets `stop` and is closed, then the new document runs.
    pub async fn redirect(&self, call_sid: &str, twiml: &str) -> Result<(), TwilioError> {
        self.update_call(call_sid, &[("Twiml", twiml)]).await
    }

    /// `POST Calls/{sid}.json` with `form`; retries a 429, a 5xx and a failed connection twice.
    async fn update_call(&self, call_sid: &str, form: &[(&str, &str)]) -> Result<(), TwilioError> {
        let url = self.account_url(&format!("Calls/{call_sid}.json"));
        let mut attempt = 0;
        loop {
            let res = self.request(reqwest::Method::POST, &url).form(form).send().await;
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
    fn regional_hosts_are_built_from_region_and_edge() {
        let ie1 = TwilioRegion::from_settings(Some("ie1"), Some("dublin")).unwrap().unwrap();
        assert_eq!(ie1.api_host(), "api.dublin.ie1.twilio.com");
        assert_eq!(ie1.api_base(), "https://api.dublin.ie1.twilio.com");
        let au1 = TwilioRegion::from_settings(Some(" AU1 "), Some("Sydney")).unwrap().unwrap();
        assert_eq!(au1.api_host(), "api.sydney.au1.twilio.com");
        assert_eq!(TwilioRegion::from_settings(None, None), Ok(None));
        assert_eq!(TwilioRegion::from_settings(Some(""), Some(" ")), Ok(None));
    }

    #[test]
    fn bad_regions_are_refused_with_what_to_set() {
        let e = |r, e| TwilioRegion::from_settings(r, e).unwrap_err().to_string();
        let m = e(Some("ie1"), None);
        assert!(m.contains("api.ie1.twilio.com") && m.contains("TWILIO_EDGE=dublin"), "{m}");
        let m = e(None, Some("dublin"));
        assert!(m.contains("TWILIO_REGION=ie1"), "{m}");
        let m = e(Some("de1"), Some("frankfurt"));
        assert!(m.contains("not a Twilio processing region") && m.contains("ie1"), "{m}");
        let m = e(Some("ie1"), Some("frankfurt"));
        assert!(m.contains("TWILIO_EDGE=dublin"), "{m}");
        assert_eq!(TwilioRegion::from_settings(Some("us1"), None), Err(RegionError::Us1));
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
