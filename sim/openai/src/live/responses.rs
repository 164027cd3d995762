//! The Responses stream a GPT-Live session runs when its delegation is
//! `{"type":"responses"}`: each Responses streaming event, in the Responses API's own shapes
//! (`sequence_number`, `response.created`, `response.output_item.added`,
//! `response.function_call_arguments.delta/.done`, `response.output_text.delta/.done`,
//! `response.content_part.added/.done`, `response.output_item.done`, `response.completed`),
//! wrapped by the session in `response.event {event, delegation_id}`. The server schema leaves
//! the nested event open; the shapes follow the Responses API reference.

use serde_json::{Value, json};

/// What one Responses response produces.
#[derive(Debug, Clone)]
pub(crate) enum ResponsesOutput {
    /// A function call for the application to run.
    Call {
        /// `fc_`.
        item_id: String,
        /// `call_`.
        call_id: String,
        /// Function name.
        name: String,
        /// JSON arguments text.
        arguments: String,
    },
    /// An assistant text message (what the Live model then says aloud).
    Message {
        /// `msg_`.
        item_id: String,
        /// The text.
        text: String,
    },
}

impl ResponsesOutput {
    fn item(&self, status: &str, done: bool) -> Value {
        match self {
            Self::Call { item_id, call_id, name, arguments } => {
                json!({"id": item_id, "type": "function_call",
                "status": status, "arguments": if done { arguments.as_str() } else { "" }, "call_id": call_id, "name": name})
            }
            Self::Message { item_id, text } => {
                let content = if done {
                    json!([{"type": "output_text", "text": text, "annotations": []}])
                } else {
                    json!([])
                };
                json!({"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content})
            }
        }
    }
}

/// The streaming events of response `id` (model `model`, created at `created_at` Unix
/// seconds), with `sequence_number` from 0.
pub(crate) fn stream(id: &str, model: &str, created_at: u64, output: &ResponsesOutput) -> Vec<Value> {
    let mut response = json!({"id": id, "object": "response", "created_at": created_at, "status": "in_progress",
        "model": model, "output": [], "error": null, "incomplete_details": null, "usage": null});
    let mut events = vec![
        json!({"type": "response.created", "response": response}),
        json!({"type": "response.in_progress", "response": response}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": output.item("in_progress", false)}),
    ];
    let chunks = |text: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        for c in text.chars() {
            cur.push(c);
            if cur.len() >= 24 {
                out.push(std::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    };
    let output_tokens = match output {
        ResponsesOutput::Call { item_id, name, arguments, .. } => {
            for delta in chunks(arguments) {
                events.push(json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
                    "output_index": 0, "delta": delta}));
            }
            events.push(json!({"type": "response.function_call_arguments.done", "item_id": item_id,
                "output_index": 0, "name": name, "arguments": arguments}));
            arguments.len().div_ceil(4)
        }
        ResponsesOutput::Message { item_id, text } => {
            let part = |t: &str| json!({"type": "output_text", "text": t, "annotations": []});
            events.push(json!({"type": "response.content_part.added", "item_id": item_id, "output_index": 0,
                "content_index": 0, "part": part("")}));
            for delta in chunks(text) {
                events.push(
                    json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
                    "content_index": 0, "delta": delta, "logprobs": []}),
                );
            }
            events.push(json!({"type": "response.output_text.done", "item_id": item_id, "output_index": 0,
                "content_index": 0, "text": text, "logprobs": []}));
            events.push(json!({"type": "response.content_part.done", "item_id": item_id, "output_index": 0,
                "content_index": 0, "part": part(text)}));
            text.len().div_ceil(4)
        }
    } as u64;
    let done_item = output.item("completed", true);
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": done_item}));
    response["status"] = json!("completed");
    response["output"] = json!([done_item]);
    response["usage"] = json!({"input_tokens": 120, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 120 + output_tokens});
    events.push(json!({"type": "response.completed", "response": response}));
    for (n, e) in events.iter_mut().enumerate() {
        e["sequence_number"] = json!(n);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_call_streams_its_arguments_and_completes() {
        let args = r#"{"first_name":"Zoé","phone":"+33612345678"}"#;
        let out = ResponsesOutput::Call {
            item_id: "fc_1".into(),
            call_id: "call_1".into(),
            name: "save_lead".into(),
            arguments: args.into(),
        };
        let ev = stream("resp_1", "gpt-5-mini", 1, &out);
        let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds[..3], ["response.created", "response.in_progress", "response.output_item.added"]);
        assert_eq!(kinds[kinds.len() - 2..], ["response.output_item.done", "response.completed"]);
        let streamed: String = ev
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(streamed, args);
        assert!(ev.iter().enumerate().all(|(i, e)| e["sequence_number"] == i));
        assert_eq!(ev.last().unwrap()["response"]["output"][0]["arguments"], args);
    }
}
