//! Which model names the simulated Realtime API takes, as the real one does (checked
//! 2026-12-06 against OpenAI's deprecations page and model pages, `protocols.md` §F–G):
//!
//! - every current Realtime model and alias is accepted: `gpt-realtime-2.1`,
//!   `gpt-realtime-2.1-mini`, `gpt-realtime-2`, `gpt-realtime-1.5`, and — until their shutdown
//!   on 2027-01-20 — `gpt-realtime`, `gpt-realtime-mini` and their dated snapshots. Names the
//!   simulator does not know are accepted too: OpenAI adds models faster than a list is kept;
//! - models already shut down (`gpt-4o-realtime-preview*`, `gpt-4o-mini-realtime-preview*`) get
//!   OpenAI's `model_not_found` 404;
//! - GPT-Live models (`gpt-live-*`) get `invalid_model`: they speak another protocol on
//!   `/v1/live/sessions` (§G).

use crate::api_error::ApiError;

/// Models whose shutdown date has passed.
const SHUT_DOWN_PREFIXES: &[&str] = &["gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview"];

/// Why the Realtime API would refuse `model`, with the HTTP status it answers; `None` when it
/// takes it.
pub(crate) fn refusal(model: &str) -> Option<(u16, ApiError)> {
    if model.starts_with("gpt-live") {
        return Some((
            400,
            ApiError::invalid(
                "invalid_model",
                format!(
                    "Model '{model}' is a GPT-Live model and is not supported by the Realtime API. Use /v1/live/sessions."
                ),
                Some("model".into()),
            ),
        ));
    }
    if SHUT_DOWN_PREFIXES.iter().any(|p| model.starts_with(p)) {
        return Some((
            404,
            ApiError::invalid(
                "model_not_found",
                format!("The model `{model}` does not exist or you do not have access to it."),
                None,
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_retiring_realtime_models_are_taken() {
        for m in [
            "gpt-realtime-2.1",
            "gpt-realtime-2.1-mini",
            "gpt-realtime-2",
            "gpt-realtime-1.5",
            "gpt-realtime",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini",
            "gpt-realtime-mini-2025-10-06",
            "gpt-realtime-mini-2025-12-15",
            "gpt-realtime-3-not-yet-listed",
        ] {
            assert!(refusal(m).is_none(), "{m}");
        }
    }

    #[test]
    fn live_and_shut_down_models_are_refused_in_openais_shapes() {
        let (status, e) = refusal("gpt-live-1").unwrap();
        assert_eq!((status, e.code.as_deref()), (400, Some("invalid_model")));
        let (status, e) = refusal("gpt-4o-realtime-preview-2024-12-17").unwrap();
        assert_eq!((status, e.code.as_deref()), (404, Some("model_not_found")));
        assert!(e.message.contains("does not exist or you do not have access to it"));
    }
}
