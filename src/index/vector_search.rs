//! Nearest-neighbour search over a collection's vectors, behind one small trait with two
//! implementations: [`Hnsw`] (the graph walk, then exact re-scoring) and [`Flat`] (an exact
//! scan).
//!
//! Which papers may come back is a [`DocMask`], a value rather than a predicate, so that
//! the same restriction reaches the graph walk, the scan and the keyword side, and so that
//! an engine that is not in this process could be handed the same data. Choosing between
//! the two for a query (the policy that keeps filtered pages full) is the store's, in
//! [`super::Index::nearest`].

use super::ann::Ann;
use crate::filter::DocMask;
use crate::paper::{DocId, Score};
use crate::vector::dot;
use rayon::prelude::*;

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

/// Exact search: every vector the mask holds is scored, in parallel.
pub struct Flat<'a> {
    pub(super) vectors: &'a Vectors,
}

impl VectorSearch for Flat<'_> {
    fn search(&self, query: &[f32], k: usize, mask: Option<&DocMask>) -> Vec<(DocId, Score)> {
        let mut hits: Vec<(DocId, Score)> = self
            .vectors
            .floats()
            .par_chunks_exact(self.vectors.dim)
            .enumerate()
            .filter(|(i, _)| mask.is_none_or(|m| m.contains(*i as DocId)))
            .map(|(i, v)| (i as DocId, dot(query, v)))
            .fold(Vec::new, |acc, hit| push_top_k(acc, hit, k))
            .reduce(Vec::new, |a, b| {
                b.into_iter().fold(a, |acc, h| push_top_k(acc, h, k))
            });
        sort_hits(&mut hits);
        hits
    }
}

/// Extra HNSW candidates re-scored exactly (see [`Hnsw`]).
pub const RESCORE_EXTRA: usize = 5;

/// Approximate search by the HNSW graph. The walk ranks by BF16 distances and keeps papers
/// the mask holds (passing through the others); [`RESCORE_EXTRA`] more candidates than
/// asked for are re-scored with the exact vectors, so near-ties come out in their exact
/// order. A selective mask can leave the walk with fewer than `k` papers: see
/// [`super::Index::nearest`].
pub struct Hnsw<'a> {
    pub(super) ann: &'a Ann,
    pub(super) vectors: &'a Vectors,
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
        let mut hits: Vec<(DocId, Score)> = self
            .ann
            .search(query, wanted, self.ef.max(wanted), mask)
            .into_iter()
            .map(|d| (d, dot(query, self.vectors.row(d))))
            .collect();
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
    use crate::index::ann::{Built, HnswParams};
    use rand::{Rng, SeedableRng};

    /// `n` unit vectors of dimension `dim` in 20 clusters (as embeddings are), rows 0 and 1
    /// exact duplicates, and their HNSW graph.
    pub(in crate::index) fn fixture(n: usize, dim: usize) -> (Vectors, Ann) {
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
        let dir = tempfile::tempdir().unwrap();
        Built::new(&v, dim, &HnswParams::default())
            .unwrap()
            .dump(dir.path())
            .unwrap();
        let ann = Ann::load(dir.path(), &v, dim).unwrap();
        (Vectors::new(v, dim), ann)
    }

    /// The contract every implementation keeps; `exact` for those that promise the true
    /// top k, else a recall floor.
    fn conforms(s: &dyn VectorSearch, vectors: &Vectors, exact: bool) {
        let n = vectors.floats().len() / vectors.dim;
        let flat = Flat { vectors };
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
        let (vectors, ann) = fixture(3000, 64);
        conforms(&Flat { vectors: &vectors }, &vectors, true);
        let hnsw = Hnsw {
            ann: &ann,
            vectors: &vectors,
            ef: HnswParams::default().ef_search,
        };
        conforms(&hnsw, &vectors, false);
        conforms(&hnsw.with_ef(16), &vectors, false);
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
