//! The index store: everything needed to search a collection, written once by [`build`],
//! opened as one [`Index`] (records, vectors, HNSW graph and keyword index together) and
//! read many times.
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
//! **Searching.** Vector search sits behind the [`VectorSearch`] trait, with an exact
//! ([`Flat`]) and an approximate ([`Hnsw`]) implementation. What a query may return is
//! data, not a closure: [`Index::scope`] resolves a [`Filter`] and the papers to exclude
//! into one [`Scope`] (a [`DocMask`] and a count), once per query, which both the vector
//! side ([`Index::nearest`]) and the keyword side ([`KeywordIndex::search`]) read. Which
//! implementation answers a query is the store's policy ([`Index::nearest`]): a store
//! that filters elsewhere (a database) keeps the same two calls and answers them its own
//! way.
//!
//! **Model identity.** The manifest records the sha256 of the weights that produced the
//! vectors; [`Index::check_model`] refuses a query model with other weights, because
//! vectors of different models are not comparable.

mod ann;
mod atomic;
mod integrity;
mod vector_search;

pub use ann::HnswParams;
pub use integrity::FileSum;
pub use vector_search::{Flat, Hnsw, VectorSearch, RESCORE_EXTRA};

pub(crate) use vector_search::sort_hits;

use crate::embed::{Encoder, ModelInfo};
use crate::filter::{DocMask, Filter};
use crate::keyword::{self, KeywordIndex};
use crate::paper::{DocId, Paper, PaperId, Score};
use ann::Ann;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};
use vector_search::Vectors;

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
    #[error("refusing to replace {path}: {why}; choose another --out, or move it away")]
    WouldClobber { path: PathBuf, why: String },
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
    Keyword(#[from] keyword::Error),
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
    /// Size and xxh3 checksum of every file of the index but this manifest, verified on
    /// open; empty in indexes built before they were recorded.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub files: std::collections::BTreeMap<String, integrity::FileSum>,
    /// How the input was read; absent in indexes built before it was recorded.
    #[serde(default)]
    pub read: ReadRecord,
    /// The process's CPU level (`--cpu`) when the vectors were computed.
    #[serde(default)]
    pub cpu: String,
    /// The keyword index in `keyword/`; absent in indexes built before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<keyword::KeywordInfo>,
}

/// Options for [`build`].
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub hnsw: HnswParams,
    /// Input files, recorded in the manifest.
    pub sources: Vec<String>,
    /// How the input was read (`--limit`, `--strict`), recorded in the manifest so that
    /// an index says how it was made.
    pub read: ReadRecord,
}

/// The reading options of a build, as the manifest records them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRecord {
    /// At most this many papers were read (`--limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// A malformed line would have stopped the build (`--strict`).
    #[serde(default)]
    pub strict: bool,
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
    check_replaceable(out)?;
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
    let keyword = keyword::build(staging.path(), &papers)?;
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
        files: Default::default(),
        read: opts.read.clone(),
        cpu: crate::vector::cpu_cap().to_string(),
        embedder: embedder.describe(),
        keyword: Some(keyword),
    };
    let mut manifest = manifest;
    write_contents(staging.path(), &mut manifest, &papers, &flat, &ann)?;
    staging.commit()?;
    Ok(manifest)
}

/// What an index directory may contain: anything else in `out` is someone's data, and a
/// build (which swaps the whole directory) would delete it.
const INDEX_ENTRIES: [&str; 6] = [
    MANIFEST,
    PAPERS,
    VECTORS,
    "hnsw.hnsw.graph",
    "hnsw.hnsw.data",
    crate::keyword::DIR,
];

/// `out` may be replaced by a build only when it does not exist, is empty, or is a
/// paperscope index: a manifest that reads as one, and nothing but an index's entries.
/// (Before, any directory with a file named `manifest.json` was replaced, whatever else
/// it held.)
fn check_replaceable(out: &Path) -> Result<(), Error> {
    let clobber = |why: String| Error::WouldClobber {
        path: out.to_path_buf(),
        why,
    };
    let entries = match fs::read_dir(out) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(clobber("it is a file".into()))
        }
        Err(e) => return Err(io_err(out)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry.map_err(io_err(out))?.file_name());
    }
    if names.is_empty() {
        return Ok(());
    }
    let manifest = out.join(MANIFEST);
    let is_manifest = fs::read_to_string(&manifest)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("format_version").is_some() && v.get("model").is_some());
    if !is_manifest {
        return Err(clobber("it exists and is not a paperscope index".into()));
    }
    if let Some(other) = names
        .iter()
        .find(|n| !INDEX_ENTRIES.iter().any(|e| n.as_os_str() == *e))
    {
        return Err(clobber(format!(
            "it holds {}, which is not part of an index",
            other.to_string_lossy()
        )));
    }
    Ok(())
}

fn write_contents(
    dir: &Path,
    manifest: &mut Manifest,
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

    // The manifest goes last, with every other file's checksum: a directory without one
    // is never mistaken for an index.
    manifest.files = integrity::sums(dir)?;
    let path = dir.join(MANIFEST);
    let json = serde_json::to_vec_pretty(manifest).expect("manifest serialises. This is a bug.");
    atomic::write_synced(&path, &json)?;
    Ok(())
}

/// Below this many papers in a query's scope, a filtered query scans them exactly instead
/// of walking the graph: as fast, and exact.
pub const EXACT_SCAN_BELOW: usize = 2_000;

/// An opened index: records, vectors, graph and keyword index in memory, opened together.
pub struct Index {
    path: PathBuf,
    manifest: Manifest,
    papers: Vec<Paper>,
    vectors: Vectors,
    by_id: HashMap<PaperId, DocId>,
    ann: Ann,
    /// The BM25 side; `None` only for an index built before it existed (semantic only).
    keyword: Option<KeywordIndex>,
}

/// The papers one query ranks over: those passing its filter, minus the ones it excludes
/// (the query paper of `similar`, the examples of `recommend`), resolved against one
/// store by [`Index::scope`] and read by both its vector and its keyword side.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `None` when every paper is in scope.
    mask: Option<DocMask>,
    /// Whether the filter restricted anything (exclusions alone are few; see
    /// [`Index::nearest`]).
    filtered: bool,
    excluded: usize,
    total: usize,
}

impl Scope {
    /// The papers in scope; `None` when that is every paper.
    pub fn mask(&self) -> Option<&DocMask> {
        self.mask.as_ref()
    }

    /// How many papers are in scope.
    pub fn total(&self) -> usize {
        self.total
    }

    fn contains(&self, doc: DocId) -> bool {
        self.mask.as_ref().is_none_or(|m| m.contains(doc))
    }
}

impl Index {
    /// Opens the index at `path`: records, vectors, graph and (when the manifest lists
    /// one) keyword index.
    ///
    /// # Errors
    /// [`Error::NotAnIndex`], [`Error::Version`], or [`Error::Corrupt`] when the files
    /// disagree with the manifest or with each other; [`Error::Keyword`] when the keyword
    /// index the manifest lists does not open.
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
        // Before anything parses them: a damaged graph file crashed hnsw_rs.
        if manifest.files.is_empty() {
            tracing::warn!(
                "{}: built before checksums were recorded; only sizes are checked",
                path.display()
            );
        }
        integrity::verify(path, &manifest.files)?;

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
        integrity::check_vectors(&vpath, &vectors, manifest.dim)?;
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
        let keyword = match manifest.keyword {
            // The manifest says there is one: its absence is damage, not an old index
            // (whose manifest has no keyword entry).
            Some(_) if !path.join(crate::keyword::DIR).join("meta.json").is_file() => {
                return Err(Error::Corrupt(format!(
                    "{}: the manifest lists a keyword index but {}/ is missing or empty; rebuild the index with `paperscope index`",
                    path.display(),
                    crate::keyword::DIR
                )))
            }
            Some(_) => Some(KeywordIndex::open(path, n)?),
            None => None,
        };
        let by_id = papers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i as DocId))
            .collect();
        Ok(Index {
            path: path.to_path_buf(),
            vectors: Vectors::new(vectors, manifest.dim),
            manifest,
            papers,
            by_id,
            ann,
            keyword,
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
        self.vectors.row(doc)
    }

    /// The keyword index.
    ///
    /// # Errors
    /// [`keyword::Error::Missing`] for an index built before keyword search existed.
    pub fn keyword(&self) -> Result<&KeywordIndex, keyword::Error> {
        self.keyword
            .as_ref()
            .ok_or_else(|| keyword::Error::Missing {
                path: self.path.clone(),
            })
    }

    /// Approximate search by the HNSW graph, with the manifest's `ef_search` (see
    /// [`Hnsw::with_ef`]).
    pub fn hnsw(&self) -> Hnsw<'_> {
        Hnsw {
            ann: &self.ann,
            vectors: &self.vectors,
            ef: self.manifest.hnsw.ef_search,
        }
    }

    /// Exact search, scanning every vector.
    pub fn flat(&self) -> Flat<'_> {
        Flat {
            vectors: &self.vectors,
        }
    }

    /// The scope of a query: the papers passing `filter`, minus those of `exclude` (ids
    /// beyond the collection and repeats are ignored).
    pub fn scope(&self, filter: &Filter, exclude: &[DocId]) -> Scope {
        let filtered = !filter.is_empty();
        let mut mask = match (filtered, exclude.is_empty()) {
            (false, true) => None,
            (false, false) => Some(DocMask::all(self.len())),
            (true, _) => Some(filter.mask(&self.papers)),
        };
        let mut excluded = 0;
        if let Some(m) = &mut mask {
            for &d in exclude {
                if m.contains(d) {
                    m.remove(d);
                    excluded += 1;
                }
            }
        }
        let total = mask.as_ref().map_or(self.len(), DocMask::count);
        Scope {
            mask,
            filtered,
            excluded,
            total,
        }
    }

    /// The top `need` papers of `scope` by cosine to `v`, best first (exact scores).
    ///
    /// The policy that keeps pages full: without a filter, the graph is walked unfiltered
    /// for `need` plus the excluded papers (several times faster than a filtered walk),
    /// and those are dropped. With one, the walk keeps only papers in scope, and when it
    /// runs out of them before `need` (a selective filter), or when fewer than
    /// [`EXACT_SCAN_BELOW`] papers are in scope at all, the scope is scanned exactly, so
    /// a query returns `min(need, scope.total())` papers.
    pub fn nearest(&self, v: &[f32], need: usize, scope: &Scope) -> Vec<(DocId, Score)> {
        let found = if !scope.filtered {
            let mut found = self.hnsw().search(v, need + scope.excluded, None);
            found.retain(|h| scope.contains(h.0));
            found.truncate(need);
            found
        } else if scope.total < EXACT_SCAN_BELOW {
            Vec::new()
        } else {
            self.hnsw().search(v, need, scope.mask())
        };
        if found.len() < need.min(scope.total) {
            // The graph walk ran out of papers in scope (or was skipped): scan exactly.
            self.flat().search(v, need, scope.mask())
        } else {
            found
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::Pooling;

    /// A store of `n` clustered vectors without files behind it (no keyword part). Every
    /// paper is in `cs.AI`; even ones also in `cs.EVEN`, one in 500 in `cs.RARE`.
    fn store(n: usize) -> Index {
        let dim = 32;
        let (vectors, ann) = vector_search::tests::fixture(n, dim);
        let papers: Vec<Paper> = (0..n)
            .map(|i| {
                let mut categories = vec!["cs.AI".to_string()];
                if i % 2 == 0 {
                    categories.push("cs.EVEN".into());
                }
                if i % 500 == 0 {
                    categories.push("cs.RARE".into());
                }
                Paper {
                    id: format!("p{i}").as_str().into(),
                    title: String::new(),
                    abstract_: String::new(),
                    authors: vec![],
                    date: None,
                    categories,
                    url: None,
                    extra: Default::default(),
                }
            })
            .collect();
        Index {
            path: PathBuf::from("test"),
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                model: ModelInfo {
                    name: "test".into(),
                    weights_sha256: String::new(),
                    dim,
                    pooling: Pooling::Mean,
                    max_tokens: 0,
                },
                count: n,
                dim,
                hnsw: HnswParams::default(),
                built_at: String::new(),
                build_seconds: 0.0,
                embed_seconds: 0.0,
                graph_seconds: 0.0,
                tokens: 0,
                text: String::new(),
                embedder: String::new(),
                sources: vec![],
                files: Default::default(),
                read: ReadRecord::default(),
                cpu: String::new(),
                keyword: None,
            },
            by_id: papers
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id.clone(), i as DocId))
                .collect(),
            papers,
            vectors,
            ann,
            keyword: None,
        }
    }

    fn category(c: &str) -> Filter {
        Filter {
            category: Some(c.into()),
            ..Default::default()
        }
    }

    #[test]
    fn scopes_count_filtered_and_excluded_papers() {
        let idx = store(3000);
        let all = idx.scope(&Filter::default(), &[]);
        assert_eq!((all.mask().is_none(), all.total()), (true, 3000));
        // Repeats and ids beyond the collection are not counted twice or at all.
        let similar = idx.scope(&Filter::default(), &[7, 7, 9, 5000]);
        assert_eq!(similar.total(), 2998);
        assert!(!similar.mask().unwrap().contains(7));
        let even = idx.scope(&category("cs.EVEN"), &[4, 5]);
        assert_eq!(even.total(), 1499);
        let none = idx.scope(&category("cs.NONE"), &[]);
        assert_eq!(none.total(), 0);
        assert!(idx.nearest(idx.vector(0), 10, &none).is_empty());
    }

    /// Pages stay full and exclusions never show, whichever path answers.
    #[test]
    fn nearest_fills_pages_within_scope() {
        let idx = store(6000);
        let q = idx.vector(3);
        let exclude: Vec<DocId> = idx.flat().search(q, 5, None).iter().map(|h| h.0).collect();
        for (filter, expect_total) in [
            (Filter::default(), 6000),
            (category("cs.EVEN"), 3000),
            (category("cs.RARE"), 12),
        ] {
            let scope = idx.scope(&filter, &exclude);
            let excluded = exclude
                .iter()
                .filter(|&&d| filter.matches(idx.paper(d)))
                .count();
            assert_eq!(scope.total(), expect_total - excluded);
            for need in [10, 200] {
                let got = idx.nearest(q, need, &scope);
                assert_eq!(got.len(), need.min(scope.total()), "{filter:?}");
                for (d, _) in &got {
                    assert!(!exclude.contains(d));
                    assert!(filter.matches(idx.paper(*d)));
                }
            }
            // The selective filter is answered exactly.
            if scope.total() < EXACT_SCAN_BELOW {
                assert_eq!(
                    idx.nearest(q, 10, &scope),
                    idx.flat().search(q, 10, scope.mask())
                );
            }
        }
    }
}
