//! The one place that maps a dataset name to its builder: a new dataset is one file plus one
//! match arm here.

use super::sharegpt::ConversationOptions;
use super::{agentic, custom, gsp, image, mooncake, openai, random, sharegpt};
use super::{DatasetConfig, DatasetName, DatasetRow};
use crate::error::BenchError;
use crate::tokenizer::SharedTokenizer;
use random::RandomOptions;

/// The tokenizer a dataset needs, or an error saying how to give one.
fn need_tok(t: Option<&SharedTokenizer>, what: &str) -> Result<SharedTokenizer, BenchError> {
    t.cloned().ok_or_else(|| {
        BenchError::Tokenizer(format!(
            "the {what} dataset needs a tokenizer: pass --tokenizer PATH (tokenizer.json or its directory); \
             the server neither publishes one (inferperf servers do) nor names a local tokenizer.json"
        ))
    })
}

/// Build the rows of `cfg`. `chat` says whether prompts go to a chat API (the image dataset
/// then sends content parts instead of inline placeholders).
pub fn build(
    cfg: &DatasetConfig,
    chat: bool,
    tok: Option<&SharedTokenizer>,
) -> Result<Vec<DatasetRow>, BenchError> {
    let conv = ConversationOptions {
        num_prompts: cfg.num_prompts,
        fixed_output_len: cfg.sharegpt_output_len,
        context_len: cfg.sharegpt_context_len,
        prompt_suffix: &cfg.prompt_suffix,
        apply_chat_template: cfg.apply_chat_template,
        seed: cfg.seed,
    };
    let ro = RandomOptions {
        num_prompts: cfg.num_prompts,
        input_len: cfg.random_input_len,
        output_len: cfg.random_output_len,
        range_ratio: cfg.random_range_ratio,
        seed: cfg.seed,
        tokenize_prompt: cfg.tokenize_prompt,
    };
    match cfg.name {
        DatasetName::Sharegpt => {
            if cfg.tokenize_prompt {
                return Err(BenchError::Config(
                    "--tokenize-prompt is not supported with sharegpt".into(),
                ));
            }
            let tok = need_tok(tok, "sharegpt")?;
            let path = sharegpt::locate(&cfg.path)?;
            let pairs = sharegpt::load_pairs(&path)?;
            sharegpt::build_rows(pairs, &conv, &tok)
        }
        DatasetName::Custom => {
            let tok = need_tok(tok, "custom")?;
            custom::load(&cfg.path, &conv, &tok)
        }
        DatasetName::RandomIds => {
            let tok = need_tok(tok, "random-ids")?;
            random::random_ids(&ro, &tok)
        }
        DatasetName::Random => {
            let tok = need_tok(tok, "random")?;
            let path = sharegpt::locate(&cfg.path)?;
            let sources = sharegpt::first_turns(sharegpt::load_pairs(&path)?, cfg.seed);
            random::random_from_text(&ro, &tok, &sources)
        }
        DatasetName::GeneratedSharedPrefix => {
            let tok = need_tok(tok, "generated-shared-prefix")?;
            let zipf_alpha = match (cfg.gsp_group_distribution.as_str(), cfg.gsp_zipf_alpha) {
                ("zipf", Some(a)) => Some(a),
                ("zipf", None) => {
                    return Err(BenchError::Config(
                        "--gsp-group-distribution zipf needs --gsp-zipf-alpha".into(),
                    ))
                }
                (_, Some(_)) => {
                    return Err(BenchError::Config(
                        "--gsp-zipf-alpha is only valid with --gsp-group-distribution zipf".into(),
                    ))
                }
                _ => None,
            };
            gsp::build(
                &gsp::GspOptions {
                    num_groups: cfg.gsp_num_groups,
                    prompts_per_group: cfg.gsp_prompts_per_group,
                    system_prompt_len: cfg.gsp_system_prompt_len,
                    question_len: cfg.gsp_question_len,
                    output_len: cfg.gsp_output_len,
                    range_ratio: cfg.gsp_range_ratio,
                    ordered: cfg.gsp_ordered,
                    send_routing_key: cfg.gsp_send_routing_key,
                    num_turns: cfg.gsp_num_turns,
                    fast_prepare: cfg.gsp_fast_prepare,
                    zipf_alpha,
                    seed: cfg.seed,
                },
                &tok,
            )
        }
        DatasetName::Image => {
            let tok = need_tok(tok, "image")?;
            image::build(
                &ro,
                &image::ImageOptions {
                    count: cfg.image_count,
                    random_count: cfg.random_image_count,
                    resolution: cfg.image_resolution.clone(),
                    format: cfg.image_format.clone(),
                    content: cfg.image_content.clone(),
                    chat,
                },
                &tok,
            )
        }
        DatasetName::AgenticTrace => {
            let tok = need_tok(tok, "agentic-trace")?;
            agentic::load(
                &cfg.path,
                &agentic::AgenticOptions {
                    num_prompts: cfg.num_prompts,
                    offset: cfg.offset,
                    max_turns: cfg.agentic_max_turns,
                    output_len: cfg.sharegpt_output_len,
                },
                &tok,
            )
        }
        DatasetName::Openai => {
            let tok = need_tok(tok, "openai")?;
            openai::load(&cfg.path, cfg.num_prompts, cfg.sharegpt_output_len, &tok)
        }
        DatasetName::Mooncake => {
            let tok = need_tok(tok, "mooncake")?;
            let path = mooncake::locate(&cfg.path, &cfg.mooncake_workload)?;
            mooncake::load(&path, cfg.num_prompts, cfg.mooncake_num_rounds, &tok)
        }
    }
}
