//! The arXiv metadata snapshot (Kaggle "arXiv dataset"): `id`, `title`, `abstract`,
//! `authors` as one string (`"A. One, B. Two and C. Three"`), `categories` as a
//! space-separated string, `versions` (`[{"version":"v1","created":"Mon, 2 Apr 2007 ..."}]`)
//! and `update_date`. The date of a paper is its first version's date, else `update_date`.

use super::{parse_date, take_string, Record};
use crate::paper::{Paper, PaperId};
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
        .and_then(parse_rfc2822_date);
    let update_date = obj.get("update_date").and_then(Value::as_str);
    let date = first_version.or_else(|| update_date.and_then(parse_date));
    let warning = match (&date, update_date) {
        (None, Some(u)) if !u.trim().is_empty() => Some(format!(
            "invalid date '{u}' in 'update_date' (date dropped, paper kept)"
        )),
        _ => None,
    };
    let url = Some(format!("https://arxiv.org/abs/{id}"));
    Ok(Record {
        paper: Paper {
            id: PaperId(id),
            title,
            abstract_,
            authors,
            date,
            categories,
            url,
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

/// `"Mon, 2 Apr 2007 19:18:42 GMT"` → `"2007-04-02"`.
fn parse_rfc2822_date(s: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = s.split_whitespace().skip_while(|p| p.ends_with(','));
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? + 1;
    let year: u32 = parts.next()?.parse().ok()?;
    parse_date(&format!("{year:04}-{month:02}-{day:02}"))
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

    #[test]
    fn parses_version_dates() {
        assert_eq!(
            parse_rfc2822_date("Mon, 2 Apr 2007 19:18:42 GMT"),
            Some("2007-04-02".into())
        );
        assert_eq!(parse_rfc2822_date("garbage"), None);
    }
}
