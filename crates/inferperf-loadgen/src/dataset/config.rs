//! What a dataset is built from: the dataset flags every command that builds prompts shares
//! (`bench serving`, `sweep`, `slo`, `bench offline`), as a plain struct. Defaults are SGLang
//! `bench_serving`'s; a command whose SGLang original differs sets its own in its flags.

use super::DatasetName;

/// Dataset settings; [`super::build`] turns them into rows.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetConfig {
    pub name: DatasetName,
    /// Local dataset file (ShareGPT JSON, custom JSONL, Mooncake trace JSONL, ...); empty means
    /// the dataset's default location.
    pub path: String,
    /// agentic-trace: rotate the conversation list by this many.
    pub offset: usize,
    /// agentic-trace: at most this many turns per conversation.
    pub agentic_max_turns: Option<usize>,
    pub num_prompts: usize,
    pub sharegpt_output_len: Option<usize>,
    pub sharegpt_context_len: Option<usize>,
    pub random_input_len: usize,
    pub random_output_len: usize,
    /// Lengths are drawn from [len * ratio, len].
    pub random_range_ratio: f64,
    pub prompt_suffix: String,
    /// Images per request (`image` dataset).
    pub image_count: usize,
    /// Per-request image count uniform in 1..=image_count.
    pub random_image_count: bool,
    pub image_resolution: String,
    pub image_format: String,
    pub image_content: String,
    /// Wrap sharegpt/custom prompts in the chat template.
    pub apply_chat_template: bool,
    /// Prompts as token ids (`input_ids`), not text.
    pub tokenize_prompt: bool,
    pub gsp_num_groups: usize,
    pub gsp_prompts_per_group: usize,
    pub gsp_system_prompt_len: usize,
    pub gsp_question_len: usize,
    pub gsp_output_len: usize,
    pub gsp_range_ratio: f64,
    pub gsp_ordered: bool,
    pub gsp_num_turns: usize,
    pub gsp_fast_prepare: bool,
    /// `uniform` or `zipf`.
    pub gsp_group_distribution: String,
    pub gsp_zipf_alpha: Option<f64>,
    pub gsp_send_routing_key: bool,
    pub mooncake_num_rounds: usize,
    /// Which Mooncake trace when no path is given (`/tmp/{workload}_trace.jsonl`).
    pub mooncake_workload: String,
    pub seed: u64,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            name: DatasetName::Sharegpt,
            path: String::new(),
            offset: 0,
            agentic_max_turns: None,
            num_prompts: 1000,
            sharegpt_output_len: None,
            sharegpt_context_len: None,
            random_input_len: 1024,
            random_output_len: 1024,
            random_range_ratio: 0.0,
            prompt_suffix: String::new(),
            image_count: 1,
            random_image_count: false,
            image_resolution: "1080p".into(),
            image_format: "jpeg".into(),
            image_content: "random".into(),
            apply_chat_template: false,
            tokenize_prompt: false,
            gsp_num_groups: 64,
            gsp_prompts_per_group: 16,
            gsp_system_prompt_len: 2048,
            gsp_question_len: 128,
            gsp_output_len: 256,
            gsp_range_ratio: 1.0,
            gsp_ordered: false,
            gsp_num_turns: 1,
            gsp_fast_prepare: false,
            gsp_group_distribution: "uniform".into(),
            gsp_zipf_alpha: None,
            gsp_send_routing_key: false,
            mooncake_num_rounds: 1,
            mooncake_workload: "conversation".into(),
            seed: 42,
        }
    }
}
