//! The index store: everything needed to search a collection, opened as one [`Index`]
//! (records, vectors, HNSW graphs and keyword index of one commit) and changed by
//! commits ([`build`], [`commit`]).
//!
//! ```text
//! idx/
//!   manifest.json        the commit: format version, generation, model (name, weights
//!                        sha256, dim, pooling, max tokens), live paper count, HNSW
//!                        parameters, sources, its segments, and the size and xxh3 of
//!                        every file it uses
//!   seg-000001/          a segment: papers.jsonl, vectors.f32, graph.bin, and its
//!                        tombstones (deleted-GEN.u32) when papers of it were deleted
//!   seg-000004/          ... one per commit that added papers (see `segment`)
//!   keyword-000004/      the tantivy (BM25) index of the live papers, see crate::keyword
//!   write.lock           held by the one writer (see `writer`)
//! ```
//!
//! **Commits** (Lucene's and tantivy's model). Segments are written once and never
//! changed: a commit writes new files only (a segment of the papers it adds or replaces,
//! tombstone files for the papers it deletes or replaces, a new keyword directory whose
//! unchanged files are hard links of the previous one's), syncs them, and then publishes
//! them all by one atomic replacement of `manifest.json`, whose `generation` grows by one.
//! A reader that opens the manifest sees exactly one whole commit; a writer killed at any
//! point leaves the last manifest and every file it names intact, and the next writer
//! removes what the dead one left. See [`writer`] for the lock, the merge policy and the
//! reuse of embeddings.
//!
//! **DocIds.** Each segment owns the DocIds `base..base + rows` (its manifest entry
//! records `base`). A DocId is never reused while its segment lives, so the keyword
//! index's stored ids stay valid across commits; merged or deleted segments leave holes
//! in the DocId space, which only [`compact`](writer::Merge::All) closes. [`Index::len`]
//! is the number of live papers; [`Index::max_doc`] bounds the DocIds.
//!
//! **Searching.** Vector search sits behind the [`VectorSearch`] trait, with an exact
//! ([`Flat`]) and an approximate ([`Hnsw`]) implementation over all segments. What a
//! query may return is data, not a closure: [`Index::scope`] resolves a [`Filter`], the
//! papers to exclude and the deleted papers into one [`Scope`] (a [`DocMask`] and a
//! count), once per query, which both the vector side ([`Index::nearest`]) and the
//! keyword side ([`KeywordIndex::search`]) read. Which implementation answers a query is
//! the store's policy ([`Index::nearest`]): a store that filters elsewhere (a database)
//! keeps the same two calls and answers them its own way.
//!
//! **Model identity.** The manifest records the sha256 of the weights that produced the
//! vectors; [`Index::check_model`] refuses a query model with other weights, because
//! vectors of different models are not comparable.

mod ann;
mod atomic;
mod integrity;
mod segment;
mod vector_search;
pub mod writer;

pub use ann::{HnswParams, Reachability};
pub use integrity::FileSum;
pub use segment::SegmentInfo;
pub use vector_search::{Flat, Hnsw, VectorSearch, RESCORE_EXTRA};
pub use writer::{build, commit, BuildOptions, Changes, CommitReport, Merge, Progress};

pub(crate) use vector_search::sort_hits;

use crate::embed::ModelInfo;
use crate::filter::{DocMask, Filter};
use crate::keyword::{self, KeywordIndex};
use crate::paper::{DocId, Paper, PaperId, Score};
use segment::Segment;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vector_search::Part;

/// Version of the directory layout. Bumped on any incompatible change: 2 brought
/// segments, tombstones and generations (format 1 was one immutable directory).
pub const FORMAT_VERSION: u32 = 2;

const MANIFEST: &str = "manifest.json";

/// Errors of building, changing or opening an index.
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
    #[error("{path} holds an index of {has}, not of {given}: to add these papers run `paperscope add --index {path} FILE...`; to make the index hold exactly these files run `paperscope index --replace --out {path} FILE...`")]
    SourcesDiffer {
        path: PathBuf,
        has: String,
        given: String,
    },
    #[error("{path}: another paperscope ({holder}) is changing this index; wait for it to finish and try again")]
    Locked { path: PathBuf, holder: String },
    #[error("{path}: index format version {found}, this paperscope reads version {FORMAT_VERSION}; rebuild it with `paperscope index --replace --out {path} FILE...` (its vectors are reused, nothing is embedded again)")]
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

/// `manifest.json`: one commit of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Grows by one with every commit (a rebuild included), so that a reader knows
    /// whether what it holds is current.
    pub generation: u64,
    pub model: ModelInfo,
    /// Live papers.
    pub count: usize,
    pub dim: usize,
    pub hnsw: HnswParams,
    /// When the index was first built, RFC 3339, UTC.
    pub built_at: String,
    /// When this commit was made.
    pub committed_at: String,
    /// Seconds the last commit took in all.
    pub build_seconds: f64,
    /// Of which embedding (tokenization included).
    pub embed_seconds: f64,
    /// Of which building and repairing graphs.
    pub graph_seconds: f64,
    /// Tokens the last commit fed to the model (after truncation).
    pub tokens: usize,
    /// How each paper's text was formed (see [`Paper::text`]).
    pub text: String,
    /// The embedding backend and kernels that computed the last commit's vectors.
    pub embedder: String,
    /// Input files, as given, every build and add together.
    pub sources: Vec<String>,
    /// Size and xxh3 checksum of every file of this commit, verified on open.
    pub files: BTreeMap<String, integrity::FileSum>,
    /// How the input of the last build was read.
    #[serde(default)]
    pub read: ReadRecord,
    /// The process's CPU level (`--cpu`) when the last commit's vectors were computed.
    pub cpu: String,
    /// The segments, in DocId order.
    pub segments: Vec<SegmentInfo>,
    /// The keyword index of the live papers.
    pub keyword: keyword::KeywordInfo,
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

impl Manifest {
    /// One past the largest DocId.
    pub fn max_doc(&self) -> usize {
        self.segments.last().map_or(0, |s| s.base as usize + s.rows)
    }
}

/// Reads the manifest of the index at `path`.
///
/// # Errors
/// [`Error::NotAnIndex`], [`Error::Version`] (format 1 included: see
/// [`writer::previous_vectors`] for how its vectors are reused), [`Error::Corrupt`].
pub fn read_manifest(path: &Path) -> Result<Manifest, Error> {
    let mpath = path.join(MANIFEST);
    let text = match fs::read_to_string(&mpath) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotAnIndex {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io_err(&mpath)(e)),
    };
    let version: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Corrupt(format!("{}: {e}", mpath.display())))?;
    let found = version["format_version"].as_u64().unwrap_or(0) as u32;
    if found != FORMAT_VERSION {
        return Err(Error::Version {
            path: path.to_path_buf(),
            found,
        });
    }
    serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("{}: {e}", mpath.display())))
}

/// Below this many papers in a query's scope, a filtered query scans them exactly instead
/// of walking the graph: as fast, and exact.
pub const EXACT_SCAN_BELOW: usize = 2_000;

/// An opened index: one commit's records, vectors, graphs and keyword index in memory.
pub struct Index {
    path: PathBuf,
    manifest: Manifest,
    /// The segments, in DocId order, each with its first DocId.
    parts: Vec<Part>,
    /// The live papers (not deleted, not in a hole), `max_doc` bits.
    live: DocMask,
    by_id: HashMap<PaperId, DocId>,
    keyword: KeywordIndex,
}

/// The papers one query ranks over: those passing its filter, minus the ones it excludes
/// (the query paper of `similar`, the examples of `recommend`) and the deleted ones,
/// resolved against one store by [`Index::scope`] and read by both its vector and its
/// keyword side.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `None` when every paper is in scope.
    mask: Option<DocMask>,
    /// Whether the filter restricted anything (exclusions and deletions alone leave most
    /// papers in scope; see [`Index::nearest`]).
    filtered: bool,
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
}

impl Index {
    /// Opens the current commit of the index at `path`.
    ///
    /// A commit published while this reads can remove files of the one it started on;
    /// then it starts over on the new one (a few times at most).
    ///
    /// # Errors
    /// [`Error::NotAnIndex`], [`Error::Version`], or [`Error::Corrupt`] when the files
    /// disagree with the manifest or with each other; [`Error::Keyword`] when the keyword
    /// index does not open.
    pub fn open(path: &Path) -> Result<Index, Error> {
        Index::open_reusing(path, None)
    }

    /// The index's newest commit, if it is not the one this holds: `Ok(None)` when
    /// nothing changed. Segments both commits share are shared, not read again, so
    /// following a small commit costs little more than the commit's own files.
    ///
    /// # Errors
    /// As [`Index::open`].
    pub fn reopen(&self) -> Result<Option<Index>, Error> {
        let m = read_manifest(&self.path)?;
        if m.generation == self.manifest.generation {
            return Ok(None);
        }
        Index::open_reusing(&self.path, Some(self)).map(Some)
    }

    fn open_reusing(path: &Path, previous: Option<&Index>) -> Result<Index, Error> {
        let mut tries = 0;
        loop {
            let manifest = read_manifest(path)?;
            let generation = manifest.generation;
            match Index::open_commit(path, manifest, previous) {
                Ok(index) => return Ok(index),
                Err(e) => {
                    tries += 1;
                    let moved = read_manifest(path).is_ok_and(|m| m.generation != generation);
                    if !moved || tries >= 5 {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn open_commit(
        path: &Path,
        manifest: Manifest,
        previous: Option<&Index>,
    ) -> Result<Index, Error> {
        let reusable: HashMap<&str, &Arc<Segment>> = previous
            .map(|p| {
                p.parts
                    .iter()
                    .map(|part| (part.segment.name.as_str(), &part.segment))
                    .collect()
            })
            .unwrap_or_default();
        // Verified before anything parses them (a damaged graph file crashed hnsw_rs
        // once), except the files of segments already in memory: they never change.
        let kept = |file: &str| {
            file.split_once('/').is_some_and(|(seg, rest)| {
                reusable.contains_key(seg) && !rest.starts_with(writer::TOMBSTONE_PREFIX)
            })
        };
        let to_check: BTreeMap<String, FileSum> = manifest
            .files
            .iter()
            .filter(|(f, _)| !kept(f))
            .map(|(f, s)| (f.clone(), s.clone()))
            .collect();
        integrity::verify(path, &to_check)?;

        let max_doc = manifest.max_doc();
        let mut live = DocMask::none(max_doc);
        let mut parts = Vec::with_capacity(manifest.segments.len());
        let mut by_id = HashMap::with_capacity(manifest.count);
        for info in &manifest.segments {
            let segment = match reusable.get(info.name.as_str()) {
                Some(&s) if s.len() == info.rows => Arc::clone(s),
                _ => Arc::new(Segment::read(path, &info.name, info.rows, manifest.dim)?),
            };
            let dead = match &info.tombstones {
                Some(t) => segment::read_tombstones(&path.join(t), info.rows)?,
                None => Vec::new(),
            };
            if dead.len() != info.deleted {
                return Err(Error::Corrupt(format!(
                    "{}: the manifest says {} deleted papers, its tombstones hold {}",
                    info.name,
                    info.deleted,
                    dead.len()
                )));
            }
            let mut dead = dead.into_iter().peekable();
            for (row, paper) in segment.papers.iter().enumerate() {
                if dead.next_if_eq(&(row as u32)).is_some() {
                    continue;
                }
                let doc = info.base + row as DocId;
                live.insert(doc);
                if by_id.insert(paper.id.clone(), doc).is_some() {
                    return Err(Error::Corrupt(format!(
                        "paper {} is live twice (segment {})",
                        paper.id, info.name
                    )));
                }
            }
            parts.push(Part {
                base: info.base,
                segment,
            });
        }
        if by_id.len() != manifest.count {
            return Err(Error::Corrupt(format!(
                "{}: the manifest says {} papers, its segments hold {} live ones",
                path.display(),
                manifest.count,
                by_id.len()
            )));
        }
        let keyword = KeywordIndex::open(&path.join(&manifest.keyword.dir), &live)?;
        Ok(Index {
            path: path.to_path_buf(),
            manifest,
            parts,
            live,
            by_id,
            keyword,
        })
    }

    /// Refuses a query model whose weights differ from the ones the index was built with.
    ///
    /// # Errors
    /// [`Error::ModelMismatch`].
    pub fn check_model(&self, model: &ModelInfo) -> Result<(), Error> {
        check_model(&self.manifest.model, model)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The commit this holds.
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// Live papers.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// One past the largest DocId (deleted papers and holes included).
    pub fn max_doc(&self) -> usize {
        self.live.len()
    }

    /// The live papers' DocIds, ascending.
    pub fn docs(&self) -> impl Iterator<Item = DocId> + '_ {
        self.live.iter()
    }

    /// Whether `doc` is a live paper.
    pub fn is_live(&self, doc: DocId) -> bool {
        self.live.contains(doc)
    }

    fn part(&self, doc: DocId) -> (&Part, usize) {
        let i = self.parts.partition_point(|p| p.base <= doc) - 1;
        let part = &self.parts[i];
        (part, (doc - part.base) as usize)
    }

    /// The record of `doc`, a DocId of this commit.
    pub fn paper(&self, doc: DocId) -> &Paper {
        let (part, row) = self.part(doc);
        &part.segment.papers[row]
    }

    /// The live paper with this id.
    pub fn doc_id(&self, id: &PaperId) -> Option<DocId> {
        self.by_id.get(id).copied()
    }

    /// The stored (unit-length) vector of `doc`.
    pub fn vector(&self, doc: DocId) -> &[f32] {
        let (part, row) = self.part(doc);
        part.segment.vectors.row(row as DocId)
    }

    /// The keyword index.
    pub fn keyword(&self) -> &KeywordIndex {
        &self.keyword
    }

    /// Approximate search by the segments' HNSW graphs, with the manifest's `ef_search`
    /// (see [`Hnsw::with_ef`]).
    pub fn hnsw(&self) -> Hnsw<'_> {
        Hnsw {
            parts: &self.parts,
            ef: self.manifest.hnsw.ef_search,
        }
    }

    /// Exact search, scanning every vector.
    pub fn flat(&self) -> Flat<'_> {
        Flat { parts: &self.parts }
    }

    /// The scope of a query: the live papers passing `filter`, minus those of `exclude`
    /// (ids beyond the collection and repeats are ignored).
    pub fn scope(&self, filter: &Filter, exclude: &[DocId]) -> Scope {
        let filtered = !filter.is_empty();
        let mut mask = if filtered {
            let mut m = DocMask::none(self.max_doc());
            for d in self.docs() {
                if filter.matches(self.paper(d)) {
                    m.insert(d);
                }
            }
            Some(m)
        } else if exclude.is_empty() && self.len() == self.max_doc() {
            None
        } else {
            Some(self.live.clone())
        };
        if let Some(m) = &mut mask {
            for &d in exclude {
                m.remove(d);
            }
        }
        let total = mask.as_ref().map_or(self.len(), DocMask::count);
        Scope {
            mask,
            filtered,
            total,
        }
    }

    /// The top `need` papers of `scope` by cosine to `v`, best first (exact scores).
    ///
    /// The policy that keeps pages full: the graph walk keeps only papers in scope,
    /// passing through the others; when it runs out of them before `need` (a selective
    /// filter), or when a filter leaves fewer than [`EXACT_SCAN_BELOW`] papers in scope,
    /// the scope is scanned exactly, so a query returns `min(need, scope.total())`
    /// papers. Deleted papers are outside every scope.
    pub fn nearest(&self, v: &[f32], need: usize, scope: &Scope) -> Vec<(DocId, Score)> {
        let found = if scope.filtered && scope.total < EXACT_SCAN_BELOW {
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

fn check_model(index: &ModelInfo, model: &ModelInfo) -> Result<(), Error> {
    if index.weights_sha256 != model.weights_sha256
        || index.pooling != model.pooling
        || index.dim != model.dim
    {
        return Err(Error::ModelMismatch {
            index_model: index.name.clone(),
            index_sha: index.weights_sha256.clone(),
            model: model.name.clone(),
            model_sha: model.weights_sha256.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::fake::FakeEncoder;
    use crate::embed::Encoder;
    use writer::MAX_SEGMENTS;

    /// Paper `i` of a synthetic collection: a few words from a small vocabulary (so the
    /// fake encoder's vectors cluster), in `cs.AI`; even ones also in `cs.EVEN`, one in
    /// 500 in `cs.RARE`.
    fn paper(i: usize) -> Paper {
        const WORDS: [&str; 24] = [
            "graph",
            "neural",
            "quantum",
            "spin",
            "protein",
            "fold",
            "agent",
            "reward",
            "speech",
            "vision",
            "privacy",
            "retrieval",
            "kagome",
            "lattice",
            "diffusion",
            "token",
            "robot",
            "policy",
            "gene",
            "cell",
            "market",
            "price",
            "galaxy",
            "star",
        ];
        let w = |k: usize| WORDS[(i * 7 + k * 13 + i / 24) % WORDS.len()];
        let mut categories = vec!["cs.AI".to_string()];
        if i.is_multiple_of(2) {
            categories.push("cs.EVEN".into());
        }
        if i.is_multiple_of(500) {
            categories.push("cs.RARE".into());
        }
        Paper {
            id: format!("p{i}").as_str().into(),
            title: format!("{} {} number {i}", w(0), w(1)),
            abstract_: format!(
                "We study {} and {} with {} methods, case {i}.",
                w(2),
                w(3),
                w(0)
            ),
            authors: vec![],
            date: None,
            categories,
            url: None,
            extra: Default::default(),
        }
    }

    fn built(n: usize) -> (tempfile::TempDir, PathBuf, FakeEncoder) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("idx");
        let enc = FakeEncoder::new(32);
        build(
            &out,
            (0..n).map(paper).collect(),
            &enc,
            &BuildOptions::default(),
            |_| {},
        )
        .unwrap();
        (dir, out, enc)
    }

    fn category(c: &str) -> Filter {
        Filter {
            category: Some(c.into()),
            ..Default::default()
        }
    }

    fn add(dir: &Path, enc: &FakeEncoder, papers: Vec<Paper>) -> CommitReport {
        let changes = Changes {
            upserts: papers,
            ..Default::default()
        };
        commit(dir, changes, enc, Merge::Auto, |_| {}).unwrap()
    }

    #[test]
    fn scopes_count_filtered_and_excluded_papers() {
        let (_d, out, _) = built(3000);
        let idx = Index::open(&out).unwrap();
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

    /// Pages stay full and exclusions and deletions never show, whichever path answers,
    /// over one segment and over several.
    #[test]
    fn nearest_fills_pages_within_scope() {
        let (_d, out, enc) = built(6000);
        for round in 0..2 {
            let idx = Index::open(&out).unwrap();
            let q = idx.vector(idx.doc_id(&"p3".into()).unwrap()).to_vec();
            let exclude: Vec<DocId> = idx.flat().search(&q, 5, None).iter().map(|h| h.0).collect();
            for filter in [Filter::default(), category("cs.EVEN"), category("cs.RARE")] {
                let scope = idx.scope(&filter, &exclude);
                let expect = idx
                    .docs()
                    .filter(|&d| filter.matches(idx.paper(d)) && !exclude.contains(&d))
                    .count();
                assert_eq!(scope.total(), expect);
                for need in [10, 200] {
                    let got = idx.nearest(&q, need, &scope);
                    assert_eq!(got.len(), need.min(scope.total()), "{filter:?}");
                    for (d, _) in &got {
                        assert!(!exclude.contains(d) && idx.is_live(*d));
                        assert!(filter.matches(idx.paper(*d)));
                    }
                }
                if scope.total() < EXACT_SCAN_BELOW {
                    assert_eq!(
                        idx.nearest(&q, 10, &scope),
                        idx.flat().search(&q, 10, scope.mask())
                    );
                }
            }
            if round == 0 {
                // Second round: replace and delete some papers, add more in a segment.
                let mut changed: Vec<Paper> = (0..300).step_by(3).map(paper).collect();
                changed
                    .iter_mut()
                    .for_each(|p| p.title.push_str(" revised"));
                changed.extend((6000..6400).map(paper));
                add(&out, &enc, changed);
                let removals = (1..600)
                    .step_by(7)
                    .map(|i| format!("p{i}").as_str().into())
                    .collect();
                let changes = Changes {
                    removals,
                    ..Default::default()
                };
                commit(&out, changes, &enc, Merge::Auto, |_| {}).unwrap();
            }
        }
    }

    /// Adds, replacements (last write wins), deletions and merges give what a fresh build
    /// of the same papers gives, and unchanged records cost nothing.
    #[test]
    fn commits_match_a_fresh_build() {
        let (_d, out, enc) = built(500);
        let g0 = Index::open(&out).unwrap().generation();
        // Unchanged records: no commit, nothing embedded.
        let r = add(&out, &enc, (0..500).map(paper).collect());
        assert_eq!((r.committed, r.unchanged, r.embedded), (false, 500, 0));
        // A corrected record replaces the old one; a new one is added.
        let mut fixed = paper(7);
        fixed.abstract_ = "A corrected abstract about kagome magnets.".into();
        let mut moved = paper(8);
        moved.categories = vec!["cs.MOVED".into()];
        let r = add(&out, &enc, vec![fixed.clone(), moved.clone(), paper(900)]);
        assert_eq!(
            (r.added, r.replaced, r.embedded, r.reused),
            (1, 2, 2, 1),
            "{r:?}"
        );
        let idx = Index::open(&out).unwrap();
        assert_eq!((idx.generation(), idx.len()), (g0 + 1, 501));
        assert_eq!(idx.paper(idx.doc_id(&fixed.id).unwrap()), &fixed);
        let kw = idx.keyword().search("corrected", 10, 1.0, None).unwrap();
        assert_eq!(kw.hits.len(), 1);
        assert_eq!(idx.paper(kw.hits[0].0).id, fixed.id);
        assert_eq!(idx.scope(&category("cs.MOVED"), &[]).total(), 1);
        // Deletions: gone from every side; unknown ids are reported.
        let changes = Changes {
            removals: vec!["p9".into(), "nope".into()],
            ..Default::default()
        };
        let r = commit(&out, changes, &enc, Merge::Auto, |_| {}).unwrap();
        assert_eq!((r.removed, r.not_found.len()), (1, 1));
        let idx = Index::open(&out).unwrap();
        assert!(idx.doc_id(&"p9".into()).is_none());
        assert_eq!(idx.len(), 500);
        let nine = paper(9);
        let kw = idx.keyword().search(&nine.title, 500, 1.0, None).unwrap();
        assert!(kw.hits.iter().all(|h| idx.paper(h.0).id != nine.id));
        // Many small commits merge past MAX_SEGMENTS; compaction leaves one segment.
        for k in 0..(2 * MAX_SEGMENTS) {
            add(&out, &enc, vec![paper(1000 + k)]);
            let segs = read_manifest(&out).unwrap().segments.len();
            assert!(segs <= MAX_SEGMENTS, "{segs} segments");
        }
        let r = commit(&out, Changes::default(), &enc, Merge::All, |_| {}).unwrap();
        assert_eq!((r.segments, r.embedded), (1, 0));
        let compact = Index::open(&out).unwrap();
        assert_eq!((compact.len(), compact.max_doc()), (520, 520));
        // The same answers as a fresh build of the same papers.
        let mut papers: Vec<Paper> = compact.docs().map(|d| compact.paper(d).clone()).collect();
        papers.sort_by(|a, b| a.id.cmp(&b.id));
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh_out = fresh_dir.path().join("idx");
        build(&fresh_out, papers, &enc, &BuildOptions::default(), |_| {}).unwrap();
        let fresh = Index::open(&fresh_out).unwrap();
        // (The fake encoder ties often: scores must agree, and ids above the last tie.)
        let same = |a: Vec<(PaperId, Score)>, b: Vec<(PaperId, Score)>, q: &str| {
            let scores = |h: &[(PaperId, Score)]| h.iter().map(|x| x.1).collect::<Vec<_>>();
            assert_eq!(scores(&a), scores(&b), "{q}");
            let last = a.last().map_or(0.0, |x| x.1);
            let above = |h: &[(PaperId, Score)]| {
                let mut ids: Vec<PaperId> = h
                    .iter()
                    .filter(|x| x.1 > last)
                    .map(|x| x.0.clone())
                    .collect();
                ids.sort();
                ids
            };
            assert_eq!(above(&a), above(&b), "{q}");
        };
        for q in ["kagome magnets", "graph neural", "galaxy star"] {
            let vector = |idx: &Index| -> Vec<(PaperId, Score)> {
                let v = enc.embed_one(q).unwrap();
                let scope = idx.scope(&Filter::default(), &[]);
                let hits = idx.flat().search(&v, 10, scope.mask());
                hits.iter()
                    .map(|h| (idx.paper(h.0).id.clone(), h.1))
                    .collect()
            };
            same(vector(&compact), vector(&fresh), q);
            let kw = |idx: &Index| -> Vec<(PaperId, Score)> {
                let hits = idx.keyword().search(q, 10, 1.0, None).unwrap().hits;
                hits.iter()
                    .map(|h| (idx.paper(h.0).id.clone(), h.1))
                    .collect()
            };
            same(kw(&compact), kw(&fresh), q);
        }
    }

    /// A reader follows commits, sharing the segments both hold.
    #[test]
    fn reopen_follows_commits_and_shares_segments() {
        let (_d, out, enc) = built(300);
        let first = Index::open(&out).unwrap();
        assert!(first.reopen().unwrap().is_none());
        add(&out, &enc, vec![paper(301)]);
        let second = first.reopen().unwrap().unwrap();
        assert_eq!(
            (second.len(), second.generation()),
            (301, first.generation() + 1)
        );
        assert!(Arc::ptr_eq(
            &first.parts[0].segment,
            &second.parts[0].segment
        ));
        // The old one still answers from its own commit.
        assert_eq!(first.len(), 300);
        assert!(first.doc_id(&"p301".into()).is_none());
    }

    /// `index` over an index of other files refuses, and says what to do.
    #[test]
    fn build_over_other_sources_refuses() {
        let (_d, out, enc) = built(50);
        let opts = BuildOptions {
            sources: vec!["other.jsonl".into()],
            ..Default::default()
        };
        let err = build(&out, vec![paper(1)], &enc, &opts, |_| {}).unwrap_err();
        assert!(matches!(err, Error::SourcesDiffer { .. }), "{err}");
        assert!(err.to_string().contains("paperscope add"), "{err}");
        assert_eq!(Index::open(&out).unwrap().len(), 50);
        // With --replace it holds exactly the new papers, reusing vectors.
        let opts = BuildOptions {
            replace: true,
            ..opts
        };
        let r = build(&out, (0..10).map(paper).collect(), &enc, &opts, |_| {}).unwrap();
        assert_eq!((r.papers, r.removed, r.embedded), (10, 40, 0), "{r:?}");
    }
}
