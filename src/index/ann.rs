//! The approximate nearest-neighbour graph: built and stored by `hnsw_rs` (panic-proofed),
//! searched by paperscope over flat arrays (see [`Ann`] for why).
//!
//! Vectors are unit length, so the distance is `1 - dot`, clamped at 0. hnsw_rs's own
//! `DistDot` asserts `1 - dot >= 0`, which rounding breaks for exact duplicates (real
//! corpora have duplicate abstracts) and for a query that is itself in the index; the
//! clamp makes both harmless. Scores shown to users are recomputed exactly from the stored
//! vectors, so the clamp never shows.

use super::Error;
use crate::filter::DocMask;
use crate::paper::DocId;
use crate::vector::{bf16_bits, dot, Simd};
use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::prelude::Hnsw;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

/// `1 - <a, b>` for unit vectors, never negative.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// HNSW parameters, recorded in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node and layer (`M`; layer 0 keeps `2M`). Default 16.
    pub m: usize,
    /// Candidate list size while building. Default 200.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to `k` when smaller). Default 128,
    /// measured to give recall@10 ≥ 0.99 on 20,000 arXiv abstracts (see README).
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 128,
        }
    }
}

/// Layers hnsw_rs may build.
const MAX_LAYER: usize = 16;
/// File of a segment's graph (see [`Ann::write`]).
pub(super) const GRAPH: &str = "graph.bin";
/// First bytes of a graph file, with its layout version.
const MAGIC: &[u8; 8] = b"PSGRAPH1";

/// The graph as searched: hnsw_rs's links copied into flat arrays.
///
/// Why not search with hnsw_rs itself: its search walks `Arc`-linked points behind a
/// read-write lock each, and measured 2.8x fewer queries/s than hnswlib on the same
/// graph parameters (20,000 abstracts, ef 64: 4,500 vs 12,700 queries/s on 2 threads).
/// The search below is the standard HNSW descent (greedy on the upper layers, a
/// best-first beam of width `ef` on layer 0) over CSR arrays, reading the index's own
/// vectors, with a per-thread visited list. hnsw_rs builds the graph (construction is
/// where the subtle work is); [`repair`] then links in the papers its walk cannot reach,
/// and the result is stored in paperscope's own file ([`Ann::write`]), which holds only
/// links: the vectors are the segment's.
pub(super) struct Ann {
    /// Layer-0 neighbours in fixed slots of `stride` words: node `i`'s count at
    /// `links0[i * stride]`, its neighbours after it. One cache miss per expanded node
    /// (an offsets array would add another), and the next one is prefetched.
    links0: Vec<u32>,
    stride: usize,
    n: usize,
    /// Neighbours on layers 1.. of the few nodes that reach them: `upper[&i][l - 1]`.
    upper: HashMap<u32, Vec<Vec<u32>>>,
    entry: u32,
    top_layer: usize,
    /// The indexed vectors rounded to BF16, `dim` per node, for the walk only: half the
    /// bytes of F32 to fetch per distance (the walk is bound by memory latency, not
    /// arithmetic), at a relative error of ~1e-4 in the dot product. Callers re-score
    /// the candidates returned with the exact vectors.
    coarse: Vec<u16>,
    dim: usize,
}

/// What [`repair`] found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    /// Papers whose own vector did not find them at rank 1 before the repair.
    pub unreachable_before: usize,
    /// After it (0 unless the repair gave up).
    pub unreachable_after: usize,
    /// In-links added.
    pub links_added: usize,
    /// Rounds of check-and-link.
    pub rounds: usize,
}

impl Ann {
    /// Builds the graph over `vectors` (row `i` gets id `i`) with hnsw_rs, inserting in
    /// parallel, then [`repair`]s it with the search width `params.ef_search`.
    pub(super) fn build(
        vectors: &[f32],
        dim: usize,
        params: &HnswParams,
    ) -> Result<(Ann, Reachability), Error> {
        if !(2..=256).contains(&params.m) {
            // hnsw_rs calls process::exit above 256; refuse before it can.
            return Err(Error::InvalidParams(format!(
                "HNSW m must be in 2..=256, got {}",
                params.m
            )));
        }
        let n = vectors.len() / dim.max(1);
        let mut hnsw = Hnsw::new(
            params.m,
            n.max(1),
            MAX_LAYER,
            params.ef_construction,
            UnitDot,
        );
        let rows: Vec<(&[f32], usize)> = vectors.chunks_exact(dim).zip(0..n).collect();
        hnsw.parallel_insert_slice(&rows);
        hnsw.set_searching_mode(true);
        let mut ann = Ann::from_hnsw(&hnsw, vectors, dim)?;
        drop(hnsw);
        let report = repair(&mut ann, vectors, params.ef_search);
        Ok((ann, report))
    }

    /// Writes the links (not the vectors) to `path`, synced.
    pub(super) fn write(&self, path: &Path) -> Result<(), Error> {
        let mut out: Vec<u8> = Vec::with_capacity(32 + self.links0.len() * 4);
        out.extend_from_slice(MAGIC);
        for x in [self.n, self.stride, self.entry as usize, self.top_layer] {
            out.extend_from_slice(&(x as u32).to_le_bytes());
        }
        let word = |out: &mut Vec<u8>, x: u32| out.extend_from_slice(&x.to_le_bytes());
        for &x in &self.links0 {
            word(&mut out, x);
        }
        let mut upper: Vec<(&u32, &Vec<Vec<u32>>)> = self.upper.iter().collect();
        upper.sort_by_key(|(id, _)| **id);
        word(&mut out, upper.len() as u32);
        for (&id, layers) in upper {
            word(&mut out, id);
            word(&mut out, layers.len() as u32);
            for l in layers {
                word(&mut out, l.len() as u32);
                for &x in l {
                    word(&mut out, x);
                }
            }
        }
        super::atomic::write_synced(path, &out)
    }

    /// Reads a graph written by [`Ann::write`] over the segment's `vectors`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a malformed file or one that disagrees with the vectors.
    pub(super) fn read(path: &Path, vectors: &[f32], dim: usize) -> Result<Ann, Error> {
        let bytes = std::fs::read(path).map_err(super::io_err(path))?;
        let corrupt = |what: &str| Error::Corrupt(format!("{}: {what}", path.display()));
        if bytes.len() < 24 || &bytes[..8] != MAGIC || !bytes.len().is_multiple_of(4) {
            return Err(corrupt("not a paperscope graph file"));
        }
        let words: Vec<u32> = bytes[8..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut at = 0usize;
        let mut next = || -> Result<u32, Error> {
            let w = words.get(at).copied().ok_or_else(|| corrupt("truncated"))?;
            at += 1;
            Ok(w)
        };
        let (n, stride, entry, top_layer) = (
            next()? as usize,
            next()? as usize,
            next()?,
            next()? as usize,
        );
        if n * dim != vectors.len() || stride == 0 || (n > 0 && entry as usize >= n) {
            return Err(corrupt("its size disagrees with the vectors"));
        }
        let mut links0 = Vec::with_capacity(n * stride);
        for _ in 0..n * stride {
            links0.push(next()?);
        }
        for slot in links0.chunks_exact(stride) {
            let len = slot[0] as usize;
            if len >= stride || slot[1..=len].iter().any(|&d| d as usize >= n) {
                return Err(corrupt("a link points outside the graph"));
            }
        }
        let mut upper = HashMap::new();
        for _ in 0..next()? {
            let id = next()?;
            let layers = next()? as usize;
            if id as usize >= n || layers > MAX_LAYER {
                return Err(corrupt("bad upper-layer node"));
            }
            let mut ls = Vec::with_capacity(layers);
            for _ in 0..layers {
                let len = next()? as usize;
                let mut l = Vec::with_capacity(len.min(1024));
                for _ in 0..len {
                    let d = next()?;
                    if d as usize >= n {
                        return Err(corrupt("a link points outside the graph"));
                    }
                    l.push(d);
                }
                ls.push(l);
            }
            upper.insert(id, ls);
        }
        if top_layer > MAX_LAYER {
            return Err(corrupt("bad top layer"));
        }
        Ok(Ann {
            coarse: vectors.iter().copied().map(bf16_bits).collect(),
            dim,
            links0,
            stride,
            n,
            upper,
            entry,
            top_layer,
        })
    }

    fn from_hnsw(hnsw: &Hnsw<'_, f32, UnitDot>, vectors: &[f32], dim: usize) -> Result<Ann, Error> {
        let n = hnsw.get_nb_point();
        let corrupt = |what: String| Error::Corrupt(format!("HNSW graph: {what}"));
        let mut lists: Vec<Option<Vec<Vec<u32>>>> = vec![None; n];
        let (mut entry, mut top_layer) = (0u32, 0usize);
        for point in hnsw.get_point_indexation() {
            let id = point.get_origin_id();
            let level = point.get_point_id().0 as usize;
            let layers: Vec<Vec<u32>> = point
                .get_neighborhood_id()
                .into_iter()
                .take(level + 1)
                .map(|l| l.iter().map(|nb| nb.d_id as u32).collect())
                .collect();
            if id >= n || lists[id].is_some() || layers.iter().flatten().any(|&d| d as usize >= n) {
                return Err(corrupt(format!("bad or repeated node id {id}")));
            }
            if level >= top_layer {
                (entry, top_layer) = (id as u32, level);
            }
            lists[id] = Some(layers);
        }
        let degree = lists
            .iter()
            .flatten()
            .map(|l| l.first().map_or(0, Vec::len))
            .max()
            .unwrap_or(0);
        let stride = degree + 1;
        let mut links0 = vec![0u32; n * stride];
        let mut upper = HashMap::new();
        for (id, layers) in lists.into_iter().enumerate() {
            let mut layers = layers.ok_or_else(|| corrupt(format!("node {id} missing")))?;
            let own = layers.first().map_or(&[][..], Vec::as_slice);
            let slot = &mut links0[id * stride..(id + 1) * stride];
            slot[0] = own.len() as u32;
            slot[1..=own.len()].copy_from_slice(own);
            if layers.len() > 1 {
                layers.remove(0);
                upper.insert(id as u32, layers);
            }
        }
        let coarse = vectors.iter().copied().map(bf16_bits).collect();
        Ok(Ann {
            coarse,
            dim,
            links0,
            stride,
            n,
            upper,
            entry,
            top_layer,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.n
    }

    /// Up to `k` nearest ids by the BF16 distances, best first, searching with a beam of
    /// `ef` (at least `k`). `mask`, when given, restricts results to the ids it holds
    /// (the walk still passes through the others). Ask for a few more than needed and
    /// re-score them exactly: near-ties may be out of order by ~1e-4.
    pub(super) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        mask: Option<&DocMask>,
        base: DocId,
    ) -> Vec<DocId> {
        if k == 0 || self.len() == 0 {
            return Vec::new();
        }
        SCRATCH.with(|cell| {
            let scratch = &mut *cell.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            match Simd::current() {
                Simd::Avx512Bf16 if self.dim.is_multiple_of(32) => {
                    // SAFETY: `Simd::current` never exceeds what the CPU supports.
                    return unsafe { self.search_avx512bf16(scratch, query, k, ef, mask, base) };
                }
                Simd::Avx512 | Simd::Avx512Bf16 => {
                    // SAFETY: as above.
                    return unsafe { self.search_avx512(scratch, query, k, ef, mask, base) };
                }
                Simd::Avx2 => {
                    // SAFETY: as above.
                    return unsafe { self.search_avx2(scratch, query, k, ef, mask, base) };
                }
                Simd::Generic => {}
            }
            self.search_impl(scratch, &F32Query(query), k, ef, mask, base)
        })
    }

    /// The search with the query rounded to BF16 too, so that each distance is 12
    /// `vdpbf16ps` instructions (32 products each, F32 accumulation) instead of
    /// conversions and F32 multiplies: ~1.35x the queries per second at the same
    /// recall. The rounding of the query adds an error of the same size as the
    /// vectors' own, which the exact re-scoring of the results absorbs.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
    unsafe fn search_avx512bf16(
        &self,
        scratch: &mut Scratch,
        query: &[f32],
        k: usize,
        ef: usize,
        mask: Option<&DocMask>,
        base: DocId,
    ) -> Vec<DocId> {
        let mut q = std::mem::take(&mut scratch.query);
        q.clear();
        q.extend(query.iter().copied().map(bf16_bits));
        let found = self.search_impl(scratch, &Bf16Query(&q), k, ef, mask, base);
        scratch.query = q;
        found
    }

    /// The search with every distance inlined and vectorised for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn search_avx512(
        &self,
        scratch: &mut Scratch,
        query: &[f32],
        k: usize,
        ef: usize,
        mask: Option<&DocMask>,
        base: DocId,
    ) -> Vec<DocId> {
        self.search_impl(scratch, &F32Query(query), k, ef, mask, base)
    }

    /// The same for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn search_avx2(
        &self,
        scratch: &mut Scratch,
        query: &[f32],
        k: usize,
        ef: usize,
        mask: Option<&DocMask>,
        base: DocId,
    ) -> Vec<DocId> {
        self.search_impl(scratch, &F32Query(query), k, ef, mask, base)
    }

    #[inline(always)]
    fn search_impl<Q: Query>(
        &self,
        scratch: &mut Scratch,
        query: &Q,
        k: usize,
        ef: usize,
        mask: Option<&DocMask>,
        base: DocId,
    ) -> Vec<DocId> {
        // Not a closure: closures are compiled without the caller's target features
        // unless inlined, and this is the innermost loop.
        let dim = self.dim;
        macro_rules! dist {
            ($d:expr) => {
                -query.dot(&self.coarse[$d as usize * dim..($d as usize + 1) * dim])
            };
        }
        // Greedy descent through the upper layers.
        let (mut ep, mut d_ep) = (self.entry, dist!(self.entry));
        for layer in (1..=self.top_layer).rev() {
            loop {
                let mut moved = false;
                for &nb in self
                    .upper
                    .get(&ep)
                    .and_then(|ls| ls.get(layer - 1))
                    .into_iter()
                    .flatten()
                {
                    let d = dist!(nb);
                    if d < d_ep {
                        (ep, d_ep, moved) = (nb, d, true);
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        // Best-first beam search on layer 0.
        let ef = ef.max(k);
        let accept = |d: u32| mask.is_none_or(|m| m.contains(base + d as DocId));
        {
            let Scratch {
                visited,
                candidates,
                results,
                fresh,
                ..
            } = scratch;
            visited.reset(self.len());
            candidates.clear();
            results.clear();
            visited.insert(ep);
            candidates.push(Reverse((Dist(d_ep), ep)));
            if accept(ep) {
                results.push((Dist(d_ep), ep));
            }
            let worst = |r: &BinaryHeap<(Dist, u32)>| r.peek().map_or(f32::INFINITY, |w| w.0 .0);
            while let Some(Reverse((Dist(d), c))) = candidates.pop() {
                if results.len() >= ef && d > worst(results) {
                    break;
                }
                // The links of the next node to expand, while this one's are used.
                if let Some(Reverse((_, next))) = candidates.peek() {
                    prefetch(&self.links0[*next as usize * self.stride..][..1]);
                }
                let slot = &self.links0[c as usize * self.stride..(c as usize + 1) * self.stride];
                let links = &slot[1..=slot[0] as usize];
                // Unseen neighbours first, then their distances, each neighbour's vector
                // prefetched while the one before it is scored: the vectors mostly come
                // from L3 or memory. (Prefetching all of them at once was slower: the
                // burst fills the line-fill buffers and the prefetches themselves stall.)
                fresh.clear();
                fresh.extend(links.iter().copied().filter(|&nb| visited.insert(nb)));
                let row = |nb: u32| &self.coarse[nb as usize * dim..(nb as usize + 1) * dim];
                if let Some(&first) = fresh.first() {
                    prefetch(row(first));
                }
                for (j, &nb) in fresh.iter().enumerate() {
                    if let Some(&next) = fresh.get(j + 1) {
                        prefetch(row(next));
                    }
                    let dn = dist!(nb);
                    if results.len() < ef || dn < worst(results) {
                        candidates.push(Reverse((Dist(dn), nb)));
                        if accept(nb) {
                            results.push((Dist(dn), nb));
                            if results.len() > ef {
                                results.pop();
                            }
                        }
                    }
                }
            }
            let mut best: Vec<(Dist, u32)> = results.drain().collect();
            best.sort_unstable();
            best.truncate(k);
            best.into_iter().map(|(_, d)| d as DocId).collect()
        }
    }
}

impl Ann {
    /// The nodes of `candidates` (every node when `None`) that a search for their own
    /// vector does not return at rank 1, an exact duplicate of them counting as them.
    fn self_misses(&self, vectors: &[f32], ef: usize, candidates: Option<&[u32]>) -> Vec<u32> {
        use rayon::prelude::*;
        let dim = self.dim;
        let row = |d: u32| &vectors[d as usize * dim..(d as usize + 1) * dim];
        let misses = |i: u32| {
            let found = self.search(row(i), 1, ef, None, 0);
            !found.first().is_some_and(|&d| d == i || row(d) == row(i))
        };
        match candidates {
            Some(c) => c.par_iter().copied().filter(|&i| misses(i)).collect(),
            None => (0..self.n as u32)
                .into_par_iter()
                .filter(|&i| misses(i))
                .collect(),
        }
    }

    /// Adds `to` to the layer-0 links of `from` (growing every slot when `from`'s is
    /// full); false if it was there.
    fn link(&mut self, from: u32, to: u32) -> bool {
        let slot = |a: &Ann| a.stride * from as usize;
        let at = slot(self);
        let len = self.links0[at] as usize;
        if from == to || self.links0[at + 1..=at + len].contains(&to) {
            return false;
        }
        if len + 1 >= self.stride {
            let grown = self.stride + 4;
            let mut links = vec![0u32; self.n * grown];
            for (old, new) in self
                .links0
                .chunks_exact(self.stride)
                .zip(links.chunks_exact_mut(grown))
            {
                new[..self.stride].copy_from_slice(old);
            }
            (self.links0, self.stride) = (links, grown);
        }
        let at = slot(self);
        self.links0[at + 1 + len] = to;
        self.links0[at] += 1;
        true
    }
}

/// Makes every node findable by a search for its own vector, with the search width the
/// index uses (`ef`): the nodes a check misses get in-links from the nodes their own
/// search ends at (their nearest reachable neighbours), and are checked again, more links
/// each round, until none is missed.
///
/// Why: hnsw_rs's graph leaves a few nodes without usable in-links (their neighbours
/// pruned them for closer ones): 0.2% of the 118,024 arXiv papers were not found by
/// their own vector, so they never came up as anyone's neighbour either. The same repair
/// as hnswlib's (issue #352, PR #515) and knowhere's (PR #340): link the stranded nodes
/// back in rather than rebuild.
pub(super) fn repair(ann: &mut Ann, vectors: &[f32], ef: usize) -> Reachability {
    const MAX_ROUNDS: usize = 6;
    let dim = ann.dim;
    let mut report = Reachability::default();
    let mut missed = ann.self_misses(vectors, ef, None);
    report.unreachable_before = missed.len();
    while !missed.is_empty() && report.rounds < MAX_ROUNDS {
        report.rounds += 1;
        let links = 4 * report.rounds;
        for &i in &missed {
            let v = &vectors[i as usize * dim..(i as usize + 1) * dim];
            for nb in ann.search(v, links + 1, ef.max(links + 1), None, 0) {
                if ann.link(nb, i) {
                    report.links_added += 1;
                }
            }
        }
        missed = ann.self_misses(vectors, ef, Some(&missed));
    }
    report.unreachable_after = missed.len();
    report
}

/// Asks the CPU to start loading `v` into the cache, line by line.
#[inline(always)]
fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(64 / size_of::<T>()) {
        // SAFETY: prefetching never faults; the pointer is in bounds anyway.
        #[allow(unused_unsafe)]
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            );
        }
    }
}

/// A query as the walk scores it against the BF16 vectors.
trait Query {
    /// `<query, v>`, inlined into (and vectorised for) the caller's target features.
    fn dot(&self, v: &[u16]) -> f32;
}

/// An F32 query: each BF16 component widened, then multiplied in F32.
struct F32Query<'a>(&'a [f32]);

impl Query for F32Query<'_> {
    #[inline(always)]
    fn dot(&self, v: &[u16]) -> f32 {
        dot_bf16(self.0, v)
    }
}

/// A query rounded to BF16, for CPUs with AVX512-BF16 and a dimension that is a
/// multiple of 32; only `search_avx512bf16` makes one.
#[cfg(target_arch = "x86_64")]
struct Bf16Query<'a>(&'a [u16]);

#[cfg(target_arch = "x86_64")]
impl Query for Bf16Query<'_> {
    #[inline(always)]
    fn dot(&self, v: &[u16]) -> f32 {
        // SAFETY: a `Bf16Query` exists only inside `search_avx512bf16`, entered after
        // checking the features, with `dim % 32 == 0`.
        unsafe { dot_bf16_pairs(self.0, v) }
    }
}

/// `<q, v>` of two BF16 vectors whose length is a multiple of 32, accumulated in F32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn dot_bf16_pairs(q: &[u16], v: &[u16]) -> f32 {
    use std::arch::x86_64::*;
    debug_assert!(q.len() == v.len() && q.len().is_multiple_of(32));
    let (mut even, mut odd) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // Two accumulators: `vdpbf16ps` has a latency of several cycles.
    while i + 64 <= q.len() {
        let (a0, b0) = (pair(q, i), pair(v, i));
        let (a1, b1) = (pair(q, i + 32), pair(v, i + 32));
        even = _mm512_dpbf16_ps(even, a0, b0);
        odd = _mm512_dpbf16_ps(odd, a1, b1);
        i += 64;
    }
    if i < q.len() {
        even = _mm512_dpbf16_ps(even, pair(q, i), pair(v, i));
    }
    _mm512_reduce_add_ps(_mm512_add_ps(even, odd))
}

/// 32 BF16 values from `x[i..i + 32]`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pair(x: &[u16], i: usize) -> std::arch::x86_64::__m512bh {
    let x = &x[i..i + 32];
    // SAFETY: 32 u16 are 64 readable bytes; `__m512bh` is 32 BF16 in 512 bits.
    std::mem::transmute(std::arch::x86_64::_mm512_loadu_si512(x.as_ptr().cast()))
}

/// `<q, v>` with `v` in BF16; inlined into (and vectorised for) the caller's features.
#[inline(always)]
fn dot_bf16(q: &[f32], v: &[u16]) -> f32 {
    const LANES: usize = 64;
    let mut acc = [0f32; LANES];
    let (cq, cv) = (q.chunks_exact(LANES), v.chunks_exact(LANES));
    let tail: f32 = cq
        .remainder()
        .iter()
        .zip(cv.remainder())
        .map(|(a, &b)| a * f32::from_bits((b as u32) << 16))
        .sum();
    for (x, y) in cq.zip(cv) {
        for k in 0..LANES {
            acc[k] += x[k] * f32::from_bits((y[k] as u32) << 16);
        }
    }
    let mut width = LANES / 2;
    while width > 0 {
        for k in 0..width {
            acc[k] += acc[k + width];
        }
        width /= 2;
    }
    acc[0] + tail
}

/// A distance with a total order (for the heaps).
#[derive(Clone, Copy, PartialEq)]
struct Dist(f32);

impl Eq for Dist {}

impl PartialOrd for Dist {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dist {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Which nodes a search has seen: a mark per node, valid when equal to the current
/// epoch, so resetting between searches costs nothing (hnswlib's visited-list trick).
#[derive(Default)]
struct Visited {
    /// 16-bit marks keep the array small enough for the L2 cache (236 KB for 118,000
    /// papers); the epoch wraps every 65,535 searches, when the marks are cleared.
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `id`; false if it was already marked.
    fn insert(&mut self, id: u32) -> bool {
        let m = &mut self.marks[id as usize];
        let fresh = *m != self.epoch;
        *m = self.epoch;
        fresh
    }
}

/// A search's working memory, kept per thread and reused.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    /// Nodes to expand, nearest first.
    candidates: BinaryHeap<Reverse<(Dist, u32)>>,
    /// The `ef` nearest accepted nodes so far, farthest on top.
    results: BinaryHeap<(Dist, u32)>,
    /// A node's neighbours not seen before.
    fresh: Vec<u32>,
    /// The query rounded to BF16 (`search_avx512bf16`).
    query: Vec<u16>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::HashSet;

    /// Unit vectors in clusters (as embeddings are), two of them exact duplicates.
    fn vectors(n: usize, dim: usize) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let centres: Vec<Vec<f32>> = (0..20)
            .map(|_| (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
            .collect();
        let mut v = Vec::with_capacity(n * dim);
        for i in 0..n {
            let c = &centres[i % centres.len()];
            let row: Vec<f32> = c.iter().map(|x| x + rng.gen_range(-0.5f32..0.5)).collect();
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.extend(row.iter().map(|x| x / norm));
        }
        let first = v[..dim].to_vec();
        v[dim..2 * dim].copy_from_slice(&first);
        v
    }

    fn exact(v: &[f32], dim: usize, q: &[f32], k: usize, accept: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut all: Vec<(f32, u32)> = v
            .chunks_exact(dim)
            .enumerate()
            .filter(|(i, _)| accept(*i as u32))
            .map(|(i, row)| (-dot(q, row), i as u32))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().take(k).map(|(_, i)| i).collect()
    }

    #[test]
    fn flat_search_finds_the_exact_neighbours() {
        // 96 and 32 take the paired-BF16 walk where the CPU has AVX512-BF16 (with and
        // without its two-accumulator loop), 100 the F32-query walk.
        for dim in [96, 32, 100] {
            search_finds_the_exact_neighbours(dim);
        }
    }

    fn search_finds_the_exact_neighbours(dim: usize) {
        let n = 3000;
        let v = vectors(n, dim);
        let dir = tempfile::tempdir().unwrap();
        let (built, reach) = Ann::build(&v, dim, &HnswParams::default()).unwrap();
        assert_eq!(reach.unreachable_after, 0, "{reach:?}");
        built.write(&dir.path().join(GRAPH)).unwrap();
        let ann = Ann::read(&dir.path().join(GRAPH), &v, dim).unwrap();
        assert_eq!(ann.len(), n);
        assert_eq!(
            (ann.links0 == built.links0, ann.upper == built.upper),
            (true, true)
        );
        // A damaged file is an error, not a crash.
        let mut bytes = std::fs::read(dir.path().join(GRAPH)).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(dir.path().join(GRAPH), &bytes).unwrap();
        assert!(Ann::read(&dir.path().join(GRAPH), &v, dim).is_err());
        let mut even = DocMask::all(n);
        (1..n as DocId).step_by(2).for_each(|d| even.remove(d));
        let (mut found, mut total) = (0, 0);
        for q in (0..n).step_by(37) {
            let query = &v[q * dim..(q + 1) * dim];
            let truth = exact(&v, dim, query, 10, |_| true);
            let got = ann.search(query, 10, 64, None, 0);
            assert!(got.len() == 10);
            found += got.iter().filter(|d| truth.contains(d)).count();
            total += 10;
            // A mask is honoured: only even ids come back.
            let got = ann.search(query, 10, 64, Some(&even), 0);
            assert!(got.iter().all(|d| d.is_multiple_of(2)), "{got:?}");
        }
        let recall = found as f64 / total as f64;
        assert!(recall >= 0.95, "dim {dim}: recall@10 {recall}");
        // The exact duplicates (ids 0 and 1) find each other first.
        let got = ann.search(&v[..dim], 2, 64, None, 0);
        assert_eq!(
            got.iter().copied().collect::<HashSet<_>>(),
            HashSet::from([0, 1])
        );
    }

    /// A graph with stranded nodes (every in-link to them cut) gets them back.
    #[test]
    fn repair_links_in_stranded_nodes() {
        let (n, dim) = (2000, 32);
        let v = vectors(n, dim);
        let (mut ann, _) = Ann::build(&v, dim, &HnswParams::default()).unwrap();
        let entry = ann.entry;
        let stranded: Vec<u32> = (100..n as u32)
            .step_by(97)
            .filter(|&d| d != entry)
            .collect();
        for slot in ann.links0.chunks_exact_mut(ann.stride) {
            let len = slot[0] as usize;
            let kept: Vec<u32> = slot[1..=len]
                .iter()
                .copied()
                .filter(|d| !stranded.contains(d))
                .collect();
            slot[0] = kept.len() as u32;
            slot[1..=kept.len()].copy_from_slice(&kept);
        }
        // No way in from the upper layers either.
        ann.upper.retain(|id, _| !stranded.contains(id));
        for layers in ann.upper.values_mut() {
            for l in layers.iter_mut() {
                l.retain(|d| !stranded.contains(d));
            }
        }
        let missed = ann.self_misses(&v, 64, None);
        assert!(stranded.iter().all(|s| missed.contains(s)), "{missed:?}");
        let report = repair(&mut ann, &v, 64);
        assert!(report.unreachable_before >= stranded.len(), "{report:?}");
        assert_eq!(report.unreachable_after, 0, "{report:?}");
        assert!(ann.self_misses(&v, 64, None).is_empty());
    }

    #[test]
    fn visited_marks_survive_epoch_wrap() {
        let mut v = Visited::default();
        for _ in 0..70_000 {
            v.reset(4);
            assert!(v.insert(3));
            assert!(!v.insert(3));
        }
    }
}
