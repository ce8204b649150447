//! Writing an index directory so that readers only ever see a complete one.
//!
//! A [`Staging`] directory is created beside the target (same parent, so renames stay on
//! one filesystem), filled, synced, then swapped into place by [`Staging::commit`]. If the
//! process dies first, the target is untouched; the staging directory's name carries the
//! builder's pid, so the next build removes leftovers of dead builders.

use super::{io_err, Error};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub(super) struct Staging {
    target: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staging {
    pub(super) fn new(target: &Path) -> Result<Staging, Error> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let name = target
            .file_name()
            .ok_or_else(|| Error::InvalidParams(format!("bad output path {}", target.display())))?
            .to_string_lossy()
            .into_owned();
        remove_stale(&parent, &name);
        let path = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(io_err(&path))?;
        }
        fs::create_dir(&path).map_err(io_err(&path))?;
        Ok(Staging {
            target: target.to_path_buf(),
            path,
            committed: false,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the staged directory to the target, replacing what was there.
    pub(super) fn commit(mut self) -> Result<(), Error> {
        if self.target.exists() {
            exchange(&self.path, &self.target)?;
            // `self.path` now holds the old index; Drop removes it.
        } else {
            fs::rename(&self.path, &self.target).map_err(io_err(&self.target))?;
            self.committed = true;
        }
        if let Some(parent) = self.target.parent() {
            // Persist the rename itself; best effort (not every filesystem allows it).
            if let Ok(d) = fs::File::open(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            }) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Atomically exchanges two directories (Linux `renameat2(RENAME_EXCHANGE)`); where the
/// kernel or filesystem refuses, falls back to rename-aside-then-rename, which leaves a
/// window where the target is briefly absent (never half-written).
fn exchange(a: &Path, b: &Path) -> Result<(), Error> {
    #[cfg(target_os = "linux")]
    {
        let ca = CString::new(a.as_os_str().as_bytes()).map_err(|e| Error::Io {
            path: a.to_path_buf(),
            source: e.into(),
        })?;
        let cb = CString::new(b.as_os_str().as_bytes()).map_err(|e| Error::Io {
            path: b.to_path_buf(),
            source: e.into(),
        })?;
        // SAFETY: both arguments are valid NUL-terminated paths that outlive the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
    }
    let aside = a.with_extension("old");
    fs::rename(b, &aside).map_err(io_err(b))?;
    fs::rename(a, b).map_err(io_err(b))?;
    fs::rename(&aside, a).map_err(io_err(a))?;
    Ok(())
}

/// Removes `.NAME.tmp-PID` directories in `parent` whose process no longer runs.
fn remove_stale(parent: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let fname = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = fname
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id();
        if !alive {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Writes `bytes` to `path` and fsyncs it.
pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Replaces `path` with `bytes` atomically: written to a temporary file beside it,
/// synced, renamed over it, and the directory synced, so that a reader (or a crash)
/// sees the old file or the new one, never a mix.
pub(super) fn replace_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_synced(&tmp, bytes)?;
    super::writer::failpoint("manifest")?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(path)(e)
    })?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// Persists a directory's entries (new files, renames); best effort, as not every
/// filesystem allows opening a directory for it.
pub(super) fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
