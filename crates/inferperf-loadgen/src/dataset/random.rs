//! `random` and `random-ids` (SGLang's `RandomDataset`): sampled lengths, prompts built from
//! ShareGPT text (`random`) or from token ids (`random-ids`), exact in token count by default.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::exact::{repair_to_length, WordVocab};
use super::lengths::random_lens;
use super::DatasetRow;
use crate::backend::Prompt;
use crate::error::BenchError;
use crate::tokenizer::{num_special_tokens_to_add, tokenizer_error, SharedTokenizer};

/// Options shared by both random datasets.
#[derive(Clone, Debug)]
pub struct RandomOptions {
    pub num_prompts: usize,
    pub input_len: usize,
    pub output_len: usize,
    pub range_ratio: f64,
    pub seed: u64,
    /// Send token ids (`--tokenize-prompt`) instead of text.
    pub tokenize_prompt: bool,
}

/// Input lengths then output lengths, as SGLang draws them.
fn lens(o: &RandomOptions) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let input = random_lens(&mut rng, o.input_len, o.range_ratio, o.num_prompts);
    let output = random_lens(&mut rng, o.output_len, o.range_ratio, o.num_prompts);
    (input, output)
}

/// Per-row RNG, independent of thread scheduling.
fn row_rng(seed: u64, i: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64 + 1))
}

/// `random-ids`: token-exact prompts. Text mode uses the word vocabulary when the tokenizer
/// allows it (else SGLang's id pattern plus the repair loop); id mode sends SGLang's pattern
/// `(offset_i + i + j) % vocab` as `input_ids`.
pub fn random_ids(o: &RandomOptions, tok: &SharedTokenizer) -> Result<Vec<DatasetRow>, BenchError> {
    let (mut input, output) = lens(o);
    let vocab = tok.vocab_size().max(1);
    if o.tokenize_prompt {
        return Ok((0..o.num_prompts)
            .into_par_iter()
            .map(|i| {
                let off = (rand::Rng::gen_range(&mut row_rng(o.seed, i), 0..vocab)) as u64;
                let ids = (0..input[i])
                    .map(|j| ((off + i as u64 + j as u64) % vocab as u64) as u32)
                    .collect();
                DatasetRow {
                    prompt: Prompt::Ids(ids),
                    ..DatasetRow::text(String::new(), input[i], output[i])
                }
            })
            .collect());
    }
    let special = num_special_tokens_to_add(tok.as_ref());
    for l in &mut input {
        *l = l.saturating_sub(special);
    }
    if let Some(words) = WordVocab::build(tok) {
        return Ok((0..o.num_prompts)
            .into_par_iter()
            .map(|i| {
                let p = words.prompt(&mut row_rng(o.seed, i), input[i]);
                DatasetRow::text(p, input[i], output[i])
            })
            .collect());
    }
    tracing::info!(
        "tokenizer has no single-token word vocabulary; repairing random prompts by re-encoding"
    );
    let filler: Vec<u32> = tok.encode(" the", false).map_err(tokenizer_error)?;
    (0..o.num_prompts)
        .into_par_iter()
        .map(|i| {
            let off = rand::Rng::gen_range(&mut row_rng(o.seed, i), 0..vocab) as u64;
            let ids = (0..input[i])
                .map(|j| ((off + i as u64 + j as u64) % vocab as u64) as u32)
                .collect();
            let (text, n) = repair_to_length(tok, ids, input[i], &filler)?;
            Ok(DatasetRow::text(text, n, output[i]))
        })
        .collect()
}

/// `random`: ShareGPT first turns, tokenized, repeated or truncated to the sampled length,
/// decoded, then repaired to the exact count.
pub fn random_from_text(
    o: &RandomOptions,
    tok: &SharedTokenizer,
    sources: &[String],
) -> Result<Vec<DatasetRow>, BenchError> {
    if sources.is_empty() {
        return Err(BenchError::Dataset(
            "no source text for the random dataset".into(),
        ));
    }
    let (mut input, output) = lens(o);
    let special = num_special_tokens_to_add(tok.as_ref());
    for l in &mut input {
        *l = l.saturating_sub(special);
    }
    let filler: Vec<u32> = tok.encode(" the", false).map_err(tokenizer_error)?;
    (0..o.num_prompts)
        .into_par_iter()
        .map(|i| {
            let src = &sources[i % sources.len()];
            let mut ids = tok.encode(src, false).map_err(tokenizer_error)?;
            if ids.is_empty() {
                ids = filler.clone();
            }
            let n = input[i];
            let mut full = Vec::with_capacity(n);
            while full.len() < n {
                let take = (n - full.len()).min(ids.len());
                full.extend_from_slice(&ids[..take]);
            }
            if o.tokenize_prompt {
                return Ok(DatasetRow {
                    prompt: Prompt::Ids(full),
                    ..DatasetRow::text(String::new(), n, output[i])
                });
            }
            let (text, got) = repair_to_length(tok, full, n, &filler)?;
            Ok(DatasetRow::text(text, got, output[i]))
        })
        .collect()
}
