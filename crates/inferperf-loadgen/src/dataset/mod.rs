//! Datasets: rows of (prompt, prompt length, output length) built before the run, seeded and
//! reproducible, with SGLang's names and sampling rules.

pub mod agentic;
mod build;
mod config;
pub mod custom;
pub mod exact;
pub mod gsp;
pub mod image;
pub mod lengths;
pub mod mooncake;
pub mod openai;
pub mod random;
pub mod sharegpt;

use serde_json::{Map, Value};

use crate::backend::Prompt;

pub use build::build;
pub use config::DatasetConfig;

/// The `--dataset-name` choices implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetName {
    Sharegpt,
    Random,
    #[value(name = "random-ids")]
    RandomIds,
    #[value(name = "generated-shared-prefix")]
    GeneratedSharedPrefix,
    Custom,
    Mooncake,
    /// JSONL of OpenAI chat requests, replayed with their own messages and settings.
    Openai,
    /// Random text with synthetic images (vision-language servers).
    Image,
    /// Recorded agent conversations replayed turn by turn (chat backends).
    #[value(name = "agentic-trace")]
    AgenticTrace,
}

impl DatasetName {
    /// The `--dataset-name` spelling.
    pub fn name(self) -> &'static str {
        match self {
            DatasetName::Sharegpt => "sharegpt",
            DatasetName::Random => "random",
            DatasetName::RandomIds => "random-ids",
            DatasetName::GeneratedSharedPrefix => "generated-shared-prefix",
            DatasetName::Custom => "custom",
            DatasetName::Mooncake => "mooncake",
            DatasetName::Openai => "openai",
            DatasetName::Image => "image",
            DatasetName::AgenticTrace => "agentic-trace",
        }
    }
}

/// One request's worth of input.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetRow {
    pub prompt: Prompt,
    /// Prompt tokens as the client counts them.
    pub prompt_len: usize,
    pub output_len: usize,
    /// Trace timestamp (ms), for trace replay.
    pub timestamp_ms: Option<f64>,
    /// `X-SMG-Routing-Key` header value (GSP `--gsp-send-routing-key`).
    pub routing_key: Option<String>,
    /// Per-row body keys merged over the global extra body.
    pub extra: Option<Map<String, Value>>,
}

impl DatasetRow {
    /// A plain text row.
    pub fn text(prompt: String, prompt_len: usize, output_len: usize) -> Self {
        Self {
            prompt: Prompt::Text(prompt),
            prompt_len,
            output_len,
            timestamp_ms: None,
            routing_key: None,
            extra: None,
        }
    }
}
