//! Backends: which route a request goes to, the exact JSON body SGLang's `bench_serving` (or
//! vLLM's `bench serve`, for `openai`/`openai-chat`) sends for it, and how its stream is parsed.

use crate::error::BenchError;
use serde_json::{json, Map, Value};

/// Request protocol, with SGLang's (and vLLM's) `--backend` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// SGLang native `POST /generate` (cumulative text, `meta_info`).
    Sglang,
    #[value(name = "sglang-native")]
    SglangNative,
    /// OpenAI completions with SGLang's body.
    #[value(name = "sglang-oai")]
    SglangOai,
    /// OpenAI chat completions with SGLang's body.
    #[value(name = "sglang-oai-chat")]
    SglangOaiChat,
    Vllm,
    #[value(name = "vllm-chat")]
    VllmChat,
    Lmdeploy,
    #[value(name = "lmdeploy-chat")]
    LmdeployChat,
    /// OpenAI completions with vLLM's body (`stream_options.include_usage`).
    Openai,
    /// OpenAI chat completions with vLLM's body (`stream_options.include_usage`).
    #[value(name = "openai-chat")]
    OpenaiChat,
}

/// How a backend's responses are parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Generate,
    Completions,
    Chat,
}

impl Backend {
    /// The `--backend` spelling.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sglang => "sglang",
            Backend::SglangNative => "sglang-native",
            Backend::SglangOai => "sglang-oai",
            Backend::SglangOaiChat => "sglang-oai-chat",
            Backend::Vllm => "vllm",
            Backend::VllmChat => "vllm-chat",
            Backend::Lmdeploy => "lmdeploy",
            Backend::LmdeployChat => "lmdeploy-chat",
            Backend::Openai => "openai",
            Backend::OpenaiChat => "openai-chat",
        }
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Backend::Sglang | Backend::SglangNative => Protocol::Generate,
            Backend::SglangOai | Backend::Vllm | Backend::Lmdeploy | Backend::Openai => {
                Protocol::Completions
            }
            Backend::SglangOaiChat
            | Backend::VllmChat
            | Backend::LmdeployChat
            | Backend::OpenaiChat => Protocol::Chat,
        }
    }

    /// Route appended to the base URL.
    pub fn api_path(self) -> &'static str {
        match self.protocol() {
            Protocol::Generate => "/generate",
            Protocol::Completions => "/v1/completions",
            Protocol::Chat => "/v1/chat/completions",
        }
    }

    /// SGLang's default port when `--port` is absent.
    pub fn default_port(self) -> u16 {
        match self {
            Backend::Lmdeploy | Backend::LmdeployChat => 23333,
            Backend::Vllm | Backend::VllmChat | Backend::Openai | Backend::OpenaiChat => 8000,
            _ => 30000,
        }
    }

    /// True for the SGLang family (`/server_info`, `/flush_cache`).
    pub fn is_sglang(self) -> bool {
        self.name().contains("sglang")
    }

    /// vLLM-style bodies ask for usage in the stream.
    fn wants_usage(self) -> bool {
        matches!(self, Backend::Openai | Backend::OpenaiChat)
    }
}

/// A prompt as the dataset produced it.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    Text(String),
    /// Token ids (`--tokenize-prompt`, native backend only).
    Ids(Vec<u32>),
    /// Full OpenAI `messages` array (chat backends).
    Messages(Value),
    /// Several user turns replayed as one conversation (chat backends): each a string or a
    /// list of messages (see [`crate::conversation`]).
    Turns(Vec<Value>),
}

/// Everything that shapes one request body besides the prompt.
#[derive(Clone, Debug)]
pub struct BodyOptions<'a> {
    pub backend: Backend,
    pub model: &'a str,
    pub stream: bool,
    pub ignore_eos: bool,
    pub lora_name: Option<&'a str>,
    /// Native `/generate` only (`--temperature`, `--top-p`; top_p sent only when < 1).
    pub temperature: f64,
    pub top_p: f64,
    /// Merged last (overrides our keys), as SGLang does.
    pub extra: &'a Map<String, Value>,
    /// `--return-logprob`, `--top-logprobs-num`, `--token-ids-logprob`, `--logprob-start-len`,
    /// `--return-routed-experts`.
    pub logprobs: &'a LogprobOptions,
    /// The request id: SGLang-family bodies carry it as `rid` (vLLM warns about unknown
    /// fields, so the others get it only as the `X-Request-Id` header the client adds).
    pub rid: Option<&'a str>,
}

/// The logprob-related flags (native `/generate` takes all; completions only `logprobs`).
#[derive(Clone, Debug)]
pub struct LogprobOptions {
    pub return_logprob: bool,
    pub top_logprobs_num: u32,
    pub token_ids_logprob: Option<Vec<i64>>,
    pub logprob_start_len: i64,
    pub return_routed_experts: bool,
}

impl LogprobOptions {
    /// SGLang's defaults: nothing asked, `logprob_start_len` -1.
    pub const OFF: Self = Self {
        return_logprob: false,
        top_logprobs_num: 0,
        token_ids_logprob: None,
        logprob_start_len: -1,
        return_routed_experts: false,
    };
}

impl Default for LogprobOptions {
    fn default() -> Self {
        Self::OFF
    }
}

/// Build the JSON body for one request, exactly as SGLang's request functions do (§1.3).
pub fn build_body(prompt: &Prompt, output_len: usize, o: &BodyOptions<'_>) -> Value {
    let mut body = match o.backend.protocol() {
        Protocol::Generate => {
            let mut b = Map::new();
            match prompt {
                Prompt::Ids(ids) => b.insert("input_ids".into(), json!(ids)),
                Prompt::Text(t) => b.insert("text".into(), json!(t)),
                Prompt::Messages(m) => b.insert("text".into(), json!(m.to_string())),
                Prompt::Turns(_) => b.insert("text".into(), prompt_as_text(prompt)),
            };
            let mut sp = json!({"temperature": o.temperature, "max_new_tokens": output_len,
                                "ignore_eos": o.ignore_eos});
            if o.top_p < 1.0 {
                sp["top_p"] = json!(o.top_p);
            }
            b.insert("sampling_params".into(), sp);
            b.insert("stream".into(), json!(o.stream));
            b.insert("lora_path".into(), json!(o.lora_name));
            let lp = o.logprobs;
            b.insert("return_logprob".into(), json!(lp.return_logprob));
            b.insert(
                "return_routed_experts".into(),
                json!(lp.return_routed_experts),
            );
            b.insert("logprob_start_len".into(), json!(lp.logprob_start_len));
            if lp.top_logprobs_num > 0 {
                b.insert("top_logprobs_num".into(), json!(lp.top_logprobs_num));
            }
            if let Some(ids) = &lp.token_ids_logprob {
                b.insert("token_ids_logprob".into(), json!(ids));
            }
            b
        }
        Protocol::Completions => {
            let mut b = Map::new();
            b.insert("model".into(), json!(o.model));
            b.insert("prompt".into(), prompt_as_text(prompt));
            if !o.backend.wants_usage() {
                b.insert("best_of".into(), json!(1));
            }
            b.insert("max_tokens".into(), json!(output_len));
            b.insert("stream".into(), json!(o.stream));
            if o.backend.wants_usage() && o.stream {
                b.insert("stream_options".into(), json!({"include_usage": true}));
            }
            if !o.extra.contains_key("temperature") {
                b.insert("temperature".into(), json!(0.0));
            }
            if !o.extra.contains_key("ignore_eos") {
                b.insert("ignore_eos".into(), json!(o.ignore_eos));
            }
            if o.logprobs.return_logprob && o.logprobs.top_logprobs_num > 0 {
                b.insert("logprobs".into(), json!(o.logprobs.top_logprobs_num));
            }
            b
        }
        Protocol::Chat => {
            let messages = match prompt {
                Prompt::Messages(m) => m.clone(),
                other => json!([{"role": "user", "content": prompt_as_text(other)}]),
            };
            let mut b = Map::new();
            b.insert("model".into(), json!(o.model));
            b.insert("messages".into(), messages);
            b.insert("max_completion_tokens".into(), json!(output_len));
            b.insert("stream".into(), json!(o.stream));
            if o.backend.wants_usage() && o.stream {
                b.insert("stream_options".into(), json!({"include_usage": true}));
            }
            if !o.extra.contains_key("temperature") {
                b.insert("temperature".into(), json!(0.0));
            }
            if !o.extra.contains_key("ignore_eos") {
                b.insert("ignore_eos".into(), json!(o.ignore_eos));
            }
            b
        }
    };
    if let (Some(rid), true) = (o.rid, o.backend.is_sglang()) {
        body.insert("rid".into(), json!(rid));
    }
    for (k, v) in o.extra {
        body.insert(k.clone(), v.clone());
    }
    if let (Some(lora), Protocol::Completions | Protocol::Chat) =
        (o.lora_name, o.backend.protocol())
    {
        body.insert("model".into(), json!(lora));
        body.insert("lora_path".into(), json!(lora));
    }
    Value::Object(body)
}

fn prompt_as_text(p: &Prompt) -> Value {
    match p {
        Prompt::Text(t) => json!(t),
        Prompt::Ids(ids) => json!(ids),
        Prompt::Messages(m) => m.clone(),
        // Only the first turn is known before the run; conversations replace the body per round.
        Prompt::Turns(t) => t.first().cloned().unwrap_or(Value::Null),
    }
}

/// `--extra-request-body`: a JSON object merged into every request body.
pub fn parse_extra(s: Option<&str>) -> Result<Map<String, Value>, BenchError> {
    match s {
        None => Ok(Map::new()),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(BenchError::Config(
                "--extra-request-body must be a JSON object".into(),
            )),
            Err(e) => Err(BenchError::Config(format!("--extra-request-body: {e}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(backend: Backend, extra: &Map<String, Value>) -> BodyOptions<'_> {
        BodyOptions {
            backend,
            model: "m",
            stream: true,
            ignore_eos: true,
            lora_name: None,
            temperature: 0.0,
            top_p: 1.0,
            extra,
            logprobs: &LogprobOptions::OFF,
            rid: None,
        }
    }

    #[test]
    fn rid_goes_into_sglang_bodies_only() {
        let extra = Map::new();
        let with_rid = |b| BodyOptions {
            rid: Some("run-7"),
            ..opts(b, &extra)
        };
        for b in [Backend::Sglang, Backend::SglangOai, Backend::SglangOaiChat] {
            let body = build_body(&Prompt::Text("hi".into()), 4, &with_rid(b));
            assert_eq!(body["rid"], "run-7", "{}", b.name());
        }
        for b in [Backend::Vllm, Backend::Openai, Backend::OpenaiChat] {
            let body = build_body(&Prompt::Text("hi".into()), 4, &with_rid(b));
            assert!(body.get("rid").is_none(), "{}", b.name());
        }
    }

    #[test]
    fn logprob_flags_reach_native_and_completions_bodies() {
        let extra = Map::new();
        let lp = LogprobOptions {
            return_logprob: true,
            top_logprobs_num: 3,
            token_ids_logprob: Some(vec![5, 7]),
            logprob_start_len: 0,
            return_routed_experts: true,
        };
        let mut o = opts(Backend::Sglang, &extra);
        o.logprobs = &lp;
        let b = build_body(&Prompt::Text("hi".into()), 2, &o);
        assert_eq!(b["return_logprob"], json!(true));
        assert_eq!(b["top_logprobs_num"], json!(3));
        assert_eq!(b["token_ids_logprob"], json!([5, 7]));
        assert_eq!(b["logprob_start_len"], json!(0));
        assert_eq!(b["return_routed_experts"], json!(true));
        let mut o = opts(Backend::SglangOai, &extra);
        o.logprobs = &lp;
        let b = build_body(&Prompt::Text("hi".into()), 2, &o);
        assert_eq!(b["logprobs"], json!(3));
        assert!(b.get("top_logprobs_num").is_none());
        // Chat bodies carry none of them (SGLang's chat request function ignores the flags).
        let mut o = opts(Backend::SglangOaiChat, &extra);
        o.logprobs = &lp;
        let b = build_body(&Prompt::Text("hi".into()), 2, &o);
        assert!(b.get("logprobs").is_none() && b.get("return_logprob").is_none());
    }

    #[test]
    fn bodies_match_sglang() {
        let extra = Map::new();
        let p = Prompt::Text("hi".into());
        assert_eq!(
            build_body(&p, 8, &opts(Backend::Sglang, &extra)),
            json!({"text": "hi", "sampling_params": {"temperature": 0.0, "max_new_tokens": 8, "ignore_eos": true},
                   "stream": true, "lora_path": null, "return_logprob": false, "return_routed_experts": false,
                   "logprob_start_len": -1})
        );
        assert_eq!(
            build_body(&p, 8, &opts(Backend::SglangOai, &extra)),
            json!({"model": "m", "prompt": "hi", "best_of": 1, "max_tokens": 8, "stream": true,
                   "temperature": 0.0, "ignore_eos": true})
        );
        assert_eq!(
            build_body(&p, 8, &opts(Backend::VllmChat, &extra)),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 8,
                   "stream": true, "temperature": 0.0, "ignore_eos": true})
        );
        let b = build_body(&p, 8, &opts(Backend::OpenaiChat, &extra));
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn native_sampling_flags() {
        let extra = Map::new();
        let mut o = opts(Backend::Sglang, &extra);
        o.temperature = 0.5;
        o.top_p = 0.9;
        let b = build_body(&Prompt::Ids(vec![7]), 3, &o);
        assert_eq!(
            b["sampling_params"],
            json!({"temperature": 0.5, "max_new_tokens": 3, "ignore_eos": true, "top_p": 0.9})
        );
        assert_eq!(b["input_ids"], json!([7]));
    }

    #[test]
    fn extra_body_overrides() {
        let mut extra = Map::new();
        extra.insert("temperature".into(), json!(0.7));
        extra.insert("min_tokens".into(), json!(4));
        let b = build_body(
            &Prompt::Ids(vec![1, 2]),
            4,
            &opts(Backend::Lmdeploy, &extra),
        );
        assert_eq!(b["temperature"], json!(0.7));
        assert_eq!(b["min_tokens"], json!(4));
        assert_eq!(b["prompt"], json!([1, 2]));
    }
}
