//! The index directory: everything needed to search a collection, written once, read many
//! times.
//!
//! ```text
//! idx/
//!   manifest.json      format version, model (name, weights sha256, dim, pooling,
//!                      max tokens), count, HNSW parameters, build time, sources
//!   papers.jsonl       the paper records, one per line, in DocId order
//!   vectors.f32        count × dim little-endian f32, unit length, in DocId order
//!   hnsw.hnsw.graph    the hnsw_rs graph (node ids = DocIds)
//!   hnsw.hnsw.data     the hnsw_rs copy of the vectors
//!   keyword/           the tantivy (BM25) index of the same papers, see crate::keyword
//! ```
//!
//! Indexes written before the keyword index existed have no `keyword` entry in their
//! manifest (the format version stayed 1: nothing else changed). They still open and
//! serve semantic search and `similar`; keyword and hybrid search on them fail with an
//! error saying to rebuild.
//!
//! **Atomicity.** [`build`] writes into a fresh temporary directory beside the target and
//! only then moves it into place, by an atomic exchange of the two directories where the
//! kernel offers it (`renameat2(RENAME_EXCHANGE)` on Linux), else by two renames. A build
//! that fails, is interrupted or killed leaves the previous index untouched; the leftover
//! temporary directory is removed by the next build to the same target.
//!
//! **Model identity.** The manifest records the sha256 of the weights that produced the
//! vectors; [`Index::check_model`] refuses a query model with other weights, because
//! vectors of different models are not comparable.

mod ann;
mod atomic;

pub use ann::HnswParams;

use crate::embed::{Encoder, ModelInfo};
use crate::paper::{DocId, Paper, PaperId, Score};
use crate::vector::dot;
use ann::Ann;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Version of the directory layout. Bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "manifest.json";
const PAPERS: &str = "papers.jsonl";
const VECTORS: &str = "vectors.f32";

/// Errors of building or opening an index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a paperscope index (no {MANIFEST}); build one with `paperscope index --out {path} FILE...`")]
    NotAnIndex { path: PathBuf },
    #[error("refusing to replace {path}: it exists and is not a paperscope index")]
    WouldClobber { path: PathBuf },
    #[error("{path}: index format version {found}, this paperscope reads version {FORMAT_VERSION}; rebuild it with `paperscope index`")]
    Version { path: PathBuf, found: u32 },
    #[error("index was built with model {index_model} (weights sha256 {index_sha:.12}…) but the loaded model is {model} ({model_sha:.12}…); pass --model with the index's model, or rebuild the index with this one")]
    ModelMismatch {
        index_model: String,
        index_sha: String,
        model: String,
        model_sha: String,
    },
    #[error("corrupt index: {0}")]
    Corrupt(String),
    #[error("invalid index parameters: {0}")]
    InvalidParams(String),
    #[error("HNSW: {0}")]
    Hnsw(String),
    #[error("nothing to index: no papers were read")]
    Empty,
    #[error(transparent)]
    Embed(#[from] crate::embed::Error),
    #[error(transparent)]
    Keyword(#[from] crate::keyword::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub model: ModelInfo,
    pub count: usize,
    pub dim: usize,
    pub hnsw: HnswParams,
    /// RFC 3339, UTC.
    pub built_at: String,
    /// Seconds spent embedding and building the graph.
    pub build_seconds: f64,
    /// Of which embedding (tokenization included).
    #[serde(default)]
    pub embed_seconds: f64,
    /// Of which building the HNSW graph.
    #[serde(default)]
    pub graph_seconds: f64,
    /// Tokens fed to the model (after truncation).
    pub tokens: usize,
    /// How each paper's text was formed (see [`Paper::text`]).
    pub text: String,
    /// The embedding backend and kernels that computed the vectors.
    #[serde(default)]
    pub embedder: String,
    /// Input files, as given.
    pub sources: Vec<String>,
    /// The keyword index in `keyword/`; absent in indexes built before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<crate::keyword::KeywordInfo>,
}

/// Options for [`build`].
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub hnsw: HnswParams,
    /// Input files, recorded in the manifest.
    pub sources: Vec<String>,
}

/// Progress of a build, for progress bars.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Embedding {
        done: usize,
        total: usize,
        tokens: usize,
    },
    Graph,
    Writing,
}

/// Embeds `papers` and writes a complete index at `out`, atomically replacing any index
/// already there.
///
/// # Errors
/// [`Error::Empty`] with no papers; [`Error::WouldClobber`] if `out` exists and is not an
/// index; any embedding or I/O failure (the old index, if any, is left as it was).
pub fn build(
    out: &Path,
    papers: Vec<Paper>,
    embedder: &dyn Encoder,
    opts: &BuildOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Manifest, Error> {
    if papers.is_empty() {
        return Err(Error::Empty);
    }
    if out.exists() && !out.join(MANIFEST).is_file() {
        let empty_dir = fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty_dir {
            return Err(Error::WouldClobber {
                path: out.to_path_buf(),
            });
        }
    }
    let staging = atomic::Staging::new(out)?;
    let start = Instant::now();
    let texts: Vec<String> = papers.iter().map(Paper::text).collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let total = papers.len();
    let mut tokens = 0;
    let vectors = embedder.embed_with_progress(&text_refs, &mut |done, t| {
        tokens = t;
        progress(Progress::Embedding {
            done,
            total,
            tokens: t,
        })
    })?;
    let embed_seconds = start.elapsed().as_secs_f64();
    let dim = embedder.dim();
    let flat: Vec<f32> = vectors.into_iter().flatten().collect();
    progress(Progress::Graph);
    let graph_start = Instant::now();
    let ann = ann::Built::new(&flat, dim, &opts.hnsw)?;
    let graph_seconds = graph_start.elapsed().as_secs_f64();
    progress(Progress::Writing);
    // Inside the staging directory, so it is swapped in with the vectors or not at all.
    let keyword = crate::keyword::build(staging.path(), &papers)?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        model: embedder.info().clone(),
        count: papers.len(),
        dim,
        hnsw: opts.hnsw,
        built_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        build_seconds: start.elapsed().as_secs_f64(),
        embed_seconds,
        graph_seconds,
        tokens,
        text: "title + \". \" + abstract (a space instead when the title ends in . ? !)".into(),
        sources: opts.sources.clone(),
        embedder: embedder.describe(),
        keyword: Some(keyword),
    };
    write_contents(staging.path(), &manifest, &papers, &flat, &ann)?;
    staging.commit()?;
    Ok(manifest)
}

fn write_contents(
    dir: &Path,
    manifest: &Manifest,
    papers: &[Paper],
    vectors: &[f32],
    ann: &ann::Built,
) -> Result<(), Error> {
    let path = dir.join(PAPERS);
    let mut w = BufWriter::new(fs::File::create(&path).map_err(io_err(&path))?);
    for p in papers {
        serde_json::to_writer(&mut w, p).map_err(|e| Error::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        w.write_all(b"\n").map_err(io_err(&path))?;
    }
    let f = w.into_inner().map_err(|e| Error::Io {
        path: path.clone(),
        source: e.into_error(),
    })?;
    f.sync_all().map_err(io_err(&path))?;

    let path = dir.join(VECTORS);
    let bytes: Vec<u8> = vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
    atomic::write_synced(&path, &bytes)?;

    ann.dump(dir)?;

    // The manifest goes last: a directory without one is never mistaken for an index.
    let path = dir.join(MANIFEST);
    let json = serde_json::to_vec_pretty(manifest).expect("manifest serialises. This is a bug.");
    atomic::write_synced(&path, &json)?;
    Ok(())
}

/// Extra HNSW candidates re-scored exactly (see [`Index::search_ann`]).
pub const RESCORE_EXTRA: usize = 5;

/// An opened index: records, vectors and graph in memory.
pub struct Index {
    path: PathBuf,
    manifest: Manifest,
    papers: Vec<Paper>,
    /// count × dim, row-major.
    vectors: Vec<f32>,
    by_id: HashMap<PaperId, DocId>,
    ann: Ann,
}

impl Index {
    /// Opens the index at `path`.
    ///
    /// # Errors
    /// [`Error::NotAnIndex`], [`Error::Version`], or [`Error::Corrupt`] when the files
    /// disagree with the manifest or with each other.
    pub fn open(path: &Path) -> Result<Index, Error> {
        let mpath = path.join(MANIFEST);
        if !mpath.is_file() {
            return Err(Error::NotAnIndex {
                path: path.to_path_buf(),
            });
        }
        let text = fs::read_to_string(&mpath).map_err(io_err(&mpath))?;
        let version: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", mpath.display())))?;
        let found = version["format_version"].as_u64().unwrap_or(0) as u32;
        if found != FORMAT_VERSION {
            return Err(Error::Version {
                path: path.to_path_buf(),
                found,
            });
        }
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", mpath.display())))?;

        let ppath = path.join(PAPERS);
        let reader = BufReader::new(fs::File::open(&ppath).map_err(io_err(&ppath))?);
        let mut papers = Vec::with_capacity(manifest.count);
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(io_err(&ppath))?;
            let paper: Paper = serde_json::from_str(&line)
                .map_err(|e| Error::Corrupt(format!("{}:{}: {e}", ppath.display(), i + 1)))?;
            papers.push(paper);
        }

        let vpath = path.join(VECTORS);
        let bytes = fs::read(&vpath).map_err(io_err(&vpath))?;
        let vectors: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let ann = Ann::load(path, &vectors, manifest.dim)?;
        let n = manifest.count;
        if papers.len() != n || vectors.len() != n * manifest.dim || ann.len() != n {
            return Err(Error::Corrupt(format!(
                "{}: manifest says {n} papers of dim {}, found {} records, {} floats, {} graph nodes",
                path.display(),
                manifest.dim,
                papers.len(),
                vectors.len(),
                ann.len()
            )));
        }
        let by_id = papers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i as DocId))
            .collect();
        Ok(Index {
            path: path.to_path_buf(),
            manifest,
            papers,
            vectors,
            by_id,
            ann,
        })
    }

    /// Refuses a query model whose weights differ from the ones the index was built with.
    ///
    /// # Errors
    /// [`Error::ModelMismatch`].
    pub fn check_model(&self, model: &ModelInfo) -> Result<(), Error> {
        let m = &self.manifest.model;
        if m.weights_sha256 != model.weights_sha256
            || m.pooling != model.pooling
            || m.dim != model.dim
        {
            return Err(Error::ModelMismatch {
                index_model: m.name.clone(),
                index_sha: m.weights_sha256.clone(),
                model: model.name.clone(),
                model_sha: model.weights_sha256.clone(),
            });
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn len(&self) -> usize {
        self.papers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.papers.is_empty()
    }

    pub fn papers(&self) -> &[Paper] {
        &self.papers
    }

    pub fn paper(&self, doc: DocId) -> &Paper {
        &self.papers[doc as usize]
    }

    pub fn doc_id(&self, id: &PaperId) -> Option<DocId> {
        self.by_id.get(id).copied()
    }

    /// The stored (unit-length) vector of `doc`.
    pub fn vector(&self, doc: DocId) -> &[f32] {
        let d = self.manifest.dim;
        &self.vectors[doc as usize * d..(doc as usize + 1) * d]
    }

    /// Approximate top-`k` by HNSW, best first, with exact cosine scores. `ef` overrides
    /// the manifest's `ef_search`; `filter` restricts the candidates. The graph walk
    /// ranks by BF16 distances; [`RESCORE_EXTRA`] more candidates than asked for are
    /// re-scored with the exact vectors, so near-ties come out in their exact order.
    pub fn search_ann(
        &self,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        filter: Option<&dyn Fn(DocId) -> bool>,
    ) -> Vec<(DocId, Score)> {
        let ef = ef.unwrap_or(self.manifest.hnsw.ef_search);
        let mut hits: Vec<(DocId, Score)> = self
            .ann
            .search(query, k + RESCORE_EXTRA, ef.max(k + RESCORE_EXTRA), filter)
            .into_iter()
            .map(|d| (d, dot(query, self.vector(d))))
            .collect();
        sort_hits(&mut hits);
        hits.truncate(k);
        hits
    }

    /// Exact top-`k` by scanning every vector (in parallel), best first.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(DocId) -> bool + Sync)>,
    ) -> Vec<(DocId, Score)> {
        let d = self.manifest.dim;
        let mut hits: Vec<(DocId, Score)> = self
            .vectors
            .par_chunks_exact(d)
            .enumerate()
            .filter(|(i, _)| filter.is_none_or(|f| f(*i as DocId)))
            .map(|(i, v)| (i as DocId, dot(query, v)))
            .fold(Vec::new, |acc, hit| push_top_k(acc, hit, k))
            .reduce(Vec::new, |a, b| {
                b.into_iter().fold(a, |acc, h| push_top_k(acc, h, k))
            });
        sort_hits(&mut hits);
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
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_best_in_order() {
        let hits = [(0, 0.1), (1, 0.9), (2, 0.5), (3, 0.9), (4, 0.7)];
        let top = hits
            .iter()
            .fold(Vec::new(), |acc, &h| push_top_k(acc, h, 3));
        assert_eq!(top, vec![(1, 0.9), (3, 0.9), (4, 0.7)]);
    }
}
