//! The streaming state machine both OpenAI routes share: engine events in, SSE frames out
//! (content chunks, a finish chunk per choice, the optional usage-only chunk, `[DONE]`), with
//! `continuous_usage_stats` accounting. The routes differ only in how a chunk looks
//! ([`ChunkFormat`]).

use std::collections::VecDeque;

use axum::body::Bytes;
use futures_util::StreamExt;
use inferperf_engine::api::GenerateEvent;
use inferperf_protocol::openai::Usage;

use crate::convert::openai_finish_reason;
use crate::openai_common::UsageSum;
use crate::request::IndexedEvents;
use crate::sse::done_frame;

/// A finish reason and the stop that matched (`matched_stop`).
pub type Finish = (String, Option<serde_json::Value>);

/// How one route renders its chunks.
pub trait ChunkFormat {
    /// New text for choice `index`.
    fn content(&self, index: usize, text: String, usage: Option<Usage>) -> Bytes;
    /// The end of choice `index`.
    fn finish(&self, index: usize, finish: Finish, usage: Option<Usage>) -> Bytes;
    /// The final usage-only chunk (`stream_options.include_usage`).
    fn usage_only(&self, usage: Usage) -> Bytes;
}

/// Turns engine events into one route's chunks, then the usage chunk and `[DONE]`.
pub struct OpenAiStreamer<F> {
    events: IndexedEvents,
    format: F,
    include_usage: bool,
    continuous_usage: bool,
    /// Prompt tokens of all choices and tokens generated so far (continuous usage stats).
    prompt_tokens: u64,
    generated: u64,
    /// Final accounting of finished choices.
    usage: UsageSum,
    pending: VecDeque<Bytes>,
    done: bool,
}

impl<F: ChunkFormat> OpenAiStreamer<F> {
    /// `first` are frames sent before any engine event (chat's role chunk, echoed prompts).
    pub fn new(
        events: IndexedEvents,
        format: F,
        options: &inferperf_protocol::openai::StreamOptions,
        prompt_tokens: u64,
        first: VecDeque<Bytes>,
    ) -> Self {
        Self {
            events,
            format,
            include_usage: options.include_usage,
            continuous_usage: options.continuous_usage_stats,
            prompt_tokens,
            generated: 0,
            usage: UsageSum::default(),
            pending: first,
            done: false,
        }
    }

    /// `usage` for a content or finish chunk when `continuous_usage_stats` is on.
    fn running_usage(&self) -> Option<Usage> {
        self.continuous_usage
            .then(|| Usage::new(self.prompt_tokens, self.generated, 0))
    }

    /// The next frame, `None` after `[DONE]`.
    pub async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.done {
                return None;
            }
            match self.events.next().await {
                Some((
                    i,
                    GenerateEvent::Tokens {
                        text, token_ids, ..
                    },
                )) => {
                    self.generated += token_ids.len() as u64;
                    if !text.is_empty() {
                        let usage = self.running_usage();
                        self.pending.push_back(self.format.content(i, text, usage));
                    }
                }
                Some((i, GenerateEvent::Finished(info))) => {
                    self.usage.add(&info);
                    let usage = self.running_usage();
                    let finish = openai_finish_reason(&info.reason);
                    self.pending.push_back(self.format.finish(i, finish, usage));
                }
                None => {
                    if self.include_usage {
                        self.pending
                            .push_back(self.format.usage_only(self.usage.usage()));
                    }
                    self.pending.push_back(done_frame());
                    self.done = true;
                }
            }
        }
    }
}
