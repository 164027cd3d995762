//! Server events on the wire: `type` first, `event_id` second, then the fields in the order
//! the service writes them (so `response.output_audio.delta` has exactly the GA layout
//! `type, event_id, response_id, item_id, output_index, content_index, delta` that clients
//! with a fast path expect), then any other key.

use serde_json::Value;

/// Keys in the service's order after `type` and `event_id`.
const ORDER: &[&str] = &[
    "previous_item_id",
    "response_id",
    "item_id",
    "output_index",
    "content_index",
    "call_id",
    "name",
    "audio_start_ms",
    "audio_end_ms",
    "delta",
    "transcript",
    "text",
    "arguments",
    "part",
    "item",
    "usage",
    "response",
    "session",
    "error",
];

fn push_json(out: &mut String, v: &Value) {
    // Serialising a Value cannot fail.
    out.push_str(&serde_json::to_string(v).unwrap_or_default());
}

fn push_key(out: &mut String, k: &str, first: &mut bool) {
    if !*first {
        out.push(',');
    }
    *first = false;
    push_json(out, &Value::String(k.to_owned()));
    out.push(':');
}

/// Serialises an event (which already carries its `event_id`).
pub(crate) fn to_wire(ev: &Value) -> String {
    let Some(obj) = ev.as_object() else { return serde_json::to_string(ev).unwrap_or_default() };
    let mut out = String::with_capacity(256);
    out.push('{');
    let mut first = true;
    for k in ["type", "event_id"].iter().chain(ORDER) {
        if let Some(v) = obj.get(*k) {
            push_key(&mut out, k, &mut first);
            push_json(&mut out, v);
        }
    }
    for (k, v) in obj {
        if k != "type" && k != "event_id" && !ORDER.contains(&k.as_str()) {
            push_key(&mut out, k, &mut first);
            push_json(&mut out, v);
        }
    }
    out.push('}');
    out
}

/// An echo-mode `response.output_audio.delta` in the GA layout, built without a `Value`.
pub(crate) fn echo_delta(event_id: &str, response_id: &str, item_id: &str, audio_b64: &str) -> String {
    let mut s = String::with_capacity(150 + audio_b64.len());
    s.push_str(r#"{"type":"response.output_audio.delta","event_id":""#);
    s.push_str(event_id);
    s.push_str(r#"","response_id":""#);
    s.push_str(response_id);
    s.push_str(r#"","item_id":""#);
    s.push_str(item_id);
    s.push_str(r#"","output_index":0,"content_index":0,"delta":""#);
    s.push_str(audio_b64);
    s.push_str(r#""}"#);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delta_has_the_ga_layout() {
        let ev = json!({"delta":"AAAA","content_index":0,"output_index":0,"item_id":"item_1","response_id":"resp_1",
            "event_id":"event_1","type":"response.output_audio.delta"});
        let wire = to_wire(&ev);
        assert_eq!(
            wire,
            r#"{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"AAAA"}"#
        );
        assert_eq!(echo_delta("event_1", "resp_1", "item_1", "AAAA"), wire);
        let odd = json!({"type":"x","event_id":"e","zeta":1,"item":{"b":1,"a":2}});
        assert_eq!(serde_json::from_str::<Value>(&to_wire(&odd)).unwrap(), odd);
        assert!(to_wire(&odd).starts_with(r#"{"type":"x","event_id":"e","item""#));
    }
}
