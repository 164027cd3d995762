//! JSON of the resources the REST API returns, with Twilio's field names (alphabetical, as
//! Twilio writes them), dates in RFC 2822 and paging fields on lists.

use serde_json::{Value, json};

use super::state::{CallSnapshot, CallStatus, SimClock};

/// `/2010-04-01/Accounts/{account}`.
pub fn account_path(account_sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account_sid}")
}

/// The Call resource.
pub fn call_json(c: &CallSnapshot, clock: &SimClock, phone_number_sid: Option<&str>) -> Value {
    let base = format!("{}/Calls/{}", account_path(&c.account_sid), c.sid);
    let updated = c.timeline.last().map_or(c.created_at, |s| s.at);
    json!({
        "account_sid": c.account_sid,
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": clock.rfc2822(c.created_at),
        "date_updated": clock.rfc2822(updated),
        "direction": "outbound-api",
        // Twilio leaves `duration` empty for busy, failed, unanswered and ongoing calls.
        "duration": c.duration_secs.filter(|_| c.status == CallStatus::Completed).map(|d| d.to_string()),
        "end_time": c.ended_at.map(|t| clock.rfc2822(t)),
        "forwarded_from": null,
        "from": c.from,
        "from_formatted": c.from,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": phone_number_sid,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": c.sid,
        // When dialling began (empty while queued).
        "start_time": c.timeline.iter().find(|s| s.status != CallStatus::Queued).map(|s| clock.rfc2822(s.at)),
        "status": c.status.as_str(),
        "subresource_uris": {
            "events": format!("{base}/Events.json"),
            "feedback": format!("{base}/Feedback.json"),
            "notifications": format!("{base}/Notifications.json"),
            "payments": format!("{base}/Payments.json"),
            "recordings": format!("{base}/Recordings.json"),
            "siprec": format!("{base}/Siprec.json"),
            "streams": format!("{base}/Streams.json"),
            "transcriptions": format!("{base}/Transcriptions.json"),
            "user_defined_message_subscriptions": format!("{base}/UserDefinedMessageSubscriptions.json"),
            "user_defined_messages": format!("{base}/UserDefinedMessages.json"),
        },
        "to": c.to,
        "to_formatted": c.to,
        "trunk_sid": null,
        "uri": format!("{base}.json"),
    })
}

/// A page of a list resource: `items` under `key`, with Twilio's paging fields. `filters` are
/// the query parameters to repeat in the page URIs (before `PageSize` and `Page`).
pub fn list_page(
    path: &str,
    key: &str,
    items: Vec<Value>,
    filters: &[(&str, &str)],
    page: usize,
    page_size: usize,
) -> Value {
    let total = items.len();
    let start = page * page_size;
    let page_items: Vec<Value> = items.into_iter().skip(start).take(page_size).collect();
    let uri = |p: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in filters {
            q.append_pair(k, v);
        }
        q.append_pair("PageSize", &page_size.to_string());
        q.append_pair("Page", &p.to_string());
        format!("{path}?{}", q.finish())
    };
    let end = if page_items.is_empty() { start } else { start + page_items.len() - 1 };
    let mut obj = serde_json::Map::new();
    obj.insert("end".into(), json!(end));
    obj.insert("first_page_uri".into(), json!(uri(0)));
    obj.insert(
        "next_page_uri".into(),
        if start + page_size < total { json!(uri(page + 1)) } else { Value::Null },
    );
    obj.insert(key.into(), Value::Array(page_items));
    obj.insert("page".into(), json!(page));
    obj.insert("page_size".into(), json!(page_size));
    obj.insert("previous_page_uri".into(), if page > 0 { json!(uri(page - 1)) } else { Value::Null });
    obj.insert("start".into(), json!(start));
    obj.insert("uri".into(), json!(uri(page)));
    Value::Object(obj)
}

/// An OutgoingCallerId resource.
pub fn caller_id_json(account_sid: &str, number: &str, sid: &str, date: &str) -> Value {
    json!({
        "account_sid": account_sid,
        "date_created": date,
        "date_updated": date,
        "friendly_name": number,
        "phone_number": number,
        "sid": sid,
        "uri": format!("{}/OutgoingCallerIds/{sid}.json", account_path(account_sid)),
    })
}
