//! The approximate nearest-neighbour graph: a thin, panic-proof wrapper over `hnsw_rs`.
//!
//! Vectors are unit length, so the distance is `1 - dot`, clamped at 0. hnsw_rs's own
//! `DistDot` asserts `1 - dot >= 0`, which rounding breaks for exact duplicates (real
//! corpora have duplicate abstracts) and for a query that is itself in the index; the
//! clamp makes both harmless. Scores shown to users are recomputed exactly from the stored
//! vectors, so the clamp never shows.

use super::Error;
use crate::embed::dot;
use crate::paper::DocId;
use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{FilterT, Hnsw};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};
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

/// hnsw_rs can only dump and reload graphs built with this many layers.
const MAX_LAYER: usize = 16;
/// File basename inside the index directory (`hnsw.hnsw.graph`, `hnsw.hnsw.data`).
pub(super) const BASENAME: &str = "hnsw";

pub(super) struct Ann {
    hnsw: Hnsw<'static, f32, UnitDot>,
}

impl Ann {
    /// Builds the graph over `vectors` (row `i` gets id `i`), inserting in parallel.
    pub(super) fn build(vectors: &[f32], dim: usize, params: &HnswParams) -> Result<Ann, Error> {
        if !(2..=256).contains(&params.m) {
            // hnsw_rs calls process::exit above 256; refuse before it can.
            return Err(Error::InvalidParams(format!(
                "HNSW m must be in 2..=256, got {}",
                params.m
            )));
        }
        let n = vectors.len() / dim;
        let mut hnsw = Hnsw::new(params.m, n, MAX_LAYER, params.ef_construction, UnitDot);
        let rows: Vec<(&[f32], usize)> = vectors.chunks_exact(dim).zip(0..n).collect();
        hnsw.parallel_insert_slice(&rows);
        hnsw.set_searching_mode(true);
        Ok(Ann { hnsw })
    }

    pub(super) fn dump(&self, dir: &Path) -> Result<(), Error> {
        let name = self
            .hnsw
            .file_dump(dir, BASENAME)
            .map_err(|e| Error::Hnsw(format!("dump failed: {e}")))?;
        if name != BASENAME {
            return Err(Error::Hnsw(format!(
                "dump wrote basename {name}, expected {BASENAME}"
            )));
        }
        Ok(())
    }

    /// Loads a dumped graph. hnsw_rs asserts on malformed files; those panics are caught
    /// and returned as [`Error::Corrupt`].
    pub(super) fn load(dir: &Path) -> Result<Ann, Error> {
        // The loaded graph borrows its loader for its whole life ('a: 'b in hnsw_rs). An
        // index is opened once per process and lives until exit, so the loader (a few
        // hundred bytes; the vectors are copied out of it) is leaked to get 'static.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
        let loaded = catch_unwind(AssertUnwindSafe(move || { io }.load_hnsw::<f32, UnitDot>()));
        match loaded {
            Ok(Ok(mut hnsw)) => {
                hnsw.set_searching_mode(true);
                Ok(Ann { hnsw })
            }
            Ok(Err(e)) => Err(Error::Corrupt(format!("HNSW graph: {e}"))),
            Err(_) => Err(Error::Corrupt("HNSW graph: malformed files".into())),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    /// Up to `k` nearest ids with their (clamped) distances, best first. `filter`, when
    /// given, restricts results to ids it accepts.
    pub(super) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn Fn(DocId) -> bool>,
    ) -> Vec<DocId> {
        if k == 0 || self.len() == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        let found = match filter {
            None => self.hnsw.search(query, k, ef),
            Some(f) => {
                let f = FnFilter(f);
                self.hnsw.search_filter(query, k, ef, Some(&f))
            }
        };
        found.iter().map(|n| n.d_id as DocId).collect()
    }
}

struct FnFilter<'a>(&'a dyn Fn(DocId) -> bool);

impl FilterT for FnFilter<'_> {
    fn hnsw_filter(&self, id: &usize) -> bool {
        (self.0)(*id as DocId)
    }
}
