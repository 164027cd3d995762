//! The operator page, `/admin` (issue 18, item 1): the login sets an `HttpOnly`, `Secure`,
//! `SameSite=Strict` cookie that is not the token, the token is never taken from a URL, the JSON
//! routes need the session and mask numbers; then, in headless Chromium at phone size, a login
//! (a wrong token first), the lead list, a lead's calls, a call's timeline, dialogue and
//! summary, and their cost (`PRICES_FILE`), with no Content-Security-Policy violation and
//! nothing wider than the screen. The data is on real PostgreSQL.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::records::{NUMBER, OUTCOME, seed};
use common::{ADMIN_TOKEN, Db, Running, env_for};

/// The control plane on a fresh database with the seeded story, and a price table (kept in
/// the returned directory) so the page shows costs.
async fn running() -> (Running, common::records::Seeded, tempfile::TempDir) {
    let url = common::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.json");
    let model = contract::realtime::DEFAULT_MODEL;
    std::fs::write(
        &prices,
        format!(
            r#"{{"currency": "EUR", "openai": {{"{model}": {{"input_per_million": 32.0, "output_per_million": 64.0}}}},
                "twilio_per_minute": {{"default": 0.05}}}}"#
        ),
    )
    .unwrap();
    let mut env = env_for(&Db::Url(url), "http://127.0.0.1:9", "http://127.0.0.1:9");
    env.insert("PRICES_FILE".into(), prices.display().to_string());
    let cp = Running::start(env).await;
    let seeded = seed(&cp.app.storage.store).await;
    (cp, seeded, dir)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn the_login_sets_a_strict_cookie_and_the_api_needs_it() {
    let (cp, seeded, _prices) = running().await;
    let http = no_redirects();
    let api = format!("{}/admin/api/leads", cp.base);
    assert_eq!(http.get(&api).send().await.unwrap().status(), 401, "no session, no data");

    let page = http.get(format!("{}/admin", cp.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );

    let login = |token: &str, origin: Option<&str>| {
        let mut req = http.post(format!("{}/admin/login", cp.base)).form(&[("token", token)]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let wrong = login("not-the-admin-token-0123456789", None).await.unwrap();
    assert_eq!(
        (wrong.status().as_u16(), wrong.headers()["location"].to_str().unwrap()),
        (303, "/admin#login-failed")
    );
    assert!(wrong.headers().get("set-cookie").is_none());
    let foreign = login(ADMIN_TOKEN, Some("https://evil.example")).await.unwrap();
    assert_eq!(foreign.status(), 403, "a form posted from another site is refused");
    let url_token = http.get(format!("{}/admin/login?token={ADMIN_TOKEN}", cp.base)).send().await.unwrap();
    assert_eq!(url_token.status(), 405, "never the token in a URL");

    let ok = login(ADMIN_TOKEN, Some(&cp.base)).await.unwrap();
    assert_eq!((ok.status().as_u16(), ok.headers()["location"].to_str().unwrap()), (303, "/admin"));
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["callway_admin=", "HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains(ADMIN_TOKEN), "the cookie is not the token");
    let session = cookie.split(';').next().unwrap().to_owned();

    let leads = http.get(&api).header("cookie", &session).send().await.unwrap();
    assert_eq!(leads.status(), 200);
    assert_eq!(leads.headers()["cache-control"], "no-store");
    let body = leads.text().await.unwrap();
    assert!(body.contains(&seeded.called.id.to_string()) && body.contains("+33******78"), "{body}");
    assert!(!body.contains(&NUMBER[1..]), "numbers masked: {body}");
    let bearer = http.get(&api).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(bearer.status(), 200, "scripts may use the token as a bearer");
    let forged = http.get(&api).header("cookie", "callway_admin=9999999999.AAAA").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    let call = http
        .get(format!("{}/admin/api/calls/{}", cp.base, seeded.call_id))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    let missing = http
        .get(format!("{}/admin/api/calls/not-an-id", cp.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);

    let out = http.post(format!("{}/admin/logout", cp.base)).header("cookie", &session).send().await.unwrap();
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn an_operator_reads_a_call_on_a_phone_sized_screen() {
    let (cp, seeded, _prices) = running().await;
    let _watchdog = common::browser::Watchdog::new("operator page test", 240);
    let b = Browser::start("admin_page", None).await;
    b.goto(&format!("{}/admin", cp.base)).await;
    let limit = Duration::from_secs(20);
    b.wait_for("the login form", limit, "return !document.getElementById('login').hidden").await;

    b.fill("#token", "not-the-admin-token-0123456789").await;
    b.click("#login button[type=submit]").await;
    b.wait_for("the refusal", limit, "return !document.getElementById('login-failed').hidden").await;
    b.fill("#token", ADMIN_TOKEN).await;
    b.click("#login button[type=submit]").await;
    b.wait_for(
        "the lead list",
        limit,
        "return document.querySelectorAll('#lead-list .lead-card').length === 2",
    )
    .await;
    let names =
        b.eval("return [...document.querySelectorAll('#lead-list .name')].map(a => a.textContent)").await;
    assert_eq!(names, serde_json::json!(["Hugo Durand", "Camille Durand"]), "newest first");
    assert_eq!(b.eval("return document.cookie").await, "", "the session cookie is HttpOnly");
    let href = b.eval("return location.href").await;
    assert!(!href.as_str().unwrap().contains(ADMIN_TOKEN), "no token in the URL: {href}");
    let page_text = b.eval("return document.body.innerText").await;
    assert!(page_text.as_str().unwrap().contains("+33******78"));
    assert!(!page_text.as_str().unwrap().contains(&NUMBER[1..]), "numbers masked on the page");

    b.click(&format!("a[href='#lead={}']", seeded.called.id)).await;
    b.wait_for(
        "the lead's calls",
        limit,
        "return document.querySelectorAll('#call-list .call-card').length === 1",
    )
    .await;
    // The seeded call: 9 s billed (one started minute at 0.05), 150 tokens in at 32 and 90
    // out at 64 per million (0.01056).
    let cost = b.eval("return document.getElementById('lead-cost').textContent").await;
    assert!(cost.as_str().unwrap().contains("0.06056 EUR (Twilio 9 s : 0.05 EUR"), "{cost}");
    b.click(&format!("a[href='#call={}']", seeded.call_id)).await;
    b.wait_for("the call", limit, "return document.querySelectorAll('#call .timeline .step').length > 0")
        .await;
    let steps = b
        .eval("return [...document.querySelectorAll('#call .timeline .what')].map(s => s.textContent)")
        .await;
    assert_eq!(
        steps,
        serde_json::json!([
            "requested",
            "queued",
            "ringing",
            "in-progress",
            "stream-started",
            "caller_hung_up",
            "stream-stopped",
            "completed"
        ])
    );
    assert_eq!(
        b.eval("return document.querySelectorAll('#call .track .mark').length").await,
        8,
        "drawn on a track"
    );
    let last_mark = b.eval("return document.querySelectorAll('#call .track .mark')[7].style.left").await;
    assert_eq!(last_mark, "100%", "the last step at the end of the track");
    let said = b
        .eval("return [...document.querySelectorAll('#call .dialogue .text')].map(s => s.textContent)")
        .await;
    assert_eq!(
        said,
        serde_json::json!([
            "Bonjour, je suis Claire.",
            "Rappelez-moi pour une démo.",
            "Veut une démo lundi.",
            "Bonjour Camille, ici Léa.",
            "Bonjour !"
        ])
    );
    let who = b.eval("return document.querySelector('#call .dialogue .who').textContent").await;
    assert_eq!(who, "Agent · sur le site", "the web part is marked as such");
    let summary = b.eval("return document.querySelector('#call .web-summary').textContent").await;
    assert_eq!(summary, "Veut une démo lundi.");
    let outcome = b.eval("return document.querySelector('#call .call-summary').textContent").await;
    assert_eq!(outcome, OUTCOME, "the end-of-call summary");
    let cost = b.eval("return document.getElementById('call-cost').textContent").await;
    assert_eq!(cost, "0.06056 EUR (Twilio 9 s : 0.05 EUR ; OpenAI gpt-realtime-2.1 0.01056 EUR)");
    let width = b.eval("return [document.documentElement.scrollWidth, window.innerWidth]").await;
    assert!(width[0].as_i64() <= width[1].as_i64(), "nothing wider than a phone's screen: {width}");
    b.screenshot("call").await;
    let violations = b.csp_violations().await;
    assert!(violations.is_empty(), "CSP violations: {violations:?}");
    b.quit().await;
}
