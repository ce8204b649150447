//! The arXiv metadata snapshot (Kaggle "arXiv dataset"): `id`, `title`, `abstract`,
//! `authors` as one string (`"A. One, B. Two and C. Three"`), `categories` as a
//! space-separated string, `versions` (`[{"version":"v1","created":"Mon, 2 Apr 2007 ..."}]`)
//! and `update_date`. The date of a paper is its first version's date, else `update_date`.

use super::{take_string, Record};
use crate::paper::{Paper, PaperId};
use crate::text::date;
use serde_json::{Map, Value};

pub(super) fn parse(mut obj: Map<String, Value>) -> Result<Record, String> {
    let id = take_string(&mut obj, "id")?.ok_or("missing field 'id'")?;
    let title = take_string(&mut obj, "title")?.unwrap_or_default();
    let abstract_ = take_string(&mut obj, "abstract")?.unwrap_or_default();
    let authors = take_string(&mut obj, "authors")?
        .map(|s| split_authors(&s))
        .unwrap_or_default();
    let categories = take_string(&mut obj, "categories")?
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let first_version = obj
        .get("versions")
        .and_then(|v| v.get(0))
        .and_then(|v| v.get("created"))
        .and_then(Value::as_str)
        .and_then(date::parse_rfc2822_day);
    let update_date = obj.get("update_date").and_then(Value::as_str);
    let date = first_version.or_else(|| update_date.and_then(date::parse_day));
    let warning = match (&date, update_date) {
        (None, Some(u)) if !u.trim().is_empty() => Some(format!(
            "invalid date '{u}' in 'update_date' (date dropped, paper kept)"
        )),
        _ => None,
    };
    Ok(Record {
        paper: Paper {
            id: PaperId(id),
            title,
            abstract_,
            authors,
            date,
            categories,
            // Derived from the id, when it is an arXiv id, by the shared normalisation.
            url: None,
            extra: obj,
        },
        warning,
    })
}

/// Splits `"A. One, B. Two and C. Three"` into names.
fn split_authors(s: &str) -> Vec<String> {
    s.split(',')
        .flat_map(|part| part.split(" and "))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_author_string() {
        assert_eq!(
            split_authors("A. One, B. Two and C. Three"),
            vec!["A. One", "B. Two", "C. Three"]
        );
    }
}
