//! Twilio error and warning codes the simulator raises, with Twilio's titles.
//!
//! Media Streams (319xx) come from Twilio's error dictionary (protocols.md A3); REST codes from
//! the API's error documents (protocols.md B). Where Twilio does not say which code a case gets,
//! the choice is noted on the constant.

/// Stream - WebSocket - Connection Timeout: no answer to the connection request.
pub const STREAM_CONNECT_TIMEOUT: u32 = 31901;
/// Stream - WebSocket - Connection Refused.
pub const STREAM_CONNECT_REFUSED: u32 = 31902;
/// Stream - WebSocket - SSL Protocol Error (TLS handshake failed).
pub const STREAM_TLS: u32 = 31910;
/// Stream - WebSocket - Handshake Error: HTTP status other than 101. The simulator also uses
/// it for a `<Stream url>` carrying a query string, which Twilio refuses.
pub const STREAM_HANDSHAKE: u32 = 31920;
/// Stream - WebSocket - the URL is not `wss://` (raised only in strict mode; see
/// `CallerConfig::allow_insecure_ws`).
pub const STREAM_NOT_WSS: u32 = 31922;
/// Stream - WebSocket - malformed URL.
pub const STREAM_BAD_URL: u32 = 31923;
/// Stream - WebSocket - Protocol Error (malformed frames, broken close handshake).
pub const STREAM_PROTOCOL: u32 = 31924;
/// Stream - Protocol - more than 10 minutes of audio buffered: the excess is dropped.
pub const STREAM_BUFFER_FULL: u32 = 31931;
/// Stream - Protocol - Malformed Message: a binary frame.
pub const STREAM_MALFORMED: u32 = 31950;
/// Stream - Protocol - Invalid Message: not JSON, unknown event, missing/extra field, wrong
/// `streamSid`, invalid payload, or anything sent before `start`.
pub const STREAM_INVALID_MESSAGE: u32 = 31951;

/// Document parse failure (TwiML that is not well-formed XML).
pub const TWIML_PARSE: u32 = 12100;
/// Invalid TwiML verb or noun.
pub const TWIML_INVALID: u32 = 12200;
/// HTTP retrieval failure (fetching TwiML from `Url`).
pub const HTTP_RETRIEVAL: u32 = 11200;
/// Trial accounts: calls are limited to 10 minutes.
pub const TRIAL_CALL_LIMIT: u32 = 13805;
/// `<Dial callerId>` is not the call's own `From` or `To`, a number of the account or a
/// verified caller ID (the dial fails).
pub const DIAL_INVALID_CALLER_ID: u32 = 13214;
/// Invalid parameter (the simulator's code for a malformed `Timeout` or `StatusCallbackEvent`;
/// Twilio does not document which code those get).
pub const INVALID_PARAMETER: u32 = 20001;
/// Authenticate (wrong or missing credentials).
pub const AUTHENTICATE: u32 = 20003;
/// Method not allowed (a verb the resource does not take).
pub const METHOD_NOT_ALLOWED: u32 = 20004;
/// The requested resource was not found.
pub const NOT_FOUND: u32 = 20404;
/// Too Many Requests.
pub const TOO_MANY_REQUESTS: u32 = 20429;
/// Internal Server Error.
pub const INTERNAL: u32 = 20500;
/// No 'To' number is specified.
pub const TO_MISSING: u32 = 21201;
/// Url parameter is required (none, or more than one, of `Url`/`Twiml`/`ApplicationSid`), or
/// `Url` is invalid.
pub const URL_INVALID: u32 = 21205;
/// Invalid Method (`Method`, `StatusCallbackMethod`).
pub const METHOD_INVALID: u32 = 21209;
/// 'From' phone number not verified (neither owned nor a verified caller ID).
pub const FROM_NOT_VERIFIED: u32 = 21210;
/// Invalid 'To' Phone Number.
pub const TO_INVALID: u32 = 21211;
/// Invalid 'From' Phone Number.
pub const FROM_INVALID: u32 = 21212;
/// No 'From' number is specified.
pub const FROM_MISSING: u32 = 21213;
/// Invalid ApplicationSid (the simulator has no applications).
pub const APPLICATION_INVALID: u32 = 21218;
/// 'To' phone number not verified (trial accounts call verified numbers only).
pub const TRIAL_TO_NOT_VERIFIED: u32 = 21219;
/// Invalid 'StatusCallback' URL.
pub const STATUS_CALLBACK_INVALID: u32 = 21609;
/// Phone number is not in E.164 format.
pub const NOT_E164: u32 = 13224;
/// `Twiml` parameter longer than 4000 characters.
pub const TWIML_TOO_LONG: u32 = 32018;
/// A call update with new TwiML for a call that is over ("Call is not in-progress. Cannot redirect.").
pub const CALL_NOT_IN_PROGRESS: u32 = 21220;

/// Twilio's title for a code, for messages and reports.
pub fn title(code: u32) -> &'static str {
    match code {
        STREAM_CONNECT_TIMEOUT => "Stream - WebSocket - Connection Timeout",
        STREAM_CONNECT_REFUSED => "Stream - WebSocket - Connection Refused",
        STREAM_TLS => "Stream - WebSocket - SSL Protocol Error",
        STREAM_HANDSHAKE => "Stream - WebSocket - Handshake Error",
        STREAM_NOT_WSS => "Stream - WebSocket - Secure connection required",
        STREAM_BAD_URL => "Stream - WebSocket - Malformed URL",
        STREAM_PROTOCOL => "Stream - WebSocket - Protocol Error",
        STREAM_BUFFER_FULL => "Stream - Protocol - Buffer full, audio dropped",
        STREAM_MALFORMED => "Stream - Protocol - Malformed Message",
        STREAM_INVALID_MESSAGE => "Stream - Protocol - Invalid Message",
        TWIML_PARSE => "Document parse failure",
        TWIML_INVALID => "Schema validation warning",
        HTTP_RETRIEVAL => "HTTP retrieval failure",
        TRIAL_CALL_LIMIT => "Call duration limit for trial accounts",
        INVALID_PARAMETER => "Invalid parameter",
        AUTHENTICATE => "Authenticate",
        NOT_FOUND => "The requested resource was not found",
        TOO_MANY_REQUESTS => "Too Many Requests",
        INTERNAL => "Internal Server Error",
        TO_MISSING => "No 'To' number is specified",
        URL_INVALID => "Url parameter is required",
        METHOD_INVALID => "Invalid Method",
        FROM_NOT_VERIFIED => "'From' phone number not verified",
        TO_INVALID => "Invalid 'To' Phone Number",
        FROM_INVALID => "Invalid 'From' Phone Number",
        FROM_MISSING => "No 'From' number is specified",
        APPLICATION_INVALID => "Invalid ApplicationSid",
        TRIAL_TO_NOT_VERIFIED => "'To' phone number not verified",
        STATUS_CALLBACK_INVALID => "Invalid 'StatusCallback'",
        NOT_E164 => "Invalid phone number format",
        TWIML_TOO_LONG => "Twiml parameter too long",
        _ => "Twilio error",
    }
}

/// Twilio's documentation link for a code (the `more_info` of REST errors).
pub fn more_info(code: u32) -> String {
    format!("https://www.twilio.com/docs/errors/{code}")
}
