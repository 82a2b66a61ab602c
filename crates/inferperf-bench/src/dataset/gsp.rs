//! `generated-shared-prefix`: groups of requests sharing a long system prompt, each with its own
//! question (SGLang's GSP), built from single-token words so every length is exact.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::exact::WordVocab;
use super::lengths::random_lens;
use super::DatasetRow;
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
    pub seed: u64,
}

/// All `num_groups * prompts_per_group` rows (shuffled unless `ordered`).
pub fn build(o: &GspOptions, tok: &SharedTokenizer) -> Result<Vec<DatasetRow>, BenchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let n = o.num_groups * o.prompts_per_group;
    let sys_lens = random_lens(&mut rng, o.system_prompt_len, o.range_ratio, o.num_groups);
    let q_lens = random_lens(&mut rng, o.question_len, o.range_ratio, n);
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
    let mut rows = Vec::with_capacity(n);
    for (g, &sys_len) in sys_lens.iter().enumerate() {
        let system = gen(&mut rng, sys_len)?;
        for p in 0..o.prompts_per_group {
            let i = g * o.prompts_per_group + p;
            let question = gen(&mut rng, q_lens[i])?;
            let prompt = format!("{system}\n\n{question}");
            let prompt_len = tok.encode(&prompt, false).map_err(tokenizer_error)?.len();
            let mut row = DatasetRow::text(prompt, prompt_len, out_lens[i]);
            if o.send_routing_key {
                row.routing_key = Some(format!("{run_tag:08x}_{g}"));
            }
            rows.push(row);
        }
    }
    if !o.ordered {
        rows.shuffle(&mut rng);
    }
    tracing::info!(
        "generated-shared-prefix: {} groups x {} prompts, system prompt ~{} tokens, question ~{} tokens",
        o.num_groups,
        o.prompts_per_group,
        o.system_prompt_len,
        o.question_len
    );
    Ok(rows)
}
