//! The control plane's internal API, as the gateway calls it (`contract::internal_api`): every
//! request HMAC-signed with `INTERNAL_API_SECRET`, JSON in and out, each under a timeout.
//! One client per worker thread (its connection pool lives on that thread's runtime).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use contract::internal_api::{
    AmdStatus, AmdWait, ApiError, CONTEXT_VERSION, CONTEXT_VERSION_HEADER, CallContext, CallEventsBatch,
    InternalAuth, REDEEM_PATH, RedeemRequest, SIGNATURE_HEADER, TIMESTAMP_HEADER, ToolRequest, ToolResponse,
    amd_path, events_path, tool_path,
};
use serde::Serialize;

/// Redemption is on the upgrade path: Twilio waits for our answer.
const REDEEM_TIMEOUT: Duration = Duration::from_secs(5);
/// A tool may take a while (Twilio REST for `end_call`); the call speaks a fallback meanwhile.
pub(crate) const TOOL_TIMEOUT: Duration = Duration::from_secs(15);
/// Beyond the wait the control plane may hold an answering-machine question.
const AMD_MARGIN: Duration = Duration::from_secs(2);
/// One event batch.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(5);

/// Unix seconds now.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Why a redemption did not give a call context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedeemError {
    /// The control plane refused the token: answer Twilio with `status`.
    Refused {
        /// HTTP status for the refusal to Twilio.
        status: u16,
        /// The control plane's error code.
        code: String,
    },
    /// The control plane could not be asked (down, misconfigured secret, bad answer).
    Unavailable(String),
}

/// A client of the internal API.
#[derive(Clone)]
pub(crate) struct ControlPlane {
    http: reqwest::Client,
    base: Arc<str>,
    auth: Arc<InternalAuth>,
}

impl ControlPlane {
    /// For `base` (`CONTROL_PLANE_URL`) with the shared secret.
    pub(crate) fn new(base: &str, auth: Arc<InternalAuth>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("a reqwest client with rustls builds");
        Self { http, base: base.into(), auth }
    }

    async fn post<T: Serialize>(
        &self,
        path: &str,
        body: &T,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let ts = now_unix();
        let signature = self.auth.sign(ts, "POST", path, &bytes);
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .timeout(timeout)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, signature)
            // The call-context shape this build reads (the control plane adds newer fields only
            // for gateways that announce them).
            .header(CONTEXT_VERSION_HEADER, CONTEXT_VERSION)
            .body(bytes)
            .send()
            .await
            .map_err(|e| format!("control plane unreachable: {e}"))?;
        let status = res.status().as_u16();
        let body = res.bytes().await.map_err(|e| format!("control plane answer cut: {e}"))?;
        Ok((status, body.to_vec()))
    }

    /// Redeems a stream token (single use) for the call's context.
    pub(crate) async fn redeem(&self, token: &str) -> Result<CallContext, RedeemError> {
        let req = RedeemRequest { token: token.to_owned(), call_sid: None };
        let (status, body) =
            self.post(REDEEM_PATH, &req, REDEEM_TIMEOUT).await.map_err(RedeemError::Unavailable)?;
        if status == 200 {
            return serde_json::from_slice(&body)
                .map_err(|e| RedeemError::Unavailable(format!("redeem answer is not a call context: {e}")));
        }
        let code = serde_json::from_slice::<ApiError>(&body).map(|e| e.code).unwrap_or_default();
        let refused = |status: u16| RedeemError::Refused { status, code: code.clone() };
        match (status, code.as_str()) {
            // Used already (a replay), unknown to every call, or expired meanwhile.
            (409 | 404 | 410, _) => Err(refused(status)),
            // The token itself is bad (the gateway checked it, so only with rotated secrets).
            (400, _) | (401, "token_invalid") => Err(refused(403)),
            _ => Err(RedeemError::Unavailable(format!(
                "redeem answered HTTP {status} {code:?}{}",
                if status == 401 {
                    ": INTERNAL_API_SECRET must be the same on gateway and control plane"
                } else {
                    ""
                }
            ))),
        }
    }

    /// Runs phone tool `name` for `call_id`.
    pub(crate) async fn tool(
        &self,
        call_id: &str,
        name: &str,
        req: &ToolRequest,
    ) -> Result<ToolResponse, String> {
        let (status, body) = self.post(&tool_path(call_id, name), req, TOOL_TIMEOUT).await?;
        if status != 200 {
            return Err(format!("tool {name} answered HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| format!("tool {name} answer is not a ToolResponse: {e}"))
    }

    /// Asks whether answering-machine detection runs on `call_id` and what it found, the
    /// control plane holding the request up to `wait_ms` for a result not known yet.
    pub(crate) async fn amd(&self, call_id: &str, wait_ms: u32) -> Result<AmdStatus, String> {
        let timeout = Duration::from_millis(u64::from(wait_ms)) + AMD_MARGIN;
        let (status, body) = self.post(&amd_path(call_id), &AmdWait { wait_ms }, timeout).await?;
        if status != 200 {
            return Err(format!("amd answered HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| format!("amd answer is not an AmdStatus: {e}"))
    }

    /// Posts one batch of call events (idempotent by `seq` on the control plane's side).
    pub(crate) async fn events(&self, call_id: &str, batch: &CallEventsBatch) -> Result<(), String> {
        let (status, body) = self.post(&events_path(call_id), batch, EVENTS_TIMEOUT).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("events answered HTTP {status}: {}", String::from_utf8_lossy(&body)))
        }
    }
}
