//! Reading paper collections from JSON Lines files, plain or gzipped.
//!
//! Three input formats are recognised, per file, from the first parsable record
//! (see [`Format::detect`]):
//!
//! * **paperscope JSONL** — `id`, `title`, `abstract`, optional `authors` (list),
//!   `published` or `listing_date`, `categories` (list), `url`; other fields are kept in
//!   [`Paper::extra`].
//! * **arXiv metadata snapshot** (the Kaggle dump) — `authors` is one string,
//!   `categories` a space-separated string, dates in `versions` / `update_date`.
//! * **BEIR `corpus.jsonl`** — `_id`, `title`, `text`.
//!
//! Bad input never aborts a build unless asked to ([`ReadOptions::strict`]): a malformed
//! line is reported as `file:line: reason`, skipped and counted. The rules:
//! a record with neither title nor abstract is skipped; a record without an abstract is
//! kept and embedded by its title alone; for duplicate ids the **last** record wins (a
//! corrected record appended to a feed replaces the earlier one, in place) and the
//! replacement is reported and counted; a record `{"id": ..., "deleted": true}` removes
//! the paper of that id (from what was read before it, and, for `paperscope add`, from
//! the index); an unparsable date is dropped with a warning (the paper is kept). All text
//! fields have their whitespace collapsed.
//! A record without a `url` whose id is an arXiv id ([`crate::paper::arxiv_id`]) gets
//! its arXiv abstract page (not for BEIR corpora), so the API, the CLI and the pages all
//! link to the source.

mod arxiv;
mod beir;
mod native;

use crate::paper::{self, normalize_whitespace, Paper, PaperId};
use crate::text::date;
use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Errors that stop reading. Per-line problems are [`Problem`]s instead, unless strict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: read error at line {line}: {source}")]
    Read {
        path: PathBuf,
        line: usize,
        source: std::io::Error,
    },
    /// A per-line problem that [`ReadOptions::strict`] turned into a failure.
    #[error("{0} (strict mode: aborting)")]
    Strict(Problem),
}

/// One input format. Detected per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Paperscope,
    ArxivSnapshot,
    Beir,
}

impl Format {
    /// Decides the format of a file from one of its records: `_id` marks BEIR; a string
    /// `authors`, a `versions` list or an `update_date` marks the arXiv snapshot; anything
    /// else is read as paperscope JSONL.
    pub fn detect(obj: &Map<String, Value>) -> Format {
        if obj.contains_key("_id") {
            Format::Beir
        } else if obj.get("authors").is_some_and(Value::is_string)
            || obj.contains_key("versions")
            || obj.contains_key("update_date")
        {
            Format::ArxivSnapshot
        } else {
            Format::Paperscope
        }
    }

    fn parse(self, obj: Map<String, Value>) -> Result<Record, String> {
        match self {
            Format::Paperscope => native::parse(obj),
            Format::ArxivSnapshot => arxiv::parse(obj),
            Format::Beir => beir::parse(obj),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Paperscope => "paperscope",
            Format::ArxivSnapshot => "arxiv-snapshot",
            Format::Beir => "beir",
        })
    }
}

/// What a format parser extracted from one line, before the shared normalisation.
struct Record {
    paper: Paper,
    /// A field problem that did not cost the record (e.g. a bad date), as a message.
    warning: Option<String>,
}

/// A problem with one input line.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
    /// Whether the record was dropped (`true`) or kept with the field fixed up.
    pub skipped: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

/// Options for [`read_files`].
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Treat any malformed or skipped line as fatal. Default: `false` (report and skip).
    pub strict: bool,
    /// Stop after this many accepted papers (all files together). Default: no limit.
    pub limit: Option<usize>,
}

/// The result of reading one or more files.
#[derive(Debug, Default)]
pub struct Corpus {
    /// The papers, each id once (its last record), in order of first appearance.
    pub papers: Vec<Paper>,
    /// Ids whose last record was a deletion (`{"id": ..., "deleted": true}`).
    pub deleted: Vec<PaperId>,
    pub report: ReadReport,
}

/// Records by id as they are read: the last one wins, a deletion leaves `None`.
#[derive(Default)]
struct Latest {
    slots: Vec<(PaperId, Option<Paper>)>,
    by_id: HashMap<String, usize>,
    papers: usize,
}

impl Latest {
    /// Sets the record of `id`; returns whether a paper of that id was there.
    fn set(&mut self, id: PaperId, paper: Option<Paper>) -> bool {
        let new = usize::from(paper.is_some());
        match self.by_id.get(&id.0) {
            Some(&i) => {
                let had = self.slots[i].1.is_some();
                self.papers = self.papers + new - usize::from(had);
                self.slots[i].1 = paper;
                had
            }
            None => {
                self.by_id.insert(id.0.clone(), self.slots.len());
                self.slots.push((id, paper));
                self.papers += new;
                false
            }
        }
    }
}

/// Counts and problems of a read, for the user.
#[derive(Debug, Default)]
pub struct ReadReport {
    /// Non-blank lines looked at.
    pub lines: usize,
    /// Lines skipped for any reason (malformed, empty record, duplicate id).
    pub skipped: usize,
    /// Records that replaced an earlier record of the same id (last record wins).
    pub duplicates: usize,
    /// Deletion records (`"deleted": true`).
    pub deletions: usize,
    /// Every problem, in input order.
    pub problems: Vec<Problem>,
    /// The format detected for each file.
    pub formats: Vec<(PathBuf, Format)>,
}

/// Reads paper records from `paths` in order (each plain or `.gz` JSON Lines).
///
/// # Errors
/// An unreadable file, or with `strict`, the first problem line.
pub fn read_files<P: AsRef<Path>>(paths: &[P], opts: &ReadOptions) -> Result<Corpus, Error> {
    let mut report = ReadReport::default();
    let mut latest = Latest::default();
    for path in paths {
        if opts.limit.is_some_and(|l| latest.papers >= l) {
            break;
        }
        read_one(path.as_ref(), opts, &mut latest, &mut report)?;
    }
    let mut corpus = Corpus {
        report,
        ..Default::default()
    };
    for (id, paper) in latest.slots {
        match paper {
            Some(p) => corpus.papers.push(p),
            None => corpus.deleted.push(id),
        }
    }
    Ok(corpus)
}

fn open(path: &Path) -> Result<Box<dyn BufRead>, Error> {
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, reader)))
}

fn read_one(
    path: &Path,
    opts: &ReadOptions,
    latest: &mut Latest,
    report: &mut ReadReport,
) -> Result<(), Error> {
    let mut reader = open(path)?;
    let mut format: Option<Format> = None;
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        if opts.limit.is_some_and(|l| latest.papers >= l) {
            break;
        }
        buf.clear();
        let n = match reader.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            // A damaged file (a truncated .gz, a read error): with --strict it stops the
            // build; otherwise the records read so far are kept and the rest of this file
            // is reported as lost.
            Err(source) if opts.strict => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    line: line_no + 1,
                    source,
                })
            }
            Err(e) => {
                report.problems.push(Problem {
                    path: path.to_path_buf(),
                    line: line_no + 1,
                    reason: format!("cannot read on ({e}); the rest of this file is skipped"),
                    skipped: true,
                });
                report.skipped += 1;
                break;
            }
        };
        if n == 0 {
            break;
        }
        line_no += 1;
        let utf8 = std::str::from_utf8(&buf).is_ok();
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        report.lines += 1;
        let mut problem = |reason: String, skipped: bool| -> Result<(), Error> {
            let p = Problem {
                path: path.to_path_buf(),
                line: line_no,
                reason,
                skipped,
            };
            if opts.strict {
                return Err(Error::Strict(p));
            }
            if skipped {
                report.skipped += 1;
            }
            report.problems.push(p);
            Ok(())
        };
        if !utf8 {
            problem(
                "invalid UTF-8 (the bad bytes were replaced by U+FFFD)".into(),
                false,
            )?;
        }
        let obj = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(obj)) => obj,
            Ok(other) => {
                problem(
                    format!("expected a JSON object, got {}", kind(&other)),
                    true,
                )?;
                continue;
            }
            Err(e) => {
                problem(format!("invalid JSON: {e}"), true)?;
                continue;
            }
        };
        if obj.get("deleted") == Some(&Value::Bool(true)) {
            let id = ["id", "_id"].iter().find_map(|k| match obj.get(*k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            });
            match id {
                Some(id) => {
                    latest.set(PaperId(id), None);
                    report.deletions += 1;
                }
                None => problem("a deletion record needs an \"id\"".into(), true)?,
            }
            continue;
        }
        let fmt = *format.get_or_insert_with(|| {
            let f = Format::detect(&obj);
            report.formats.push((path.to_path_buf(), f));
            f
        });
        let Record { mut paper, warning } = match fmt.parse(obj) {
            Ok(r) => r,
            Err(reason) => {
                problem(reason, true)?;
                continue;
            }
        };
        normalize(&mut paper, fmt);
        if paper.id.0.is_empty() {
            problem("empty id".into(), true)?;
            continue;
        }
        if paper.id.0.len() > MAX_ID_BYTES {
            problem(
                format!(
                    "id of {} bytes, longer than {MAX_ID_BYTES}",
                    paper.id.0.len()
                ),
                true,
            )?;
            continue;
        }
        for (field, text) in [
            ("title", &mut paper.title),
            ("abstract", &mut paper.abstract_),
        ] {
            if text.len() > MAX_FIELD_BYTES {
                let was = text.len();
                cut_at_char(text, MAX_FIELD_BYTES);
                problem(
                    format!(
                        "paper {}: {field} of {was} bytes cut to {}",
                        paper.id,
                        text.len()
                    ),
                    false,
                )?;
            }
        }
        if paper.title.is_empty() && paper.abstract_.is_empty() {
            problem(
                format!("paper {}: no title and no abstract", paper.id),
                true,
            )?;
            continue;
        }
        if let Some(w) = warning {
            problem(w, false)?;
        }
        let id = paper.id.clone();
        if latest.set(id.clone(), Some(paper)) {
            problem(
                format!(
                    "duplicate id {id}: this record replaces the earlier one (last record wins)"
                ),
                false,
            )?;
            report.duplicates += 1;
        }
    }
    Ok(())
}

/// Longest id accepted, in bytes: ids are keys, shown in every result line and URL; a
/// record with a longer one is skipped and reported.
pub const MAX_ID_BYTES: usize = 1_024;

/// Longest title or abstract kept, in bytes (64 KiB, some 30 times the longest arXiv
/// abstract): a longer one is cut, with a warning. Why: everything downstream (the keyword
/// index, explanations' sentence splitting, the records file) is linear in it, and one
/// 50 MB abstract cost gigabytes and minutes.
pub const MAX_FIELD_BYTES: usize = 64 << 10;

/// Truncates `s` to at most `max` bytes, at a character boundary.
fn cut_at_char(s: &mut String, max: usize) {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

fn normalize(p: &mut Paper, format: Format) {
    p.id.0 = p.id.0.trim().to_string();
    // arXiv ids get their abstract page when the record names no url. BEIR ids never do:
    // BEIR corpora are not arXiv's, whatever an id looks like.
    if p.url.as_deref().is_none_or(|u| u.trim().is_empty()) && format != Format::Beir {
        p.url = paper::arxiv_id(&p.id.0).map(paper::arxiv_abs_url);
    }
    p.title = normalize_whitespace(&p.title);
    p.abstract_ = normalize_whitespace(&p.abstract_);
    p.authors = p
        .authors
        .iter()
        .map(|a| normalize_whitespace(a))
        .filter(|a| !a.is_empty())
        .collect();
    p.categories = p
        .categories
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---- helpers shared by the format parsers ----

/// Takes a string field; numbers are accepted as ids (BEIR and some dumps use them).
fn take_string(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) if key.ends_with("id") => Ok(Some(n.to_string())),
        Some(other) => Err(format!(
            "field '{key}' must be a string, got {}",
            kind(&other)
        )),
    }
}

fn take_string_list(obj: &mut Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!(
                    "field '{key}' must be a list of strings, found {}",
                    kind(&other)
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "field '{key}' must be a list of strings, got {}",
            kind(&other)
        )),
    }
}

/// Takes a date field: `Ok(None)` when absent, `Err(message)` when present but invalid
/// (the caller keeps the paper and reports the message as a warning).
fn take_date(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => date::parse_day(&s)
            .map(Some)
            .ok_or_else(|| format!("invalid date '{s}' in '{key}' (date dropped, paper kept)")),
        Some(other) => Err(format!(
            "field '{key}' must be a YYYY-MM-DD string, got {} (date dropped, paper kept)",
            kind(&other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        let obj = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap();
        assert_eq!(
            Format::detect(&obj(r#"{"_id":"1","text":"x"}"#)),
            Format::Beir
        );
        assert_eq!(
            Format::detect(&obj(r#"{"id":"1","authors":"A and B"}"#)),
            Format::ArxivSnapshot
        );
        assert_eq!(
            Format::detect(&obj(r#"{"id":"1","authors":["A"]}"#)),
            Format::Paperscope
        );
    }
}
