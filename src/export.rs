//! Citation export of a list of papers: BibTeX, CSV and RIS.
//!
//! One module for every front end: the command line (`paperscope search --format`) and
//! the HTTP service (`/export`, the paper page's BibTeX snippet) only pick the papers and
//! the [`Format`]; what a record looks like in each format is decided here.
//!
//! **Safety of the output.** Records come from files anyone may have written, so each
//! format escapes what its readers would otherwise interpret: BibTeX's special characters
//! (`{ } \ % & $ # _ ^ ~`, so a title cannot close its field or run a macro), CSV's quotes
//! and separators (RFC 4180) plus a leading `'` before a cell that starts like a
//! spreadsheet formula (`=`, `+`, `-`, `@`; OWASP's advice against CSV injection), and
//! RIS's line structure (the readers collapse whitespace, so no field holds a newline;
//! this module does not rely on it and flattens any it meets). A record's own url is
//! exported only when it is `http(s)`: reference managers make it a link.

use crate::paper::Paper;

/// The paper's source url, if it is a web link.
fn web_url(p: &Paper) -> Option<String> {
    p.source_url()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Write};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// BibTeX `@misc` entries (arXiv's `eprint`/`archivePrefix` fields for arXiv ids).
    Bibtex,
    /// One header line, then one row per paper: id, title, authors (`; `-separated), date,
    /// categories (space-separated), url, pdf, abstract.
    Csv,
    /// RIS (`TY  - ...` to `ER  - `), as reference managers import it.
    Ris,
}

/// An unknown format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format '{0}': expected bibtex, csv or ris")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    /// `bibtex` (or `bib`), `csv` or `ris`.
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s {
            "bibtex" | "bib" => Ok(Format::Bibtex),
            "csv" => Ok(Format::Csv),
            "ris" => Ok(Format::Ris),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

impl Format {
    /// The MIME type of a file in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Bibtex => "application/x-bibtex; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ris => "application/x-research-info-systems; charset=utf-8",
        }
    }

    /// The usual file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Bibtex => "bib",
            Format::Csv => "csv",
            Format::Ris => "ris",
        }
    }
}

/// Writes `papers`, in order, in `format`.
///
/// # Errors
/// Errors of `out`.
pub fn write<'a>(
    out: &mut impl Write,
    papers: impl IntoIterator<Item = &'a Paper>,
    format: Format,
) -> io::Result<()> {
    let mut keys = HashSet::new();
    if format == Format::Csv {
        out.write_all(b"id,title,authors,date,categories,url,pdf,abstract\r\n")?;
    }
    for p in papers {
        let text = match format {
            Format::Bibtex => bibtex_entry(p, &mut keys),
            Format::Csv => csv_row(p),
            Format::Ris => ris_record(p),
        };
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// `papers` in `format`, as one string.
pub fn to_string<'a>(papers: impl IntoIterator<Item = &'a Paper>, format: Format) -> String {
    let mut buf = Vec::new();
    write(&mut buf, papers, format).expect("writing to a Vec cannot fail. This is a bug.");
    String::from_utf8(buf).expect("every format writes UTF-8. This is a bug.")
}

/// The BibTeX entry of one paper (the paper page's snippet).
pub fn bibtex(p: &Paper) -> String {
    bibtex_entry(p, &mut HashSet::new())
}

/// A citation key: the id with characters BibTeX keys cannot hold replaced by `_`, made
/// unique within one export by a suffix.
fn cite_key(p: &Paper, used: &mut HashSet<String>) -> String {
    let base: String =
        p.id.0
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | ':' => c,
                _ => '_',
            })
            .collect();
    let mut key = base.clone();
    let mut n = 1;
    while !used.insert(key.clone()) {
        n += 1;
        key = format!("{base}_{n}");
    }
    key
}

/// Escapes text for a brace-delimited BibTeX field.
fn tex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '{' | '}' | '%' | '&' | '$' | '#' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '^' => out.push_str("\\^{}"),
            '~' => out.push_str("\\~{}"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn bibtex_entry(p: &Paper, used: &mut HashSet<String>) -> String {
    let mut e = format!("@misc{{{},\n", cite_key(p, used));
    // `value` is TeX already (escaped by the caller).
    fn raw(e: &mut String, name: &str, value: &str) {
        let _ = writeln!(e, "  {name:<13} = {{{value}}},");
    }
    fn field(e: &mut String, name: &str, value: &str) {
        raw(e, name, &tex(value))
    }
    if !p.title.is_empty() {
        field(&mut e, "title", &p.title);
    }
    if !p.authors.is_empty() {
        // "and" separates names; a name holding " and " is braced to stay one name.
        let names: Vec<String> = p
            .authors
            .iter()
            .map(|a| match a.contains(" and ") {
                true => format!("{{{}}}", tex(a)),
                false => tex(a),
            })
            .collect();
        raw(&mut e, "author", &names.join(" and "));
    }
    if let Some(d) = &p.date {
        field(&mut e, "year", &d[..4]);
        field(&mut e, "month", &d[5..7]);
    }
    if let Some(id) = p.arxiv_id() {
        field(&mut e, "eprint", id);
        field(&mut e, "archiveprefix", "arXiv");
        if let Some(c) = p.categories.first() {
            field(&mut e, "primaryclass", c);
        }
    }
    if let Some(url) = web_url(p) {
        field(&mut e, "url", &url);
    }
    e.push_str("}\n");
    e
}

/// One CSV cell, RFC 4180 quoted when needed, defused when it starts like a formula.
fn csv_cell(s: &str) -> String {
    let defused = match s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        true => format!("'{s}"),
        false => s.to_string(),
    };
    match defused.contains([',', '"', '\n', '\r']) {
        true => format!("\"{}\"", defused.replace('"', "\"\"")),
        false => defused,
    }
}

fn csv_row(p: &Paper) -> String {
    let cells = [
        p.id.0.clone(),
        p.title.clone(),
        p.authors.join("; "),
        p.date.clone().unwrap_or_default(),
        p.categories.join(" "),
        web_url(p).unwrap_or_default(),
        p.pdf_url().unwrap_or_default(),
        p.abstract_.clone(),
    ];
    let mut row = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    row.push_str("\r\n");
    row
}

fn ris_record(p: &Paper) -> String {
    let mut r = String::new();
    let mut tag = |t: &str, v: &str| {
        let v = v.replace(['\n', '\r'], " ");
        if !v.is_empty() {
            let _ = write!(r, "{t}  - {v}\r\n");
        }
    };
    // Unpublished work: what reference managers call a preprint.
    tag("TY", "UNPB");
    tag("ID", &p.id.0);
    tag("TI", &p.title);
    for a in &p.authors {
        tag("AU", a);
    }
    if let Some(d) = &p.date {
        tag("PY", &d[..4]);
        tag("DA", &d.replace('-', "/"));
    }
    tag("AB", &p.abstract_);
    for c in &p.categories {
        tag("KW", c);
    }
    if let Some(url) = web_url(p) {
        tag("UR", &url);
    }
    if let Some(pdf) = p.pdf_url() {
        tag("L1", &pdf);
    }
    r.push_str("ER  - \r\n");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(id: &str, title: &str) -> Paper {
        Paper {
            id: id.into(),
            title: title.into(),
            abstract_: "We study {things} at 50% cost, e.g. $x_1$.".into(),
            authors: vec!["Ada Lovelace".into(), "Rock and Roll Band".into()],
            date: Some("2025-03-17".into()),
            categories: vec!["cs.CL".into(), "cs.AI".into()],
            url: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn bibtex_escapes_and_links_arxiv() {
        let b = bibtex(&paper(
            "2503.13531v2",
            "A } closing brace & 100% \\input{x}",
        ));
        assert!(b.starts_with("@misc{2503.13531v2,\n"), "{b}");
        assert!(
            b.contains(
                "title         = {A \\} closing brace \\& 100\\% \\textbackslash{}input\\{x\\}},"
            ),
            "{b}"
        );
        assert!(
            b.contains("author        = {Ada Lovelace and {Rock and Roll Band}},"),
            "{b}"
        );
        assert!(b.contains("eprint        = {2503.13531v2},"), "{b}");
        assert!(b.contains("primaryclass  = {cs.CL},"), "{b}");
        assert!(b.contains("url           = {https://arxiv.org/abs/2503.13531v2},"));
        assert!(b.contains("year          = {2025},") && b.ends_with("}\n"));
        // Braces stay balanced whatever the title holds.
        let opens = b.matches('{').count() - b.matches("\\{").count();
        let closes = b.matches('}').count() - b.matches("\\}").count();
        assert_eq!(opens, closes, "{b}");
        let seed = bibtex(&paper("seed-007", "t"));
        assert!(!seed.contains("eprint") && !seed.contains("url"), "{seed}");
        let mut evil = paper("x", "t");
        evil.url = Some("javascript:alert(1)".into());
        assert!(!bibtex(&evil).contains("javascript"));
        assert!(!to_string([&evil], Format::Ris).contains("javascript"));
    }

    #[test]
    fn keys_are_unique_within_an_export() {
        let (a, b) = (paper("hep-th/9901001", "x"), paper("hep-th_9901001", "y"));
        let out = to_string([&a, &b], Format::Bibtex);
        assert!(out.contains("@misc{hep-th_9901001,\n"), "{out}");
        assert!(out.contains("@misc{hep-th_9901001_2,\n"), "{out}");
    }

    #[test]
    fn csv_quotes_and_defuses() {
        let p = paper("seed-1", "=HYPERLINK(\"http://x\"), \"quoted\"");
        let out = to_string([&p], Format::Csv);
        let mut lines = out.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "id,title,authors,date,categories,url,pdf,abstract"
        );
        assert_eq!(
            lines.next().unwrap(),
            "seed-1,\"'=HYPERLINK(\"\"http://x\"\"), \"\"quoted\"\"\",Ada Lovelace; Rock and Roll Band,2025-03-17,cs.CL cs.AI,,,\"We study {things} at 50% cost, e.g. $x_1$.\""
        );
    }

    #[test]
    fn ris_has_one_tag_per_line() {
        let mut p = paper("2503.13531", "Line\nbreak");
        p.authors.push("Third\rAuthor".into());
        let out = to_string([&p], Format::Ris);
        assert!(out.starts_with("TY  - UNPB\r\nID  - 2503.13531\r\nTI  - Line break\r\n"));
        assert!(out.contains("AU  - Third Author\r\n"), "{out}");
        assert!(out.contains("DA  - 2025/03/17\r\n"), "{out}");
        assert!(
            out.contains("L1  - https://arxiv.org/pdf/2503.13531\r\n"),
            "{out}"
        );
        assert!(out.ends_with("ER  - \r\n"));
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert_eq!(&line[2..6], "  - ", "{line:?}");
        }
    }

    #[test]
    fn parses_names() {
        assert_eq!("bib".parse(), Ok(Format::Bibtex));
        assert_eq!("ris".parse(), Ok(Format::Ris));
        assert!("pdf".parse::<Format>().is_err());
    }
}
