//! OpenAI: the web agent's Realtime session (instructions, voice, tools as strict JSON
//! Schemas) and the `POST /v1/realtime/client_secrets` call that turns it into the browser's
//! ephemeral `ek_…` secret (protocols.md C7). The long-lived key never leaves this process.

use contract::realtime::TurnDetection;
use serde::Deserialize;
use serde_json::{Value, json};

/// The web agent's instructions (French), from `prompts/web_agent_fr.md`.
pub const WEB_AGENT_PROMPT: &str = include_str!("../prompts/web_agent_fr.md");
/// The phone agent's instructions template (`{first_name}`, `{summary}`), from
/// `prompts/phone_agent_fr.md`.
pub const PHONE_AGENT_PROMPT: &str = include_str!("../prompts/phone_agent_fr.md");
/// Seconds an ephemeral secret may be used to start a session.
pub const CLIENT_SECRET_TTL_SECS: u64 = 600;

/// Arguments schema of the web `save_lead` tool: strict (every property required, nothing else).
pub fn save_lead_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "first_name": {"type": "string", "minLength": 1, "maxLength": 80, "description": "Prénom du visiteur"},
            "last_name": {"type": "string", "minLength": 1, "maxLength": 80, "description": "Nom de famille du visiteur"},
            "phone": {"type": "string", "minLength": 4, "maxLength": 40, "description": "Numéro de téléphone tel que dicté (ex. 06 12 34 56 78)"},
            "consent": {"type": "boolean", "description": "true seulement si le visiteur a explicitement accepté d'être rappelé et que ses coordonnées soient conservées"}
        },
        "required": ["first_name", "last_name", "phone", "consent"],
        "additionalProperties": false
    })
}

/// Arguments schema of the web `trigger_call` tool.
pub fn trigger_call_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "lead_id": {"type": "string", "description": "Le lead_id renvoyé par save_lead"},
            "summary": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "Résumé de la conversation web en quelques lignes : besoin, points importants, questions en suspens"}
        },
        "required": ["lead_id", "summary"],
        "additionalProperties": false
    })
}

/// The web session's `turn_detection`. `none` (the gateway commits) is a phone setting: the
/// page never commits audio itself, so the web session then keeps `server_vad`.
fn web_turn_detection(td: TurnDetection) -> Value {
    match td {
        TurnDetection::SemanticVad { eagerness } => json!({
            "type": "semantic_vad", "eagerness": eagerness.as_str(), "create_response": true, "interrupt_response": true
        }),
        TurnDetection::ServerVad | TurnDetection::Off => json!({
            "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
            "create_response": true, "interrupt_response": true
        }),
    }
}

/// The web agent's session, in the GA shape (validated against the official schema in tests).
pub fn web_session(model: &str, voice: &str, turn_detection: TurnDetection) -> Value {
    json!({
        "type": "realtime",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": WEB_AGENT_PROMPT,
        "audio": {
            "input": {
                "transcription": {"model": "gpt-4o-transcribe", "language": "fr"},
                "turn_detection": web_turn_detection(turn_detection)
            },
            "output": {"voice": voice}
        },
        "tools": [
            {"type": "function", "name": "save_lead",
             "description": "Enregistre le prénom, le nom et le numéro du visiteur, avec son accord, avant de le rappeler.",
             "parameters": save_lead_schema()},
            {"type": "function", "name": "trigger_call",
             "description": "Lance l'appel téléphonique vers le visiteur enregistré par save_lead, avec le résumé de la conversation.",
             "parameters": trigger_call_schema()}
        ],
        "tool_choice": "auto"
    })
}

/// Body of `POST /v1/realtime/client_secrets`.
pub fn client_secret_request(model: &str, voice: &str, turn_detection: TurnDetection) -> Value {
    json!({
        "expires_after": {"anchor": "created_at", "seconds": CLIENT_SECRET_TTL_SECS},
        "session": web_session(model, voice, turn_detection)
    })
}

/// The phone agent's instructions for a call.
pub fn phone_instructions(first_name: &str, summary: &str) -> String {
    PHONE_AGENT_PROMPT.replace("{first_name}", first_name).replace("{summary}", summary)
}

/// An ephemeral secret.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientSecret {
    /// `ek_…`.
    pub value: String,
    /// Unix seconds after which it cannot start a session.
    pub expires_at: u64,
}

/// Why no secret could be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenAiError {
    /// 401/403: the key is wrong or lacks Realtime access.
    #[error("OpenAI refused OPENAI_API_KEY (HTTP {0})")]
    Auth(u16),
    /// 429: quota or rate limit.
    #[error("OpenAI is rate limiting this key (429)")]
    RateLimited,
    /// Unreachable, 5xx, or an answer we cannot read.
    #[error("OpenAI is unavailable: {0}")]
    Unavailable(String),
    /// Another 4xx (an invalid session: a bug here).
    #[error("OpenAI rejected the session (HTTP {status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// OpenAI's `error.message`.
        message: String,
    },
}

/// Client for the REST side of Realtime.
#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl OpenAiClient {
    /// A client against `base_url` (`https://api.openai.com`, an EU host, or a simulator).
    pub fn new(http: reqwest::Client, base_url: &str, api_key: &str) -> Self {
        Self { http, base_url: base_url.trim_end_matches('/').to_owned(), api_key: api_key.to_owned() }
    }

    /// `POST /v1/realtime/client_secrets` for the web agent's session.
    pub async fn create_client_secret(
        &self,
        model: &str,
        voice: &str,
        turn_detection: TurnDetection,
    ) -> Result<ClientSecret, OpenAiError> {
        let text = self
            .post("/v1/realtime/client_secrets", &client_secret_request(model, voice, turn_detection))
            .await?;
        serde_json::from_str(&text)
            .map_err(|e| OpenAiError::Unavailable(format!("unexpected client_secrets answer: {e}")))
    }

    /// `POST /v1/responses`: `instructions` and `input` to the text `model`, not stored at
    /// OpenAI (`store: false`); the text of the answer's `output_text` parts.
    pub async fn respond(&self, model: &str, instructions: &str, input: &str) -> Result<String, OpenAiError> {
        let body = json!({
            "model": model,
            "instructions": instructions,
            "input": input,
            "store": false,
            "max_output_tokens": 600,
        });
        let text = self.post("/v1/responses", &body).await?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| OpenAiError::Unavailable(format!("unexpected responses answer: {e}")))?;
        output_text(&v).ok_or_else(|| OpenAiError::Unavailable("a response without output_text".into()))
    }

    /// `POST {base}{path}` with `body` and the server key; the body of a 2xx answer.
    async fn post(&self, path: &str, body: &Value) -> Result<String, OpenAiError> {
        let res = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                OpenAiError::Unavailable(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "connection failed".into()
                })
            })?;
        answer(res).await
    }
}

/// The text of a Responses API `response`: its `message` items' `output_text` parts, joined.
pub fn output_text(response: &Value) -> Option<String> {
    let parts: Vec<&str> = response["output"]
        .as_array()?
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().into_iter().flatten())
        .filter(|part| part["type"] == "output_text")
        .filter_map(|part| part["text"].as_str())
        .collect();
    let text = parts.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The body of a 2xx answer, or the error its status says.
async fn answer(res: reqwest::Response) -> Result<String, OpenAiError> {
    let status = res.status().as_u16();
    let text = res.text().await.map_err(|_| OpenAiError::Unavailable("unreadable answer".into()))?;
    match status {
        200..=299 => Ok(text),
        401 | 403 => Err(OpenAiError::Auth(status)),
        429 => Err(OpenAiError::RateLimited),
        500..=599 => Err(OpenAiError::Unavailable(format!("HTTP {status}"))),
        _ => {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_default();
            Err(OpenAiError::Rejected { status, message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_schemas_are_strict() {
        for s in [save_lead_schema(), trigger_call_schema()] {
            assert_eq!(s["additionalProperties"], false);
            let props: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
            let required: Vec<&str> =
                s["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            assert_eq!(props.len(), required.len());
            for p in props {
                assert!(required.contains(&p.as_str()), "{p} not required");
            }
        }
    }

    #[test]
    fn session_validates_against_the_official_ga_schema() {
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/schemas/openai-realtime-client-events.schema.json"
            ))
            .expect("../shared/schemas must be beside the checkout"),
        )
        .unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        for td in [
            TurnDetection::ServerVad,
            TurnDetection::SemanticVad { eagerness: contract::realtime::Eagerness::High },
            TurnDetection::Off,
        ] {
            let event = json!({"type": "session.update", "session": web_session(contract::realtime::DEFAULT_MODEL, "marin", td)});
            let errors: Vec<String> = v.iter_errors(&event).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{td:?}: {errors:#?}");
            let sent = &event["session"]["audio"]["input"]["turn_detection"];
            let want = if td == TurnDetection::Off { "server_vad" } else { td.name() };
            assert_eq!(sent["type"], want, "{td:?}");
        }
        let semantic = web_session(
            "gpt-realtime-2.1",
            "marin",
            TurnDetection::SemanticVad { eagerness: contract::realtime::Eagerness::Low },
        );
        assert_eq!(semantic["audio"]["input"]["turn_detection"]["eagerness"], "low");
        let bad = json!({"type": "session.update", "session": {"type": "realtime", "temperature": 0.8}});
        assert!(!v.is_valid(&bad));
        let body = client_secret_request("gpt-realtime-2.1", "marin", TurnDetection::ServerVad);
        assert_eq!(body["expires_after"]["seconds"], 600);
    }

    #[test]
    fn phone_instructions_fill_the_template() {
        let s = phone_instructions("Claire", "Veut un devis.");
        assert!(s.contains("rappelles Claire") && s.contains("Veut un devis.") && !s.contains('{'));
    }
}
