//! A request inside the engine: its tokens, KV pages, sampling state, and how its output is
//! turned into streamed events (detokenization, stop conditions, stream interval).

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc::UnboundedSender;

use crate::api::{
    FinishInfo, FinishReason, GenerateEvent, GenerateRequest, SamplingParams, StopMatch,
    TextTokenizer,
};
use crate::kv::KvPool;
use crate::tokenizer::IncrementalDetokenizer;

/// Engine-side state of one request.
pub struct Req {
    pub rid: String,
    pub input_ids: Vec<u32>,
    pub output_ids: Vec<u32>,
    pub sampling: SamplingParams,
    stream_interval: usize,
    /// KV pages held.
    pub pages: Vec<u32>,
    /// Tokens of `input_ids ++ output_ids` whose K/V are in the pool.
    pub computed: usize,
    tx: UnboundedSender<GenerateEvent>,
    pub rng: ChaCha8Rng,
    detok: IncrementalDetokenizer,
    text: String,
    emitted_text: usize,
    unsent_ids: Vec<u32>,
    /// When the request arrived (at the front end when it said so, else at the engine):
    /// `e2e_latency` counts from here.
    pub arrival: Instant,
    pub prompt_len: usize,
    pub cached_tokens: usize,
}

impl Req {
    pub fn new(req: GenerateRequest, tx: UnboundedSender<GenerateEvent>, server_seed: u64) -> Self {
        let seed = req.sampling.seed.unwrap_or_else(|| {
            // FNV-1a of the rid, mixed with the server seed: reproducible per request id.
            inferperf_protocol::hash::fnv1a_seeded(server_seed, req.rid.as_bytes())
        });
        Self {
            prompt_len: req.input_ids.len(),
            rid: req.rid,
            input_ids: req.input_ids,
            output_ids: Vec::new(),
            sampling: req.sampling,
            stream_interval: req.stream_interval.max(1),
            pages: Vec::new(),
            computed: 0,
            tx,
            rng: ChaCha8Rng::seed_from_u64(seed),
            detok: IncrementalDetokenizer::new(),
            text: String::new(),
            emitted_text: 0,
            unsent_ids: Vec::new(),
            arrival: Instant::now(),
            cached_tokens: 0,
        }
    }

    /// Length of `input_ids ++ output_ids`.
    pub fn total_len(&self) -> usize {
        self.input_ids.len() + self.output_ids.len()
    }

    /// Token at logical position `pos` of `input_ids ++ output_ids`.
    pub fn token_at(&self, pos: usize) -> u32 {
        if pos < self.input_ids.len() {
            self.input_ids[pos]
        } else {
            self.output_ids[pos - self.input_ids.len()]
        }
    }

    /// Tokens not yet in the KV cache.
    pub fn pending(&self) -> usize {
        self.total_len() - self.computed
    }

    /// Still computing its prompt (or recomputing after a retraction).
    pub fn in_prefill(&self) -> bool {
        self.pending() > 1 || self.computed < self.input_ids.len()
    }

    /// KV slots reserved for this request until it finishes: prompt + max_new_tokens (at least
    /// one slot past what it holds now), rounded up to whole pages. Admission, the capacity
    /// check at submission and the scheduler's outstanding reservations all use this.
    pub fn reserved_slots(&self, pool: &KvPool) -> usize {
        pool.pages_for(self.max_tokens_needed().max(self.total_len() + 1)) * pool.page_size()
    }

    /// KV tokens this request may still need until it finishes.
    pub fn max_tokens_needed(&self) -> usize {
        self.input_ids.len() + self.sampling.max_new_tokens
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Record a sampled token; returns the finish reason if it ends the request.
    pub fn push_token(
        &mut self,
        tok: u32,
        tokenizer: &dyn TextTokenizer,
        eos: &[u32],
        context_len: usize,
    ) -> Option<FinishReason> {
        self.output_ids.push(tok);
        self.unsent_ids.push(tok);
        let n = self.output_ids.len();
        let p = &self.sampling;
        let may_stop = n > p.min_new_tokens;
        if may_stop && ((!p.ignore_eos && eos.contains(&tok)) || p.stop_token_ids.contains(&tok)) {
            return Some(FinishReason::Stop {
                matched: StopMatch::Token(tok),
            });
        }
        let search_from = self.text.len();
        if let Ok(delta) = self.detok.push(tokenizer, tok, p.skip_special_tokens) {
            self.text.push_str(&delta);
        }
        if may_stop && !p.stop.is_empty() {
            // A stop string may straddle the previous text; look back by its length.
            for s in &p.stop {
                let from = search_from.saturating_sub(s.len());
                let from = (0..=from)
                    .rev()
                    .find(|&i| self.text.is_char_boundary(i))
                    .unwrap_or(0);
                if let Some(at) = self.text[from..].find(s.as_str()) {
                    let end = from + at + if p.no_stop_trim { s.len() } else { 0 };
                    self.text.truncate(end);
                    return Some(FinishReason::Stop {
                        matched: StopMatch::Text(s.clone()),
                    });
                }
            }
        }
        if n >= p.max_new_tokens || self.total_len() >= context_len {
            return Some(FinishReason::Length { length: n });
        }
        None
    }

    /// Text that may be sent now: everything except a tail that could start a stop string.
    fn safe_text_end(&self) -> usize {
        let mut end = self.text.len();
        for s in &self.sampling.stop {
            for k in (1..s.len()).rev() {
                if self.text.len() >= k
                    && self.text.is_char_boundary(self.text.len() - k)
                    && s.is_char_boundary(k)
                    && self.text.ends_with(&s[..k])
                {
                    end = end.min(self.text.len() - k);
                    break;
                }
            }
        }
        end.max(self.emitted_text)
    }

    /// Send pending tokens if the stream interval is reached (or `force`); returns how many
    /// tokens the chunk carried (0: nothing sent).
    pub fn maybe_emit(&mut self, force: bool) -> usize {
        if self.unsent_ids.is_empty() || (!force && self.unsent_ids.len() < self.stream_interval) {
            return 0;
        }
        let end = if force {
            self.text.len()
        } else {
            self.safe_text_end()
        };
        let text = self.text[self.emitted_text..end].to_string();
        self.emitted_text = end;
        let token_ids = std::mem::take(&mut self.unsent_ids);
        let n = token_ids.len();
        let _ = self.tx.send(GenerateEvent::Tokens {
            token_ids,
            text,
            cached_tokens: self.cached_tokens,
        });
        n
    }

    /// Flush output and send the final event; returns the tokens of the last chunk flushed
    /// before it (0: none).
    pub fn finish(&mut self, reason: FinishReason) -> usize {
        let flushed = if matches!(reason, FinishReason::Abort { .. }) {
            0
        } else {
            self.maybe_emit(true)
        };
        let _ = self.tx.send(GenerateEvent::Finished(FinishInfo {
            reason,
            prompt_tokens: self.prompt_len,
            completion_tokens: self.output_ids.len(),
            cached_tokens: self.cached_tokens,
            e2e_latency: self.arrival.elapsed().as_secs_f64(),
        }));
        flushed
    }
}
