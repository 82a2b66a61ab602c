//! Multi-turn replay (SGLang's `wrap_multi_turn_request_func`): a row with several user turns is
//! one conversation; each round sends the whole history as `messages`, waits for the reply and
//! appends it as the assistant turn before the next round. Every round is its own request record
//! (same plan index, its own `turn`), so TTFT and throughput count each round.
//!
//! Differences from SGLang, on purpose: rounds report the server's `prompt_tokens` as their input
//! length (SGLang reports 0 input tokens for multi-turn runs), and a failed round ends its
//! conversation instead of sending later rounds with a hole in the history.

use serde_json::{json, Map, Value};

use crate::error::BenchError;

/// One conversation: the body fields shared by every round and the user turns.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    /// The chat body without `messages` (model, length, stream settings, extra keys).
    pub template: Map<String, Value>,
    /// Messages added before each round: a string turn is one user message, a list of
    /// `{role, content}` objects is copied as it is.
    pub turns: Vec<Vec<Value>>,
}

impl Conversation {
    /// Build from a chat body (its `messages` are dropped) and the row's turns. Streaming rounds
    /// ask for usage (`stream_options.include_usage`) unless the body already says otherwise,
    /// so that every round's token counts come from the server.
    pub fn new(mut template: Map<String, Value>, turns: &[Value]) -> Result<Self, BenchError> {
        template.remove("messages");
        let streaming = template.get("stream").and_then(Value::as_bool) == Some(true);
        if streaming && !template.contains_key("stream_options") {
            template.insert("stream_options".into(), json!({"include_usage": true}));
        }
        let turns = turns
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                Value::String(s) => Ok(vec![json!({"role": "user", "content": s})]),
                Value::Array(msgs) if !msgs.is_empty() => Ok(msgs
                    .iter()
                    .map(|m| json!({"role": m["role"], "content": m["content"]}))
                    .collect()),
                other => Err(BenchError::Dataset(format!(
                    "turn {i} of a multi-turn row must be a string or a list of messages, got {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if turns.is_empty() {
            return Err(BenchError::Dataset("a multi-turn row has no turns".into()));
        }
        Ok(Self { template, turns })
    }

    /// The body of the next round: the template with `messages` = `history`.
    /// The body of a round: the template, `history` as its messages, and this round's `rid`
    /// when the template carries one (SGLang bodies).
    pub fn body(&self, history: &[Value], rid: Option<&str>) -> Vec<u8> {
        let mut b = self.template.clone();
        b.insert("messages".into(), Value::Array(history.to_vec()));
        if let (Some(rid), true) = (rid, b.contains_key("rid")) {
            b.insert("rid".into(), Value::String(rid.to_string()));
        }
        // Serializing a map of JSON values cannot fail.
        serde_json::to_vec(&Value::Object(b)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_normalised_and_usage_is_requested() {
        let mut t = Map::new();
        t.insert("model".into(), json!("m"));
        t.insert("stream".into(), json!(true));
        t.insert("messages".into(), json!([]));
        let c = Conversation::new(
            t,
            &[
                json!("first"),
                json!([{"role": "user", "content": "second", "name": "dropped"}]),
            ],
        )
        .expect("conversation");
        assert_eq!(c.template["stream_options"], json!({"include_usage": true}));
        assert!(!c.template.contains_key("messages"));
        assert_eq!(c.turns[0], [json!({"role": "user", "content": "first"})]);
        assert_eq!(c.turns[1], [json!({"role": "user", "content": "second"})]);
        let body: Value = serde_json::from_slice(&c.body(&c.turns[0], None)).expect("json");
        assert_eq!(body["messages"][0]["content"], "first");
        assert!(Conversation::new(Map::new(), &[json!(3)]).is_err());
    }
}
