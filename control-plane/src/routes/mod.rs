//! HTTP routes of the control plane and what they share: the application state, the JSON error
//! answer, the body extractor (size-limited, JSON-checked, raw bytes kept for signatures).
//!
//! - [`web`]: the page (`/`, `/static/app.{js,css}`), `/api/session`, `/api/session/webrtc`
//!   (GPT-Live), `/api/tools/{save_lead,trigger_call}`, `/api/calls/{call_id}` (browser side);
//! - [`twilio`]: signed status callbacks (call and stream);
//! - [`internal`]: the HMAC-authenticated API the gateway calls;
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`, admin erasure and purge.

pub mod internal;
pub mod ops;
pub mod twilio;
pub mod web;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use contract::internal_api::ApiError;
use contract::stream_token::{StreamTokenMinter, StreamTokenVerifier};
use contract::twilio_signature::TwilioSigner;
use ring::rand::SystemRandom;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::capability::CapabilityKey;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::openai::OpenAiClient;
use crate::ratelimit::RateLimiter;
use crate::store::{Storage, StoreError};
use crate::twilio::TwilioClient;

/// Largest JSON body of a browser route.
pub const PUBLIC_BODY_LIMIT: usize = 16 * 1024;
/// Largest body of an internal route (event batches).
pub const INTERNAL_BODY_LIMIT: usize = 512 * 1024;
/// Seconds a session capability lasts.
pub const SESSION_TTL_SECS: u64 = 30 * 60;

/// The rate limiters, behind one lock (each check is a hash lookup).
pub struct Limiters {
    /// `/api/session` per IP.
    pub sessions_per_ip: RateLimiter<std::net::IpAddr>,
    /// `save_lead` per session.
    pub saves_per_session: RateLimiter<Uuid>,
    /// `trigger_call` per session.
    pub calls_per_session: RateLimiter<Uuid>,
    /// `trigger_call` per number.
    pub calls_per_number: RateLimiter<String>,
    /// `trigger_call` per IP.
    pub calls_per_ip: RateLimiter<std::net::IpAddr>,
    /// `GET /api/calls/{call_id}` per IP.
    pub progress_per_ip: RateLimiter<std::net::IpAddr>,
    /// `POST /api/session/webrtc` (GPT-Live sessions started) per web session.
    pub offers_per_session: RateLimiter<Uuid>,
}

/// Everything a handler needs.
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// Storage with its outbox.
    pub storage: Arc<Storage>,
    /// OpenAI REST.
    pub openai: OpenAiClient,
    /// Twilio REST.
    pub twilio: TwilioClient,
    /// Twilio signature checks.
    pub twilio_signer: TwilioSigner,
    /// Stream-token minting.
    pub minter: StreamTokenMinter,
    /// Stream-token checks (redemption).
    pub verifier: StreamTokenVerifier,
    /// Internal API authentication.
    pub internal_auth: contract::internal_api::InternalAuth,
    /// Session capabilities.
    pub capabilities: CapabilityKey,
    /// Rate limiters.
    pub limits: Mutex<Limiters>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// CSPRNG for nonces.
    pub rng: SystemRandom,
    /// "Now" for scheduled work (retries); a [`crate::clock::ManualClock`] in tests.
    pub clock: Arc<dyn crate::clock::Clock>,
    /// This process, as recorded on the retries it claims (`host-pid-random`).
    pub instance_id: String,
}

/// Shared state type of the router.
pub type SharedApp = Arc<App>;

impl App {
    /// Builds the state from a validated config and an opened storage.
    pub fn new(config: Config, storage: Arc<Storage>, metrics: Arc<Metrics>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .user_agent(crate::store::supabase::USER_AGENT)
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let l = config.limits;
        Ok(Self {
            openai: OpenAiClient::new(http.clone(), &config.openai_base_url, &config.openai_api_key),
            twilio: TwilioClient::new(
                http,
                &config.twilio_api_base,
                &config.twilio_account_sid,
                &config.twilio_auth_token,
            )
            .with_host_header(config.twilio_api_host_header.clone()),
            twilio_signer: TwilioSigner::new(config.twilio_auth_token.as_bytes()),
            minter: StreamTokenMinter::new(&config.stream_token_secret).map_err(|e| e.to_string())?,
            // Tokens minted before a rotation still redeem (STREAM_TOKEN_SECRET_PREVIOUS).
            verifier: StreamTokenVerifier::new(
                &[Some(&config.stream_token_secret), config.stream_token_secret_previous.as_ref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>(),
                30,
            )
            .map_err(|e| e.to_string())?,
            internal_auth: contract::internal_api::InternalAuth::with_previous(
                &config.internal_api_secret,
                config.internal_api_secret_previous.as_deref(),
            ),
            capabilities: CapabilityKey::derive_with_previous(
                &config.stream_token_secret,
                config.stream_token_secret_previous.as_deref(),
            ),
            limits: Mutex::new(Limiters {
                sessions_per_ip: RateLimiter::new(l.sessions_per_ip),
                saves_per_session: RateLimiter::new(l.saves_per_session),
                calls_per_session: RateLimiter::new(l.calls_per_session),
                calls_per_number: RateLimiter::new(l.calls_per_number),
                calls_per_ip: RateLimiter::new(l.calls_per_ip),
                progress_per_ip: RateLimiter::new(l.progress_per_ip),
                offers_per_session: RateLimiter::new(l.offers_per_session),
            }),
            config,
            storage,
            metrics,
            rng: SystemRandom::new(),
            clock: Arc::new(crate::clock::SystemClock),
            instance_id: format!(
                "{}-{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "cp".into()),
                std::process::id(),
                &Uuid::new_v4().simple().to_string()[..8]
            ),
        })
    }

    /// Locks the limiters (never poisoned in practice: the critical sections cannot panic).
    pub fn limiters(&self) -> std::sync::MutexGuard<'_, Limiters> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The whole router.
pub fn router(app: SharedApp) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/static/app.js", get(web::app_js))
        .route("/static/app.css", get(web::app_css))
        .route("/api/session", post(web::create_session))
        .route(web::LIVE_OFFER_PATH, post(web::live_offer))
        .route("/api/tools/save_lead", post(web::save_lead))
        .route("/api/tools/trigger_call", post(web::trigger_call))
        .route("/api/calls/{call_id}", get(web::call_progress))
        .route("/twilio/status", post(twilio::call_status))
        .route("/twilio/stream-status", post(twilio::stream_status))
        .route("/twilio/amd", post(twilio::amd_status))
        .route("/twilio/transfer", post(twilio::transfer_status))
        .route(contract::internal_api::REDEEM_PATH, post(internal::redeem))
        .route("/internal/v1/calls/{call_id}/tools/{tool}", post(internal::tool))
        .route("/internal/v1/calls/{call_id}/amd", post(internal::amd))
        .route("/internal/v1/calls/{call_id}/events", post(internal::events))
        .route("/admin/erase", post(ops::erase))
        .route("/admin/opt-out", post(ops::opt_out))
        .route("/admin/purge-transcripts", post(ops::purge))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(crate::admin::router())
        .fallback(|| async { ApiFailure::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(INTERNAL_BODY_LIMIT))
        .with_state(app)
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Every refusal: a status and a JSON [`ApiError`] body (`{"code", "message"}`).
#[derive(Debug)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// Body.
    pub error: ApiError,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
}

impl ApiFailure {
    /// A failure with a code and a message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, error: ApiError { code: code.to_owned(), message: message.into() }, retry_after: None }
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// A storage failure: unavailable is 503 (retry), anything else 500.
    pub fn storage(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => {
                tracing::warn!(%why, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "Le service est momentanément indisponible, réessayez dans un instant.",
                )
                .retry_after(5)
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", "internal storage error")
            }
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.error)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// A request body: size-limited, read whole, bytes kept (signatures are over the raw bytes).
pub struct RawBody {
    /// The bytes.
    pub bytes: Bytes,
    /// The path it was sent to.
    pub path: String,
    /// The path and query it was sent to.
    pub path_and_query: String,
    /// The headers.
    pub headers: HeaderMap,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let limit =
            if req.uri().path().starts_with("/internal/") { INTERNAL_BODY_LIMIT } else { PUBLIC_BODY_LIMIT };
        let too_big = || {
            ApiFailure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is over the {limit}-byte limit of this route"),
            )
        };
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_big());
        }
        let path = req.uri().path().to_owned();
        let path_and_query =
            req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| path.clone());
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_big())?;
        Ok(Self { bytes, path, path_and_query, headers: parts.headers })
    }
}

impl RawBody {
    /// Requires `Content-Type: application/json` and parses the body as `T`: a syntax error is
    /// 400 `malformed_json`, a shape error (missing, unknown or mistyped field) 422
    /// `invalid_body`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiFailure> {
        let ct = self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(ApiFailure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        parse_json(&self.bytes)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Parses JSON with the 400/422 split of [`RawBody::json`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiFailure> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                ApiFailure::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string())
            }
            _ => ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("body is not valid JSON: {e}"),
            ),
        }
    })
}

/// The client address (the TCP peer; put the service behind a proxy that does not hide it, or
/// extend this to trust that proxy's header).
pub fn client_ip(addr: &SocketAddr) -> std::net::IpAddr {
    addr.ip()
}
