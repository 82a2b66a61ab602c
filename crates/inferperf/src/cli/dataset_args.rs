//! The dataset flags every command that builds prompts shares (`bench serving`, `slo`, `bench
//! offline`), with SGLang's names and defaults. Flags whose SGLang default differs per command
//! (`--num-prompts`, `--seed`, `--gsp-num-groups`) live in each command's own flags and are
//! passed to [`DatasetArgs::to_config`].

use inferperf_loadgen::dataset::{DatasetConfig, DatasetName};

use super::value_parsers::unit_interval;

/// Dataset flags, flattened into each command.
#[derive(Clone, Debug, clap::Args)]
pub struct DatasetArgs {
    #[arg(long, value_enum, default_value = "sharegpt")]
    pub dataset_name: DatasetName,
    /// Local dataset file (ShareGPT JSON, custom JSONL, Mooncake trace JSONL).
    #[arg(long, default_value = "")]
    pub dataset_path: String,
    /// agentic-trace: rotate the conversation list by this many.
    #[arg(long, default_value_t = 0)]
    pub dataset_offset: usize,
    /// agentic-trace: at most this many turns per conversation.
    #[arg(long)]
    pub agentic_max_turns: Option<usize>,
    #[arg(long)]
    pub sharegpt_output_len: Option<usize>,
    #[arg(long)]
    pub sharegpt_context_len: Option<usize>,
    #[arg(long, default_value_t = 1024)]
    pub random_input_len: usize,
    #[arg(long, default_value_t = 1024)]
    pub random_output_len: usize,
    /// Lengths are drawn from [len * ratio, len]; a number in [0, 1].
    #[arg(long, default_value_t = 0.0, value_parser = unit_interval)]
    pub random_range_ratio: f64,
    #[arg(long, default_value = "")]
    pub prompt_suffix: String,
    /// Images per request (`image` dataset).
    #[arg(long, default_value_t = 1)]
    pub image_count: usize,
    /// Per-request image count uniform in 1..=--image-count.
    #[arg(long)]
    pub random_image_count: bool,
    /// `4k`, `1080p`, `720p`, `360p`, or `HEIGHTxWIDTH`.
    #[arg(long, default_value = "1080p")]
    pub image_resolution: String,
    /// `jpeg` or `png`.
    #[arg(long, default_value = "jpeg")]
    pub image_format: String,
    /// `random` (noise) or `blank` (white).
    #[arg(long, default_value = "random")]
    pub image_content: String,
    /// Wrap sharegpt/custom prompts in the chat template.
    #[arg(long)]
    pub apply_chat_template: bool,
    /// Send token ids (`input_ids`) instead of text (`--backend sglang` only).
    #[arg(long)]
    pub tokenize_prompt: bool,
    #[arg(long, default_value_t = 16)]
    pub gsp_prompts_per_group: usize,
    #[arg(long, default_value_t = 2048)]
    pub gsp_system_prompt_len: usize,
    #[arg(long, default_value_t = 128)]
    pub gsp_question_len: usize,
    #[arg(long, default_value_t = 256)]
    pub gsp_output_len: usize,
    #[arg(long, default_value_t = 1.0, value_parser = unit_interval)]
    pub gsp_range_ratio: f64,
    #[arg(long)]
    pub gsp_ordered: bool,
    /// Questions per conversation; above 1 every row is a multi-turn chat (chat backends).
    #[arg(long, default_value_t = 1)]
    pub gsp_num_turns: usize,
    /// Skip tokenizing prompts (their recorded length is 1).
    #[arg(long)]
    pub gsp_fast_prepare: bool,
    /// How requests spread over groups: `uniform` (prompts-per-group each) or `zipf`.
    #[arg(long, value_parser = ["uniform", "zipf"], default_value = "uniform")]
    pub gsp_group_distribution: String,
    /// Zipf exponent (> 0), required with --gsp-group-distribution zipf.
    #[arg(long)]
    pub gsp_zipf_alpha: Option<f64>,
    #[arg(long)]
    pub gsp_send_routing_key: bool,
    /// Rounds per Mooncake session (each a longer chat history, all sent at the session's time).
    #[arg(long, default_value_t = 1)]
    pub mooncake_num_rounds: usize,
    /// Which Mooncake trace (`mooncake`, `conversation`, `synthetic`, `toolagent`) when no
    /// --dataset-path is given: read from /tmp/{workload}_trace.jsonl.
    #[arg(long, default_value = "conversation")]
    pub mooncake_workload: String,
}

impl DatasetArgs {
    /// The plain settings `dataset::build` takes.
    pub fn to_config(&self, num_prompts: usize, seed: u64, gsp_num_groups: usize) -> DatasetConfig {
        DatasetConfig {
            name: self.dataset_name,
            path: self.dataset_path.clone(),
            offset: self.dataset_offset,
            agentic_max_turns: self.agentic_max_turns,
            sharegpt_output_len: self.sharegpt_output_len,
            sharegpt_context_len: self.sharegpt_context_len,
            random_input_len: self.random_input_len,
            random_output_len: self.random_output_len,
            random_range_ratio: self.random_range_ratio,
            prompt_suffix: self.prompt_suffix.clone(),
            image_count: self.image_count,
            random_image_count: self.random_image_count,
            image_resolution: self.image_resolution.clone(),
            image_format: self.image_format.clone(),
            image_content: self.image_content.clone(),
            apply_chat_template: self.apply_chat_template,
            tokenize_prompt: self.tokenize_prompt,
            gsp_prompts_per_group: self.gsp_prompts_per_group,
            gsp_system_prompt_len: self.gsp_system_prompt_len,
            gsp_question_len: self.gsp_question_len,
            gsp_output_len: self.gsp_output_len,
            gsp_range_ratio: self.gsp_range_ratio,
            gsp_ordered: self.gsp_ordered,
            gsp_num_turns: self.gsp_num_turns,
            gsp_fast_prepare: self.gsp_fast_prepare,
            gsp_group_distribution: self.gsp_group_distribution.clone(),
            gsp_zipf_alpha: self.gsp_zipf_alpha,
            gsp_send_routing_key: self.gsp_send_routing_key,
            mooncake_num_rounds: self.mooncake_num_rounds,
            mooncake_workload: self.mooncake_workload.clone(),
            num_prompts,
            seed,
            gsp_num_groups,
        }
    }
}
