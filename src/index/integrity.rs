//! Integrity of an index directory: every file's size and xxh3 checksum is recorded in
//! the manifest by the commit that writes it and verified when the index is opened,
//! before any other part reads the files.
//!
//! Why always, not on request: flipped bytes in `hnsw.hnsw.graph` made hnsw_rs abort on a
//! 6.7e15-byte allocation (no error, no unwinding), and flipped bytes in the vectors, a
//! NaN row or two swapped lines of `papers.jsonl` were served as normal results. Verifying
//! costs one read of each file at xxh3's speed (several GB/s: ~0.1 s for the 633 MB of the
//! 118,024-paper index), next to the reading that opening does anyway.
//! Indexes built before checksums were recorded open with their sizes checked only.

use super::{io_err, Error};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use xxhash_rust::xxh3::Xxh3;

/// A file's size and checksum, as the manifest records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub bytes: u64,
    /// xxh3-64, hex.
    pub xxh3: String,
}

/// The checksums of every file under `dir/sub`, by path relative to `dir`
/// (`/`-separated), in name order.
///
/// # Errors
/// I/O errors, naming the file.
pub(super) fn sums_under(dir: &Path, sub: &str) -> Result<BTreeMap<String, FileSum>, Error> {
    let mut out = BTreeMap::new();
    walk(&dir.join(sub), &format!("{sub}/"), &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, FileSum>) -> Result<(), Error> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        let path = e.path();
        if path.is_dir() {
            walk(&path, &format!("{name}/"), out)?;
        } else if name != super::MANIFEST && !is_lock(&name) {
            out.insert(name, sum(&path)?);
        }
    }
    Ok(())
}

/// tantivy's lock files come and go with readers; they are not part of the index.
fn is_lock(name: &str) -> bool {
    name.ends_with(".lock")
}

pub(super) fn sum(path: &Path) -> Result<FileSum, Error> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut h = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileSum {
        bytes,
        xxh3: format!("{:016x}", h.digest()),
    })
}

/// Checks every file `expected` names under `dir`: present, of its size, of its checksum.
///
/// # Errors
/// [`Error::Corrupt`] naming the first file that differs and how to fix it.
pub(super) fn verify(dir: &Path, expected: &BTreeMap<String, FileSum>) -> Result<(), Error> {
    for (name, want) in expected {
        let path = dir.join(name);
        let corrupt = |what: String| {
            Error::Corrupt(format!(
                "{}: {what}; the index is damaged: rebuild it with `paperscope index --out {} FILE...`",
                path.display(),
                dir.display()
            ))
        };
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(_) => return Err(corrupt("missing".into())),
        };
        if len != want.bytes {
            return Err(corrupt(format!(
                "{len} bytes, the manifest says {}",
                want.bytes
            )));
        }
        let got = sum(&path)?;
        if got.xxh3 != want.xxh3 {
            return Err(corrupt(format!(
                "checksum {} differs from the manifest's {}",
                got.xxh3, want.xxh3
            )));
        }
    }
    Ok(())
}

/// Every vector is finite and of unit length (or zero, for an empty text).
///
/// # Errors
/// [`Error::Corrupt`] naming the first bad row.
pub(super) fn check_vectors(path: &Path, vectors: &[f32], dim: usize) -> Result<(), Error> {
    for (row, v) in vectors.chunks_exact(dim.max(1)).enumerate() {
        let norm2: f32 = v.iter().map(|x| x * x).sum();
        let ok = norm2.is_finite() && ((norm2 - 1.0).abs() < 1e-3 || norm2 == 0.0);
        if !ok {
            return Err(Error::Corrupt(format!(
                "{}: vector {row} has squared norm {norm2} (not a unit vector); rebuild the index",
                path.display()
            )));
        }
    }
    Ok(())
}
