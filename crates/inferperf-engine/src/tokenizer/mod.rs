//! Tokenizers behind [`crate::api::TextTokenizer`]: the built-in byte tokenizer of the default
//! model, HF `tokenizer.json` (also built from GGUF metadata), chat templates rendered with
//! minijinja, and incremental detokenization that never splits a UTF-8 character.

mod byte;
mod detok;
mod gguf;
mod hf;
mod spec;
mod template;

pub use byte::ByteTokenizer;
pub use detok::IncrementalDetokenizer;
pub use gguf::tokenizer_json_from_gguf;
pub use hf::HfTokenizer;
pub use spec::TokenizerSpec;
pub use template::ChatTemplate;
