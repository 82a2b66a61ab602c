//! `generated-shared-prefix`: groups of requests sharing a long system prompt, each with its own
//! question (SGLang's GSP), built from single-token words so every length is exact.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::exact::WordVocab;
use super::lengths::random_lens;
use super::DatasetRow;
use crate::backend::Prompt;
use crate::error::BenchError;
use crate::tokenizer::{tokenizer_error, SharedTokenizer};

/// `--gsp-*` options.
pub struct GspOptions {
    pub num_groups: usize,
    pub prompts_per_group: usize,
    pub system_prompt_len: usize,
    pub question_len: usize,
    pub output_len: usize,
    pub range_ratio: f64,
    pub ordered: bool,
    pub send_routing_key: bool,
    /// Questions per conversation (`--gsp-num-turns`); above 1 each row is a multi-turn
    /// conversation whose first turn carries the system prompt.
    pub num_turns: usize,
    /// Record `prompt_len` as 1 instead of tokenizing (`--gsp-fast-prepare`).
    pub fast_prepare: bool,
    /// `--gsp-group-distribution zipf` with this alpha: each request's group is drawn with
    /// p(rank) proportional to rank^-alpha (group 0 hottest); `None` is uniform (every group
    /// gets `prompts_per_group` requests).
    pub zipf_alpha: Option<f64>,
    pub seed: u64,
}

/// All `num_groups * prompts_per_group` rows (shuffled unless `ordered`).
pub fn build(o: &GspOptions, tok: &SharedTokenizer) -> Result<Vec<DatasetRow>, BenchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let n = o.num_groups * o.prompts_per_group;
    let sys_lens = random_lens(&mut rng, o.system_prompt_len, o.range_ratio, o.num_groups);
    let out_lens = random_lens(&mut rng, o.output_len, o.range_ratio, n);
    let words = WordVocab::build(tok);
    let gen = |rng: &mut ChaCha8Rng, len: usize| -> Result<String, BenchError> {
        match &words {
            Some(w) => Ok(w.prompt(rng, len)),
            None => {
                let vocab = tok.vocab_size().max(1) as u32;
                let ids: Vec<u32> = (0..len).map(|_| rng.gen_range(0..vocab)).collect();
                tok.decode(&ids, false).map_err(tokenizer_error)
            }
        }
    };
    let run_tag: u32 = rng.gen();
    let turns = o.num_turns.max(1);
    // Which group each request belongs to: `prompts_per_group` each, or drawn from Zipf.
    let groups: Vec<usize> = match o.zipf_alpha {
        None => (0..n).map(|i| i / o.prompts_per_group.max(1)).collect(),
        Some(alpha) => {
            if !(alpha.is_finite() && alpha > 0.0) {
                return Err(BenchError::Config(format!(
                    "--gsp-zipf-alpha must be a finite number > 0, got {alpha}"
                )));
            }
            let weights: Vec<f64> = (1..=o.num_groups)
                .map(|r| (r as f64).powf(-alpha))
                .collect();
            let pick = rand::distributions::WeightedIndex::new(&weights)
                .map_err(|e| BenchError::Config(format!("--gsp-zipf-alpha: {e}")))?;
            let mut g: Vec<usize> = (0..n)
                .map(|_| rand::distributions::Distribution::sample(&pick, &mut rng))
                .collect();
            g.sort_unstable();
            g
        }
    };
    let q_lens = random_lens(&mut rng, o.question_len, o.range_ratio, n * turns);
    let systems = sys_lens
        .iter()
        .map(|&len| gen(&mut rng, len))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(n);
    for (i, &g) in groups.iter().enumerate() {
        let system = &systems[g];
        let mut questions = (0..turns)
            .map(|t| gen(&mut rng, q_lens[i * turns + t]))
            .collect::<Result<Vec<_>, _>>()?;
        let first = format!("{system}\n\n{}", questions[0]);
        let prompt_len = if o.fast_prepare {
            1
        } else {
            tok.encode(&first, false).map_err(tokenizer_error)?.len()
        };
        let mut row = if turns == 1 {
            DatasetRow::text(first, prompt_len, out_lens[i])
        } else {
            questions[0] = first;
            let mut r = DatasetRow::text(String::new(), prompt_len, out_lens[i]);
            r.prompt = Prompt::Turns(
                questions
                    .into_iter()
                    .map(serde_json::Value::String)
                    .collect(),
            );
            r
        };
        if o.send_routing_key {
            row.routing_key = Some(format!("{run_tag:08x}_{g}"));
        }
        rows.push(row);
    }
    if !o.ordered {
        rows.shuffle(&mut rng);
    }
    tracing::info!(
        "generated-shared-prefix: {} groups x {} prompts x {} turns, system prompt ~{} tokens, question ~{} tokens",
        o.num_groups,
        o.prompts_per_group,
        turns,
        o.system_prompt_len,
        o.question_len
    );
    Ok(rows)
}
