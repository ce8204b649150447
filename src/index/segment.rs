//! A segment: papers written together by one commit, never changed afterwards (tantivy's
//! and Lucene's segments are the model). Deleting or replacing one of its papers adds a
//! tombstone beside it instead; merging rewrites its live papers into a new segment.
//!
//! ```text
//! seg-000007/
//!   papers.jsonl          the records, one per line, row i = local id i
//!   vectors.f32           rows × dim little-endian f32, unit length
//!   graph.bin             the HNSW links over those rows (see ann::Ann::write)
//!   deleted-000009.u32    tombstones as of generation 9: sorted local ids, u32 LE
//! ```

use super::ann::{Ann, Reachability, GRAPH};
use super::vector_search::Vectors;
use super::{atomic, integrity, io_err, Error, HnswParams};
use crate::paper::Paper;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

pub(super) const PAPERS: &str = "papers.jsonl";
pub(super) const VECTORS: &str = "vectors.f32";

/// What the manifest records of one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Directory inside the index, `seg-GENERATION`.
    pub name: String,
    /// First DocId of the segment: its rows are `base..base + rows`. DocIds are never
    /// reused while the segment lives, so the keyword index's ids stay valid.
    pub base: u32,
    /// Records written (deleted ones included).
    pub rows: usize,
    /// Of which deleted (tombstoned).
    pub deleted: usize,
    /// The tombstone file, relative to the index directory, when `deleted > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstones: Option<String>,
    /// Papers its own graph search did not find before the repair (see README,
    /// "Every paper reachable").
    #[serde(default)]
    pub reachability: Reachability,
}

impl SegmentInfo {
    pub fn live(&self) -> usize {
        self.rows - self.deleted
    }
}

/// A segment in memory: records, vectors and graph. Shared (`Arc`) between the
/// generations of an index that keep it.
pub(super) struct Segment {
    pub(super) name: String,
    pub(super) papers: Vec<Paper>,
    pub(super) vectors: Vectors,
    pub(super) ann: Ann,
}

impl Segment {
    /// Reads segment `name` of the index at `dir`.
    pub(super) fn read(dir: &Path, name: &str, rows: usize, dim: usize) -> Result<Segment, Error> {
        let seg = dir.join(name);
        let papers = read_papers(&seg)?;
        let vectors = read_vectors(&seg, dim)?;
        let vpath = seg.join(VECTORS);
        integrity::check_vectors(&vpath, &vectors, dim)?;
        let ann = Ann::read(&seg.join(GRAPH), &vectors, dim)?;
        if papers.len() != rows || vectors.len() != rows * dim || ann.len() != rows {
            return Err(Error::Corrupt(format!(
                "{}: the manifest says {rows} papers of dim {dim}, found {} records, {} floats, {} graph nodes",
                seg.display(),
                papers.len(),
                vectors.len(),
                ann.len()
            )));
        }
        Ok(Segment {
            name: name.to_string(),
            papers,
            vectors: Vectors::new(vectors, dim),
            ann,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.papers.len()
    }
}

/// Writes a new segment directory `dir/name` holding `papers` and their `vectors`, its
/// graph built and repaired; every file synced before this returns. Returns what the
/// repair found.
pub(super) fn write(
    dir: &Path,
    name: &str,
    papers: &[Paper],
    vectors: &[f32],
    dim: usize,
    params: &HnswParams,
) -> Result<Reachability, Error> {
    let seg = dir.join(name);
    fs::create_dir_all(&seg).map_err(io_err(&seg))?;
    let path = seg.join(PAPERS);
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
    let bytes: Vec<u8> = vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
    atomic::write_synced(&seg.join(VECTORS), &bytes)?;
    super::writer::failpoint("graph")?;
    let (ann, reach) = Ann::build(vectors, dim, params)?;
    ann.write(&seg.join(GRAPH))?;
    atomic::sync_dir(&seg);
    Ok(reach)
}

/// The records of a segment directory (or of a format-1 index directory).
pub(super) fn read_papers(seg: &Path) -> Result<Vec<Paper>, Error> {
    let ppath = seg.join(PAPERS);
    let reader = BufReader::new(fs::File::open(&ppath).map_err(io_err(&ppath))?);
    let mut papers = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io_err(&ppath))?;
        let paper: Paper = serde_json::from_str(&line)
            .map_err(|e| Error::Corrupt(format!("{}:{}: {e}", ppath.display(), i + 1)))?;
        papers.push(paper);
    }
    Ok(papers)
}

/// The vectors of a segment directory (or of a format-1 index directory).
pub(super) fn read_vectors(seg: &Path, dim: usize) -> Result<Vec<f32>, Error> {
    let vpath = seg.join(VECTORS);
    let bytes = fs::read(&vpath).map_err(io_err(&vpath))?;
    if !bytes.len().is_multiple_of(4 * dim.max(1)) {
        return Err(Error::Corrupt(format!(
            "{}: {} bytes is not a whole number of {dim}-float rows",
            vpath.display(),
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Reads a tombstone file: sorted, unique local ids below `rows`.
pub(super) fn read_tombstones(path: &Path, rows: usize) -> Result<Vec<u32>, Error> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let ids: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let sorted = ids.windows(2).all(|w| w[0] < w[1]);
    if !bytes.len().is_multiple_of(4) || !sorted || ids.last().is_some_and(|&l| l as usize >= rows)
    {
        return Err(Error::Corrupt(format!(
            "{}: not a sorted list of rows below {rows}",
            path.display()
        )));
    }
    Ok(ids)
}

/// Writes a tombstone file (sorted ids), synced.
pub(super) fn write_tombstones(path: &Path, ids: &[u32]) -> Result<(), Error> {
    let bytes: Vec<u8> = ids.iter().flat_map(|x| x.to_le_bytes()).collect();
    atomic::write_synced(path, &bytes)
}
