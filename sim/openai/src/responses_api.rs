//! `POST /v1/responses`: OpenAI's Responses API, for the control plane's end-of-call summary.
//!
//! Checked as the service checks it: Bearer API key (401), a JSON object (400 otherwise) with a
//! string `model` (400 `missing_required_parameter`; a Realtime, GPT-Live or unknown-family
//! model is 404 `model_not_found`, as the service answers a model it does not serve on this
//! endpoint), `input` a string or an array of `{role, content}` messages, and only the
//! parameters listed in [`KNOWN`] (400 `unknown_parameter`). The REST refusals injected with
//! `Fault::RefuseClientSecrets` (`--fault refuse-secrets:…`) answer here too, as on every REST
//! endpoint of the simulator.
//!
//! The answer is a `response` object with one assistant `message` whose `output_text` is a
//! deterministic summary of what it was given: the number of turns, the prospect's first and
//! last words and the agent's last words, so tests know exactly what to expect
//! ([`summarise`]). What a real model would write is, of course, not simulated.

use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::http::{Body, authenticate, json_response};
use crate::ids::IdGen;
use crate::state::{Shared, lock};

/// Parameters of `POST /v1/responses` the simulator accepts (the documented request body).
const KNOWN: &[&str] = &[
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "metadata",
    "store",
    "temperature",
    "top_p",
    "text",
    "user",
    "truncation",
    "previous_response_id",
    "reasoning",
    "service_tier",
    "parallel_tool_calls",
    "tool_choice",
    "tools",
    "include",
    "stream",
];

pub(crate) async fn create(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    let auth = authenticate(&shared, req.headers(), false).map(|_| ());
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let (status, json) = match auth {
        Err(refused) => refused,
        Ok(()) => match lock(&shared.live).take_refusal(false) {
            Some(r) => (r.status(), r.body()),
            None => match respond(&body) {
                Ok(v) => (200, v),
                Err((status, e)) => (status, e.to_body()),
            },
        },
    };
    shared.bump();
    json_response(status, &json)
}

/// The `response` object for a request body, or the refusal.
fn respond(body: &[u8]) -> Result<Value, (u16, ApiError)> {
    let bad = |e: ApiError| (400, e);
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        bad(ApiError::invalid("invalid_json", "We could not parse the JSON body of your request.", None))
    })?;
    let obj = v.as_object().ok_or_else(|| {
        bad(ApiError::invalid("invalid_type", "The request body must be a JSON object.", None))
    })?;
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(ApiError::unknown_parameter(k.clone())));
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        // The simulator's choice: streamed responses are not simulated.
        return Err(bad(ApiError::invalid(
            "unsupported_by_simulator",
            "stream=true is not simulated; ask without streaming",
            Some("stream".into()),
        )));
    }
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => {
            return Err(bad(ApiError::invalid(
                "invalid_type",
                "Invalid type for 'model': expected a string.",
                Some("model".into()),
            )));
        }
        None => return Err(bad(ApiError::missing_parameter("model".into()))),
    };
    if model.contains("realtime") || model.starts_with("gpt-live") || !text_model(&model) {
        return Err((
            404,
            ApiError {
                kind: "invalid_request_error",
                code: Some("model_not_found".into()),
                message: format!("The model `{model}` does not exist or you do not have access to it."),
                param: Some("model".into()),
            },
        ));
    }
    let lines = input_lines(obj.get("input")).map_err(bad)?;
    let text = summarise(&lines);
    let mut ids = IdGen::new();
    let input_tokens = tokens(&lines.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" "))
        + obj.get("instructions").and_then(Value::as_str).map_or(0, tokens);
    let output_tokens = tokens(&text);
    Ok(json!({
        "id": ids.next("resp"),
        "object": "response",
        "created_at": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "status": "completed",
        "error": null,
        "incomplete_details": null,
        "instructions": obj.get("instructions").cloned().unwrap_or(Value::Null),
        "max_output_tokens": obj.get("max_output_tokens").cloned().unwrap_or(Value::Null),
        "model": model,
        "output": [{
            "type": "message",
            "id": ids.next("msg"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }],
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "store": obj.get("store").and_then(Value::as_bool).unwrap_or(true),
        "temperature": obj.get("temperature").cloned().unwrap_or(json!(1.0)),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": obj.get("top_p").cloned().unwrap_or(json!(1.0)),
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": null,
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    }))
}

/// Text models the simulator serves: the GPT and o-series families.
fn text_model(model: &str) -> bool {
    model.starts_with("gpt-") || model.starts_with('o')
}

/// About four characters a token, as OpenAI's rule of thumb says.
fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// `input` as `(role, text)` pairs: a string is one `user` message; an array holds messages
/// whose `content` is a string or a list of `input_text` parts.
fn input_lines(input: Option<&Value>) -> Result<Vec<(String, String)>, ApiError> {
    match input {
        None => Err(ApiError::missing_parameter("input".into())),
        Some(Value::String(s)) => Ok(vec![("user".into(), s.clone())]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let role = item["role"].as_str().unwrap_or("user").to_owned();
                let text = match &item["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => {
                        parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(" ")
                    }
                    _ => return Err(ApiError::missing_parameter(format!("input[{i}].content"))),
                };
                Ok((role, text))
            })
            .collect(),
        Some(_) => Err(ApiError::invalid(
            "invalid_type",
            "Invalid type for 'input': expected a string or an array of input items.",
            Some("input".into()),
        )),
    }
}

/// The deterministic summary of a transcript given as lines `Agent: …` / `Prospect: …` (or
/// `Caller: …`) inside the input: turns counted, the prospect's first and last words, the
/// agent's last words.
pub fn summarise(lines: &[(String, String)]) -> String {
    let said: Vec<(&str, &str)> = lines
        .iter()
        .flat_map(|(_, t)| t.lines())
        .filter_map(|l| l.split_once(':'))
        .map(|(who, what)| (who.trim(), what.trim()))
        .filter(|(_, what)| !what.is_empty())
        .collect();
    let prospect: Vec<&str> = said
        .iter()
        .filter(|(w, _)| w.eq_ignore_ascii_case("prospect") || w.eq_ignore_ascii_case("caller"))
        .map(|(_, t)| *t)
        .collect();
    let agent_last = said.iter().rev().find(|(w, _)| w.eq_ignore_ascii_case("agent")).map(|(_, t)| *t);
    let mut out = format!("Appel de {} tour(s) de parole.", said.len());
    match (prospect.first(), prospect.last()) {
        (Some(first), Some(last)) if prospect.len() > 1 => {
            out.push_str(&format!(" Le prospect a d'abord dit « {first} », puis en dernier « {last} »."));
        }
        (Some(only), _) => out.push_str(&format!(" Le prospect a dit « {only} ».")),
        _ => out.push_str(" Le prospect n'a rien dit."),
    }
    if let Some(a) = agent_last {
        out.push_str(&format!(" Derniers mots de l'agent : « {a} »."));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(String, String)> {
        vec![("user".into(), text.into())]
    }

    #[test]
    fn the_summary_is_a_function_of_the_transcript() {
        let s = summarise(&lines(
            "Agent: Bonjour Camille.\nProspect: Oui, bonjour.\nProspect: Lundi 10 h me va.\nAgent: C'est noté, à lundi.",
        ));
        assert_eq!(
            s,
            "Appel de 4 tour(s) de parole. Le prospect a d'abord dit « Oui, bonjour. », puis en dernier « Lundi 10 h me va. ». Derniers mots de l'agent : « C'est noté, à lundi. »."
        );
        assert_eq!(
            summarise(&lines("Agent: Allô ?")),
            "Appel de 1 tour(s) de parole. Le prospect n'a rien dit. Derniers mots de l'agent : « Allô ? »."
        );
    }

    #[test]
    fn requests_are_checked_like_the_service() {
        let ok =
            respond(br#"{"model":"gpt-5-mini","instructions":"Resume.","input":"Agent: Bonjour."}"#).unwrap();
        assert_eq!(ok["object"], "response");
        assert_eq!(ok["output"][0]["content"][0]["type"], "output_text");
        assert!(ok["usage"]["total_tokens"].as_u64().unwrap() > 0);
        let err = |b: &[u8]| respond(b).unwrap_err();
        assert_eq!(err(b"{").0, 400);
        assert_eq!(err(br#"{"input":"x"}"#).1.code.as_deref(), Some("missing_required_parameter"));
        assert_eq!(
            err(br#"{"model":"gpt-5","input":"x","temprature":1}"#).1.code.as_deref(),
            Some("unknown_parameter")
        );
        let (status, e) = err(br#"{"model":"gpt-realtime-2.1","input":"x"}"#);
        assert_eq!((status, e.code.as_deref()), (404, Some("model_not_found")));
        assert_eq!(err(br#"{"model":"gpt-5","input":42}"#).1.code.as_deref(), Some("invalid_type"));
        let msgs = respond(br#"{"model":"gpt-5","input":[{"role":"user","content":[{"type":"input_text","text":"Prospect: Oui."}]}]}"#).unwrap();
        assert!(msgs["output"][0]["content"][0]["text"].as_str().unwrap().contains("« Oui. »"));
    }
}
