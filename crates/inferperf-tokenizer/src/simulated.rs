//! The simulated engine's tokenizer: trivial and exact. Token `id` is the text `" "` followed
//! by `id` in bijective base 26 (`a`..`z`, `aa`, ...), so decoding and re-encoding any ids
//! round-trips and every generated token re-tokenizes to exactly one token; any other word is
//! one token too (a stable hash into the ordinary ids).

use std::sync::Arc;

use crate::{role_lines, TextTokenizer, TokenizerError, TokenizerSpec};

/// Token ids below this are special (`<pad>`, `<s>`, `</s>`).
const NUM_SPECIAL: u32 = 3;
const EOS: u32 = 2;
const SPECIAL_TEXT: [&str; 3] = ["<pad>", "<s>", "</s>"];

/// `" "` + bijective base-26 spelling of `id` (special ids spell their marker).
pub(crate) fn word(id: u32) -> String {
    if id < NUM_SPECIAL {
        return SPECIAL_TEXT[id as usize].to_owned();
    }
    let mut n = id - NUM_SPECIAL + 1;
    let mut letters = Vec::with_capacity(4);
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    let mut s = String::with_capacity(letters.len() + 1);
    s.push(' ');
    s.extend(letters.into_iter().map(char::from));
    s
}

fn word_id(w: &str, vocab: u32) -> u32 {
    if let Some(i) = SPECIAL_TEXT.iter().position(|s| *s == w) {
        return i as u32;
    }
    if !w.is_empty() && w.len() <= 6 && w.bytes().all(|b| b.is_ascii_lowercase()) {
        let mut n: u64 = 0;
        for b in w.bytes() {
            n = n * 26 + u64::from(b - b'a') + 1;
        }
        let id = n - 1 + u64::from(NUM_SPECIAL);
        if id < u64::from(vocab) {
            return id as u32;
        }
    }
    // Any other word: a stable hash into the ordinary ids (one token per word).
    let h = inferperf_protocol::hash::fnv1a(w.as_bytes());
    NUM_SPECIAL + (h % u64::from(vocab - NUM_SPECIAL)) as u32
}

/// The simulated model's tokenizer: one token per whitespace-separated word.
#[derive(Clone, Debug)]
pub struct SimTokenizer {
    vocab_size: u32,
}

impl SimTokenizer {
    /// Ids below this are special (`<pad>`, `<s>`, `</s>`).
    pub const NUM_SPECIAL: u32 = NUM_SPECIAL;
    /// The end-of-sequence id (`</s>`).
    pub const EOS: u32 = EOS;

    /// A vocabulary of `vocab_size` ids (at least the specials and `a`..`z`).
    pub fn new(vocab_size: u32) -> Self {
        Self {
            vocab_size: vocab_size.max(NUM_SPECIAL + 26),
        }
    }

    /// The text of ordinary or special token `id`: `" "` and its bijective base-26 spelling.
    pub fn word(id: u32) -> String {
        word(id)
    }
}

impl TextTokenizer for SimTokenizer {
    fn encode(&self, text: &str, _add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        Ok(text
            .split_whitespace()
            .map(|w| word_id(w, self.vocab_size))
            .collect())
    }

    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        let mut s = String::with_capacity(ids.len() * 5);
        for &id in ids {
            if id >= self.vocab_size {
                return Err(TokenizerError::OutOfVocabulary {
                    id,
                    vocab_size: self.vocab_size as usize,
                });
            }
            if id < NUM_SPECIAL {
                if !skip_special_tokens {
                    s.push(' ');
                    s.push_str(SPECIAL_TEXT[id as usize]);
                }
                continue;
            }
            s.push_str(&word(id));
        }
        Ok(s)
    }

    fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        Ok(role_lines(messages, add_generation_prompt))
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size as usize
    }

    fn eos_token_ids(&self) -> Vec<u32> {
        vec![EOS]
    }

    fn spec(&self) -> Option<Arc<TokenizerSpec>> {
        Some(Arc::new(TokenizerSpec::Simulated {
            vocab_size: self.vocab_size,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_round_trips() {
        let t = SimTokenizer::new(32000);
        let ids: Vec<u32> = (3..3000).step_by(7).collect();
        let text = t.decode(&ids, false).unwrap_or_default();
        assert_eq!(t.encode(&text, false).unwrap_or_default(), ids);
        assert_eq!(
            t.encode("Hello, world!", false).unwrap_or_default().len(),
            2
        );
    }

    #[test]
    fn ids_past_the_vocabulary_are_errors() {
        let t = SimTokenizer::new(100);
        let e = t.decode(&[100], false).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("token id 100 is outside the vocabulary (size 100)")
        );
    }
}
