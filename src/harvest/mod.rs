//! Harvesting new papers from remote feeds into paperscope JSON Lines, for `paperscope add`.
//!
//! Two sources: arXiv's OAI-PMH interface ([`arxiv`]) and the Hugging Face Daily Papers API
//! ([`hf_daily`]). Both go through one [`Http`] client, which waits politely between
//! requests, honours `Retry-After`, retries what may pass (connection errors, timeouts,
//! 5xx, truncated or malformed bodies) with backoff, and then fails naming the URL.
//!
//! The contract of a harvest, whatever the source:
//! - **All or nothing.** Records are written to a temporary file beside the output and
//!   renamed over it only when every request succeeded, so a failed or interrupted harvest
//!   leaves no half file (and no temporary file).
//! - **Resumable.** After a successful run, a state file beside the output
//!   (`FILE.state.json`, see [`state_path`]) records what was harvested up to; the next run
//!   with the same output and no `from` continues from there. The state is written
//!   atomically and only after the output, so a failure never advances it.
//! - **Readable as is.** Each line is a paperscope record (`id`, `title`, `abstract`,
//!   `authors`, `published`, `categories`, `url`, plus source extras as top-level fields) or a
//!   deletion `{"id": ..., "deleted": true}`, which [`crate::corpus`] reads unchanged.

pub mod arxiv;
pub mod hf_daily;
mod http;

pub use http::{Failure, Http};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Why a harvest failed. `Display` is the message for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be served as asked (a bad date, no start date and no state
    /// file, a state file of another harvest): the caller's mistake, not the network's.
    #[error("{0}")]
    Invalid(String),
    /// A request kept failing in ways that may pass, until the retries ran out.
    #[error("giving up on {url} after {attempts} attempts: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: Failure,
    },
    /// A request failed in a way that retrying cannot fix (a 4xx, a bad URL, a body over
    /// the size limit).
    #[error("{url}: {failure}")]
    Fatal { url: String, failure: Failure },
    /// The server answered with an OAI-PMH error other than `noRecordsMatch`.
    #[error("{url}: OAI-PMH error {code}: {message}")]
    Oai {
        url: String,
        code: String,
        message: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path}: {reason}")]
    State { path: PathBuf, reason: String },
}

impl Error {
    /// Whether the error is the caller's mistake (exit status 2 on the command line).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Invalid(_))
    }
}

/// What a harvest did, for the summary line and for `sync`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Paper records written (deletions not included).
    pub records: usize,
    /// Deletion records written.
    pub deleted: usize,
    /// HTTP requests sent, retries included.
    pub requests: usize,
    /// Requests that were repeated after a failure that may pass.
    pub retries: usize,
    /// Successful responses used (OAI-PMH pages, or days of Daily Papers).
    pub pages: usize,
    pub out: PathBuf,
    /// First day harvested, `YYYY-MM-DD`.
    pub from: String,
    /// Last day harvested, `YYYY-MM-DD`.
    pub until: String,
}

/// What a harvest remembers for the next run with the same output, stored as JSON beside
/// the output (see [`state_path`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// `arxiv` or `hf-daily`: a state file is only valid for the source that wrote it.
    pub source: String,
    /// The OAI-PMH set (arXiv only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Last day covered by the run, `YYYY-MM-DD`.
    pub until: String,
    /// Latest record datestamp seen (arXiv only), for the user's information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_datestamp: Option<String>,
}

/// The state file of output `out`: `out` with `.state.json` appended.
pub fn state_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".state.json");
    PathBuf::from(name)
}

/// Reads the state of output `out`; `None` when there is none yet.
///
/// # Errors
/// An unreadable or malformed state file.
pub fn read_state(out: &Path) -> Result<Option<State>, Error> {
    let path = state_path(out);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::State {
                path,
                reason: e.to_string(),
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::State {
            path,
            reason: format!("malformed ({e}); remove it or pass a start date"),
        })
}

fn write_state(out: &Path, state: &State) -> Result<(), Error> {
    let path = state_path(out);
    let mut text = serde_json::to_string_pretty(state).expect("a state serialises. This is a bug.");
    text.push('\n');
    let mut file = Output::create(&path)?;
    file.write(text.as_bytes())?;
    file.commit()
}

/// The start day of a run: the one given, else where the state of `out` says the last
/// run stopped (inclusive: records stamped on that day again are harmless, since the last
/// record of an id wins, while skipping the day could lose some).
fn start_day(
    flag: &str,
    given: Option<&str>,
    out: &Path,
    check: impl Fn(&State) -> Result<(), String>,
) -> Result<String, Error> {
    if let Some(day) = given {
        return parse_flag_day(flag, day);
    }
    match read_state(out)? {
        Some(state) => {
            check(&state).map_err(Error::Invalid)?;
            Ok(state.until)
        }
        None => Err(Error::Invalid(format!(
            "no start date: give --{flag}, or harvest into {} again once a run has \
             written its state file {}",
            out.display(),
            state_path(out).display()
        ))),
    }
}

/// Validates a day given as a flag: exactly `YYYY-MM-DD`, a real day.
fn parse_flag_day(flag: &str, s: &str) -> Result<String, Error> {
    match crate::text::date::parse_day(s) {
        Some(d) if d == s => Ok(d),
        _ => Err(Error::Invalid(format!(
            "--{flag} {s:?}: expected a day as YYYY-MM-DD"
        ))),
    }
}

/// Today in UTC, `YYYY-MM-DD`.
fn today() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()[..10].to_string()
}

/// The day after `day` (`YYYY-MM-DD`, already validated).
fn next_day(day: &str) -> String {
    let t = humantime::parse_rfc3339(&format!("{day}T00:00:00Z"))
        .expect("a validated day parses. This is a bug.");
    humantime::format_rfc3339_seconds(t + Duration::from_secs(86_400)).to_string()[..10].to_string()
}

/// The output file being written: a temporary file beside the target, renamed over it by
/// [`Output::commit`] and deleted if dropped before (an error, a panic).
struct Output {
    target: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
}

impl Output {
    fn create(target: &Path) -> Result<Output, Error> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let io = |source| Error::Write {
            path: target.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let name = target
            .file_name()
            .map(|n| format!(".{}.", n.to_string_lossy()))
            .unwrap_or_default();
        let file = tempfile::Builder::new()
            .prefix(&name)
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io)?;
        Ok(Output {
            target: target.to_path_buf(),
            file: BufWriter::new(file),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.file.write_all(bytes).map_err(|source| Error::Write {
            path: self.target.clone(),
            source,
        })
    }

    /// Writes one JSON object as a line.
    fn line(&mut self, record: &Map<String, Value>) -> Result<(), Error> {
        let mut text =
            serde_json::to_string(record).expect("a JSON map serialises. This is a bug.");
        text.push('\n');
        self.write(text.as_bytes())
    }

    /// Flushes, syncs and renames the file into place.
    fn commit(self) -> Result<(), Error> {
        let target = self.target;
        let io = |source| Error::Write {
            path: target.clone(),
            source,
        };
        let file = self.file.into_inner().map_err(|e| io(e.into_error()))?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(&target).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// A paper record in paperscope's JSON Lines shape; `extra` fields go at the top level,
/// where [`crate::corpus`] keeps them in `Paper::extra`.
struct Record {
    id: String,
    title: String,
    abstract_: String,
    authors: Vec<String>,
    published: Option<String>,
    categories: Vec<String>,
    url: String,
    extra: Map<String, Value>,
}

impl Record {
    fn into_json(self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), self.id.into());
        m.insert("title".into(), self.title.into());
        m.insert("abstract".into(), self.abstract_.into());
        m.insert("authors".into(), self.authors.into());
        if let Some(d) = self.published {
            m.insert("published".into(), d.into());
        }
        m.insert("categories".into(), self.categories.into());
        m.insert("url".into(), self.url.into());
        for (k, v) in self.extra {
            m.entry(k).or_insert(v);
        }
        m
    }
}

/// A deletion record, which `paperscope add` applies as a removal.
fn deletion(id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), id.into());
    m.insert("deleted".into(), true.into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_advance_across_months_and_leap_years() {
        assert_eq!(next_day("2024-02-28"), "2024-02-29");
        assert_eq!(next_day("2024-02-29"), "2024-03-01");
        assert_eq!(next_day("2025-12-31"), "2026-01-01");
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn flag_days_must_be_plain_days() {
        assert!(parse_flag_day("from", "2025-03-18").is_ok());
        for bad in ["2025-02-29", "2025-03-18T00:00:00Z", "2025-03", "yesterday"] {
            assert!(parse_flag_day("from", bad).unwrap_err().is_usage(), "{bad}");
        }
    }

    #[test]
    fn state_file_sits_beside_the_output() {
        assert_eq!(
            state_path(Path::new("feeds/cs.jsonl")),
            PathBuf::from("feeds/cs.jsonl.state.json")
        );
    }
}
