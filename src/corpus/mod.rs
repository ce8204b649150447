//! Reading paper collections: JSON Lines files (plain or gzipped) and reference
//! libraries (BibTeX, CSL-JSON, RIS).
//!
//! Three JSON Lines formats are recognised, per file, from the first parsable record
//! (see [`Format::detect`]):
//!
//! * **paperscope JSONL** — `id`, `title`, `abstract`, optional `authors` (list),
//!   `published` or `listing_date`, `categories` (list), `url`; other fields are kept in
//!   [`Paper::extra`].
//! * **arXiv metadata snapshot** (the Kaggle dump) — `authors` is one string,
//!   `categories` a space-separated string, dates in `versions` / `update_date`.
//! * **BEIR `corpus.jsonl`** — `_id`, `title`, `text`.
//!
//! Reference libraries are whole-file formats, recognised by extension, else by their
//! first non-blank character ([`Format::sniff`]): **BibTeX** (`.bib`, `.bibtex`; [`bibtex`]),
//! **CSL-JSON** (`.csljson`, or a `.json` that is one array; [`csl`]) and **RIS** (`.ris`;
//! [`ris`]). Their entries become the same [`Paper`]s, through the same checks, and are
//! reported by the line where the entry starts. Their ids follow one rule
//! ([`reference_id`]): the arXiv id, else the DOI, else the library's own key.
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
mod bibtex;
mod csl;
mod native;
mod ris;

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
    Bibtex,
    CslJson,
    Ris,
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

    /// The whole-file format of `path`, from its extension (a `.gz` suffix aside), else
    /// from `head`, the start of its content: `@` opens BibTeX, `TY  - ` RIS, and `[` a
    /// CSL-JSON array (where a `.json` file could also be JSON Lines, only `[` decides).
    /// `None` for JSON Lines, read record by record.
    pub fn sniff(path: &Path, head: &[u8]) -> Option<Format> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase());
        let name = name.as_deref().unwrap_or("");
        let name = name.strip_suffix(".gz").unwrap_or(name);
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
        let first = head.iter().copied().find(|b| !b.is_ascii_whitespace());
        match ext {
            "bib" | "bibtex" => Some(Format::Bibtex),
            "ris" => Some(Format::Ris),
            "csljson" => Some(Format::CslJson),
            "json" => (first == Some(b'[')).then_some(Format::CslJson),
            "jsonl" | "ndjson" => None,
            _ => match first {
                Some(b'@') => Some(Format::Bibtex),
                Some(b'[') => Some(Format::CslJson),
                Some(b'T') if head.trim_ascii_start().starts_with(b"TY  -") => Some(Format::Ris),
                _ => None,
            },
        }
    }

    fn parse(self, obj: Map<String, Value>) -> Result<Record, String> {
        match self {
            Format::Paperscope => native::parse(obj),
            Format::ArxivSnapshot => arxiv::parse(obj),
            Format::Beir => beir::parse(obj),
            Format::Bibtex | Format::CslJson | Format::Ris => {
                unreachable!("whole-file formats are not read line by line. This is a bug.")
            }
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Paperscope => "paperscope",
            Format::ArxivSnapshot => "arxiv-snapshot",
            Format::Beir => "beir",
            Format::Bibtex => "bibtex",
            Format::CslJson => "csl-json",
            Format::Ris => "ris",
        })
    }
}

/// What a format parser extracted from one line, before the shared normalisation.
#[derive(Debug)]
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
    /// Non-blank lines (JSON Lines) and entries (reference libraries) looked at.
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

/// Where the records of one file go: the shared checks, then [`Latest`], with every
/// problem reported at its line (or, under `strict`, returned as the error).
struct Sink<'a> {
    path: &'a Path,
    opts: &'a ReadOptions,
    latest: &'a mut Latest,
    report: &'a mut ReadReport,
}

impl Sink<'_> {
    fn full(&self) -> bool {
        self.opts.limit.is_some_and(|l| self.latest.papers >= l)
    }

    fn problem(&mut self, line: usize, reason: String, skipped: bool) -> Result<(), Error> {
        let p = Problem {
            path: self.path.to_path_buf(),
            line,
            reason,
            skipped,
        };
        if self.opts.strict {
            return Err(Error::Strict(p));
        }
        if skipped {
            self.report.skipped += 1;
        }
        self.report.problems.push(p);
        Ok(())
    }

    /// Normalises a parsed record, checks it and keeps it (last record of an id wins).
    fn admit(&mut self, line: usize, fmt: Format, record: Record) -> Result<(), Error> {
        let Record { mut paper, warning } = record;
        normalize(&mut paper, fmt);
        if paper.id.0.is_empty() {
            return self.problem(line, "empty id".into(), true);
        }
        if paper.id.0.len() > MAX_ID_BYTES {
            let reason = format!(
                "id of {} bytes, longer than {MAX_ID_BYTES}",
                paper.id.0.len()
            );
            return self.problem(line, reason, true);
        }
        for (field, text) in [
            ("title", &mut paper.title),
            ("abstract", &mut paper.abstract_),
        ] {
            if text.len() > MAX_FIELD_BYTES {
                let was = text.len();
                cut_at_char(text, MAX_FIELD_BYTES);
                let reason = format!(
                    "paper {}: {field} of {was} bytes cut to {}",
                    paper.id,
                    text.len()
                );
                self.problem(line, reason, false)?;
            }
        }
        if paper.title.is_empty() && paper.abstract_.is_empty() {
            let reason = format!("paper {}: no title and no abstract", paper.id);
            return self.problem(line, reason, true);
        }
        if let Some(w) = warning {
            self.problem(line, w, false)?;
        }
        let id = paper.id.clone();
        if self.latest.set(id.clone(), Some(paper)) {
            self.problem(
                line,
                format!(
                    "duplicate id {id}: this record replaces the earlier one (last record wins)"
                ),
                false,
            )?;
            self.report.duplicates += 1;
        }
        Ok(())
    }
}

/// One entry of a whole-file format (BibTeX, CSL-JSON, RIS): the line where it starts and
/// what its parser made of it (`Err`: why it is skipped).
struct WholeFileEntry {
    line: usize,
    record: Result<Record, String>,
}

fn read_one(
    path: &Path,
    opts: &ReadOptions,
    latest: &mut Latest,
    report: &mut ReadReport,
) -> Result<(), Error> {
    let mut reader = open(path)?;
    let head = reader.fill_buf().map_err(|source| Error::Read {
        path: path.to_path_buf(),
        line: 1,
        source,
    })?;
    let whole = Format::sniff(path, head);
    let mut sink = Sink {
        path,
        opts,
        latest,
        report,
    };
    match whole {
        Some(fmt) => read_whole(reader, fmt, &mut sink),
        None => read_lines(reader, &mut sink),
    }
}

/// Reads a reference library: the whole file, then its entries in order.
fn read_whole(mut reader: Box<dyn BufRead>, fmt: Format, sink: &mut Sink) -> Result<(), Error> {
    let mut bytes = Vec::new();
    if let Err(source) = reader.read_to_end(&mut bytes) {
        // As for JSON Lines: a damaged file stops a strict build; otherwise what was read
        // is imported and the loss reported.
        let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        if sink.opts.strict {
            return Err(Error::Read {
                path: sink.path.to_path_buf(),
                line,
                source,
            });
        }
        sink.problem(
            line,
            format!("cannot read on ({source}); the rest of this file is skipped"),
            true,
        )?;
    }
    sink.report.formats.push((sink.path.to_path_buf(), fmt));
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let bytes = e.into_bytes();
            let bad = std::str::from_utf8(&bytes)
                .map_err(|e| e.valid_up_to())
                .err();
            let line = bad.map_or(1, |at| {
                bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1
            });
            sink.problem(
                line,
                "invalid UTF-8 (the bad bytes were replaced by U+FFFD)".into(),
                false,
            )?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    let entries = match fmt {
        Format::Bibtex => bibtex::parse(&text),
        Format::CslJson => csl::parse(&text),
        Format::Ris => ris::parse(&text),
        Format::Paperscope | Format::ArxivSnapshot | Format::Beir => {
            unreachable!("JSON Lines are read line by line. This is a bug.")
        }
    };
    for entry in entries {
        if sink.full() {
            break;
        }
        sink.report.lines += 1;
        match entry.record {
            Ok(record) => sink.admit(entry.line, fmt, record)?,
            Err(reason) => sink.problem(entry.line, reason, true)?,
        }
    }
    Ok(())
}

/// Reads JSON Lines, one record a line, the format decided by the first record.
fn read_lines(mut reader: Box<dyn BufRead>, sink: &mut Sink) -> Result<(), Error> {
    let path = sink.path;
    let mut format: Option<Format> = None;
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        if sink.full() {
            break;
        }
        buf.clear();
        let n = match reader.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            // A damaged file (a truncated .gz, a read error): with --strict it stops the
            // build; otherwise the records read so far are kept and the rest of this file
            // is reported as lost.
            Err(source) if sink.opts.strict => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    line: line_no + 1,
                    source,
                })
            }
            Err(e) => {
                sink.problem(
                    line_no + 1,
                    format!("cannot read on ({e}); the rest of this file is skipped"),
                    true,
                )?;
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
        sink.report.lines += 1;
        if !utf8 {
            sink.problem(
                line_no,
                "invalid UTF-8 (the bad bytes were replaced by U+FFFD)".into(),
                false,
            )?;
        }
        let obj = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(obj)) => obj,
            Ok(other) => {
                sink.problem(
                    line_no,
                    format!("expected a JSON object, got {}", kind(&other)),
                    true,
                )?;
                continue;
            }
            Err(e) => {
                sink.problem(line_no, format!("invalid JSON: {e}"), true)?;
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
                    sink.latest.set(PaperId(id), None);
                    sink.report.deletions += 1;
                }
                None => sink.problem(line_no, "a deletion record needs an \"id\"".into(), true)?,
            }
            continue;
        }
        let fmt = *format.get_or_insert_with(|| {
            let f = Format::detect(&obj);
            sink.report.formats.push((path.to_path_buf(), f));
            f
        });
        match fmt.parse(obj) {
            Ok(record) => sink.admit(line_no, fmt, record)?,
            Err(reason) => sink.problem(line_no, reason, true)?,
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

/// A `YYYY-MM-DD` day from a reference's date parts. A missing month or day is the first
/// one (`2017` → `2017-01-01`, `2017-12` → `2017-12-01`): a paper's date is a day, and the
/// first day keeps the paper inside a `--from 2017` / `--to 2017-12` filter of its period.
/// `None` for a day that does not exist or a year outside 1000..=9999.
fn day_from_parts(year: i32, month: Option<u32>, day: Option<u32>) -> Option<String> {
    if !(1000..=9999).contains(&year) || (month.is_none() && day.is_some()) {
        return None;
    }
    let text = match (month, day) {
        (Some(m), Some(d)) => format!("{year:04}-{m:02}-{d:02}"),
        (Some(m), None) => format!("{year:04}-{m:02}"),
        _ => format!("{year:04}"),
    };
    let (y, m, d) = date::Period::parse(&text)?.first_day();
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// The id of an imported reference: its arXiv id (without version) when it has one,
/// else its DOI (lower-cased, without a `https://doi.org/` or `doi:` prefix), else the
/// library's own key (citation key, CSL `id`, RIS `ID`). Why this order: one paper gets
/// one id whichever library it comes from, and arXiv ids link to arXiv and match the
/// arXiv feeds' records, so a preprint imported twice is one paper.
///
/// The arXiv id is taken from, in order: an arXiv `eprint`, an arXiv DOI
/// (`10.48550/arXiv.2206.07697`), an arxiv.org URL (`/abs/` or `/pdf/`), and an
/// `arXiv:ID` token in one of `hints` (Zotero's `number`, Google Scholar's journal
/// "arXiv preprint arXiv:1706.03762").
fn reference_id(
    arxiv_eprint: Option<&str>,
    doi: Option<&str>,
    url: Option<&str>,
    hints: &[Option<&str>],
    key: Option<&str>,
) -> Option<String> {
    let doi = doi.map(unprefixed_doi).filter(|d| !d.is_empty());
    let from_doi = doi.and_then(|d| {
        const ARXIV: &str = "10.48550/arxiv.";
        d.get(..ARXIV.len())
            .filter(|p| p.eq_ignore_ascii_case(ARXIV))
            .and_then(|_| bare_arxiv(&d[ARXIV.len()..]))
    });
    let from_url = url.and_then(|u| {
        let (_, rest) = u.split_once("arxiv.org/")?;
        let rest = rest
            .strip_prefix("abs/")
            .or_else(|| rest.strip_prefix("pdf/"))?;
        let rest = rest.trim_end_matches('/');
        bare_arxiv(rest.strip_suffix(".pdf").unwrap_or(rest))
    });
    let from_hints = || {
        hints.iter().flatten().find_map(|h| {
            let at = h.to_ascii_lowercase().find("arxiv:")?;
            let token = h[at + 6..].split_whitespace().next()?;
            bare_arxiv(token.trim_end_matches([',', '.', ';', ')', ']']))
        })
    };
    arxiv_eprint
        .and_then(bare_arxiv)
        .or(from_doi)
        .or(from_url)
        .or_else(from_hints)
        .or_else(|| doi.map(str::to_lowercase))
        .or_else(|| {
            key.map(str::trim)
                .filter(|k| !k.is_empty())
                .map(String::from)
        })
}

/// `s` as an arXiv id without `arXiv:` prefix and version, if it is one.
fn bare_arxiv(s: &str) -> Option<String> {
    let s = s.trim();
    let s = match s.get(..6) {
        Some(p) if p.eq_ignore_ascii_case("arxiv:") => &s[6..],
        _ => s,
    };
    let id = paper::arxiv_id(s)?;
    let bare = match id.rfind('v') {
        Some(i) if i + 1 < id.len() && id[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &id[..i],
        _ => id,
    };
    Some(bare.to_string())
}

/// A DOI without resolver prefix (`https://doi.org/`, `doi:`), trimmed, case kept.
fn unprefixed_doi(doi: &str) -> &str {
    let d = doi.trim();
    [
        "https://doi.org/",
        "http://doi.org/",
        "https://dx.doi.org/",
        "http://dx.doi.org/",
        "doi:",
    ]
    .iter()
    .find_map(|p| {
        d.get(..p.len())
            .filter(|head| head.eq_ignore_ascii_case(p))
            .map(|_| &d[p.len()..])
    })
    .unwrap_or(d)
    .trim()
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

    #[test]
    fn whole_file_formats_by_extension_then_content() {
        let sniff = |name: &str, head: &str| Format::sniff(Path::new(name), head.as_bytes());
        assert_eq!(sniff("lib.bib", "% x"), Some(Format::Bibtex));
        assert_eq!(sniff("lib.BIB.gz", ""), Some(Format::Bibtex));
        assert_eq!(sniff("lib.ris", ""), Some(Format::Ris));
        assert_eq!(sniff("lib.csljson", "{"), Some(Format::CslJson));
        assert_eq!(sniff("zotero.json", "\u{feff}\n  ["), Some(Format::CslJson));
        assert_eq!(sniff("feed.json", "{\"id\": 1}"), None);
        assert_eq!(sniff("feed.jsonl", "["), None);
        assert_eq!(sniff("export.txt", "\n@article{k,"), Some(Format::Bibtex));
        assert_eq!(sniff("export", "TY  - JOUR"), Some(Format::Ris));
        assert_eq!(sniff("papers", "{\"id\": 1}"), None);
    }

    #[test]
    fn reference_ids_follow_arxiv_then_doi_then_key() {
        let id = |e: Option<&str>, d: Option<&str>, u: Option<&str>, h: Option<&str>| {
            reference_id(e, d, u, &[h], Some("key2020"))
        };
        assert_eq!(
            id(Some("arXiv:1706.03762v5"), None, None, None).unwrap(),
            "1706.03762"
        );
        assert_eq!(
            id(Some("math.GT/0309136v1"), None, None, None).unwrap(),
            "math.GT/0309136"
        );
        assert_eq!(
            id(
                None,
                Some("https://doi.org/10.48550/arXiv.2205.06643"),
                None,
                None
            )
            .unwrap(),
            "2205.06643"
        );
        assert_eq!(
            id(
                None,
                None,
                Some("https://arxiv.org/pdf/2306.13455v2.pdf"),
                None
            )
            .unwrap(),
            "2306.13455"
        );
        assert_eq!(
            id(None, None, None, Some("arXiv preprint arXiv:1810.04805")).unwrap(),
            "1810.04805"
        );
        assert_eq!(
            id(None, Some("doi:10.1038/Nature14539"), None, None).unwrap(),
            "10.1038/nature14539"
        );
        assert_eq!(
            id(Some("not-an-id"), None, Some("https://example.org"), None).unwrap(),
            "key2020"
        );
        assert_eq!(reference_id(None, Some("  "), None, &[], None), None);
    }

    #[test]
    fn dates_from_parts_are_real_days() {
        assert_eq!(
            day_from_parts(2017, None, None).as_deref(),
            Some("2017-01-01")
        );
        assert_eq!(
            day_from_parts(2017, Some(12), None).as_deref(),
            Some("2017-12-01")
        );
        assert_eq!(
            day_from_parts(2024, Some(2), Some(29)).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(day_from_parts(2023, Some(2), Some(29)), None);
        assert_eq!(day_from_parts(2023, None, Some(3)), None);
        assert_eq!(day_from_parts(99, None, None), None);
    }
}
