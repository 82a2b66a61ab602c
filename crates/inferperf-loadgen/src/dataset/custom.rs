//! `custom`: a JSONL file, one `{"conversations": [{"content"|"value": ...}, ...]}` per line,
//! filtered like ShareGPT.

use std::path::Path;

use super::sharegpt::{build_rows, load_jsonl_pairs, ConversationOptions};
use super::DatasetRow;
use crate::error::BenchError;
use crate::tokenizer::SharedTokenizer;

/// Rows of a custom JSONL file.
pub fn load(
    path: &str,
    o: &ConversationOptions<'_>,
    tok: &SharedTokenizer,
) -> Result<Vec<DatasetRow>, BenchError> {
    if path.is_empty() {
        return Err(BenchError::Dataset(
            "--dataset-name custom needs --dataset-path FILE.jsonl".into(),
        ));
    }
    let pairs = load_jsonl_pairs(Path::new(path))?;
    build_rows(pairs, o, tok)
}
