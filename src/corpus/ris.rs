//! RIS (`TY  - JOUR` … `ER  - `), as Zotero, EndNote, Mendeley, publishers and DBLP
//! export it, with the tags read by the [`biblib`] crate's RIS parser (dates like
//! `2012/01/03/`, "Family, Given" authors, continuation lines, DOIs in `UR` links).
//!
//! # Why records are cut out first
//! `biblib` reads a whole file and says nothing about a record it could not make sense
//! of. A reference library with one broken record must still import, and each record is
//! reported by its line, so the file is cut into records here (a record runs from its
//! `TY` line to its `ER` line) and each record's text is given to `biblib` alone. A record
//! without `ER` (cut short, or run into the next `TY`) and text outside any record are
//! reported and skipped.
//!
//! # Mapping
//! `TI`/`T1`, `AB`/`N2`, `AU`/`A1` (as "Given Family"), `PY`/`Y1`/`DA` (a year alone is the
//! 1st of January), `UR`, and the id by [`super::reference_id`] from `DO`, the `UR` links
//! and the `ID` tag; a record with none of them gets `ris-` and a hash of its title, year
//! and first author, so importing the same file again finds the same ids. `extra` keeps
//! `citation_key` (`ID`), `entry_type` (`TY`, spelled out), `doi`, `venue` (`JO`/`T2`/…)
//! and `keywords` (`KW`).

use super::{day_from_parts, reference_id, Record, WholeFileEntry};
use crate::paper::{Paper, PaperId};
use biblib::{Citation, CitationParser, RisParser};
use serde_json::{Map, Value};

/// Parses a RIS file into its records, each with the line of its `TY`.
pub(super) fn parse(src: &str) -> Vec<WholeFileEntry> {
    let mut out = Vec::new();
    // The record being read: its first line number and byte offset.
    let mut open: Option<(usize, usize)> = None;
    // Text outside any record: its first line, reported once per stretch.
    let mut stray: Option<usize> = None;
    let mut offset = 0;
    for (i, raw) in src.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.trim_start_matches('\u{feff}').trim();
        let here = offset;
        offset += raw.len();
        let tag = tag_of(line);
        match (open, tag) {
            (None, Some("TY")) => {
                if let Some(at) = stray.take() {
                    out.push(outside(at));
                }
                open = Some((line_no, here));
            }
            (None, _) if line.is_empty() => {}
            (None, _) => {
                stray.get_or_insert(line_no);
            }
            (Some((start_line, _)), Some("TY")) => {
                out.push(unterminated(start_line));
                open = Some((line_no, here));
            }
            (Some((start_line, start)), Some("ER")) => {
                out.push(WholeFileEntry {
                    line: start_line,
                    record: record(&src[start..offset], start_line),
                });
                open = None;
            }
            (Some(_), _) => {}
        }
    }
    if let Some(at) = stray {
        out.push(outside(at));
    }
    if let Some((start_line, _)) = open {
        out.push(unterminated(start_line));
    }
    out
}

/// The tag of a RIS tag line (`XX  - value`), if `line` is one.
fn tag_of(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let tag_ok = b.len() >= 5
        && b[0].is_ascii_uppercase()
        && (b[1].is_ascii_uppercase() || b[1].is_ascii_digit())
        && &b[2..5] == b"  -";
    // `ER  -` may end the line without its trailing space.
    (tag_ok || line == "ER  -").then(|| &line[..2])
}

fn outside(line: usize) -> WholeFileEntry {
    WholeFileEntry {
        line,
        record: Err("text outside a RIS record (no 'TY  - ' line before it)".into()),
    }
}

fn unterminated(line: usize) -> WholeFileEntry {
    WholeFileEntry {
        line,
        record: Err("RIS record without its 'ER  - ' line (cut short?)".into()),
    }
}

fn record(text: &str, line: usize) -> Result<Record, String> {
    let citation = RisParser::new()
        .parse(text)
        .map_err(|e| format!("malformed RIS record: {e}"))?
        .into_iter()
        .next()
        .ok_or("empty RIS record")?;
    Ok(to_record(citation, line))
}

fn to_record(c: Citation, line: usize) -> Record {
    let key = c
        .extra_fields
        .get("ID")
        .and_then(|v| v.first())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let authors: Vec<String> = c
        .authors
        .iter()
        .map(|a| {
            [
                a.given_name.as_deref(),
                a.middle_name.as_deref(),
                Some(a.name.as_str()),
            ]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
        })
        .filter(|a| !a.is_empty())
        .collect();
    let mut warning = None;
    let date = c.date.as_ref().and_then(|d| {
        let day = day_from_parts(d.year, d.month.map(u32::from), d.day.map(u32::from));
        if day.is_none() {
            warning = Some(format!(
                "record at line {line}: invalid date (date dropped, paper kept)"
            ));
        }
        day
    });
    // The landing page rather than the PDF (`UR` rather than `L1`) when there are both.
    let url = c
        .urls
        .iter()
        .find(|u| !u.to_ascii_lowercase().ends_with(".pdf"))
        .or(c.urls.first())
        .cloned();
    let arxiv_link = c.urls.iter().find(|u| u.contains("arxiv.org/"));
    let hints: Vec<Option<&str>> = c
        .journal
        .iter()
        .chain(c.volume.iter())
        .map(|s| Some(s.as_str()))
        .collect();
    let id = reference_id(
        None,
        c.doi.as_deref(),
        arxiv_link.map(String::as_str),
        &hints,
        key.as_deref(),
    )
    .unwrap_or_else(|| synthetic_id(&c, date.as_deref()));
    let mut extra = Map::new();
    let mut keep = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            extra.insert(k.into(), Value::String(v));
        }
    };
    keep("citation_key", key);
    keep("entry_type", c.citation_type.first().cloned());
    keep("doi", c.doi.clone());
    keep("venue", c.journal.clone());
    if !c.keywords.is_empty() {
        let words = c.keywords.iter().cloned().map(Value::String).collect();
        extra.insert("keywords".into(), Value::Array(words));
    }
    Record {
        paper: Paper {
            id: PaperId(id),
            title: c.title,
            abstract_: c.abstract_text.unwrap_or_default(),
            authors,
            date,
            categories: Vec::new(),
            url,
            extra,
        },
        warning,
    }
}

/// `ris-` and 12 hex digits of a hash of title, date and first author: stable across
/// imports of the same record, so re-importing a file replaces rather than duplicates.
fn synthetic_id(c: &Citation, date: Option<&str>) -> String {
    let first = c.authors.first().map(|a| a.name.as_str()).unwrap_or("");
    let basis = format!(
        "{}\u{1f}{}\u{1f}{}",
        c.title.trim().to_lowercase(),
        date.unwrap_or(""),
        first
    );
    let hash = xxhash_rust::xxh3::xxh3_64(basis.as_bytes());
    format!("ris-{:012x}", hash >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_map_and_keep_their_lines() {
        let src = "TY  - JOUR\nA1  - Winkler, R.\nA1  - Landais, A.\nT1  - Deglaciation records of 17O-excess\nJO  - Clim. Past\nY1  - 2012/01/03\nDO  - 10.5194/CP-8-1-2012\nER  - \n\nTY  - Informal Publication\nID  - DBLP:journals/corr/abs-1803-00653\nAU  - Savinov, Nikolay\nTI  - Semi-parametric Topological Memory for Navigation.\nPY  - 2018//\nUR  - http://arxiv.org/abs/1803.00653\nER  -\n";
        let e = parse(src);
        assert_eq!(e.iter().map(|x| x.line).collect::<Vec<_>>(), vec![1, 10]);
        let first = e[0].record.as_ref().unwrap();
        assert_eq!(first.paper.id.0, "10.5194/cp-8-1-2012");
        assert_eq!(first.paper.authors, vec!["R. Winkler", "A. Landais"]);
        assert_eq!(first.paper.date.as_deref(), Some("2012-01-03"));
        let second = e[1].record.as_ref().unwrap();
        assert_eq!(second.paper.id.0, "1803.00653");
        assert_eq!(second.paper.date.as_deref(), Some("2018-01-01"));
        assert_eq!(
            second.paper.extra["citation_key"],
            "DBLP:journals/corr/abs-1803-00653"
        );
    }

    #[test]
    fn broken_records_are_reported_by_line_and_the_rest_kept() {
        let src = "TY  - JOUR\nTI  - Cut short\nTY  - JOUR\nTI  - Whole\nER  - \nstray text\nTY  - JOUR\nTI  - Unterminated\n";
        let e = parse(src);
        let lines: Vec<_> = e.iter().map(|x| (x.line, x.record.is_ok())).collect();
        assert_eq!(lines, vec![(1, false), (3, true), (6, false), (7, false)]);
    }

    #[test]
    fn records_without_identifiers_get_a_stable_id() {
        let src = "TY  - BOOK\nAU  - Baker, R.\nTI  - Measuring Walking\nPY  - 2013\nER  -\n";
        let a = parse(src).remove(0).record.unwrap().paper.id;
        let b = parse(src).remove(0).record.unwrap().paper.id;
        assert_eq!(a, b);
        assert!(a.0.starts_with("ris-"), "{a}");
    }
}
