//! Token-exact text prompts. Decoding random ids and re-encoding the text rarely gives the same
//! count (SGLang #15732: 92 % of random prompts off). Two tools fix that:
//!
//! * a "word vocabulary": tokens that decode to a space followed by a short lowercase ASCII
//!   word and re-encode to themselves. With whitespace pre-tokenization (GPT-2/Llama-3/Qwen
//!   style BPE) a concatenation of n such words is exactly n tokens, so prompts are built by
//!   string concatenation alone (fast: 100k prompts in well under a second). The property is
//!   verified on a sample before it is relied on;
//! * a repair loop (decode, re-encode, truncate or extend, repeat) for everything else.

use rand::Rng;
use rayon::prelude::*;

use crate::error::BenchError;
use crate::tokenizer::{tokenizer_error, SharedTokenizer};

/// Words that are exactly one token each and never merge with their neighbours.
pub struct WordVocab {
    words: Vec<String>,
}

impl WordVocab {
    /// Scan the vocabulary (in parallel) for single-token words, then check on sample prompts
    /// that concatenations keep the count. `None` when the tokenizer does not have the
    /// property (the caller falls back to the repair loop).
    pub fn build(tok: &SharedTokenizer) -> Option<Self> {
        const BLOCK: u32 = 4096;
        /// Enough distinct words for random text; the scan stops there (start-up cost).
        const ENOUGH: usize = 4096;
        let vocab = tok.vocab_size() as u32;
        let mut words: Vec<(u32, String)> = Vec::new();
        let mut start = 0;
        while start < vocab && words.len() < ENOUGH {
            let end = (start + BLOCK).min(vocab);
            words.extend(
                (start..end)
                    .into_par_iter()
                    .filter_map(|id| {
                        let s = tok.decode(&[id], false).ok()?;
                        let w = s.strip_prefix(' ')?;
                        let ok = (2..=10).contains(&w.len())
                            && w.bytes().all(|b| b.is_ascii_lowercase());
                        if !ok || tok.encode(&s, false).ok()? != [id] {
                            return None;
                        }
                        Some((id, s))
                    })
                    .collect::<Vec<_>>(),
            );
            start = end;
        }
        words.sort();
        if words.len() < 64 {
            return None;
        }
        let v = Self {
            words: words.into_iter().map(|(_, s)| s).collect(),
        };
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
        for n in [1usize, 2, 17, 300] {
            let p = v.prompt(&mut rng, n);
            if tok.encode(&p, false).ok()?.len() != n {
                return None;
            }
        }
        Some(v)
    }

    /// A prompt of exactly `n` tokens (without special tokens).
    pub fn prompt(&self, rng: &mut impl Rng, n: usize) -> String {
        let mut s = String::with_capacity(n * 6);
        for _ in 0..n {
            s.push_str(&self.words[rng.gen_range(0..self.words.len())]);
        }
        s
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// Decode `ids` and repair the text until it re-encodes to exactly `n` tokens (or give the
/// closest found after a few rounds). Returns the text and its actual token count.
pub fn repair_to_length(
    tok: &SharedTokenizer,
    mut ids: Vec<u32>,
    n: usize,
    filler: &[u32],
) -> Result<(String, usize), BenchError> {
    let mut best: Option<(String, usize)> = None;
    for _ in 0..8 {
        let text = tok.decode(&ids, false).map_err(tokenizer_error)?;
        let enc = tok.encode(&text, false).map_err(tokenizer_error)?;
        if enc.len() == n {
            return Ok((text, n));
        }
        let better = best
            .as_ref()
            .is_none_or(|(_, l)| enc.len().abs_diff(n) < l.abs_diff(n));
        if better {
            best = Some((text, enc.len()));
        }
        ids = enc;
        if ids.len() > n {
            ids.truncate(n);
        } else {
            let missing = n - ids.len();
            ids.extend(filler.iter().cycle().take(missing));
        }
    }
    best.ok_or_else(|| BenchError::Tokenizer("repair produced no text".into()))
}
