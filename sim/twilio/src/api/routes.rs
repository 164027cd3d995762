//! The REST endpoints: HTTP Basic authentication, injected faults, validation, and the
//! resources. Every request is recorded with its answer.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tokio::sync::watch;

use super::errors::ApiError;
use super::host::ApiHost;
use super::resources::{self, account_path};
use super::state::{
    CallEntry, CallSnapshot, CallStatus, RecordedRequest, Shared, StatusChange, set_status_at,
};
use super::validate::{self, AccountView};
use super::{Fault, runner};
use crate::caller::HangupHandle;
use crate::{codes, sids};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2010-04-01/Accounts/{account}/Calls.json", get(list_calls).post(create_call))
        .route("/2010-04-01/Accounts/{account}/Calls/{call}", get(fetch_call).post(update_call))
        .route("/2010-04-01/Accounts/{account}/OutgoingCallerIds.json", get(list_caller_ids))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn basic_user(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok())
}

/// Refuses what Twilio would not serve under the request's `Host`: a retired or unknown
/// Twilio name (404; the real service answers no longer, the simulator says why), or a region
/// other than the account's when the account has one (401 20003: credentials are per region).
fn check_host(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = host_of(headers);
    let classified = ApiHost::classify(host);
    let shown = host.unwrap_or_default();
    let region = match (&classified, classified.processing_region()) {
        (ApiHost::Retired { region }, _) => {
            return Err(ApiError::new(
                404,
                codes::NOT_FOUND,
                format!(
                    "api.{region}.twilio.com no longer accepts requests (retired on 2026-04-28): use api.twilio.com, or api.{{edge}}.{{region}}.twilio.com such as api.dublin.ie1.twilio.com"
                ),
            ));
        }
        (_, None) => {
            return Err(ApiError::new(404, codes::NOT_FOUND, format!("{shown} is not a Twilio API host")));
        }
        (_, Some(r)) => r,
    };
    match &shared.cfg.region {
        Some(account_region) if account_region != region => Err(ApiError::unauthorized(&format!(
            "Authentication Error - these credentials belong to region {account_region}, the request was addressed to region {region} ({shown})"
        ))),
        _ => Ok(()),
    }
}

fn authenticate(shared: &Shared, headers: &HeaderMap, account: &str) -> Result<(), ApiError> {
    check_host(shared, headers)?;
    let Some((user, pass)) = basic_user(headers) else {
        return Err(ApiError::unauthorized("Authentication Error - No credentials provided"));
    };
    let cfg = &shared.cfg;
    let valid = (user == cfg.account_sid && pass == cfg.auth_token)
        || cfg.api_keys.iter().any(|(k, s)| *k == user && *s == pass);
    if !valid {
        return Err(ApiError::unauthorized("Authentication Error - invalid username"));
    }
    if account != cfg.account_sid {
        return Err(ApiError::unauthorized(
            "Authentication Error - the credentials do not belong to this account",
        ));
    }
    Ok(())
}

/// Records the request and turns the result into the HTTP answer.
fn respond(
    shared: &Shared,
    method: &Method,
    path: &str,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
    result: Result<(StatusCode, Value), ApiError>,
) -> Response {
    let refused_code = result.as_ref().err().map(|e| e.code);
    let (status, body, response) = match result {
        Ok((status, body)) => (status.as_u16(), body.clone(), (status, axum::Json(body)).into_response()),
        Err(e) => (e.status, serde_json::to_value(&e).unwrap_or(Value::Null), e.into_response()),
    };
    let host = host_of(headers).unwrap_or_default();
    match refused_code {
        // A refusal is said once, with the Twilio error code it carried, so a misdirected
        // client shows in the log.
        Some(code) => tracing::info!(%method, %path, status, code, host, "request refused"),
        None => tracing::info!(%method, %path, status, host, "api request"),
    }
    let record = RecordedRequest {
        method: method.to_string(),
        path: path.to_owned(),
        params,
        auth_user: basic_user(headers).map(|(u, _)| u),
        host: host_of(headers).map(str::to_owned),
        status,
        response: body,
    };
    shared.update(|i| i.requests.push(record));
    response
}

fn phone_number_sid(shared: &Shared, from: &str) -> Option<String> {
    shared.read(|i| {
        i.owned_sids
            .get(from)
            .cloned()
            .or_else(|| i.verified.iter().find(|(n, _, _)| n == from).map(|(_, s, _)| s.clone()))
    })
}

fn call_body(shared: &Shared, snap: &CallSnapshot) -> Value {
    resources::call_json(snap, &shared.clock, phone_number_sid(shared, &snap.from).as_deref())
}

async fn create_call(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_form(&body);
    let result = create(&shared, &account, &headers, &params);
    respond(&shared, &method, uri.path(), params, &headers, result)
}

fn create(
    shared: &Arc<Shared>,
    account: &str,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<(StatusCode, Value), ApiError> {
    authenticate(shared, headers, account)?;
    if let Some(fault) = shared.update(|i| i.faults.pop_front()) {
        return Err(match fault {
            Fault::RateLimited => ApiError::new(429, codes::TOO_MANY_REQUESTS, "Too Many Requests"),
            Fault::ServerError => ApiError::new(500, codes::INTERNAL, "Internal Server Error"),
        });
    }
    let verified: Vec<String> = shared.read(|i| i.verified.iter().map(|(n, _, _)| n.clone()).collect());
    let req = validate::validate_create(
        params,
        &AccountView { owned: &shared.cfg.owned_numbers, verified: &verified, trial: shared.cfg.trial },
    )?;
    let sid = sids::new_sid(sids::CALL);
    let now = shared.clock.elapsed();
    let snap = CallSnapshot {
        sid: sid.clone(),
        account_sid: shared.cfg.account_sid.clone(),
        to: req.to.clone(),
        from: req.from.clone(),
        status: CallStatus::Queued,
        timeline: vec![StatusChange { status: CallStatus::Queued, at: now }],
        request: req.clone(),
        created_at: now,
        answered_at: None,
        ended_at: None,
        duration_secs: None,
        caller_reports: Vec::new(),
        errors: Vec::new(),
        answered_by: None,
        said: Vec::new(),
        updates: Vec::new(),
        dials: Vec::new(),
        finished: false,
    };
    let body = call_body(shared, &snap);
    let (hangup_tx, hangup_rx) = watch::channel(false);
    let (redirect_tx, redirect_rx) = watch::channel(None);
    let caller_hangup = HangupHandle::new();
    shared.update(|i| {
        i.calls.push(CallEntry {
            snap,
            hangup: hangup_tx,
            caller_hangup: caller_hangup.clone(),
            redirect: redirect_tx,
        })
    });
    tokio::spawn(runner::run(shared.clone(), sid, req, hangup_rx, caller_hangup, redirect_rx));
    Ok((StatusCode::CREATED, body))
}

fn call_sid_of(segment: &str) -> Option<&str> {
    segment.strip_suffix(".json")
}

async fn fetch_call(
    State(shared): State<Arc<Shared>>,
    Path((account, call)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        authenticate(&shared, &headers, &account)?;
        let snap = call_sid_of(&call)
            .and_then(|sid| shared.call(sid))
            .ok_or_else(|| ApiError::not_found(uri.path()))?;
        Ok((StatusCode::OK, call_body(&shared, &snap)))
    })();
    respond(&shared, &method, uri.path(), Vec::new(), &headers, result)
}

async fn update_call(
    State(shared): State<Arc<Shared>>,
    Path((account, call)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_form(&body);
    let result = (|| {
        authenticate(&shared, &headers, &account)?;
        let sid = call_sid_of(&call)
            .filter(|sid| shared.call(sid).is_some())
            .ok_or_else(|| ApiError::not_found(uri.path()))?;
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if get("Url").is_some() {
            return Err(ApiError::bad_request(
                codes::INVALID_PARAMETER,
                "The simulator does not fetch new TwiML for a live call (Url on update); send Twiml, or Status=completed|canceled.",
            ));
        }
        if let Some(doc) = get("Twiml") {
            if doc.chars().count() > validate::MAX_TWIML_CHARS {
                return Err(ApiError::bad_request(
                    codes::TWIML_TOO_LONG,
                    format!("Twiml must be at most {} characters.", validate::MAX_TWIML_CHARS),
                ));
            }
            if let Err(crate::twiml::TwimlError::Parse(why)) = crate::twiml::parse(doc) {
                return Err(ApiError::bad_request(
                    codes::TWIML_PARSE,
                    format!("Twiml is not valid XML: {why}"),
                ));
            }
            // A live call leaves what it runs (a <Connect><Stream> gets `stop` and is closed) and
            // runs the new document; a call not answered yet runs it once answered.
            let mut refused = false;
            shared.update_call(sid, |c| {
                if c.snap.status.is_final() {
                    refused = true;
                } else {
                    c.snap.updates.push(doc.to_owned());
                    c.redirect.send_replace(Some(doc.to_owned()));
                    if c.snap.status == CallStatus::InProgress {
                        c.caller_hangup.hang_up();
                    }
                }
            });
            if refused {
                return Err(ApiError::bad_request(
                    codes::CALL_NOT_IN_PROGRESS,
                    "Call is not in-progress. Cannot redirect.",
                ));
            }
        }
        match get("Status") {
            None => {}
            Some(s @ ("completed" | "canceled")) => {
                let now = shared.clock.elapsed();
                shared.update_call(sid, |c| {
                    let target = match (c.snap.status, s) {
                        (CallStatus::Queued | CallStatus::Ringing, _) => Some(CallStatus::Canceled),
                        (CallStatus::InProgress, "completed") => Some(CallStatus::Completed),
                        _ => None, // canceled does not touch an answered call; a finished call stays as it is
                    };
                    if let Some(t) = target {
                        set_status_at(&mut c.snap, t, now);
                        let _ = c.hangup.send(true);
                        c.caller_hangup.hang_up();
                    }
                });
            }
            Some(other) => {
                return Err(ApiError::bad_request(
                    codes::INVALID_PARAMETER,
                    format!("Status must be completed or canceled, not {other}."),
                ));
            }
        }
        let snap = shared.call(sid).ok_or_else(|| ApiError::not_found(uri.path()))?;
        Ok((StatusCode::OK, call_body(&shared, &snap)))
    })();
    respond(&shared, &method, uri.path(), params, &headers, result)
}

fn paging(query: &[(String, String)]) -> Result<(usize, usize), ApiError> {
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let page_size = match get("PageSize") {
        None => 50,
        Some(v) => v.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
            ApiError::bad_request(
                codes::INVALID_PARAMETER,
                format!("PageSize must be between 1 and 1000, not {v}."),
            )
        })?,
    };
    let page = match get("Page") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(codes::INVALID_PARAMETER, format!("Invalid Page {v}.")))?,
    };
    Ok((page, page_size))
}

async fn list_calls(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = parse_form(query.unwrap_or_default().as_bytes());
    let result = (|| {
        authenticate(&shared, &headers, &account)?;
        let (page, page_size) = paging(&query)?;
        let mut calls: Vec<CallSnapshot> = shared.read(|i| i.calls.iter().map(|c| c.snap.clone()).collect());
        calls.reverse(); // newest first, as Twilio lists them
        let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let (to, from, status) = (get("To"), get("From"), get("Status"));
        let items = calls
            .iter()
            .filter(|c| {
                to.is_none_or(|t| c.to == t)
                    && from.is_none_or(|f| c.from == f)
                    && status.is_none_or(|s| c.status.as_str() == s)
            })
            .map(|c| call_body(&shared, c))
            .collect();
        let filters: Vec<(&str, &str)> = [("To", to), ("From", from), ("Status", status)]
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .collect();
        Ok((StatusCode::OK, resources::list_page(uri.path(), "calls", items, &filters, page, page_size)))
    })();
    respond(&shared, &method, uri.path(), query.clone(), &headers, result)
}

async fn list_caller_ids(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = parse_form(query.unwrap_or_default().as_bytes());
    let result = (|| {
        authenticate(&shared, &headers, &account)?;
        let (page, page_size) = paging(&query)?;
        let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let (number, friendly) = (get("PhoneNumber"), get("FriendlyName"));
        let verified = shared.read(|i| i.verified.clone());
        let items = verified
            .iter()
            .filter(|(n, _, _)| number.is_none_or(|p| p == n) && friendly.is_none_or(|f| f == n))
            .map(|(n, sid, at)| {
                resources::caller_id_json(&shared.cfg.account_sid, n, sid, &shared.clock.rfc2822(*at))
            })
            .collect();
        let filters: Vec<(&str, &str)> = [("PhoneNumber", number), ("FriendlyName", friendly)]
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .collect();
        let path = format!("{}/OutgoingCallerIds.json", account_path(&shared.cfg.account_sid));
        Ok((
            StatusCode::OK,
            resources::list_page(&path, "outgoing_caller_ids", items, &filters, page, page_size),
        ))
    })();
    respond(&shared, &method, uri.path(), query.clone(), &headers, result)
}

/// A known resource asked with a verb it does not take: Twilio's 405 (20004), recorded.
async fn method_not_allowed(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let refusal = ApiError::method_not_allowed(method.as_str(), &path);
    respond(&shared, &method, &path, Vec::new(), &headers, Err(refusal))
}

async fn not_found(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    respond(&shared, &method, &path, Vec::new(), &headers, Err(ApiError::not_found(&path)))
}
