//! CSL-JSON, the citation format of citeproc, pandoc and Zotero ("Export → CSL JSON"):
//! one JSON array of items.
//!
//! # Why the array is split before it is parsed
//! A reference library with one broken item must still import, and each item is reported
//! by the line where it starts. So the array is cut into its top-level elements by a
//! scan that follows only strings and brackets ([`elements`]), and each element is parsed
//! by `serde_json` alone: a syntax error costs its element only. (There is no
//! CSL-specific crate to lean on here: `serde_json` does the parsing, the mapping is ours.)
//!
//! # Mapping
//! `title`, `abstract`, `author` (`{family, given, non-dropping-particle, suffix}` as
//! "Given particle Family", or `{literal}`), `issued` (`{"date-parts": [[y, m, d]]}`,
//! parts as numbers or strings, else `{"raw": "2021-01-05"}`; a year alone is the 1st of
//! January), `URL`, and the id by [`super::reference_id`] from `DOI`, `URL`, `number`
//! (Zotero writes `arXiv:2306.13455` there) and `id`. CSL titles may hold HTML-like rich
//! text (`<i>`, `<sup>`), which is dropped. `extra` keeps `citation_key` (`id`),
//! `entry_type` (`type`), `doi`, `venue` (`container-title`) and every field not used.

use super::{day_from_parts, kind, reference_id, Record, WholeFileEntry};
use crate::paper::{Paper, PaperId};
use crate::text::date;
use serde_json::{Map, Value};

/// Parses a CSL-JSON array into its items, each with the line where it starts.
pub(super) fn parse(src: &str) -> Vec<WholeFileEntry> {
    let (items, trouble) = elements(src);
    let mut out: Vec<WholeFileEntry> = items
        .into_iter()
        .enumerate()
        .map(|(i, (line, text))| WholeFileEntry {
            line,
            record: match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(obj)) => to_record(obj),
                Ok(other) => Err(format!(
                    "CSL-JSON item {}: expected an object, got {}",
                    i + 1,
                    kind(&other)
                )),
                Err(e) => Err(format!(
                    "CSL-JSON item {}: invalid JSON at line {}: {}",
                    i + 1,
                    line + e.line().saturating_sub(1),
                    e.to_string()
                        .rsplit_once(" at line ")
                        .map_or(e.to_string(), |(msg, _)| msg.to_string())
                )),
            },
        })
        .collect();
    out.extend(trouble.map(|(line, reason)| WholeFileEntry {
        line,
        record: Err(reason),
    }));
    out
}

/// A top-level element of the array: the line where it starts, and its text.
type Element<'s> = (usize, &'s str);

/// A problem with the array itself (not one, not closed): its line and the reason.
type Trouble = (usize, String);

/// The top-level elements of a JSON array, as (line, text), and a structural problem
/// (not an array, unclosed) with its line. Only strings and brackets are followed, so a
/// malformed element still ends at the comma or bracket that closes it.
fn elements(src: &str) -> (Vec<Element<'_>>, Option<Trouble>) {
    let mut items = Vec::new();
    let mut line = 1;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start: Option<(usize, usize)> = None;
    let mut opened = false;
    for (i, c) in src.char_indices() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if !opened {
            match c {
                '[' => {
                    opened = true;
                    depth = 1;
                }
                '\u{feff}' => {}
                c if c.is_whitespace() => {}
                _ => {
                    return (
                        items,
                        Some((line, "a CSL-JSON file must be one JSON array".into())),
                    )
                }
            }
            continue;
        }
        if depth == 0 {
            if !c.is_whitespace() {
                return (
                    items,
                    Some((line, "text after the end of the CSL-JSON array".into())),
                );
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            _ => {}
        }
        let closes_array = depth == 0;
        if depth == 1 && c == ',' || closes_array {
            if let Some((l, s)) = start.take() {
                items.push((l, src[s..i].trim()));
            }
            continue;
        }
        if start.is_none() && !c.is_whitespace() {
            start = Some((line, i));
        }
    }
    let trouble = match (opened, depth) {
        (false, _) => None,
        (true, 0) => None,
        (true, _) => {
            if let Some((l, s)) = start {
                items.push((l, src[s..].trim()));
            }
            Some((line, "the CSL-JSON array is not closed".into()))
        }
    };
    (items, trouble)
}

fn to_record(mut obj: Map<String, Value>) -> Result<Record, String> {
    let key = match obj.remove("id") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        None | Some(Value::Null) => None,
        Some(other) => return Err(format!("field 'id' must be a string, got {}", kind(&other))),
    };
    let mut string = |field: &str| -> Result<Option<String>, String> {
        match obj.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(format!(
                "item {}: field '{field}' must be a string, got {}",
                key.as_deref().unwrap_or("?"),
                kind(&other)
            )),
        }
    };
    let title = string("title")?
        .map(|t| strip_markup(&t))
        .unwrap_or_default();
    let abstract_ = string("abstract")?
        .map(|t| strip_markup(&t))
        .unwrap_or_default();
    let doi = string("DOI")?;
    let url = string("URL")?;
    let number = string("number")?;
    let venue = string("container-title")?.map(|t| strip_markup(&t));
    let entry_type = string("type")?;
    let authors = match obj.remove("author") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(names)) => names.iter().filter_map(name).collect(),
        Some(other) => {
            return Err(format!(
                "field 'author' must be a list of names, got {}",
                kind(&other)
            ))
        }
    };
    let mut warning = None;
    let date = match obj.remove("issued") {
        None | Some(Value::Null) => None,
        Some(issued) => {
            let day = issued_day(&issued);
            if day.is_none() {
                warning = Some(format!(
                    "item {}: unreadable 'issued' {issued} (date dropped, paper kept)",
                    key.as_deref().unwrap_or("?")
                ));
            }
            day
        }
    };
    let id = reference_id(
        None,
        doi.as_deref(),
        url.as_deref(),
        &[number.as_deref()],
        key.as_deref(),
    )
    .ok_or("an item needs an 'id', a 'DOI' or an arXiv link")?;
    let mut extra = obj;
    let mut keep = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            extra.insert(k.into(), Value::String(v));
        }
    };
    keep("citation_key", key);
    keep("entry_type", entry_type);
    keep("doi", doi);
    keep("venue", venue);
    keep("number", number);
    Ok(Record {
        paper: Paper {
            id: PaperId(id),
            title,
            abstract_,
            authors,
            date,
            categories: Vec::new(),
            url,
            extra,
        },
        warning,
    })
}

/// A CSL name as text: `literal`, else "given non-dropping-particle family suffix".
fn name(v: &Value) -> Option<String> {
    let part = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim);
    if let Some(literal) = part("literal").filter(|s| !s.is_empty()) {
        return Some(literal.to_string());
    }
    let parts: Vec<&str> = [
        "given",
        "dropping-particle",
        "non-dropping-particle",
        "family",
        "suffix",
    ]
    .iter()
    .filter_map(|k| part(k))
    .filter(|s| !s.is_empty())
    .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The day of a CSL date: its first `date-parts` (numbers or numeric strings), else
/// `raw` (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
fn issued_day(issued: &Value) -> Option<String> {
    if let Some(parts) = issued
        .get("date-parts")
        .and_then(|p| p.get(0))
        .and_then(Value::as_array)
    {
        let num = |i: usize| -> Option<i64> {
            match parts.get(i)? {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
        };
        let year = i32::try_from(num(0)?).ok()?;
        let month = num(1).and_then(|m| u32::try_from(m).ok());
        let day = num(2).and_then(|d| u32::try_from(d).ok());
        return day_from_parts(year, month, day);
    }
    let raw = issued.get("raw").and_then(Value::as_str)?.trim();
    let (y, m, d) = date::Period::parse(raw.get(..10).unwrap_or(raw))?.first_day();
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// CSL rich text without its tags (`A <i>sparse</i> attention` → `A sparse attention`).
fn strip_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let tag = &rest[open..];
        let is_tag = tag
            .chars()
            .nth(1)
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
        match tag.find('>') {
            Some(close) if is_tag => rest = &tag[close + 1..],
            _ => {
                out.push('<');
                rest = &tag[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keep_their_lines_and_a_broken_one_costs_only_itself() {
        let src = "[\n  {\"id\": \"a\", \"title\": \"One\"},\n  {\"id\": \"b\" \"title\": \"Two\"},\n  {\"id\": \"c\", \"title\": \"Three, [with] {brackets}\"}\n]\n";
        let entries = parse(src);
        assert_eq!(
            entries.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert!(entries[1].record.as_ref().is_err());
        let third = entries[2].record.as_ref().unwrap();
        assert_eq!(third.paper.title, "Three, [with] {brackets}");
    }

    #[test]
    fn zotero_arxiv_item_maps_to_arxiv_id_date_and_names() {
        let src = r#"[{"id": 5, "type": "article", "number": "arXiv:2306.13455", "title": "A <i>sparse</i> attention",
            "author": [{"family": "Zhuang", "given": "Jingyu"}, {"literal": "OpenAI"}, {"family": "Waals", "non-dropping-particle": "van der", "given": "J. D."}],
            "issued": {"date-parts": [["2023", 6, 29]]}, "container-title": "arXiv"}]"#;
        let r = parse(src).remove(0).record.unwrap();
        assert_eq!(r.paper.id.0, "2306.13455");
        assert_eq!(r.paper.title, "A sparse attention");
        assert_eq!(r.paper.date.as_deref(), Some("2023-06-29"));
        assert_eq!(
            r.paper.authors,
            vec!["Jingyu Zhuang", "OpenAI", "J. D. van der Waals"]
        );
        assert_eq!(r.paper.extra["citation_key"], "5");
    }

    #[test]
    fn ids_and_dates_fall_back() {
        let src = r#"[{"id": "lecun2015", "title": "Deep learning", "DOI": "10.1038/NATURE14539", "issued": {"raw": "2015-05"}},
                      {"id": "k", "title": "T", "issued": {"date-parts": [[2016]]}}]"#;
        let e = parse(src);
        let first = e[0].record.as_ref().unwrap();
        assert_eq!(first.paper.id.0, "10.1038/nature14539");
        assert_eq!(first.paper.date.as_deref(), Some("2015-05-01"));
        let second = e[1].record.as_ref().unwrap();
        assert_eq!(second.paper.id.0, "k");
        assert_eq!(second.paper.date.as_deref(), Some("2016-01-01"));
    }

    #[test]
    fn not_an_array_or_unclosed_is_reported() {
        assert!(parse("{\"id\": \"a\"}")[0].record.is_err());
        let e = parse("[{\"id\": \"a\", \"title\": \"One\"}, {\"id\": \"b\"");
        assert!(e[0].record.is_ok());
        assert!(e
            .iter()
            .any(|x| x.record.as_ref().is_err_and(|r| r.contains("not closed"))));
    }
}
