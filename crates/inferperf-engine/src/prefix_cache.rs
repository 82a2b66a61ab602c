//! The prefix cache (SGLang's radix cache, at page granularity): KV pages of finished requests
//! stay in the pool, indexed by the tokens they hold and everything before them, so a later
//! request with the same prefix reuses them instead of recomputing. Pages form a tree (each
//! page's key is its tokens plus its parent page); pages in use by running requests are
//! reference-counted and never evicted; unreferenced leaves are evicted least recently used
//! first when the pool needs room.
//!
//! Only full pages are cached, and a match always leaves at least one prompt token to compute
//! (the request needs logits to sample from), as in SGLang.

use std::collections::HashMap;

/// Key of a page: its parent page (`u32::MAX` for the root) and its tokens.
type Key = (u32, Vec<u32>);

struct Node {
    key: Key,
    /// Running requests holding this page.
    refs: u32,
    /// Cached pages whose parent is this one.
    children: u32,
    last_used: u64,
}

/// What a lookup found: the pages of the longest cached prefix.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Match {
    pub pages: Vec<u32>,
    /// How many of them no running request holds (they stop being evictable once taken).
    pub unreferenced: usize,
}

/// Page-granular prefix tree over the KV pool's pages.
#[derive(Default)]
pub struct PrefixCache {
    by_key: HashMap<Key, u32>,
    nodes: HashMap<u32, Node>,
    /// Nodes with `refs == 0` (evictable, leaves first).
    unreferenced: usize,
    tick: u64,
}

const ROOT: u32 = u32::MAX;

impl PrefixCache {
    /// Pages currently cached.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Cached pages no running request holds: they can be evicted (children before parents).
    pub fn evictable(&self) -> usize {
        self.unreferenced
    }

    /// Whether the cache owns `page` (then releasing it only drops a reference).
    pub fn owns(&self, page: u32) -> bool {
        self.nodes.contains_key(&page)
    }

    /// The longest cached prefix of `tokens` in whole pages, at most `max_tokens` tokens;
    /// nothing is referenced (see [`PrefixCache::take`]).
    pub fn lookup(&self, tokens: &[u32], page_size: usize, max_tokens: usize) -> Match {
        let mut m = Match::default();
        let mut parent = ROOT;
        for chunk in tokens[..max_tokens.min(tokens.len())].chunks_exact(page_size) {
            match self.by_key.get(&(parent, chunk.to_vec())) {
                Some(&page) => {
                    if self.nodes.get(&page).is_some_and(|n| n.refs == 0) {
                        m.unreferenced += 1;
                    }
                    m.pages.push(page);
                    parent = page;
                }
                None => break,
            }
        }
        m
    }

    /// Reference the matched pages for a request that now holds them.
    pub fn take(&mut self, pages: &[u32]) {
        self.tick += 1;
        for p in pages {
            if let Some(n) = self.nodes.get_mut(p) {
                if n.refs == 0 {
                    self.unreferenced -= 1;
                }
                n.refs += 1;
                n.last_used = self.tick;
            }
        }
    }

    /// Drop one reference to `page`; false if the cache does not own it.
    pub fn release(&mut self, page: u32) -> bool {
        self.tick += 1;
        match self.nodes.get_mut(&page) {
            Some(n) => {
                n.refs = n.refs.saturating_sub(1);
                n.last_used = self.tick;
                if n.refs == 0 {
                    self.unreferenced += 1;
                }
                true
            }
            None => false,
        }
    }

    /// Cache the full pages of a finishing request (`tokens` are its prompt and output, the
    /// first `computed` of them have K/V in `pages`). Pages already cached stay as they are;
    /// a page whose key another page already holds is a duplicate and is returned, for the
    /// pool to free. The request's own reference to every page it cached remains (drop it
    /// with [`PrefixCache::release`]).
    pub fn insert(
        &mut self,
        tokens: &[u32],
        pages: &[u32],
        computed: usize,
        page_size: usize,
    ) -> Vec<u32> {
        let mut duplicates = Vec::new();
        let mut parent = ROOT;
        let full = (computed.min(tokens.len()) / page_size).min(pages.len());
        for (i, chunk) in tokens.chunks_exact(page_size).take(full).enumerate() {
            let page = pages[i];
            if self.nodes.contains_key(&page) {
                parent = page;
                continue;
            }
            let key = (parent, chunk.to_vec());
            if let Some(&existing) = self.by_key.get(&key) {
                duplicates.push(page);
                parent = existing;
                continue;
            }
            if let Some(p) = self.nodes.get_mut(&parent) {
                p.children += 1;
            }
            self.by_key.insert(key.clone(), page);
            self.nodes.insert(
                page,
                Node {
                    key,
                    refs: 1,
                    children: 0,
                    last_used: self.tick,
                },
            );
            parent = page;
        }
        duplicates
    }

    /// Evict up to `n` unreferenced pages, least recently used leaves first; returns them.
    pub fn evict(&mut self, n: usize) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < n {
            let leaf = self
                .nodes
                .iter()
                .filter(|(_, node)| node.refs == 0 && node.children == 0)
                .min_by_key(|(page, node)| (node.last_used, **page))
                .map(|(page, _)| *page);
            let Some(page) = leaf else { break };
            self.remove(page);
            out.push(page);
        }
        out
    }

    /// Drop every unreferenced page (SGLang's `/flush_cache`, which runs only when idle);
    /// returns them.
    pub fn flush(&mut self) -> Vec<u32> {
        self.evict(usize::MAX)
    }

    fn remove(&mut self, page: u32) {
        if let Some(node) = self.nodes.remove(&page) {
            self.by_key.remove(&node.key);
            if node.refs == 0 {
                self.unreferenced -= 1;
            }
            if let Some(p) = self.nodes.get_mut(&node.key.0) {
                p.children -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_prefix_is_found_and_held_pages_are_never_evicted() {
        let mut c = PrefixCache::default();
        // A finished request: tokens 1..=6 in pages 10, 11, 12 (page size 2), all computed.
        assert!(c
            .insert(&[1, 2, 3, 4, 5, 6], &[10, 11, 12], 6, 2)
            .is_empty());
        for p in [10, 11, 12] {
            assert!(c.release(p));
        }
        assert_eq!(c.evictable(), 3);
        // Same first four tokens, then different: two pages match.
        let m = c.lookup(&[1, 2, 3, 4, 9, 9, 9], 2, 6);
        assert_eq!(
            m,
            Match {
                pages: vec![10, 11],
                unreferenced: 2
            }
        );
        c.take(&m.pages);
        assert_eq!(c.evictable(), 1);
        // Only the unreferenced leaf can go.
        assert_eq!(c.evict(5), vec![12]);
        assert_eq!(c.evictable(), 0);
        for p in m.pages {
            c.release(p);
        }
        // Leaves first: 11, then its parent 10.
        assert_eq!(c.evict(5), vec![11, 10]);
        assert!(c.is_empty());
    }

    #[test]
    fn a_match_never_covers_the_whole_budget_and_duplicates_are_returned() {
        let mut c = PrefixCache::default();
        c.insert(&[1, 2, 3], &[5, 6, 7], 3, 1);
        // The caller passes max_tokens = prompt length - 1.
        assert_eq!(c.lookup(&[1, 2, 3], 1, 2).pages, vec![5, 6]);
        // Another request computed the same tokens in its own pages: 8 and 9 are duplicates.
        assert_eq!(c.insert(&[1, 2, 4], &[8, 9, 10], 3, 1), vec![8, 9]);
        assert_eq!(c.lookup(&[1, 2, 4, 0], 1, 3).pages, vec![5, 6, 10]);
        // Pages of a partial page are never cached.
        let mut d = PrefixCache::default();
        d.insert(&[1, 2, 3], &[0, 1], 3, 2);
        assert_eq!(d.len(), 1);
    }
}
