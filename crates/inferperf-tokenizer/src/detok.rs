//! Incremental detokenization: text is released only once it forms complete UTF-8 characters
//! (the prefix/read-offset scheme of TGI and SGLang's DecodeStream). Bytes that are invalid
//! rather than incomplete are released as U+FFFD after at most [`MAX_HELD_TOKENS`] tokens, so a
//! model emitting invalid byte sequences still streams text.

use crate::{TextTokenizer, TokenizerError};

/// A UTF-8 character spans at most 4 bytes, hence at most 4 byte-level tokens.
pub const MAX_HELD_TOKENS: usize = 4;

/// Turns a growing list of token ids into text deltas.
#[derive(Default)]
pub struct IncrementalDetokenizer {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl IncrementalDetokenizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one token; returns the newly completed text (possibly empty).
    pub fn push(
        &mut self,
        tokenizer: &dyn TextTokenizer,
        id: u32,
        skip_special_tokens: bool,
    ) -> Result<String, TokenizerError> {
        self.ids.push(id);
        let prefix = tokenizer.decode(
            &self.ids[self.prefix_offset..self.read_offset],
            skip_special_tokens,
        )?;
        let full = tokenizer.decode(&self.ids[self.prefix_offset..], skip_special_tokens)?;
        let held = self.ids.len() - self.read_offset;
        if full.len() > prefix.len()
            && (!full.ends_with('\u{FFFD}') || held >= MAX_HELD_TOKENS)
            && full.is_char_boundary(prefix.len())
        {
            let delta = full[prefix.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            Ok(delta)
        } else {
            Ok(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ByteTokenizer;

    #[test]
    fn never_splits_a_multibyte_character() {
        let t = ByteTokenizer::new().unwrap();
        let mut d = IncrementalDetokenizer::new();
        let mut out = Vec::new();
        for b in "aé€".bytes() {
            out.push(d.push(&t, b as u32, true).unwrap());
        }
        assert_eq!(out, vec!["a", "", "é", "", "", "€"]);
    }

    #[test]
    fn invalid_bytes_are_released_as_replacement_characters() {
        let t = ByteTokenizer::new().unwrap();
        let mut d = IncrementalDetokenizer::new();
        let out: Vec<String> = [0xffu32, 0xfe, 0xfd, 0xfc, b'a' as u32]
            .iter()
            .map(|&b| d.push(&t, b, true).unwrap())
            .collect();
        assert_eq!(out[..3], ["", "", ""]);
        assert_eq!(out[3], "\u{FFFD}".repeat(4));
        assert_eq!(out[4], "a");
    }
}
