//! Changing an index: [`build`] makes one, [`commit`] adds, replaces and deletes papers
//! and merges segments. One writer at a time; every change is one commit (see the module
//! documentation of [`super`] for the layout and the publishing step).
//!
//! **The writer lock.** `write.lock` in the index directory, held with `flock(2)` for the
//! whole change: a second writer gets [`Error::Locked`] at once, naming the holder. The
//! kernel releases the lock when its holder dies, however it dies, so a killed writer
//! never leaves a stale lock. Readers take no lock.
//!
//! **Crashes.** Nothing a commit writes is referenced before its manifest is published,
//! and nothing the published manifest references is ever modified, so a writer killed at
//! any point (embedding, graph building, keyword commit, manifest write) leaves the last
//! commit whole; the next writer removes the dead one's files ([`cleanup`]). A failed
//! write (a full disk) returns its error the same way, with the last commit intact.
//! [`failpoint`] lets the tests kill or fail a writer at each of those points.
//!
//! **Replacing.** A record whose id is live and whose content differs replaces it (last
//! write wins): the old row gets a tombstone, the new record goes into the commit's
//! segment. An identical record is left alone. A paper's vector is reused whenever a
//! record with the same embedded text (same xxh3-128 of [`Paper::text`]) is already in
//! the index, under any id, so re-indexing unchanged papers embeds nothing.
//!
//! **Merging.** Every segment is searched by its own graph walk, so queries slow down as
//! segments accumulate (see README, "A living collection"). After a commit that would
//! leave more than [`MAX_SEGMENTS`] segments, every segment but the largest is merged
//! into the commit's new segment; a segment more than half deleted is always rewritten.
//! Merging reuses the vectors (no embedding) and builds one graph over the merged papers.
//! [`Merge::All`] (`paperscope compact`) merges everything into one segment.

use super::ann::Reachability;
use super::segment::{self, SegmentInfo};
use super::{
    atomic, check_model, integrity, io_err, read_manifest, Error, HnswParams, Manifest, ReadRecord,
    FORMAT_VERSION, MANIFEST,
};
use crate::embed::Encoder;
use crate::keyword;
use crate::paper::{DocId, Paper, PaperId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

/// Segments above which a commit merges all but the largest.
pub const MAX_SEGMENTS: usize = 10;
/// Tombstone files are named `deleted-GENERATION.u32` inside their segment.
pub(super) const TOMBSTONE_PREFIX: &str = "deleted-";
const LOCK: &str = "write.lock";
const TEXT: &str = "title + \". \" + abstract (a space instead when the title ends in . ? !)";

/// Options of [`build`].
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub hnsw: HnswParams,
    /// Input files, recorded in the manifest.
    pub sources: Vec<String>,
    /// How the input was read (`--limit`, `--strict`), recorded in the manifest.
    pub read: ReadRecord,
    /// Make an existing index at the target hold exactly these papers even when it was
    /// built from other files (`index --replace`); without it, that is refused.
    pub replace: bool,
}

/// What a [`commit`] changes.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Records to add, or to replace the live paper of the same id (last write wins).
    pub upserts: Vec<Paper>,
    /// Ids to delete.
    pub removals: Vec<PaperId>,
    /// Files the upserts came from, added to the manifest's sources.
    pub sources: Vec<String>,
}

/// Which segments a commit merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Merge {
    /// The policy of the module documentation.
    #[default]
    Auto,
    /// All of them, into one (`compact`).
    All,
    /// None (`add --no-merge`: for measuring queries over many segments).
    Never,
}

/// Progress of a change, for progress bars.
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

/// What a change did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommitReport {
    /// The generation now published (unchanged when nothing changed).
    pub generation: u64,
    /// Whether a commit was published.
    pub committed: bool,
    /// Live papers afterwards.
    pub papers: usize,
    pub added: usize,
    pub replaced: usize,
    /// Records identical to the live paper: left alone.
    pub unchanged: usize,
    pub removed: usize,
    /// Ids asked to be removed that were not in the index.
    pub not_found: Vec<PaperId>,
    /// Texts embedded.
    pub embedded: usize,
    /// Vectors taken from the index instead (same text).
    pub reused: usize,
    pub tokens: usize,
    /// Segments merged into the new one.
    pub merged: usize,
    /// Segments afterwards.
    pub segments: usize,
    /// The new segment's graph repair (see README, "Every paper reachable").
    pub reachability: Reachability,
    pub seconds: f64,
    pub embed_seconds: f64,
    pub graph_seconds: f64,
}

/// Builds the index at `out` from `papers`.
///
/// * No index there: a new one, written beside `out` and moved into place.
/// * An index of the same model and HNSW parameters: a commit that makes it hold exactly
///   `papers` (new and changed records in, the others deleted): identical papers cost
///   nothing, so re-indexing an unchanged collection takes seconds.
/// * Another index (format 1, another model or parameters): rebuilt in full beside it and
///   swapped in atomically, reusing its vectors where the model is the same.
///
/// # Errors
/// [`Error::Empty`] with no papers; [`Error::SourcesDiffer`] when an index of other files
/// is there and `opts.replace` is off; [`Error::WouldClobber`] when `out` holds something
/// else; [`Error::Locked`]; any embedding or I/O failure (the previous index, if any, is
/// left as it was).
pub fn build(
    out: &Path,
    papers: Vec<Paper>,
    encoder: &dyn Encoder,
    opts: &BuildOptions,
    mut progress: impl FnMut(Progress),
) -> Result<CommitReport, Error> {
    if papers.is_empty() {
        return Err(Error::Empty);
    }
    check_replaceable(out)?;
    let previous = Previous::look(out)?;
    if let Some(p) = &previous {
        if !opts.replace && p.sources != opts.sources {
            return Err(Error::SourcesDiffer {
                path: out.to_path_buf(),
                has: p.sources.join(", "),
                given: opts.sources.join(", "),
            });
        }
    }
    // Held through the swap, so that no `add` to the old index is lost under it.
    let _lock = match &previous {
        Some(_) => Some(lock(out)?),
        None => None,
    };
    // A damaged index (a file that fails its checksum) is rebuilt from scratch, reusing
    // nothing of it.
    let intact = previous.as_ref().is_none_or(|p| match &p.manifest {
        Some(m) => integrity::verify(out, &m.files).is_ok(),
        None => true,
    });
    let same_model = intact
        && previous
            .as_ref()
            .is_some_and(|p| check_model(&p.model, encoder.info()).is_ok());
    if let Some(Previous {
        manifest: Some(m), ..
    }) = &previous
    {
        if same_model && m.hnsw == opts.hnsw {
            let changes = Changes {
                upserts: papers,
                removals: Vec::new(),
                sources: Vec::new(),
            };
            cleanup(out, m);
            let state = State::read(out, m.clone())?;
            let mut plan = state.plan(changes, true, Merge::Auto)?;
            plan.sources = Some(opts.sources.clone());
            plan.read = Some(opts.read.clone());
            return state.publish(out, plan, encoder, &mut progress);
        }
    }
    // A full build beside `out`, swapped in at the end.
    let staging = atomic::Staging::new(out)?;
    let generation = previous.as_ref().map_or(0, |p| p.generation);
    let state = State::empty(encoder, opts, generation);
    let mut plan = state.plan(
        Changes {
            upserts: papers,
            ..Default::default()
        },
        false,
        Merge::Auto,
    )?;
    if same_model {
        plan.outside = previous.map(|p| p.dir);
    }
    let report = state.publish(staging.path(), plan, encoder, &mut progress)?;
    staging.commit()?;
    Ok(report)
}

/// Applies `changes` to the index at `dir` as one commit (nothing is published when
/// nothing changes and no merge is due).
///
/// # Errors
/// [`Error::Locked`] while another writer works; [`Error::ModelMismatch`] when `encoder`
/// is not the index's model; any embedding or I/O failure (the last commit stays intact).
pub fn commit(
    dir: &Path,
    changes: Changes,
    encoder: &dyn Encoder,
    merge: Merge,
    mut progress: impl FnMut(Progress),
) -> Result<CommitReport, Error> {
    let _lock = lock(dir)?;
    let manifest = read_manifest(dir)?;
    check_model(&manifest.model, encoder.info())?;
    cleanup(dir, &manifest);
    let state = State::read(dir, manifest)?;
    let plan = state.plan(changes, false, merge)?;
    state.publish(dir, plan, encoder, &mut progress)
}

/// The index a build would replace.
struct Previous {
    dir: PathBuf,
    /// `None` for a format-1 index.
    manifest: Option<Manifest>,
    model: crate::embed::ModelInfo,
    sources: Vec<String>,
    generation: u64,
}

impl Previous {
    fn look(out: &Path) -> Result<Option<Previous>, Error> {
        match read_manifest(out) {
            Ok(m) => Ok(Some(Previous {
                dir: out.to_path_buf(),
                model: m.model.clone(),
                sources: m.sources.clone(),
                generation: m.generation,
                manifest: Some(m),
            })),
            Err(Error::NotAnIndex { .. }) => Ok(None),
            Err(Error::Version { found: 1, .. }) => {
                // Format 1: read for its sources and model, so its vectors can be reused.
                let path = out.join(MANIFEST);
                let text = fs::read_to_string(&path).map_err(io_err(&path))?;
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
                let model = serde_json::from_value(v["model"].clone())
                    .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
                let sources = serde_json::from_value(v["sources"].clone()).unwrap_or_default();
                Ok(Some(Previous {
                    dir: out.to_path_buf(),
                    manifest: None,
                    model,
                    sources,
                    generation: 0,
                }))
            }
            Err(e) => Err(e),
        }
    }
}

/// The index as a writer sees it: its manifest and every segment's records and
/// tombstones (vectors are read only when needed).
struct State {
    manifest: Manifest,
    papers: Vec<Vec<Paper>>,
    dead: Vec<BTreeSet<u32>>,
}

/// What a commit will do, decided before anything is written.
struct Plan {
    /// Papers of the new segment not taken from a merged segment.
    incoming: Vec<Paper>,
    /// Rows newly deleted, per segment.
    kill: Vec<BTreeSet<u32>>,
    /// Segments merged into the new one (their live rows go first, in DocId order).
    merged: Vec<usize>,
    report: CommitReport,
    /// Replaces the manifest's sources (a build), instead of adding `add_sources`.
    sources: Option<Vec<String>>,
    add_sources: Vec<String>,
    read: Option<ReadRecord>,
    /// Another index whose vectors may be reused (a full rebuild).
    outside: Option<PathBuf>,
}

impl State {
    fn empty(encoder: &dyn Encoder, opts: &BuildOptions, generation: u64) -> State {
        let now = now();
        State {
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                generation,
                model: encoder.info().clone(),
                count: 0,
                dim: encoder.dim(),
                hnsw: opts.hnsw,
                built_at: now.clone(),
                committed_at: now,
                build_seconds: 0.0,
                embed_seconds: 0.0,
                graph_seconds: 0.0,
                tokens: 0,
                text: TEXT.into(),
                embedder: encoder.describe(),
                sources: opts.sources.clone(),
                files: BTreeMap::new(),
                read: opts.read.clone(),
                cpu: crate::vector::cpu_cap().to_string(),
                segments: Vec::new(),
                keyword: keyword::KeywordInfo::default(),
            },
            papers: Vec::new(),
            dead: Vec::new(),
        }
    }

    fn read(dir: &Path, manifest: Manifest) -> Result<State, Error> {
        let mut papers = Vec::new();
        let mut dead = Vec::new();
        for s in &manifest.segments {
            let p = segment::read_papers(&dir.join(&s.name))?;
            if p.len() != s.rows {
                return Err(Error::Corrupt(format!(
                    "{}: {} records, the manifest says {}",
                    s.name,
                    p.len(),
                    s.rows
                )));
            }
            papers.push(p);
            dead.push(match &s.tombstones {
                Some(t) => segment::read_tombstones(&dir.join(t), s.rows)?
                    .into_iter()
                    .collect(),
                None => BTreeSet::new(),
            });
        }
        Ok(State {
            manifest,
            papers,
            dead,
        })
    }

    /// Decides what `changes` do. `exact`: live papers not among the upserts are deleted.
    fn plan(&self, changes: Changes, exact: bool, merge: Merge) -> Result<Plan, Error> {
        let mut live: HashMap<&PaperId, (usize, u32)> = HashMap::new();
        for (s, papers) in self.papers.iter().enumerate() {
            for (r, p) in papers.iter().enumerate() {
                if !self.dead[s].contains(&(r as u32)) {
                    live.insert(&p.id, (s, r as u32));
                }
            }
        }
        let mut report = CommitReport::default();
        let mut kill: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); self.papers.len()];
        let mut incoming = Vec::new();
        let mut upserted: HashSet<PaperId> = HashSet::new();
        for p in changes.upserts {
            upserted.insert(p.id.clone());
            match live.get(&p.id) {
                Some(&(s, r)) if self.papers[s][r as usize] == p => report.unchanged += 1,
                Some(&(s, r)) => {
                    kill[s].insert(r);
                    report.replaced += 1;
                    incoming.push(p);
                }
                None => {
                    report.added += 1;
                    incoming.push(p);
                }
            }
        }
        let mut remove = |id: &PaperId, report: &mut CommitReport| match live.get(id) {
            Some(&(s, r)) if kill[s].insert(r) => report.removed += 1,
            Some(_) => {}
            None => report.not_found.push(id.clone()),
        };
        if exact {
            let gone: Vec<PaperId> = live
                .keys()
                .filter(|id| !upserted.contains(**id))
                .map(|id| (*id).clone())
                .collect();
            for id in &gone {
                remove(id, &mut report);
            }
        }
        for id in &changes.removals {
            remove(id, &mut report);
        }
        let segs = &self.manifest.segments;
        let live_after = |s: usize| segs[s].rows - self.dead[s].len() - kill[s].len();
        let alive: Vec<usize> = (0..segs.len()).filter(|&s| live_after(s) > 0).collect();
        let merged: Vec<usize> = match merge {
            Merge::All
                if alive.len() > 1
                    || alive.iter().any(|&s| segs[s].deleted + kill[s].len() > 0) =>
            {
                alive.clone()
            }
            Merge::All | Merge::Never => Vec::new(),
            Merge::Auto => {
                let count = alive.len() + usize::from(!incoming.is_empty());
                let largest = alive.iter().copied().max_by_key(|&s| live_after(s));
                alive
                    .iter()
                    .copied()
                    .filter(|&s| {
                        let mostly_dead = 2 * (segs[s].deleted + kill[s].len()) > segs[s].rows;
                        mostly_dead || (count > MAX_SEGMENTS && Some(s) != largest)
                    })
                    .collect()
            }
        };
        report.merged = merged.len();
        Ok(Plan {
            incoming,
            kill,
            merged,
            report,
            sources: None,
            add_sources: changes.sources,
            read: None,
            outside: None,
        })
    }

    /// Writes and publishes `plan`'s commit into `dir`.
    fn publish(
        &self,
        dir: &Path,
        mut plan: Plan,
        encoder: &dyn Encoder,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<CommitReport, Error> {
        let start = Instant::now();
        let m = &self.manifest;
        let dropped: Vec<usize> = (0..m.segments.len())
            .filter(|&s| m.segments[s].rows == self.dead[s].len() + plan.kill[s].len())
            .collect();
        let sources_change = plan.sources.as_ref().is_some_and(|s| *s != m.sources)
            || plan.add_sources.iter().any(|s| !m.sources.contains(s));
        let changed = !plan.incoming.is_empty()
            || plan.kill.iter().any(|k| !k.is_empty())
            || !plan.merged.is_empty()
            || !dropped.is_empty();
        let mut report = std::mem::take(&mut plan.report);
        if !changed && !sources_change && !m.segments.is_empty() {
            report.generation = m.generation;
            report.papers = m.count;
            report.segments = m.segments.len();
            report.seconds = start.elapsed().as_secs_f64();
            return Ok(report);
        }
        let generation = m.generation + 1;
        let dim = m.dim;

        // The new segment: the merged segments' live rows, then the incoming papers.
        let mut rows: Vec<Paper> = Vec::new();
        let mut vectors: Vec<f32> = Vec::new();
        let mut loaded: HashMap<usize, Vec<f32>> = HashMap::new();
        let mut load = |s: usize| -> Result<Vec<f32>, Error> {
            segment::read_vectors(&dir.join(&m.segments[s].name), dim)
        };
        for &s in &plan.merged {
            let v = load(s)?;
            for (r, p) in self.papers[s].iter().enumerate() {
                let r32 = r as u32;
                if !self.dead[s].contains(&r32) && !plan.kill[s].contains(&r32) {
                    rows.push(p.clone());
                    vectors.extend_from_slice(&v[r * dim..(r + 1) * dim]);
                }
            }
            loaded.insert(s, v);
        }
        if !plan.incoming.is_empty() {
            let reuse = Reuse::new(self, &mut loaded, &mut load, plan.outside.as_deref(), dim)?;
            let embed_start = Instant::now();
            let mut todo: Vec<usize> = Vec::new();
            let first_new = rows.len();
            for (i, p) in plan.incoming.iter().enumerate() {
                match reuse.get(&p.text()) {
                    Some(v) => vectors.extend_from_slice(v),
                    None => {
                        todo.push(i);
                        vectors.extend(std::iter::repeat_n(0.0, dim));
                    }
                }
            }
            report.reused = plan.incoming.len() - todo.len();
            report.embedded = todo.len();
            if !todo.is_empty() {
                let texts: Vec<String> = todo.iter().map(|&i| plan.incoming[i].text()).collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let total = refs.len();
                let embedded = encoder.embed_with_progress(&refs, &mut |done, tokens| {
                    report.tokens = tokens;
                    if done > 0 {
                        let _ = failpoint("embed");
                    }
                    progress(Progress::Embedding {
                        done,
                        total,
                        tokens,
                    })
                })?;
                for (&i, v) in todo.iter().zip(embedded) {
                    let at = (first_new + i) * dim;
                    vectors[at..at + dim].copy_from_slice(&v);
                }
            }
            report.embed_seconds = embed_start.elapsed().as_secs_f64();
            rows.append(&mut plan.incoming);
        }

        // Which segments stay, and the DocIds of the new one.
        let fresh_ids = m.segments.len() == plan.merged.len() + dropped.len();
        let mut segments: Vec<SegmentInfo> = Vec::new();
        let mut removed_docs: Vec<DocId> = Vec::new();
        let mut files: BTreeMap<String, integrity::FileSum> = BTreeMap::new();
        let mut new_files: Vec<String> = Vec::new();
        for (s, info) in m.segments.iter().enumerate() {
            let gone = plan.merged.contains(&s) || dropped.contains(&s);
            let kill = &plan.kill[s];
            if gone {
                for r in 0..info.rows as u32 {
                    if !self.dead[s].contains(&r) {
                        removed_docs.push(info.base + r);
                    }
                }
                continue;
            }
            removed_docs.extend(kill.iter().map(|&r| info.base + r));
            let mut info = info.clone();
            for f in [segment::PAPERS, segment::VECTORS, super::ann::GRAPH] {
                let name = format!("{}/{f}", info.name);
                if let Some(sum) = m.files.get(&name) {
                    files.insert(name, sum.clone());
                }
            }
            if !kill.is_empty() {
                let all: Vec<u32> = self.dead[s].union(kill).copied().collect();
                let name = format!("{}/{TOMBSTONE_PREFIX}{generation:06}.u32", info.name);
                segment::write_tombstones(&dir.join(&name), &all)?;
                info.deleted = all.len();
                info.tombstones = Some(name.clone());
                new_files.push(name);
            } else if let Some(t) = &info.tombstones {
                if let Some(sum) = m.files.get(t) {
                    files.insert(t.clone(), sum.clone());
                }
            }
            segments.push(info);
        }
        if fresh_ids {
            removed_docs.clear();
        }
        let base = if fresh_ids { 0 } else { m.max_doc() as DocId };
        let name = format!("seg-{generation:06}");
        if !rows.is_empty() {
            progress(Progress::Graph);
            let graph_start = Instant::now();
            report.reachability = segment::write(dir, &name, &rows, &vectors, dim, &m.hnsw)?;
            report.graph_seconds = graph_start.elapsed().as_secs_f64();
            for f in [segment::PAPERS, segment::VECTORS, super::ann::GRAPH] {
                new_files.push(format!("{name}/{f}"));
            }
            segments.push(SegmentInfo {
                name: name.clone(),
                base,
                rows: rows.len(),
                deleted: 0,
                tombstones: None,
                reachability: report.reachability,
            });
        }

        progress(Progress::Writing);
        let keyword_dir = format!("keyword-{generation:06}");
        let previous_keyword =
            (!fresh_ids && !m.keyword.dir.is_empty()).then_some(m.keyword.dir.as_str());
        let added = rows.iter().enumerate().map(|(i, p)| (base + i as DocId, p));
        let keyword = keyword::write(dir, &keyword_dir, previous_keyword, &removed_docs, added)?;
        failpoint("keyword")?;
        for name in &new_files {
            files.insert(name.clone(), integrity::sum(&dir.join(name))?);
        }
        files.extend(integrity::sums_under(dir, &keyword_dir)?);

        let count = segments.iter().map(SegmentInfo::live).sum();
        let mut sources = plan.sources.take().unwrap_or_else(|| m.sources.clone());
        for s in plan.add_sources {
            if !sources.contains(&s) {
                sources.push(s);
            }
        }
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            generation,
            model: m.model.clone(),
            count,
            dim,
            hnsw: m.hnsw,
            built_at: m.built_at.clone(),
            committed_at: now(),
            build_seconds: start.elapsed().as_secs_f64(),
            embed_seconds: report.embed_seconds,
            graph_seconds: report.graph_seconds,
            tokens: report.tokens,
            text: TEXT.into(),
            embedder: if report.embedded > 0 {
                encoder.describe()
            } else {
                m.embedder.clone()
            },
            sources,
            files,
            read: plan.read.unwrap_or_else(|| m.read.clone()),
            cpu: crate::vector::cpu_cap().to_string(),
            segments,
            keyword,
        };
        let json =
            serde_json::to_vec_pretty(&manifest).expect("manifest serialises. This is a bug.");
        atomic::replace_synced(&dir.join(MANIFEST), &json)?;
        cleanup(dir, &manifest);

        report.generation = generation;
        report.committed = true;
        report.papers = manifest.count;
        report.segments = manifest.segments.len();
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// Vectors of texts already embedded, by the xxh3-128 of the text.
struct Reuse {
    dim: usize,
    vectors: Vec<f32>,
    by_text: HashMap<u128, usize>,
}

impl Reuse {
    /// From every row of `state` (deleted ones too: their vectors are as good), and of
    /// the index at `outside` (format 1 or 2) when given.
    fn new(
        state: &State,
        loaded: &mut HashMap<usize, Vec<f32>>,
        load: &mut dyn FnMut(usize) -> Result<Vec<f32>, Error>,
        outside: Option<&Path>,
        dim: usize,
    ) -> Result<Reuse, Error> {
        let mut reuse = Reuse {
            dim,
            vectors: Vec::new(),
            by_text: HashMap::new(),
        };
        for (s, papers) in state.papers.iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(e) = loaded.entry(s) {
                e.insert(load(s)?);
            }
            reuse.add(papers, &loaded[&s]);
        }
        if let Some(dir) = outside {
            match read_manifest(dir) {
                Ok(m) => {
                    for s in &m.segments {
                        let seg = dir.join(&s.name);
                        reuse.add(
                            &segment::read_papers(&seg)?,
                            &segment::read_vectors(&seg, dim)?,
                        );
                    }
                }
                // Format 1: records and vectors at the top of the directory.
                Err(Error::Version { found: 1, .. }) => reuse.add(
                    &segment::read_papers(dir)?,
                    &segment::read_vectors(dir, dim)?,
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(reuse)
    }

    fn add(&mut self, papers: &[Paper], vectors: &[f32]) {
        if vectors.len() != papers.len() * self.dim {
            return;
        }
        let base = self.vectors.len() / self.dim;
        self.vectors.extend_from_slice(vectors);
        for (i, p) in papers.iter().enumerate() {
            self.by_text.insert(text_hash(&p.text()), base + i);
        }
    }

    fn get(&self, text: &str) -> Option<&[f32]> {
        let &i = self.by_text.get(&text_hash(text))?;
        Some(&self.vectors[i * self.dim..(i + 1) * self.dim])
    }
}

fn text_hash(text: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(text.as_bytes())
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The writer lock, released when dropped (or when the process dies).
struct WriteLock {
    _file: fs::File,
}

fn lock(dir: &Path) -> Result<WriteLock, Error> {
    let path = dir.join(LOCK);
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = fs::read_to_string(&path).unwrap_or_default();
        return Err(Error::Locked {
            path: dir.to_path_buf(),
            holder: match holder.trim() {
                "" => "another process".into(),
                h => h.to_string(),
            },
        });
    }
    file.set_len(0).map_err(io_err(&path))?;
    let _ = write!(file, "pid {}", std::process::id());
    Ok(WriteLock { _file: file })
}

/// Removes what `manifest` does not reference: segments, tombstones, keyword
/// directories and temporary files of commits that were never published (a killed or
/// failed writer's) or that a newer commit superseded. Only paperscope's own names are
/// touched. Best effort: a file that cannot be removed now is removed next time.
pub(super) fn cleanup(dir: &Path, manifest: &Manifest) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let segments: HashMap<&str, &SegmentInfo> = manifest
        .segments
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if let Some(info) = segments.get(name.as_str()) {
            // A kept segment: only its superseded tombstones go.
            for f in fs::read_dir(&path).into_iter().flatten().flatten() {
                let fname = f.file_name().to_string_lossy().into_owned();
                let current = info
                    .tombstones
                    .as_deref()
                    .is_some_and(|t| t.ends_with(&format!("/{fname}")));
                if fname.starts_with(TOMBSTONE_PREFIX) && !current {
                    let _ = fs::remove_file(f.path());
                }
            }
        } else if name == manifest.keyword.dir {
        } else if name.starts_with("seg-") || name.starts_with("keyword-") {
            let _ = fs::remove_dir_all(&path);
        } else if name.starts_with("manifest.tmp-") {
            let _ = fs::remove_file(&path);
        }
    }
}

/// A test hook: `PAPERSCOPE_FAILPOINT=NAME` kills the process with SIGKILL when a writer
/// reaches point NAME (`embed`, `graph`, `keyword`, `manifest`), and
/// `PAPERSCOPE_FAILPOINT=NAME:enospc` fails the write there as a full disk does. Read once.
pub(crate) fn failpoint(name: &str) -> Result<(), Error> {
    static SPEC: OnceLock<Option<String>> = OnceLock::new();
    let Some(spec) = SPEC.get_or_init(|| std::env::var("PAPERSCOPE_FAILPOINT").ok()) else {
        return Ok(());
    };
    let (point, action) = spec.split_once(':').unwrap_or((spec.as_str(), "kill"));
    if point != name {
        return Ok(());
    }
    match action {
        "enospc" => Err(Error::Io {
            path: PathBuf::from(format!("(failpoint {name})")),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        }),
        _ => {
            // SAFETY: signalling our own process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            Ok(())
        }
    }
}

/// `out` may be built over only when it does not exist, is empty, or is a paperscope
/// index: a manifest that reads as one, and nothing but an index's entries.
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
    // Format 2's entries and format 1's.
    const FIXED: [&str; 7] = [
        MANIFEST,
        LOCK,
        "papers.jsonl",
        "vectors.f32",
        "hnsw.hnsw.graph",
        "hnsw.hnsw.data",
        "keyword",
    ];
    let ours = |n: &str| {
        FIXED.contains(&n)
            || n.starts_with("seg-")
            || n.starts_with("keyword-")
            || n.starts_with("manifest.tmp-")
    };
    if let Some(other) = names.iter().find(|n| !ours(&n.to_string_lossy())) {
        return Err(clobber(format!(
            "it holds {}, which is not part of an index",
            other.to_string_lossy()
        )));
    }
    Ok(())
}
