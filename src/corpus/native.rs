//! paperscope's own JSON Lines format (also what `../shared/data/arxiv_papers` and the seed
//! file use): `id`, `title`, `abstract`, `authors` (list), `published` or `listing_date`,
//! `categories` (list), `url`; every other field is kept in [`Paper::extra`].

use super::{take_date, take_string, take_string_list, Record};
use crate::paper::{Paper, PaperId};
use serde_json::{Map, Value};

pub(super) fn parse(mut obj: Map<String, Value>) -> Result<Record, String> {
    let id = take_string(&mut obj, "id")?.ok_or("missing field 'id'")?;
    let title = take_string(&mut obj, "title")?.unwrap_or_default();
    let abstract_ = take_string(&mut obj, "abstract")?.unwrap_or_default();
    let authors = take_string_list(&mut obj, "authors")?;
    let categories = take_string_list(&mut obj, "categories")?;
    let url = take_string(&mut obj, "url")?;
    let mut warning = None;
    // `published` is the paper's own date; `listing_date` (daily feeds) is the fallback.
    let mut date = None;
    for key in ["published", "listing_date"] {
        match take_date(&mut obj, key) {
            Ok(Some(d)) if date.is_none() => date = Some(d),
            Ok(_) => {}
            Err(w) => warning = warning.or(Some(w)),
        }
    }
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
