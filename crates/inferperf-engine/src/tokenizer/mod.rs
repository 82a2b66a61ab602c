//! Tokenizers behind [`crate::api::TextTokenizer`]: the `inferperf-tokenizer` crate (byte,
//! simulated and HF tokenizers, chat templates, incremental detokenization, the published spec),
//! re-exported so engine users keep their paths, plus what needs candle and so stays here: the
//! GGUF metadata -> `tokenizer.json` conversion.

mod gguf;

pub use gguf::tokenizer_json_from_gguf;
pub use inferperf_tokenizer::*;
