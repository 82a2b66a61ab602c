//! Writes the HF `tokenizer.json` that the engine builds from a GGUF file's metadata, so tools
//! that take a `tokenizer.json` (e.g. `bench serving --tokenizer`) can use a GGUF model's
//! tokenizer. Usage: `gguf_tokenizer_json MODEL.gguf OUT.json`.

use std::process::ExitCode;

use candle_core::quantized::gguf_file;
use inferperf_engine::tokenizer::tokenizer_json_from_gguf;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: gguf_tokenizer_json MODEL.gguf OUT.json");
        return ExitCode::FAILURE;
    };
    let result = std::fs::File::open(input)
        .map_err(|e| e.to_string())
        .and_then(|mut f| gguf_file::Content::read(&mut f).map_err(|e| e.to_string()))
        .and_then(|c| tokenizer_json_from_gguf(&c.metadata).map_err(|e| e.to_string()))
        .and_then(|json| {
            inferperf_protocol::fs::write_atomic(output.as_ref(), json.as_bytes())
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{input}: {e}");
            ExitCode::FAILURE
        }
    }
}
