//! Request sampling fields (OpenAI or SGLang spelling) -> the engine's `SamplingParams`, with
//! the validation and length checks SGLang applies, so bad values come back as 400s that name
//! the field instead of reaching the engine.

use inferperf_engine::api::SamplingParams;
use inferperf_protocol::StringOrList;

use crate::api_error::ApiError;
use crate::state::AppState;

/// Most stop strings a request may carry (`stop`, `sampling_params.stop`). The engine checks
/// every stop string after every token, so an unbounded list slows the whole batch down; OpenAI
/// allows 4, this is generous for SGLang-style clients.
pub const MAX_STOP_STRINGS: usize = 64;
/// Longest stop string, in bytes.
pub const MAX_STOP_STRING_BYTES: usize = 1024;
/// Most stop token ids a request may carry (`stop_token_ids`).
pub const MAX_STOP_TOKEN_IDS: usize = 256;

/// Sampling fields common to all APIs, still optional (absent = the API's default).
#[derive(Clone, Debug, Default)]
pub struct SamplingInput {
    pub max_new_tokens: Option<u32>,
    pub min_new_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i32>,
    pub min_p: Option<f32>,
    pub stop: Option<StringOrList>,
    pub stop_token_ids: Option<Vec<u32>>,
    pub ignore_eos: Option<bool>,
    pub skip_special_tokens: Option<bool>,
    pub no_stop_trim: Option<bool>,
    pub seed: Option<u64>,
    pub n: Option<u32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub repetition_penalty: Option<f32>,
}

/// How the request's API spells its fields (for error messages) and what it defaults to.
#[derive(Clone, Copy, Debug)]
pub struct ApiSpelling {
    /// Prefix of every sampling field (`sampling_params.` for `/generate`).
    pub prefix: &'static str,
    /// Name of the max-tokens field (`max_tokens`, `max_completion_tokens`, `max_new_tokens`).
    pub max_tokens: &'static str,
    /// Name of the min-tokens field (`min_tokens`, `min_new_tokens`).
    pub min_tokens: &'static str,
    pub default_max: DefaultMax,
}

/// Default number of generated tokens when the request sets none.
#[derive(Clone, Copy, Debug)]
pub enum DefaultMax {
    /// A fixed count (16 for OpenAI completions, 128 for SGLang `/generate`).
    Fixed(u32),
    /// Whatever the context leaves after the prompt (OpenAI chat).
    RemainingContext,
}

/// `/v1/completions` spelling.
pub const COMPLETIONS: ApiSpelling = ApiSpelling {
    prefix: "",
    max_tokens: "max_tokens",
    min_tokens: "min_tokens",
    default_max: DefaultMax::Fixed(16),
};

/// `/generate` spelling.
pub const GENERATE: ApiSpelling = ApiSpelling {
    prefix: "sampling_params.",
    max_tokens: "max_new_tokens",
    min_tokens: "min_new_tokens",
    default_max: DefaultMax::Fixed(128),
};

/// `/v1/chat/completions` spelling; `max_tokens` names whichever field the client used.
pub fn chat(max_field: &'static str) -> ApiSpelling {
    ApiSpelling {
        prefix: "",
        max_tokens: max_field,
        min_tokens: "min_tokens",
        default_max: DefaultMax::RemainingContext,
    }
}

impl SamplingInput {
    /// Validate against the model and the prompt length and produce engine parameters.
    pub fn build(
        &self,
        state: &AppState,
        spelling: ApiSpelling,
        prompt_len: usize,
        allow_zero_max: bool,
    ) -> Result<SamplingParams, ApiError> {
        let field = |name: &str| format!("{}{}", spelling.prefix, name);
        let d = SamplingParams::default();

        check_prompt_len(state, prompt_len)?;

        if let Some(n) = self.n {
            if n != 1 {
                return Err(ApiError::invalid_param(
                    &field("n"),
                    format!("n={n} is not supported: the reference server generates exactly one choice per prompt (n must be 1)"),
                ));
            }
        }
        for (name, value, neutral) in [
            ("presence_penalty", self.presence_penalty, 0.0),
            ("frequency_penalty", self.frequency_penalty, 0.0),
            ("repetition_penalty", self.repetition_penalty, 1.0),
        ] {
            if let Some(v) = value {
                if v != neutral {
                    return Err(ApiError::invalid_param(
                        &field(name),
                        format!(
                            "{name}={v} is not supported by the reference server (only {neutral})"
                        ),
                    ));
                }
            }
        }

        let max_new_tokens = match self.max_new_tokens {
            Some(0) if !allow_zero_max => {
                return Err(ApiError::invalid_param(
                    &field(spelling.max_tokens),
                    format!("{} must be at least 1", spelling.max_tokens),
                ))
            }
            Some(m) => m as usize,
            None => match spelling.default_max {
                DefaultMax::Fixed(m) => (m as usize)
                    .min(state.context_length.saturating_sub(prompt_len + 1))
                    .max(1),
                DefaultMax::RemainingContext => {
                    state.context_length.saturating_sub(prompt_len + 1).max(1)
                }
            },
        };
        check_total_len(
            state,
            prompt_len,
            max_new_tokens,
            &field(spelling.max_tokens),
        )?;

        let min_new_tokens = self.min_new_tokens.map_or(0, |m| m as usize);
        if min_new_tokens > max_new_tokens {
            return Err(ApiError::invalid_param(
                &field(spelling.min_tokens),
                format!(
                    "{} ({min_new_tokens}) must not exceed {} ({max_new_tokens})",
                    spelling.min_tokens, spelling.max_tokens
                ),
            ));
        }

        let temperature = self.temperature.unwrap_or(d.temperature);
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(ApiError::invalid_param(
                &field("temperature"),
                format!("temperature must be a non-negative number, got {temperature}"),
            ));
        }
        let top_p = self.top_p.unwrap_or(d.top_p);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::invalid_param(
                &field("top_p"),
                format!("top_p must be in (0, 1], got {top_p}"),
            ));
        }
        let top_k = self.top_k.unwrap_or(d.top_k);
        if top_k < -1 {
            return Err(ApiError::invalid_param(
                &field("top_k"),
                format!("top_k must be -1 (disabled) or at least 1, got {top_k}"),
            ));
        }
        let min_p = self.min_p.unwrap_or(d.min_p);
        if !(0.0..=1.0).contains(&min_p) {
            return Err(ApiError::invalid_param(
                &field("min_p"),
                format!("min_p must be in [0, 1], got {min_p}"),
            ));
        }
        let stop: Vec<String> = self
            .stop
            .clone()
            .map(StringOrList::into_vec)
            .unwrap_or_default();
        check_stop_strings(&stop, &field("stop"))?;
        let stop_token_ids = self.stop_token_ids.clone().unwrap_or_default();
        if stop_token_ids.len() > MAX_STOP_TOKEN_IDS {
            let name = field("stop_token_ids");
            return Err(ApiError::invalid_param(
                &name,
                format!(
                    "{name} has {} entries; at most {MAX_STOP_TOKEN_IDS} are accepted",
                    stop_token_ids.len()
                ),
            ));
        }
        let vocab = state.tokenizer.vocab_size();
        if let Some(bad) = stop_token_ids.iter().find(|&&t| t as usize >= vocab) {
            return Err(ApiError::invalid_param(
                &field("stop_token_ids"),
                format!("stop token id {bad} is out of range (vocabulary size {vocab})"),
            ));
        }

        Ok(SamplingParams {
            max_new_tokens,
            min_new_tokens,
            temperature,
            top_k,
            top_p,
            min_p,
            seed: self.seed,
            stop,
            stop_token_ids,
            ignore_eos: self.ignore_eos.unwrap_or(d.ignore_eos),
            skip_special_tokens: self.skip_special_tokens.unwrap_or(d.skip_special_tokens),
            no_stop_trim: self.no_stop_trim.unwrap_or(d.no_stop_trim),
        })
    }
}

/// Stop strings must be non-empty, at most [`MAX_STOP_STRINGS`] of them, each at most
/// [`MAX_STOP_STRING_BYTES`] long; `field` names the list in errors.
fn check_stop_strings(stop: &[String], field: &str) -> Result<(), ApiError> {
    if stop.len() > MAX_STOP_STRINGS {
        return Err(ApiError::invalid_param(
            field,
            format!(
                "{field} has {} strings; at most {MAX_STOP_STRINGS} are accepted",
                stop.len()
            ),
        ));
    }
    if stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid_param(
            field,
            "stop strings must not be empty",
        ));
    }
    if let Some((i, long)) = stop
        .iter()
        .enumerate()
        .find(|(_, s)| s.len() > MAX_STOP_STRING_BYTES)
    {
        return Err(ApiError::invalid_param(
            field,
            format!(
                "{field}[{i}] is {} bytes long; a stop string may have at most {MAX_STOP_STRING_BYTES} bytes",
                long.len()
            ),
        ));
    }
    Ok(())
}

/// Reject empty prompts and prompts the engine cannot hold (SGLang's message).
pub fn check_prompt_len(state: &AppState, prompt_len: usize) -> Result<(), ApiError> {
    if prompt_len == 0 {
        return Err(ApiError::bad_request(
            "the prompt is empty: at least one input token is required",
        ));
    }
    if prompt_len > state.max_req_input_len {
        return Err(ApiError::bad_request(format!(
            "The input ({prompt_len} tokens) is longer than the model's context length ({} tokens); the longest accepted prompt is {} tokens.",
            state.context_length, state.max_req_input_len
        )));
    }
    Ok(())
}

/// Reject prompt + generation that exceed the context or the KV capacity (SGLang's message).
fn check_total_len(
    state: &AppState,
    prompt_len: usize,
    max_new_tokens: usize,
    max_field: &str,
) -> Result<(), ApiError> {
    let total = prompt_len + max_new_tokens;
    if total >= state.context_length {
        return Err(ApiError::invalid_param(
            max_field,
            format!(
                "Requested token count exceeds the model's maximum context length of {} tokens. You requested a total of {total} tokens: {prompt_len} tokens from the input messages and {max_new_tokens} tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit.",
                state.context_length
            ),
        ));
    }
    if state.max_total_num_tokens > 0 && total > state.max_total_num_tokens {
        return Err(ApiError::invalid_param(
            max_field,
            format!(
                "Requested token count ({total} = {prompt_len} prompt + {max_new_tokens} completion) exceeds the KV cache capacity of {} tokens (--max-total-tokens).",
                state.max_total_num_tokens
            ),
        ));
    }
    Ok(())
}
