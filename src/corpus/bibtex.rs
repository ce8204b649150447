//! BibTeX / BibLaTeX files (`.bib`), as Zotero, Better BibTeX, JabRef, DBLP, ADS and
//! Google Scholar write them, parsed by the [`biblatex`] crate (typst's).
//!
//! # Why entries are parsed one by one
//! `biblatex` parses a whole file or fails on its first error, and it also fails a file
//! with two entries of one citation key. A reference library with one broken entry must
//! still import, and duplicates are for [`super::Latest`] to report (last record wins),
//! so the file is cut into entries at each `@type{` that opens a line, and each piece
//! is parsed alone with the `@string` macros defined before it. An unclosed brace
//! therefore costs only its own entry, reported at the line of its `@`. (A line of an
//! abstract that starts with `@type{` would be taken as a new entry; BibTeX itself treats
//! an `@` as the start of an entry anywhere outside one.)
//!
//! # Text
//! `biblatex` resolves accents (`{\"o}`, `\'e`, `{\ss}`), dashes (`--`, `---`), `@string`
//! macros and month names (`month = jan`), and drops case-protecting braces (`{BERT}`).
//! What it leaves is turned into text here ([`latex_to_text`]): unknown commands keep
//! their argument (`\emph{x}` → `x`, `\textsc{Bert}` → `Bert`), `~` is a space, and math
//! (`$\alpha$-entmax`) becomes Unicode where a symbol has one (`α-entmax`), its markup
//! (`^`, `_`, braces, `\mathrm`) dropped.
//!
//! # Mapping
//! title, abstract; authors as "Given Family" (`{Org Name}` kept whole); date from `date`
//! else `year`/`month`/`day` (a year alone is the 1st of January, a month alone its 1st
//! day: [`super::day_from_parts`]); categories from `primaryclass`/`eprintclass` (arXiv's
//! own category, the one facet paperscope filters by; free `keywords` go to `extra`); url;
//! the id by [`super::reference_id`]. `extra` keeps `citation_key`, `entry_type`, `doi`,
//! `venue` (journal, else booktitle) and `keywords`.

use super::{day_from_parts, reference_id, Record, WholeFileEntry};
use crate::paper::{Paper, PaperId};
use biblatex::{
    Bibliography, Chunk, ChunksExt, DateValue, Pair, PermissiveType, RawBibliography, Spanned,
};
use serde_json::{Map, Value};

/// Parses a whole `.bib` file into its entries, each with the line of its `@`.
pub(super) fn parse(src: &str) -> Vec<WholeFileEntry> {
    let lines = LineIndex::new(src);
    let mut strings: Vec<Pair<'_>> = Vec::new();
    let mut out = Vec::new();
    let starts = entry_starts(src);
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(src.len());
        let piece = &src[start..end];
        let line = lines.line(start);
        let raw = match RawBibliography::parse(piece) {
            Ok(raw) => raw,
            Err(e) => {
                out.push(WholeFileEntry {
                    line,
                    record: Err(format!(
                        "malformed BibTeX entry{}: {} (line {})",
                        key_of(piece).map(|k| format!(" {k}")).unwrap_or_default(),
                        e.kind,
                        lines.line(start + e.span.start)
                    )),
                });
                continue;
            }
        };
        strings.extend(raw.abbreviations);
        for entry in raw.entries {
            let key = entry.v.key.v.to_string();
            let one = RawBibliography {
                preamble: String::new(),
                entries: vec![entry],
                abbreviations: strings.clone(),
            };
            let record = match Bibliography::from_raw(one) {
                Ok(bib) => match bib.into_vec().into_iter().next() {
                    Some(e) => Ok(to_record(&e)),
                    None => continue,
                },
                Err(e) => Err(format!(
                    "malformed BibTeX entry {key}: {} (line {})",
                    e.kind,
                    lines.line(start + e.span.start)
                )),
            };
            out.push(WholeFileEntry { line, record });
        }
    }
    out
}

/// Byte offsets of each `@type{` (or `@type(`) that opens a line (after blanks): where
/// entries start. Requiring the type and the brace keeps a line of an abstract that
/// merely starts with `@` (a handle, an e-mail) inside its entry.
fn entry_starts(src: &str) -> Vec<usize> {
    fn opens_entry(line: &str) -> bool {
        let Some(rest) = line.strip_prefix('@') else {
            return false;
        };
        let name_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        name_end > 0 && rest[name_end..].trim_start().starts_with(['{', '('])
    }
    let mut starts = Vec::new();
    let mut line_start = 0;
    for line in src.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t', '\u{feff}']).len();
        if opens_entry(&line[indent..]) {
            starts.push(line_start + indent);
        }
        line_start += line.len();
    }
    starts
}

/// The citation key of an entry's text, for messages about an entry that did not parse.
fn key_of(piece: &str) -> Option<&str> {
    let open = piece.find(['{', '('])?;
    let key = piece[open + 1..].split([',', '\n']).next()?.trim();
    (!key.is_empty() && !piece[..open].trim().eq_ignore_ascii_case("@comment")).then_some(key)
}

/// Line numbers (1-based) of byte offsets.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(src: &str) -> Self {
        LineIndex(
            std::iter::once(0)
                .chain(src.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

fn to_record(e: &biblatex::Entry) -> Record {
    let text = |key: &str| e.get(key).map(latex_to_text).filter(|s| !s.is_empty());
    // Identifiers and links are not prose: their characters are kept as written.
    let verbatim = |key: &str| {
        e.get(key)
            .map(|c| c.format_verbatim().trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let mut warning = None;
    let authors = match e.author() {
        Ok(people) => people
            .iter()
            .map(|p| {
                [&p.given_name, &p.prefix, &p.name, &p.suffix]
                    .iter()
                    .map(|part| clean_text(part))
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let date = match e.date() {
        Ok(PermissiveType::Typed(d)) => {
            let dt = match d.value {
                DateValue::At(t) | DateValue::After(t) | DateValue::Between(t, _) => t,
                DateValue::Before(t) => t,
            };
            let day = day_from_parts(
                dt.year,
                dt.month.map(|m| u32::from(m) + 1),
                dt.day.map(|d| u32::from(d) + 1),
            );
            if day.is_none() {
                warning = Some(format!(
                    "entry {}: invalid date (date dropped, paper kept)",
                    e.key
                ));
            }
            day
        }
        Ok(PermissiveType::Chunks(c)) => {
            warning = Some(format!(
                "entry {}: unreadable date '{}' (date dropped, paper kept)",
                e.key,
                c.format_verbatim()
            ));
            None
        }
        Err(_) => None,
    };
    let eprint_type = text("archiveprefix").or_else(|| text("eprinttype"));
    let arxiv_eprint =
        verbatim("eprint").filter(|_| eprint_type.is_some_and(|t| t.eq_ignore_ascii_case("arxiv")));
    let doi = verbatim("doi");
    let url = verbatim("url");
    let venue = text("journaltitle")
        .or_else(|| text("journal"))
        .or_else(|| text("booktitle"));
    let id = reference_id(
        arxiv_eprint.as_deref(),
        doi.as_deref(),
        url.as_deref(),
        &[venue.as_deref(), text("number").as_deref()],
        Some(&e.key),
    )
    .expect("a BibTeX entry always has a citation key. This is a bug.");
    let categories = text("primaryclass")
        .or_else(|| text("eprintclass"))
        .into_iter()
        .collect();
    let mut extra = Map::new();
    extra.insert("citation_key".into(), Value::String(e.key.clone()));
    extra.insert(
        "entry_type".into(),
        Value::String(e.entry_type.to_string().to_lowercase()),
    );
    if let Some(doi) = &doi {
        extra.insert("doi".into(), Value::String(doi.clone()));
    }
    if let Some(venue) = venue {
        extra.insert("venue".into(), Value::String(venue));
    }
    if let Some(k) = text("keywords") {
        let words = k
            .split([',', ';'])
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| Value::String(w.to_string()))
            .collect();
        extra.insert("keywords".into(), Value::Array(words));
    }
    Record {
        paper: Paper {
            id: PaperId(id),
            title: text("title").unwrap_or_default(),
            abstract_: text("abstract").unwrap_or_default(),
            authors,
            date,
            categories,
            url,
            extra,
        },
        warning,
    }
}

/// The text of a field's chunks: what `biblatex` resolved, with the LaTeX it leaves
/// (unknown commands, `~`, math) turned into text.
pub(super) fn latex_to_text(chunks: &[Spanned<Chunk>]) -> String {
    let mut out = String::new();
    for chunk in chunks {
        match &chunk.v {
            Chunk::Normal(s) | Chunk::Verbatim(s) => out.push_str(&clean_text(s)),
            Chunk::Math(s) => out.push_str(&math_to_text(s)),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text of a resolved field: leftover `\command{arg}` keep their argument, other
/// commands their Unicode symbol or nothing; `~` is a space; stray braces go.
fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphabetic() {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if name.is_empty() {
                    // `\&`, `\%`, `\ `: the character itself.
                    if let Some(n) = chars.next() {
                        out.push(if n.is_whitespace() { ' ' } else { n });
                    }
                } else if let Some(sym) = symbol(&name) {
                    out.push_str(sym);
                }
                // A command's argument, if any, follows in braces and is kept as text.
            }
            '~' => out.push(' '),
            '{' | '}' => {}
            _ => out.push(c),
        }
    }
    out
}

/// Math as text: symbols to Unicode, markup dropped (`$O(n^{2})$` → `O(n2)`).
fn math_to_text(s: &str) -> String {
    clean_text(s).replace(['^', '_'], "")
}

/// Unicode for the LaTeX commands (text and math) common in titles and abstracts.
fn symbol(name: &str) -> Option<&'static str> {
    Some(match name {
        "alpha" => "α",
        "beta" => "β",
        "gamma" => "γ",
        "Gamma" => "Γ",
        "delta" => "δ",
        "Delta" => "Δ",
        "epsilon" | "varepsilon" => "ε",
        "zeta" => "ζ",
        "eta" => "η",
        "theta" | "vartheta" => "θ",
        "Theta" => "Θ",
        "iota" => "ι",
        "kappa" => "κ",
        "lambda" => "λ",
        "Lambda" => "Λ",
        "mu" => "μ",
        "nu" => "ν",
        "xi" => "ξ",
        "Xi" => "Ξ",
        "pi" => "π",
        "Pi" => "Π",
        "rho" => "ρ",
        "sigma" => "σ",
        "Sigma" => "Σ",
        "tau" => "τ",
        "upsilon" => "υ",
        "phi" | "varphi" => "φ",
        "Phi" => "Φ",
        "chi" => "χ",
        "psi" => "ψ",
        "Psi" => "Ψ",
        "omega" => "ω",
        "Omega" => "Ω",
        "ell" => "ℓ",
        "infty" => "∞",
        "times" => "×",
        "cdot" => "·",
        "pm" => "±",
        "leq" | "le" => "≤",
        "geq" | "ge" => "≥",
        "neq" | "ne" => "≠",
        "approx" => "≈",
        "sim" => "∼",
        "in" => "∈",
        "to" | "rightarrow" => "→",
        "leftarrow" => "←",
        "sqrt" => "√",
        "sum" => "∑",
        "partial" => "∂",
        "nabla" => "∇",
        "ldots" | "dots" | "cdots" => "…",
        "textendash" => "–",
        "textemdash" => "—",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Record {
        let mut entries = parse(src);
        assert_eq!(entries.len(), 1, "{src}");
        entries.remove(0).record.expect("entry parses")
    }

    #[test]
    fn accents_braces_dashes_and_math_become_text() {
        let r = one(
            r#"@article{k, title = {{\"O}ffentliche {BERT}--Modelle f{\"u}r Stra{\ss}en: $\alpha$-entmax and \emph{\'etude} of $O(n^{2})$~costs}}"#,
        );
        assert_eq!(
            r.paper.title,
            "Öffentliche BERT–Modelle für Straßen: α-entmax and étude of O(n2) costs"
        );
    }

    #[test]
    fn string_macros_months_comments_and_preamble() {
        let src = "% a comment line\n@preamble{\"\\newcommand{\\noop}[1]{}\"}\n@string{neurips = \"Advances in Neural Information Processing Systems\"}\n@comment{jabref-meta: groupsversion:3;}\n@inproceedings{a, title = {T}, booktitle = neurips, year = 2017, month = dec}\n";
        let entries = parse(src);
        let records: Vec<_> = entries.into_iter().filter_map(|e| e.record.ok()).collect();
        assert_eq!(records.len(), 1);
        let p = &records[0].paper;
        assert_eq!(p.date.as_deref(), Some("2017-12-01"));
        assert_eq!(
            p.extra["venue"],
            "Advances in Neural Information Processing Systems"
        );
    }

    #[test]
    fn ids_prefer_arxiv_then_doi_then_key() {
        let arxiv = one("@misc{k, title={T}, eprint={2206.07697v2}, eprinttype={arxiv}, doi={10.48550/ARXIV.2206.07697}}");
        assert_eq!(arxiv.paper.id.0, "2206.07697");
        let by_doi = one("@misc{k, title={T}, doi={10.48550/arXiv.2205.06643}}");
        assert_eq!(by_doi.paper.id.0, "2205.06643");
        let by_url = one("@article{k, title={T}, url={http://arxiv.org/abs/1705.05363}}");
        assert_eq!(by_url.paper.id.0, "1705.05363");
        let doi = one("@article{k, title={T}, doi={https://doi.org/10.1051/0004-6361/200912437}}");
        assert_eq!(doi.paper.id.0, "10.1051/0004-6361/200912437");
        let key = one("@book{Tolkien1937, title={The Hobbit}, year={1937}}");
        assert_eq!(key.paper.id.0, "Tolkien1937");
        assert_eq!(key.paper.date.as_deref(), Some("1937-01-01"));
    }

    #[test]
    fn authors_are_given_family_and_organisations_stay_whole() {
        let r = one(
            r#"@misc{k, title={T}, author={Kov{\'a}cs, D{\'a}vid P{\'e}ter and {The LIGO Scientific Collaboration} and van der Waals, J. D.}}"#,
        );
        assert_eq!(
            r.paper.authors,
            vec![
                "Dávid Péter Kovács",
                "The LIGO Scientific Collaboration",
                "J. D. van der Waals"
            ]
        );
    }

    #[test]
    fn a_line_starting_with_at_inside_a_field_does_not_split_the_entry() {
        let r =
            one("@misc{k,\n  title = {T},\n  abstract = {Thanks to\n@someone for the data.}\n}\n");
        assert_eq!(r.paper.abstract_, "Thanks to @someone for the data.");
    }

    #[test]
    fn a_broken_entry_costs_only_itself_and_names_its_line() {
        let src = "@article{good1, title={One}}\n\n@article{bad,\n  title = {Unclosed,\n  year = 2020\n\n@article{good2, title={Two}}\n";
        let entries = parse(src);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].line, 3);
        let err = entries[1].record.as_ref().unwrap_err();
        assert!(err.contains("bad"), "{err}");
        assert_eq!(entries[2].record.as_ref().unwrap().paper.title, "Two");
    }
}
