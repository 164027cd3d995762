//! The handlers of `/admin` (see the module above): the page and its files, login and logout,
//! and the three read-only JSON routes.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;

use super::session::{self, SessionKey};
use crate::record::{self, Numbers};
use crate::routes::{ApiFailure, SharedApp, now_secs};

/// The page.
pub const ADMIN_HTML: &str = include_str!("../../static/admin.html");
/// Its script.
pub const ADMIN_JS: &str = include_str!("../../static/admin.js");
/// Its style sheet.
pub const ADMIN_CSS: &str = include_str!("../../static/admin.css");

/// The page's Content-Security-Policy: everything from its own origin, nothing inline, nothing
/// else loaded, no framing, forms posted to itself only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The routes of `/admin`, to merge into the control plane's router.
pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/admin", get(page))
        .route("/admin/static/admin.js", get(script))
        .route("/admin/static/admin.css", get(style))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/api/leads", get(leads))
        .route("/admin/api/leads/{id}", get(lead))
        .route("/admin/api/calls/{id}", get(call))
}

fn with_headers(mut res: Response, content_type: &'static str) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Personal data: never kept by a cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn admin_token(app: &SharedApp) -> Result<&str, ApiFailure> {
    app.config.admin_api_token.as_deref().ok_or_else(|| {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "set ADMIN_API_TOKEN to enable the operator page",
        )
    })
}

/// Constant-time comparison of two secrets (their digests: equal lengths, no early exit).
fn same_secret(a: &str, b: &str) -> bool {
    let a = ring::digest::digest(&ring::digest::SHA256, a.as_bytes());
    let b = ring::digest::digest(&ring::digest::SHA256, b.as_bytes());
    a.as_ref() == b.as_ref()
}

/// A valid session cookie, or the admin token as a bearer (scripts).
fn authorized(app: &SharedApp, headers: &HeaderMap) -> Result<(), ApiFailure> {
    let token = admin_token(app)?;
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header);
    if cookie.is_some_and(|c| SessionKey::new(token).check(c, now_secs())) {
        return Ok(());
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| same_secret(b, token)) {
        return Ok(());
    }
    Err(ApiFailure::new(
        StatusCode::UNAUTHORIZED,
        "admin_login_required",
        "log in at /admin with the admin token",
    ))
}

/// A form posted from another site is refused: when the browser names the origin, it must be
/// this host's.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiFailure> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    if !host.is_empty() && origin_host == host {
        Ok(())
    } else {
        Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "the operator page logs in from its own origin only",
        ))
    }
}

/// `GET /admin`.
async fn page(State(app): State<SharedApp>) -> Response {
    if let Err(e) = admin_token(&app) {
        return e.into_response();
    }
    let mut res = with_headers(ADMIN_HTML.into_response(), "text/html; charset=utf-8");
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert("permissions-policy", HeaderValue::from_static("microphone=(), camera=(), geolocation=()"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    // Same-origin referrers only: with `no-referrer` Chromium sends `Origin: null` on the login
    // form's POST, which [`same_origin`] could not tell from another site's.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    res
}

async fn script() -> Response {
    with_headers(ADMIN_JS.into_response(), "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    with_headers(ADMIN_CSS.into_response(), "text/css; charset=utf-8")
}

/// The login form.
#[derive(Deserialize)]
struct Login {
    token: String,
}

fn see_other(to: &'static str, cookie: Option<String>) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    let h = res.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static(to));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    res
}

/// `POST /admin/login`: the token from the form; a session cookie and back to `/admin`, or
/// back to `/admin#login-failed`.
async fn login(State(app): State<SharedApp>, headers: HeaderMap, Form(form): Form<Login>) -> Response {
    let token = match admin_token(&app).and_then(|t| same_origin(&headers).map(|()| t)) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    if !same_secret(form.token.trim(), token) {
        tracing::warn!("operator login refused (wrong admin token)");
        return see_other("/admin#login-failed", None);
    }
    tracing::info!("operator logged in");
    see_other("/admin", Some(session::set_cookie(&SessionKey::new(token).mint(now_secs()))))
}

/// `POST /admin/logout`.
async fn logout(headers: HeaderMap) -> Response {
    if let Err(e) = same_origin(&headers) {
        return e.into_response();
    }
    see_other("/admin", Some(session::clear_cookie()))
}

fn json_answer(v: &impl serde::Serialize) -> Response {
    with_headers(axum::Json(v).into_response(), "application/json")
}

fn id_of(raw: &str, what: &str) -> Result<Uuid, ApiFailure> {
    raw.parse().map_err(|_| {
        ApiFailure::new(StatusCode::BAD_REQUEST, "id_invalid", format!("{what} id must be a UUID"))
    })
}

/// `?limit=` of the lead list.
#[derive(Deserialize)]
struct ListQuery {
    limit: Option<u32>,
}

async fn leads(State(app): State<SharedApp>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let result = async {
        authorized(&app, &headers)?;
        let limit = q.limit.unwrap_or(record::read::DEFAULT_LEADS);
        let list = record::read::leads(&app.storage.store, limit, Numbers::Masked)
            .await
            .map_err(ApiFailure::storage)?;
        Ok::<_, ApiFailure>(json_answer(&list))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn lead(State(app): State<SharedApp>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let result = async {
        authorized(&app, &headers)?;
        let id = id_of(&id, "lead")?;
        let pricing = crate::cost::Pricing::of(&app.config);
        match record::read::lead_priced(&app.storage.store, id, Numbers::Masked, pricing.as_ref())
            .await
            .map_err(ApiFailure::storage)?
        {
            Some(r) => Ok(json_answer(&r)),
            None => Err(ApiFailure::new(StatusCode::NOT_FOUND, "lead_unknown", "no lead with this id")),
        }
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn call(State(app): State<SharedApp>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let result = async {
        authorized(&app, &headers)?;
        let id = id_of(&id, "call")?;
        let pricing = crate::cost::Pricing::of(&app.config);
        match record::read::call_priced(&app.storage.store, id, Numbers::Masked, pricing.as_ref())
            .await
            .map_err(ApiFailure::storage)?
        {
            Some(r) => Ok(json_answer(&r)),
            None => Err(ApiFailure::new(StatusCode::NOT_FOUND, "call_unknown", "no call with this id")),
        }
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
