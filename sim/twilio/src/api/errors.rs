//! Twilio's REST error body: `{"code":…,"message":…,"more_info":"https://www.twilio.com/docs/errors/…","status":…}`
//! (keys in Twilio's alphabetical order; authentication errors also carry `detail`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::codes;

/// A REST error as Twilio returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// Twilio error code.
    pub code: u32,
    /// Extra explanation (authentication errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Message.
    pub message: String,
    /// Link to Twilio's page for the code.
    pub more_info: String,
    /// HTTP status.
    pub status: u16,
}

impl ApiError {
    /// An error with `code`, HTTP `status` and `message`.
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self { code, detail: None, message: message.into(), more_info: codes::more_info(code), status }
    }

    /// 400 with `code`.
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 401 20003.
    pub fn unauthorized(message: &str) -> Self {
        let mut e = Self::new(401, codes::AUTHENTICATE, message);
        e.detail = Some("Your AccountSid or AuthToken was incorrect.".into());
        e
    }

    /// 405 20004: `method` is not one `path` takes.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(405, codes::METHOD_NOT_ALLOWED, format!("Method {method} is not allowed on {path}"))
    }

    /// 404 20404 for `path`.
    pub fn not_found(path: &str) -> Self {
        Self::new(404, codes::NOT_FOUND, format!("The requested resource {path} was not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        if self.status == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Twilio API\""));
        }
        response
    }
}
