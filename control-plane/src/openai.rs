//! OpenAI: the web agent's session on either voice engine, and the calls that start it for
//! the browser. The long-lived key never leaves this process.
//!
//! - Realtime (protocols.md C7): the session (instructions, voice, tools as strict JSON
//!   Schemas) goes to `POST /v1/realtime/client_secrets`, which turns it into the browser's
//!   ephemeral `ek_` secret; the page posts its SDP offer to `/v1/realtime/calls` with it.
//! - GPT-Live (protocols.md G): there are no ephemeral keys. The page posts its offer to the
//!   control plane under its session capability; [`OpenAiClient::create_live_call`] posts
//!   `{session, transport:{type:"webrtc", sdp}}` to `/v1/live/sessions` with the server key
//!   and hands back `transport.sdp`. The session ([`live_web_session`]) fixes the model, the
//!   instructions, the voice (no `audio.format`: WebRTC negotiates Opus), Responses
//!   delegation carrying `save_lead` and `trigger_call`, and what the untrusted page may do on
//!   its data channel ([`LIVE_PAGE_CLIENT_EVENTS`], [`live_page_server_events`]).
//!
//! # Who runs the tools on GPT-Live
//! The page forwards the delegated function calls to `/api/tools/*` under its session
//! capability, as it does on Realtime, rather than the control plane attaching a sideband
//! WebSocket (`/v1/live/sessions/{id}/attach`). The authority stays on the server either way:
//! the tool routes check the capability, the arguments, consent, the number and the call
//! policy, the rate limits, and bind the lead to the session, whoever relays the call; a page
//! that lies to the model about a result only misleads its own conversation. A sideband would
//! add a long-lived socket per visit to a control plane that is otherwise stateless (any
//! instance answers any request), pin each visit to the instance holding its socket, and
//! still need a second channel to tell the page that the call was placed (to close the visit
//! and follow the call). OpenAI's server-controls guide names this pattern ("the browser can
//! forward function-call events from its data channel to an authenticated backend").
//!
//! The data channel is narrowed to what the page needs: it may send the greeting
//! (`session.commentary.append`, the way the phone call greets too), the tool results
//! (`response.item.create`, `response.create`) and `session.close`; it sees
//! `session.started`, `session.closed`, `error`, the two transcripts and, of the Responses
//! stream, only `response.output_item.done` (where a function call arrives). It cannot change
//! the instructions or the delegation, append policy or silent context, or mute the input.

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

/// The Responses model a GPT-Live web session delegates its tools to when
/// `LIVE_DELEGATION_MODEL` is unset (the gateway's default for the phone tools too).
pub const LIVE_DELEGATION_MODEL: &str = "gpt-5-mini";

/// What the Responses model is told: run the two tools for Claire.
const LIVE_DELEGATION_INSTRUCTIONS: &str = "Tu exécutes les outils de Claire, conseillère de Callway, pendant sa conversation vocale avec un visiteur du site. save_lead enregistre le prénom, le nom et le numéro du visiteur, seulement avec son accord explicite (consent à true). trigger_call lance l'appel téléphonique vers le visiteur enregistré, avec le lead_id rendu par save_lead et un résumé de la conversation. Si un outil renvoie une erreur, rends son message tel quel pour que Claire le dise au visiteur.";

/// Client events the page may send on a GPT-Live data channel.
pub const LIVE_PAGE_CLIENT_EVENTS: [&str; 4] =
    ["session.commentary.append", "response.item.create", "response.create", "session.close"];

/// Server events the page may see on a GPT-Live data channel (`ServerEventSelector`s).
pub fn live_page_server_events() -> Value {
    json!([
        {"type": "session.started"},
        {"type": "session.closed"},
        {"type": "error"},
        {"type": "session.input_transcript.delta"},
        {"type": "session.output_transcript.delta"},
        {"type": "response.event", "response_event": "response.output_item.done"}
    ])
}

/// The web agent's GPT-Live session, as `POST /v1/live/sessions` takes it for a WebRTC call:
/// `model` speaks with `voice`, `delegation_model` (Responses) runs the tools.
pub fn live_web_session(model: &str, voice: &str, delegation_model: &str) -> Value {
    let tool = |name: &str, description: &str, parameters: Value| json!({"type": "function", "name": name, "description": description, "parameters": parameters, "strict": true});
    json!({
        "model": model,
        "instructions": WEB_AGENT_PROMPT,
        "audio": {"output": {"voice": voice}},
        "delegation": {
            "type": "responses",
            "responses": {
                "model": delegation_model,
                "instructions": LIVE_DELEGATION_INSTRUCTIONS,
                "tools": [
                    tool("save_lead",
                        "Enregistre le prénom, le nom et le numéro du visiteur, avec son accord, avant de le rappeler.",
                        save_lead_schema()),
                    tool("trigger_call",
                        "Lance l'appel téléphonique vers le visiteur enregistré par save_lead, avec le résumé de la conversation.",
                        trigger_call_schema())
                ],
                "tool_choice": "auto"
            }
        },
        "client": {"data_channel": {
            "allowed_client_events": LIVE_PAGE_CLIENT_EVENTS,
            "allowed_server_events": live_page_server_events()
        }}
    })
}

/// Body of `POST /v1/live/sessions` for a browser's offer.
pub fn live_call_request(model: &str, voice: &str, delegation_model: &str, offer_sdp: &str) -> Value {
    json!({"session": live_web_session(model, voice, delegation_model), "transport": {"type": "webrtc", "sdp": offer_sdp}})
}

/// A GPT-Live WebRTC session created for the page.
#[derive(Debug, Clone)]
pub struct LiveCall {
    /// The session id (for logs; a sideband would attach with it).
    pub session_id: String,
    /// The SDP answer for the page.
    pub answer_sdp: String,
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
    /// GPT-Live refused the page's SDP offer (`invalid_offer` and the like): the browser's side.
    #[error("OpenAI refused the browser's SDP offer (HTTP {status}): {message}")]
    OfferRefused {
        /// HTTP status.
        status: u16,
        /// OpenAI's `error.message`.
        message: String,
    },
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

    /// POSTs `body` to `path` with the server key: the 2xx answer's JSON, or why not
    /// (`what` names the endpoint in the operator's message).
    async fn post_json(&self, path: &str, body: &Value, what: &str) -> Result<Value, OpenAiError> {
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
        let status = res.status().as_u16();
        let text = res.text().await.map_err(|_| OpenAiError::Unavailable("unreadable answer".into()))?;
        if !(200..300).contains(&status) {
            return Err(refusal(status, &text));
        }
        serde_json::from_str(&text)
            .map_err(|e| OpenAiError::Unavailable(format!("unexpected {what} answer: {e}")))
    }

    /// `POST /v1/live/sessions` for the web agent's session with the page's SDP offer: the
    /// answer SDP, or why not (a refused offer apart from a refused session: the first is the
    /// browser's doing, the second ours).
    pub async fn create_live_call(
        &self,
        model: &str,
        voice: &str,
        delegation_model: &str,
        offer_sdp: &str,
    ) -> Result<LiveCall, OpenAiError> {
        let body = live_call_request(model, voice, delegation_model, offer_sdp);
        let v = self.post_json("/v1/live/sessions", &body, "/v1/live/sessions").await?;
        match (v["session"]["id"].as_str(), v["transport"]["sdp"].as_str()) {
            (Some(id), Some(sdp)) => Ok(LiveCall { session_id: id.to_owned(), answer_sdp: sdp.to_owned() }),
            _ => Err(OpenAiError::Unavailable(
                "the /v1/live/sessions answer has no session.id or transport.sdp".into(),
            )),
        }
    }

    /// `POST /v1/realtime/client_secrets` for the web agent's session.
    pub async fn create_client_secret(
        &self,
        model: &str,
        voice: &str,
        turn_detection: TurnDetection,
    ) -> Result<ClientSecret, OpenAiError> {
        let body = client_secret_request(model, voice, turn_detection);
        let v = self.post_json("/v1/realtime/client_secrets", &body, "client_secrets").await?;
        serde_json::from_value(v)
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
        let v = self.post_json("/v1/responses", &body, "responses").await?;
        output_text(&v).ok_or_else(|| OpenAiError::Unavailable("a response without output_text".into()))
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

/// A refusal from OpenAI's REST side, by status and `error` body.
fn refusal(status: u16, text: &str) -> OpenAiError {
    let error = serde_json::from_str::<Value>(text).ok().map(|v| v["error"].clone()).unwrap_or_default();
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    match status {
        401 | 403 => OpenAiError::Auth(status),
        429 => OpenAiError::RateLimited,
        500..=599 => OpenAiError::Unavailable(format!("HTTP {status}")),
        _ if error["code"] == "invalid_offer"
            || error["param"].as_str().is_some_and(|p| p.starts_with("transport")) =>
        {
            OpenAiError::OfferRefused { status, message }
        }
        _ => OpenAiError::Rejected { status, message },
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
    fn the_live_session_validates_against_the_official_live_schema() {
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/schemas/openai-live-client-events.schema.json"
            ))
            .expect("../shared/schemas must be beside the checkout"),
        )
        .unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        let session =
            live_web_session(contract::voice_api::LIVE_DEFAULT_MODEL, "marin", LIVE_DELEGATION_MODEL);
        let event = json!({"type": "session.start", "session": session});
        let errors: Vec<String> = v.iter_errors(&event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        // WebRTC negotiates the media format: none is sent.
        assert!(session["audio"].get("format").is_none());
        let tools = session["delegation"]["responses"]["tools"].as_array().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["save_lead", "trigger_call"]);
        let dc = &session["client"]["data_channel"];
        assert_eq!(dc["allowed_client_events"].as_array().unwrap().len(), 4);
        // Each client event the page may send, as app.js sends it, is one the schema knows.
        let sent = [
            json!({"type": "session.commentary.append", "content": "Salue le visiteur.", "delegation_id": null}),
            json!({"type": "response.item.create", "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"}}),
            json!({"type": "response.create"}),
            json!({"type": "session.close"}),
        ];
        for (event, kind) in sent.iter().zip(LIVE_PAGE_CLIENT_EVENTS) {
            assert_eq!(event["type"], kind);
            let errors: Vec<String> = v.iter_errors(event).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{kind}: {errors:#?}");
        }
        let body = live_call_request("gpt-live-1", "marin", "gpt-5.1", "v=0");
        assert_eq!(body["session"]["delegation"]["responses"]["model"], "gpt-5.1");
        assert_eq!(body["transport"], json!({"type": "webrtc", "sdp": "v=0"}));
    }

    #[test]
    fn refusals_tell_the_offer_from_the_session() {
        let body = |code: &str, param: &str| {
            format!(
                r#"{{"error":{{"message":"m","type":"invalid_request_error","param":"{param}","code":"{code}"}}}}"#
            )
        };
        assert!(matches!(
            refusal(400, &body("invalid_offer", "")),
            OpenAiError::OfferRefused { status: 400, .. }
        ));
        assert!(matches!(
            refusal(400, &body("missing_required_parameter", "transport.sdp")),
            OpenAiError::OfferRefused { .. }
        ));
        assert!(matches!(
            refusal(400, &body("unknown_parameter", "session.temperature")),
            OpenAiError::Rejected { .. }
        ));
        assert_eq!(refusal(401, ""), OpenAiError::Auth(401));
        assert_eq!(refusal(429, ""), OpenAiError::RateLimited);
        assert!(matches!(refusal(503, ""), OpenAiError::Unavailable(_)));
    }

    #[test]
    fn phone_instructions_fill_the_template() {
        let s = phone_instructions("Claire", "Veut un devis.");
        assert!(s.contains("rappelles Claire") && s.contains("Veut un devis.") && !s.contains('{'));
    }
}
