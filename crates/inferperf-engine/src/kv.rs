//! Token-slot KV pool (SGLang's `req_to_token` model): per layer one K and one V buffer of
//! `num_slots x kv_heads x head_dim` floats, a free list of pages, per-request slot lists, and
//! the prefix cache that keeps finished requests' pages for reuse (evicted on demand).

use crate::api::EngineError;
use crate::prefix_cache::{Match, PrefixCache};

/// Key/value storage plus free-page accounting.
pub struct KvPool {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// Floats per slot per layer (`kv_heads * head_dim`).
    row: usize,
    page_size: usize,
    num_pages: usize,
    free_pages: Vec<u32>,
    /// `None` with `--disable-radix-cache`.
    cache: Option<PrefixCache>,
}

impl KvPool {
    /// A pool of `max_total_tokens` slots (rounded down to whole pages).
    pub fn new(
        layers: usize,
        kv_heads: usize,
        head_dim: usize,
        max_total_tokens: usize,
        page_size: usize,
    ) -> Result<Self, EngineError> {
        let page_size = page_size.max(1);
        let num_pages = max_total_tokens / page_size;
        if num_pages == 0 {
            return Err(EngineError::InvalidRequest(format!(
                "--max-total-tokens {max_total_tokens} is smaller than one page (--page-size {page_size})"
            )));
        }
        let row = kv_heads * head_dim;
        let slots = num_pages * page_size;
        Ok(Self {
            k: (0..layers).map(|_| vec![0.0; slots * row]).collect(),
            v: (0..layers).map(|_| vec![0.0; slots * row]).collect(),
            row,
            page_size,
            num_pages,
            // Pop from the end: hand out low pages first.
            free_pages: (0..num_pages as u32).rev().collect(),
            cache: Some(PrefixCache::default()),
        })
    }

    /// Turn the prefix cache off (`--disable-radix-cache`).
    pub fn without_prefix_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Whether finished requests' pages are kept for reuse.
    pub fn caches_prefixes(&self) -> bool {
        self.cache.is_some()
    }

    /// The longest cached prefix of a prompt, leaving at least one token to compute; nothing
    /// is taken yet.
    pub fn lookup_prefix(&self, prompt: &[u32]) -> Match {
        match &self.cache {
            Some(c) if prompt.len() > 1 => c.lookup(prompt, self.page_size, prompt.len() - 1),
            _ => Match::default(),
        }
    }

    /// Hold the matched pages for a request (they are no longer evictable).
    pub fn take_prefix(&mut self, m: &Match) {
        if let Some(c) = &mut self.cache {
            c.take(&m.pages);
        }
    }

    /// Keep the full pages of a finishing request in the prefix cache; call before
    /// [`KvPool::release`]. `tokens` are its prompt then output; `computed` of them have K/V.
    pub fn cache_finished(&mut self, tokens: &[u32], pages: &[u32], computed: usize) {
        let page_size = self.page_size;
        if let Some(c) = &mut self.cache {
            c.insert(tokens, pages, computed, page_size);
        }
    }

    /// Drop every cached page no request holds (SGLang's `/flush_cache`).
    pub fn flush_cache(&mut self) {
        if let Some(c) = &mut self.cache {
            let mut freed = c.flush();
            self.free_pages.append(&mut freed);
        }
    }

    /// Pages cached (held or not).
    pub fn cached_pages(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }

    pub fn total_slots(&self) -> usize {
        self.num_pages * self.page_size
    }

    /// Slots a request can get now: free pages plus cached pages nobody holds (evicted on
    /// demand).
    pub fn free_slots(&self) -> usize {
        (self.free_pages.len() + self.cache.as_ref().map_or(0, |c| c.evictable())) * self.page_size
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Pages needed to hold `tokens` tokens.
    pub fn pages_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.page_size)
    }

    /// Grow `pages` so that it covers `tokens` positions; false (and no change) if the pool
    /// lacks pages.
    pub fn ensure(&mut self, pages: &mut Vec<u32>, tokens: usize) -> bool {
        let need = self.pages_for(tokens).saturating_sub(pages.len());
        if need > self.free_pages.len() {
            let short = need - self.free_pages.len();
            match &mut self.cache {
                Some(c) if c.evictable() >= short => {
                    let mut freed = c.evict(short);
                    self.free_pages.append(&mut freed);
                }
                _ => return false,
            }
            if need > self.free_pages.len() {
                return false;
            }
        }
        for _ in 0..need {
            if let Some(p) = self.free_pages.pop() {
                pages.push(p);
            }
        }
        true
    }

    /// Give up a request's pages: cached ones lose a reference, the others go back to the
    /// free list.
    pub fn release(&mut self, pages: &mut Vec<u32>) {
        for p in pages.drain(..) {
            let cached = self.cache.as_mut().is_some_and(|c| c.release(p));
            if !cached {
                self.free_pages.push(p);
            }
        }
    }

    /// Slot of logical position `pos` for a request holding `pages`.
    #[inline]
    pub fn slot(&self, pages: &[u32], pos: usize) -> usize {
        pages[pos / self.page_size] as usize * self.page_size + pos % self.page_size
    }

    /// Write one token's K and V rows for `layer`.
    #[inline]
    pub fn write(&mut self, layer: usize, slot: usize, k: &[f32], v: &[f32]) {
        let at = slot * self.row;
        self.k[layer][at..at + self.row].copy_from_slice(k);
        self.v[layer][at..at + self.row].copy_from_slice(v);
    }

    /// K and V buffers of one layer, for attention reads.
    pub fn layer(&self, layer: usize) -> (&[f32], &[f32]) {
        (&self.k[layer], &self.v[layer])
    }

    pub fn row(&self) -> usize {
        self.row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_accounted_exactly() {
        let mut pool = KvPool::new(1, 1, 2, 10, 4).unwrap();
        assert_eq!(pool.total_slots(), 8);
        let mut a = Vec::new();
        assert!(pool.ensure(&mut a, 5));
        assert_eq!(a.len(), 2);
        assert_eq!(pool.free_slots(), 0);
        let mut b = Vec::new();
        assert!(!pool.ensure(&mut b, 1));
        assert!(b.is_empty());
        assert_eq!(pool.slot(&a, 5), a[1] as usize * 4 + 1);
        pool.release(&mut a);
        assert_eq!(pool.free_slots(), 8);
    }
}
