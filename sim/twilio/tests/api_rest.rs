//! The REST API: create-call happy path, each documented error, authentication, faults,
//! trial mode, caller IDs, fetch/list/update of calls.

mod common;

use std::time::Duration;

use callway_sim_twilio::api::{ApiConfig, ApiHandle, CallStatus, Fault, TwilioApiSim};
use callway_sim_twilio::sids;
use common::within;
use serde_json::Value;

const HANGUP_TWIML: &str = "<Response><Hangup/></Response>";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().tcp_nodelay(true).build().unwrap()
}

async fn sim(config: ApiConfig) -> ApiHandle {
    TwilioApiSim::spawn(config).await.unwrap()
}

fn base_config() -> ApiConfig {
    ApiConfig {
        owned_numbers: vec!["+33100000001".into()],
        ring_delay: Duration::from_millis(100),
        ..ApiConfig::default()
    }
}

async fn post_as(
    h: &ApiHandle,
    url: &str,
    user: &str,
    pass: &str,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = client().post(url).basic_auth(user, Some(pass)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let _ = h;
    (status, r.json().await.unwrap(), headers)
}

async fn post(h: &ApiHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let (s, v, _) = post_as(h, &h.calls_url(), h.account_sid(), h.auth_token(), form).await;
    (s, v)
}

async fn get(h: &ApiHandle, url: &str) -> (u16, Value) {
    let r = client().get(url).basic_auth(h.account_sid(), Some(h.auth_token())).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Twilio's error body, exactly.
fn assert_error(status: u16, body: &Value, want_status: u16, want_code: u64) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert_eq!(body["status"], want_status);
    assert_eq!(body["more_info"], format!("https://www.twilio.com/docs/errors/{want_code}"));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let mut k = keys(body);
    k.retain(|k| k != "detail");
    assert_eq!(k, vec!["code", "message", "more_info", "status"]);
}

fn is_rfc2822(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822).is_ok()
        && s.ends_with("+0000")
}

#[tokio::test(start_paused = true)]
async fn create_call_answers_201_with_the_call_resource() {
    let h = sim(base_config()).await;
    let (status, call) =
        post(&h, &[("To", "+33612345678"), ("From", "+33100000001"), ("Twiml", HANGUP_TWIML)]).await;
    assert_eq!(status, 201, "{call}");
    let sid = call["sid"].as_str().unwrap();
    assert!(sids::is_sid(sid, "CA"), "{sid}");
    assert_eq!(call["status"], "queued");
    assert_eq!(call["to"], "+33612345678");
    assert_eq!(call["from"], "+33100000001");
    assert_eq!(call["direction"], "outbound-api");
    assert_eq!(call["account_sid"], h.account_sid());
    assert_eq!(call["api_version"], "2010-04-01");
    assert_eq!(call["uri"], format!("/2010-04-01/Accounts/{}/Calls/{sid}.json", h.account_sid()));
    assert!(is_rfc2822(call["date_created"].as_str().unwrap()), "{}", call["date_created"]);
    assert!(call["start_time"].is_null() && call["end_time"].is_null() && call["duration"].is_null());
    assert!(
        call["subresource_uris"]["streams"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Calls/{sid}/Streams.json"))
    );
    // Keys in Twilio's (alphabetical) order.
    let k = keys(&call);
    let mut sorted = k.clone();
    sorted.sort();
    assert_eq!(k, sorted);

    // Recorded, then placed: TwiML `<Hangup/>` completes it.
    let req = &h.requests()[0];
    assert_eq!((req.method.as_str(), req.status), ("POST", 201));
    assert_eq!(req.auth_user.as_deref(), Some(h.account_sid()));
    assert!(req.params.contains(&("To".into(), "+33612345678".into())));
    let done = within(60, h.wait_call_finished(sid)).await;
    let statuses: Vec<CallStatus> = done.timeline.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![CallStatus::Queued, CallStatus::Ringing, CallStatus::InProgress, CallStatus::Completed]
    );

    // Fetch and list show the final state.
    let (s, fetched) =
        get(&h, &format!("{}/2010-04-01/Accounts/{}/Calls/{sid}.json", h.base_url(), h.account_sid())).await;
    assert_eq!((s, fetched["status"].as_str()), (200, Some("completed")));
    assert_eq!(fetched["duration"], "0");
    assert!(is_rfc2822(fetched["end_time"].as_str().unwrap()));
    let (s, list) = get(&h, &h.calls_url()).await;
    assert_eq!(s, 200);
    assert_eq!(list["calls"][0]["sid"], sid);
    assert_eq!(list["page_size"], 50);
}

#[tokio::test(start_paused = true)]
async fn authentication_errors_are_20003() {
    let mut cfg = base_config();
    cfg.api_keys = vec![("SK0123456789abcdef0123456789abcdef".into(), "key-secret".into())];
    let h = sim(cfg).await;
    let form = [("To", "+33612345678"), ("From", "+33100000001"), ("Twiml", HANGUP_TWIML)];

    let (s, body, headers) = post_as(&h, &h.calls_url(), h.account_sid(), "wrong", &form).await;
    assert_error(s, &body, 401, 20003);
    assert_eq!(body["detail"], "Your AccountSid or AuthToken was incorrect.");
    assert_eq!(headers["www-authenticate"], "Basic realm=\"Twilio API\"");

    let r = client().post(h.calls_url()).form(&form).send().await.unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 401, 20003);

    // Right credentials, another account's path.
    let other = format!("{}/2010-04-01/Accounts/{}/Calls.json", h.base_url(), sids::new_sid("AC"));
    let (s, body, _) = post_as(&h, &other, h.account_sid(), h.auth_token(), &form).await;
    assert_error(s, &body, 401, 20003);

    // An API key and its secret work.
    let (s, body, _) =
        post_as(&h, &h.calls_url(), "SK0123456789abcdef0123456789abcdef", "key-secret", &form).await;
    assert_eq!(s, 201, "{body}");
    assert!(h.requests().iter().filter(|r| r.status == 401).count() == 3);
}

/// A request naming `host` in its `Host` header (as a regional client, or a DNS override,
/// would send it to the simulator's address).
async fn post_to_host(h: &ApiHandle, host: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(h.calls_url())
        .header("host", host)
        .basic_auth(h.account_sid(), Some(h.auth_token()))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(start_paused = true)]
async fn regional_hosts_are_served_in_their_region_and_retired_ones_refused() {
    let form = [("To", "+33612345678"), ("From", "+33100000001"), ("Twiml", HANGUP_TWIML)];
    // An account in Ireland (IE1): its credentials work only on IE1's host.
    let h = sim(ApiConfig { region: Some("ie1".into()), ..base_config() }).await;
    let (status, call) = post_to_host(&h, "api.dublin.ie1.twilio.com", &form).await;
    assert_eq!(status, 201, "{call}");
    assert_eq!(h.requests()[0].host.as_deref(), Some("api.dublin.ie1.twilio.com"));
    let (status, body) = post_to_host(&h, "API.Dublin.IE1.twilio.com:443", &form).await;
    assert_eq!(status, 201, "names are case-insensitive, the port ignored: {body}");

    // US1's name, or the simulator's own address (which stands for api.twilio.com): refused.
    let (status, body) = post_to_host(&h, "api.twilio.com", &form).await;
    assert_error(status, &body, 401, 20003);
    assert!(body["message"].as_str().unwrap().contains("region ie1"), "{body}");
    let (status, body) = post(&h, &form).await;
    assert_error(status, &body, 401, 20003);
    let (status, body) = post_to_host(&h, "api.ie1.twilio.com", &form).await;
    assert_error(status, &body, 404, 20404);
    assert!(body["message"].as_str().unwrap().contains("api.dublin.ie1.twilio.com"), "{body}");
    let (status, body) = post_to_host(&h, "api.frankfurt.de1.twilio.com", &form).await;
    assert_error(status, &body, 404, 20404);
    assert_eq!(h.calls().len(), 2, "refused requests place no call");

    // An account without a region (the default) takes every documented host.
    let any = sim(base_config()).await;
    for host in
        ["api.twilio.com", "api.us1.twilio.com", "api.dublin.ie1.twilio.com", "api.sydney.au1.twilio.com"]
    {
        let (status, call) = post_to_host(&any, host, &form).await;
        assert_eq!(status, 201, "{host}: {call}");
    }
}

#[tokio::test(start_paused = true)]
async fn each_invalid_form_gets_twilios_error() {
    let h = sim(base_config()).await;
    let long_twiml = format!("<Response><Say>{}</Say></Response>", "a".repeat(4000));
    let ok_to = ("To", "+33612345678");
    let ok_from = ("From", "+33100000001");
    let ok_twiml = ("Twiml", HANGUP_TWIML);
    let cases: Vec<(Vec<(&str, &str)>, u64)> = vec![
        (vec![ok_from, ok_twiml], 21201),
        (vec![ok_to, ok_twiml], 21213),
        (vec![ok_to, ok_from], 21205),
        (vec![ok_to, ok_from, ok_twiml, ("Url", "https://app.example.com/twiml")], 21205),
        (vec![("To", "not a number"), ok_from, ok_twiml], 21211),
        (vec![("To", "06 12 34 56 78"), ok_from, ok_twiml], 13224),
        (vec![ok_to, ("From", "nope"), ok_twiml], 21212),
        (vec![ok_to, ("From", "+33100000099"), ok_twiml], 21210),
        (vec![ok_to, ok_from, ("Twiml", long_twiml.as_str())], 32018),
        (vec![ok_to, ok_from, ("Twiml", "<Response><Connect>")], 12100),
        (vec![ok_to, ok_from, ("Url", "ftp://example.com/x")], 21205),
        (vec![ok_to, ok_from, ("ApplicationSid", "AP0123456789abcdef0123456789abcdef")], 21218),
        (vec![ok_to, ok_from, ok_twiml, ("StatusCallback", "not-a-url")], 21609),
        (
            vec![
                ok_to,
                ok_from,
                ok_twiml,
                ("StatusCallback", "https://cp.example.eu/s"),
                ("StatusCallbackMethod", "PUT"),
            ],
            21209,
        ),
        (
            vec![
                ok_to,
                ok_from,
                ok_twiml,
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "hungup"),
            ],
            20001,
        ),
        (vec![ok_to, ok_from, ok_twiml, ("Timeout", "601")], 20001),
        (vec![ok_to, ok_from, ok_twiml, ("Timeout", "soon")], 20001),
    ];
    for (form, code) in &cases {
        let (status, body) = post(&h, form).await;
        assert_error(status, &body, 400, *code);
    }
    assert!(h.calls().is_empty(), "no call is created by an invalid request");
    assert_eq!(h.requests().len(), cases.len());
    // The limits themselves are accepted.
    let exactly = format!(
        "<Response><Say>{}</Say></Response>",
        "a".repeat(4000 - "<Response><Say></Say></Response>".len())
    );
    assert_eq!(exactly.chars().count(), 4000);
    let (s, b) = post(&h, &[ok_to, ok_from, ("Twiml", &exactly), ("Timeout", "600")]).await;
    assert_eq!(s, 201, "{b}");
}

#[tokio::test(start_paused = true)]
async fn faults_on_demand_then_success() {
    let mut cfg = base_config();
    cfg.faults = vec![Fault::RateLimited];
    let h = sim(cfg).await;
    h.inject_fault(Fault::ServerError);
    let form = [("To", "+33612345678"), ("From", "+33100000001"), ("Twiml", HANGUP_TWIML)];
    let (s, b) = post(&h, &form).await;
    assert_error(s, &b, 429, 20429);
    let (s, b) = post(&h, &form).await;
    assert_error(s, &b, 500, 20500);
    let (s, b) = post(&h, &form).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(h.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn trial_accounts_only_call_verified_numbers() {
    let mut cfg = base_config();
    cfg.trial = true;
    cfg.verified_numbers = vec!["+33611111111".into()];
    let h = sim(cfg).await;
    let (s, b) = post(&h, &[("To", "+33622222222"), ("From", "+33100000001"), ("Twiml", HANGUP_TWIML)]).await;
    assert_error(s, &b, 400, 21219);
    assert!(b["message"].as_str().unwrap().contains("+33622222222 is unverified"));
    let (s, _) = post(&h, &[("To", "+33611111111"), ("From", "+33100000001"), ("Twiml", HANGUP_TWIML)]).await;
    assert_eq!(s, 201);
    // Verifying the number (console) lets the call through.
    h.verify_number("+33622222222");
    let (s, _) = post(&h, &[("To", "+33622222222"), ("From", "+33100000001"), ("Twiml", HANGUP_TWIML)]).await;
    assert_eq!(s, 201);
}

#[tokio::test(start_paused = true)]
async fn outgoing_caller_ids_list_with_filter_and_paging() {
    let mut cfg = base_config();
    cfg.verified_numbers = vec!["+33611111111".into(), "+33622222222".into()];
    let h = sim(cfg).await;
    let base = format!("{}/2010-04-01/Accounts/{}/OutgoingCallerIds.json", h.base_url(), h.account_sid());
    let path = format!("/2010-04-01/Accounts/{}/OutgoingCallerIds.json", h.account_sid());

    let (s, all) = get(&h, &base).await;
    assert_eq!(s, 200);
    assert_eq!(
        keys(&all),
        vec![
            "end",
            "first_page_uri",
            "next_page_uri",
            "outgoing_caller_ids",
            "page",
            "page_size",
            "previous_page_uri",
            "start",
            "uri"
        ]
    );
    let ids = all["outgoing_caller_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    let first = &ids[0];
    assert_eq!(first["phone_number"], "+33611111111");
    assert!(sids::is_sid(first["sid"].as_str().unwrap(), "PN"));
    assert_eq!(first["account_sid"], h.account_sid());
    assert_eq!(
        first["uri"],
        format!(
            "/2010-04-01/Accounts/{}/OutgoingCallerIds/{}.json",
            h.account_sid(),
            first["sid"].as_str().unwrap()
        )
    );
    assert_eq!(all["uri"], format!("{path}?PageSize=50&Page=0"));
    assert!(all["next_page_uri"].is_null());

    let (_, one) = get(&h, &format!("{base}?PhoneNumber=%2B33622222222")).await;
    let ids = one["outgoing_caller_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0]["phone_number"], "+33622222222");
    assert_eq!(one["uri"], format!("{path}?PhoneNumber=%2B33622222222&PageSize=50&Page=0"));

    let (_, none) = get(&h, &format!("{base}?PhoneNumber=%2B33699999999")).await;
    assert!(none["outgoing_caller_ids"].as_array().unwrap().is_empty());

    let (_, page0) = get(&h, &format!("{base}?PageSize=1")).await;
    assert_eq!(page0["outgoing_caller_ids"].as_array().unwrap().len(), 1);
    assert_eq!(page0["next_page_uri"], format!("{path}?PageSize=1&Page=1"));
    let (_, page1) = get(&h, &format!("{}{}", h.base_url(), page0["next_page_uri"].as_str().unwrap())).await;
    assert_eq!(page1["outgoing_caller_ids"][0]["phone_number"], "+33622222222");
    assert_eq!((page1["start"].as_u64(), page1["end"].as_u64()), (Some(1), Some(1)));
    assert!(page1["next_page_uri"].is_null());

    let r = client().get(&base).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test(start_paused = true)]
async fn unknown_call_and_unknown_path_are_20404() {
    let h = sim(base_config()).await;
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Calls/{}.json",
        h.base_url(),
        h.account_sid(),
        sids::new_sid("CA")
    );
    let r = client()
        .post(&url)
        .basic_auth(h.account_sid(), Some(h.auth_token()))
        .form(&[("Status", "completed")])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 404, 20404);
    let (s, b) = get(&h, &format!("{}/2010-04-01/Nothing.json", h.base_url())).await;
    assert_error(s, &b, 404, 20404);
}
