//! Errors in OpenAI's shapes: the Realtime `error` event and the REST error body.
//!
//! Messages follow the real service where they are known (the sources are in the crate's
//! README-style module docs of `session.rs`); codes the public record does not show are marked
//! as the simulator's choice where they are built.

use serde_json::{Value, json};

/// An API error before it is put in an event or a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// `invalid_request_error`, `server_error`…
    pub kind: &'static str,
    /// Machine code.
    pub code: Option<String>,
    /// Human text.
    pub message: String,
    /// Offending parameter (dotted path).
    pub param: Option<String>,
}

impl ApiError {
    /// An `invalid_request_error`.
    pub(crate) fn invalid(code: &str, message: impl Into<String>, param: Option<String>) -> Self {
        Self { kind: "invalid_request_error", code: Some(code.to_owned()), message: message.into(), param }
    }

    /// The `error` member shared by both shapes, with the client event id (events only).
    fn error_object(&self, client_event_id: Option<&str>, with_event_id: bool) -> Value {
        let mut e = json!({
            "type": self.kind,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        });
        if with_event_id {
            e["event_id"] = json!(client_event_id);
        }
        e
    }

    /// The Realtime `error` event (without its own `event_id`, assigned when sent).
    pub(crate) fn to_event(&self, client_event_id: Option<&str>) -> Value {
        json!({"type": "error", "error": self.error_object(client_event_id, true)})
    }

    /// The REST body `{"error":{"message","type","param","code"}}`.
    pub(crate) fn to_body(&self) -> Value {
        json!({"error": self.error_object(None, false)})
    }

    /// `unknown_parameter`.
    pub(crate) fn unknown_parameter(param: String) -> Self {
        Self::invalid("unknown_parameter", format!("Unknown parameter: '{param}'."), Some(param))
    }

    /// `missing_required_parameter`.
    pub(crate) fn missing_parameter(param: String) -> Self {
        Self::invalid(
            "missing_required_parameter",
            format!("Missing required parameter: '{param}'."),
            Some(param),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_body_shapes() {
        let e = ApiError::missing_parameter("item.call_id".into());
        assert_eq!(
            e.to_event(Some("evt_1")),
            json!({"type":"error","error":{"type":"invalid_request_error","code":"missing_required_parameter",
                "message":"Missing required parameter: 'item.call_id'.","param":"item.call_id","event_id":"evt_1"}})
        );
        assert_eq!(e.to_event(None)["error"]["event_id"], Value::Null);
        assert_eq!(
            e.to_body(),
            json!({"error":{"type":"invalid_request_error","code":"missing_required_parameter",
                "message":"Missing required parameter: 'item.call_id'.","param":"item.call_id"}})
        );
    }
}
