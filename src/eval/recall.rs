//! Recall of the approximate (HNSW) layer against exact search.

use crate::filter::DocMask;
use crate::index::{Index, VectorSearch};
use crate::paper::DocId;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

/// Recall of the HNSW layer against exact search.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    #[serde(rename = "recall@10")]
    pub recall_at_10: f64,
    /// Worst single query's recall@10.
    pub min_recall: f64,
    pub queries: usize,
    pub papers: usize,
    pub ef_search: usize,
    /// Mean HNSW search time per query, milliseconds.
    pub ann_ms: f64,
    /// Mean exact-scan time per query, milliseconds.
    pub exact_ms: f64,
}

/// Recall@10 of approximate search against exact (brute-force) search.
///
/// Queries are the stored vectors of `queries` papers drawn at random (seeded) from the
/// index; each query's own paper is excluded from both result lists, exactly as
/// `similar` does, so the figure is the recall a "papers like this" user gets. `ef`
/// overrides the manifest's `ef_search`.
pub fn recall_at_10(index: &Index, queries: usize, ef: Option<usize>, seed: u64) -> RecallReport {
    const K: usize = 10;
    let hnsw = index.hnsw();
    let hnsw = match ef {
        Some(ef) => hnsw.with_ef(ef),
        None => hnsw,
    };
    let flat = index.flat();
    let live = index.scope(&crate::filter::Filter::default(), &[]);
    let mut not_self = live
        .mask()
        .cloned()
        .unwrap_or_else(|| DocMask::all(index.max_doc()));
    let mut docs: Vec<DocId> = index.docs().collect();
    docs.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    docs.truncate(queries);
    let (mut ann_t, mut exact_t) = (0.0, 0.0);
    let mut recalls = Vec::with_capacity(docs.len());
    for &q in &docs {
        let v = index.vector(q);
        let t = Instant::now();
        // As `similar` does: one more than needed, then the query paper dropped.
        let mut approx = hnsw.search(v, K + 1, live.mask());
        approx.retain(|h| h.0 != q);
        approx.truncate(K);
        ann_t += t.elapsed().as_secs_f64();
        let t = Instant::now();
        not_self.remove(q);
        let exact = flat.search(v, K, Some(&not_self));
        not_self.insert(q);
        exact_t += t.elapsed().as_secs_f64();
        let truth: HashSet<DocId> = exact.iter().map(|h| h.0).collect();
        let found = approx.iter().filter(|h| truth.contains(&h.0)).count();
        recalls.push(found as f64 / truth.len().max(1) as f64);
    }
    let n = recalls.len().max(1) as f64;
    RecallReport {
        recall_at_10: recalls.iter().sum::<f64>() / n,
        min_recall: recalls.iter().copied().fold(1.0, f64::min),
        queries: recalls.len(),
        papers: index.len(),
        ef_search: hnsw.ef(),
        ann_ms: ann_t * 1000.0 / n,
        exact_ms: exact_t * 1000.0 / n,
    }
}

/// Whether every paper finds itself: the graph search for a paper's own vector must
/// return it at rank 1 (an exact duplicate of it there counts as it).
#[derive(Debug, Clone, Serialize)]
pub struct SelfReport {
    pub papers: usize,
    /// Papers the search did not return at rank 1.
    pub missed: usize,
    /// Their ids (the first 100).
    pub missed_ids: Vec<String>,
    pub ef_search: usize,
    pub seconds: f64,
}

/// Searches for every live paper's own vector through the graph (as `similar` does,
/// with the index's `ef_search` unless `ef` is given) and reports those not found first.
pub fn self_check(index: &Index, ef: Option<usize>) -> SelfReport {
    use rayon::prelude::*;
    let start = Instant::now();
    let hnsw = index.hnsw();
    let hnsw = match ef {
        Some(ef) => hnsw.with_ef(ef),
        None => hnsw,
    };
    let live = index.scope(&crate::filter::Filter::default(), &[]);
    let docs: Vec<DocId> = index.docs().collect();
    let missed: Vec<DocId> = docs
        .par_iter()
        .copied()
        .filter(|&d| {
            let v = index.vector(d);
            let top = hnsw.search(v, 1, live.mask());
            !top.first()
                .is_some_and(|&(t, _)| t == d || index.vector(t) == v)
        })
        .collect();
    SelfReport {
        papers: docs.len(),
        missed: missed.len(),
        missed_ids: missed
            .iter()
            .take(100)
            .map(|&d| index.paper(d).id.0.clone())
            .collect(),
        ef_search: hnsw.ef(),
        seconds: start.elapsed().as_secs_f64(),
    }
}
