//! The Llama-family decoder and its flattened ragged-batch forward.

mod attention;
mod llama;
pub mod qmat;
mod tp;
pub mod weights;

pub use llama::{ForwardBatch, LlamaModel, SeqInput};
