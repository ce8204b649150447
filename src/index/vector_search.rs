//! Nearest-neighbour search over a collection's vectors, behind one small trait with two
//! implementations: [`Hnsw`] (the graph walk, then exact re-scoring) and [`Flat`] (an exact
//! scan).
//!
//! Which papers may come back is a [`DocMask`], a value rather than a predicate, so that
//! the same restriction reaches the graph walk, the scan and the keyword side, and so that
//! an engine that is not in this process could be handed the same data. Choosing between
//! the two for a query (the policy that keeps filtered pages full) is the store's, in
//! [`super::Index::nearest`].

use super::segment::Segment;
use crate::filter::DocMask;
use crate::paper::{DocId, Score};
use crate::vector::dot;
use rayon::prelude::*;
use std::sync::Arc;

/// Search over the vectors of one collection.
pub trait VectorSearch {
    /// Up to `k` papers nearest to `query` (a unit vector of the collection's dimension)
    /// among those `mask` holds (every paper when `None`), best first by exact cosine
    /// similarity, ties by DocId.
    fn search(&self, query: &[f32], k: usize, mask: Option<&DocMask>) -> Vec<(DocId, Score)>;
}

/// The collection's vectors: `len × dim` unit-length f32, row `i` for DocId `i`.
pub(super) struct Vectors {
    data: Vec<f32>,
    dim: usize,
}

impl Vectors {
    pub(super) fn new(data: Vec<f32>, dim: usize) -> Vectors {
        Vectors { data, dim }
    }

    pub(super) fn floats(&self) -> &[f32] {
        &self.data
    }

    pub(super) fn row(&self, doc: DocId) -> &[f32] {
        &self.data[doc as usize * self.dim..(doc as usize + 1) * self.dim]
    }
}

/// A segment and its first DocId: what the searches below run over, in DocId order.
pub(super) struct Part {
    pub(super) base: DocId,
    pub(super) segment: Arc<Segment>,
}

/// Exact search: every vector the mask holds is scored, in parallel.
pub struct Flat<'a> {
    pub(super) parts: &'a [Part],
}

impl VectorSearch for Flat<'_> {
    fn search(&self, query: &[f32], k: usize, mask: Option<&DocMask>) -> Vec<(DocId, Score)> {
        let mut hits: Vec<(DocId, Score)> = Vec::new();
        for part in self.parts {
            let vectors = &part.segment.vectors;
            let found = vectors
                .floats()
                .par_chunks_exact(vectors.dim)
                .enumerate()
                .map(|(i, v)| (part.base + i as DocId, v))
                .filter(|(d, _)| mask.is_none_or(|m| m.contains(*d)))
                .map(|(d, v)| (d, dot(query, v)))
                .fold(Vec::new, |acc, hit| push_top_k(acc, hit, k))
                .reduce(Vec::new, |a, b| {
                    b.into_iter().fold(a, |acc, h| push_top_k(acc, h, k))
                });
            hits = found.into_iter().fold(hits, |acc, h| push_top_k(acc, h, k));
        }
        sort_hits(&mut hits);
        hits
    }
}

/// Extra HNSW candidates re-scored exactly (see [`Hnsw`]).
pub const RESCORE_EXTRA: usize = 5;

/// Approximate search by the HNSW graphs, one walk per segment. Each walk ranks by BF16
/// distances and keeps papers the mask holds (passing through the others);
/// [`RESCORE_EXTRA`] more candidates than asked for are re-scored with the exact vectors,
/// so near-ties come out in their exact order, and the segments' lists are merged. A
/// selective mask can leave the walks with fewer than `k` papers: see
/// [`super::Index::nearest`].
pub struct Hnsw<'a> {
    pub(super) parts: &'a [Part],
    pub(super) ef: usize,
}

impl Hnsw<'_> {
    /// The same search with a candidate list of `ef` (raised to `k` + [`RESCORE_EXTRA`]
    /// when smaller). Default: the manifest's `hnsw.ef_search`.
    pub fn with_ef(self, ef: usize) -> Self {
        Hnsw { ef, ..self }
    }

    /// The candidate list size the walk uses.
    pub fn ef(&self) -> usize {
        self.ef
    }
}

impl VectorSearch for Hnsw<'_> {
    fn search(&self, query: &[f32], k: usize, mask: Option<&DocMask>) -> Vec<(DocId, Score)> {
        let wanted = k + RESCORE_EXTRA;
        let mut hits: Vec<(DocId, Score)> = Vec::new();
        for part in self.parts {
            let seg = &part.segment;
            hits.extend(
                seg.ann
                    .search(query, wanted, self.ef.max(wanted), mask, part.base)
                    .into_iter()
                    .map(|d| (part.base + d, dot(query, seg.vectors.row(d)))),
            );
        }
        sort_hits(&mut hits);
        hits.truncate(k);
        hits
    }
}

/// Best first; ties broken by DocId so results are deterministic.
pub(crate) fn sort_hits(hits: &mut [(DocId, Score)]) {
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
}

/// Keeps the `k` best of `acc` plus `hit` (small k: a sorted insert beats a heap).
fn push_top_k(mut acc: Vec<(DocId, Score)>, hit: (DocId, Score), k: usize) -> Vec<(DocId, Score)> {
    if k == 0 {
        return acc;
    }
    let better =
        |a: &(DocId, Score), b: &(DocId, Score)| a.1.total_cmp(&b.1).reverse().then(a.0.cmp(&b.0));
    if acc.len() == k && better(&hit, &acc[k - 1]).is_ge() {
        return acc;
    }
    let pos = acc.partition_point(|h| better(h, &hit).is_lt());
    acc.insert(pos, hit);
    acc.truncate(k);
    acc
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::index::ann::{Ann, HnswParams};
    use rand::{Rng, SeedableRng};

    /// `n` unit vectors of dimension `dim` in 20 clusters (as embeddings are), rows 0 and 1
    /// exact duplicates, and their HNSW graph, as one segment (no papers).
    pub(in crate::index) fn fixture(n: usize, dim: usize) -> Part {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let centres: Vec<Vec<f32>> = (0..20)
            .map(|_| (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
            .collect();
        let mut v = Vec::with_capacity(n * dim);
        for i in 0..n {
            let row: Vec<f32> = centres[i % 20]
                .iter()
                .map(|x| x + rng.gen_range(-0.5f32..0.5))
                .collect();
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.extend(row.iter().map(|x| x / norm));
        }
        let first = v[..dim].to_vec();
        v[dim..2 * dim].copy_from_slice(&first);
        let (ann, _) = Ann::build(&v, dim, &HnswParams::default()).unwrap();
        Part {
            base: 0,
            segment: Arc::new(Segment {
                name: "seg-test".into(),
                papers: Vec::new(),
                vectors: Vectors::new(v, dim),
                ann,
            }),
        }
    }

    /// The contract every implementation keeps; `exact` for those that promise the true
    /// top k, else a recall floor.
    fn conforms(s: &dyn VectorSearch, parts: &[Part], exact: bool) {
        let vectors = &parts[0].segment.vectors;
        let n = vectors.floats().len() / vectors.dim;
        let flat = Flat { parts };
        let mut odd = DocMask::all(n);
        (0..n as DocId).step_by(2).for_each(|d| odd.remove(d));
        let (mut found, mut wanted) = (0, 0);
        for q in (0..n as DocId).step_by(41) {
            let query = vectors.row(q);
            for mask in [None, Some(&odd)] {
                let got = s.search(query, 10, mask);
                assert_eq!(got.len(), 10);
                // Best first, ties by DocId, scores exact cosines.
                assert!(got
                    .windows(2)
                    .all(|w| w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0)));
                for &(d, score) in &got {
                    assert_eq!(score, dot(query, vectors.row(d)));
                    assert!(
                        mask.is_none_or(|m| m.contains(d)),
                        "{d} is outside the mask"
                    );
                }
                let truth = flat.search(query, 10, mask);
                if exact {
                    assert_eq!(got, truth);
                }
                found += got.iter().filter(|h| truth.contains(h)).count();
                wanted += truth.len();
            }
        }
        assert!(
            found as f64 / wanted as f64 >= 0.95,
            "recall {found}/{wanted}"
        );
        // A mask holding fewer than k papers: the exact scan returns all of them.
        let mut two = DocMask::all(n);
        (2..n as DocId).for_each(|d| two.remove(d));
        if exact {
            let got = s.search(vectors.row(5), 10, Some(&two));
            assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1]);
        }
        assert!(s.search(vectors.row(5), 0, None).is_empty());
        // Exact duplicates tie; the lower DocId comes first.
        let got = s.search(vectors.row(1), 2, None);
        assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn flat_and_hnsw_keep_the_contract() {
        let parts = [fixture(3000, 64)];
        conforms(&Flat { parts: &parts }, &parts, true);
        let hnsw = Hnsw {
            parts: &parts,
            ef: HnswParams::default().ef_search,
        };
        conforms(&hnsw, &parts, false);
        conforms(&hnsw.with_ef(16), &parts, false);
    }

    #[test]
    fn top_k_keeps_best_in_order() {
        let hits = [(0, 0.1), (1, 0.9), (2, 0.5), (3, 0.9), (4, 0.7)];
        let top = hits
            .iter()
            .fold(Vec::new(), |acc, &h| push_top_k(acc, h, 3));
        assert_eq!(top, vec![(1, 0.9), (3, 0.9), (4, 0.7)]);
    }
}
