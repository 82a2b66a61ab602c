//! Token-slot KV pool (SGLang's `req_to_token` model): per layer one K and one V buffer of
//! `num_slots x kv_heads x head_dim` floats, a free list of pages, and per-request slot lists.

use crate::api::EngineError;

/// Key/value storage plus free-page accounting.
pub struct KvPool {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// Floats per slot per layer (`kv_heads * head_dim`).
    row: usize,
    page_size: usize,
    num_pages: usize,
    free_pages: Vec<u32>,
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
        })
    }

    pub fn total_slots(&self) -> usize {
        self.num_pages * self.page_size
    }

    pub fn free_slots(&self) -> usize {
        self.free_pages.len() * self.page_size
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
            return false;
        }
        for _ in 0..need {
            if let Some(p) = self.free_pages.pop() {
                pages.push(p);
            }
        }
        true
    }

    /// Return pages to the free list.
    pub fn release(&mut self, pages: &mut Vec<u32>) {
        self.free_pages.append(pages);
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
