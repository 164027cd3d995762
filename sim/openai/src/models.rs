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

/// GPT-Live models (`protocols.md` G).
pub(crate) const LIVE_MODELS: &[&str] = &["gpt-live-1", "gpt-live-1.1"];

/// Why `session.start` on `/v1/live/sessions` would refuse `model` (an `error` event, the
/// session not started); `None` when it takes it. Every `gpt-live-*` name is taken (dated
/// snapshots, names not yet listed, as for Realtime); any other model, a Realtime one
/// included, is `invalid_model` (the code G lists; the wording is the simulator's).
pub(crate) fn live_refusal(model: &str) -> Option<ApiError> {
    if model.starts_with("gpt-live-") {
        return None;
    }
    let hint = if model.contains("realtime") { " Realtime models are served on /v1/realtime." } else { "" };
    Some(ApiError::invalid(
        "invalid_model",
        format!(
            "Model '{model}' is not supported by the Live API. Supported models: {}.{hint}",
            LIVE_MODELS.join(", ")
        ),
        Some("session.model".into()),
    ))
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

    #[test]
    fn the_live_endpoint_takes_live_models_only() {
        for m in ["gpt-live-1", "gpt-live-1.1", "gpt-live-1-2026-11-20"] {
            assert!(live_refusal(m).is_none(), "{m}");
        }
        for m in ["gpt-realtime-2.1", "gpt-realtime", "gpt-4o", "gpt-live"] {
            let e = live_refusal(m).unwrap();
            assert_eq!(
                (e.code.as_deref(), e.param.as_deref()),
                (Some("invalid_model"), Some("session.model")),
                "{m}"
            );
        }
        assert!(live_refusal("gpt-realtime-2.1").unwrap().message.contains("/v1/realtime"));
    }
}
