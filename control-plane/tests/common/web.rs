//! A control plane on SQLite with recording endpoints for OpenAI and Twilio, and the steps
//! most route tests start from (a saved lead, a placed call).

use serde_json::{Value, json};

use super::recorder::{Recorder, Reply};
use super::{Db, Running};

/// A control plane and its two recorded upstreams.
pub struct Web {
    /// The app.
    pub app: Running,
    /// OpenAI's stand-in.
    pub openai: Recorder,
    /// Twilio's stand-in.
    pub twilio: Recorder,
    _dir: tempfile::TempDir,
}

/// Starts one with extra environment.
pub async fn web_with(extra: &[(&str, &str)]) -> Web {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Url(format!("sqlite:{}?mode=rwc", dir.path().join("cp.sqlite3").display()));
    let (openai, twilio) = (Recorder::start().await, Recorder::start().await);
    let mut env = super::env_for(&db, &openai.base, &twilio.base);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Web { app: Running::start(env).await, openai, twilio, _dir: dir }
}

/// Starts one on a fresh database of the real PostgreSQL cluster `scripts/test` runs.
pub async fn web_on_postgres() -> Web {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Url(super::pg::fresh_database().await);
    let (openai, twilio) = (Recorder::start().await, Recorder::start().await);
    let env = super::env_for(&db, &openai.base, &twilio.base);
    Web { app: Running::start(env).await, openai, twilio, _dir: dir }
}

/// Starts one on a fresh PostgreSQL database whose OpenAI is `openai_base` (a simulator)
/// rather than a recorder (`openai` then records nothing), with extra environment.
pub async fn web_on_postgres_with_openai(openai_base: &str, extra: &[(&str, &str)]) -> Web {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Url(super::pg::fresh_database().await);
    let (openai, twilio) = (Recorder::start().await, Recorder::start().await);
    let mut env = super::env_for(&db, openai_base, &twilio.base);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Web { app: Running::start(env).await, openai, twilio, _dir: dir }
}

/// Starts one.
pub async fn web() -> Web {
    web_with(&[]).await
}

/// A `save_lead` body.
pub fn lead_body(phone: &str) -> Value {
    json!({"first_name": "  Claire ", "last_name": "Martin", "phone": phone, "consent": true})
}

/// Twilio's answer to a create.
pub const CALL_RESOURCE: &str =
    r#"{"sid":"CA0123456789abcdef0123456789abcdef","status":"queued","direction":"outbound-api"}"#;

/// Saves a lead in a new session: (capability, lead id).
pub async fn saved(w: &Web, phone: &str) -> (String, String) {
    let (_, cap) = w.app.capability();
    let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &lead_body(phone)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (cap, r.json["lead_id"].as_str().unwrap().to_owned())
}

/// A `trigger_call` body.
pub fn trigger(lead_id: &str) -> Value {
    json!({"lead_id": lead_id, "summary": "Gérant d'un garage, veut automatiser la prise de rendez-vous."})
}

/// The `<Stream url>` and `<Parameter>`s of inline TwiML, from a real XML parser.
pub fn stream_of(twiml: &str) -> (String, Vec<(String, String)>, bool) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(twiml);
    let (mut url, mut params, mut hangup) = (String::new(), Vec::new(), false);
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => {
                let attr = |n: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == n.as_bytes())
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match e.name().as_ref() {
                    b"Stream" => url = attr("url").unwrap(),
                    b"Parameter" => params.push((attr("name").unwrap(), attr("value").unwrap())),
                    b"Hangup" => hangup = true,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (url, params, hangup)
}

/// A call placed through `trigger_call`: (call id, lead id, stream token).
pub async fn placed_call(w: &Web, phone: &str) -> (String, String, String) {
    let (cap, lead_id) = saved(w, phone).await;
    w.twilio.script([Reply::new(201, CALL_RESOURCE)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead_id)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reqs = w.twilio.take();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&reqs[0].body).unwrap();
    let twiml = &form.iter().find(|(k, _)| k == "Twiml").unwrap().1;
    let (url, _, _) = stream_of(twiml);
    let token = url.rsplit('/').next().unwrap().to_owned();
    (r.json["call_id"].as_str().unwrap().to_owned(), lead_id, token)
}
