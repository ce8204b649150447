//! BEIR `corpus.jsonl`: `_id`, `title`, `text` (the abstract). Extra fields (BEIR's
//! `metadata`) are kept.

use super::{take_string, Record};
use crate::paper::{Paper, PaperId};
use serde_json::{Map, Value};

pub(super) fn parse(mut obj: Map<String, Value>) -> Result<Record, String> {
    let id = take_string(&mut obj, "_id")?.ok_or("missing field '_id'")?;
    let title = take_string(&mut obj, "title")?.unwrap_or_default();
    let text = take_string(&mut obj, "text")?.unwrap_or_default();
    Ok(Record {
        paper: Paper {
            id: PaperId(id),
            title,
            abstract_: text,
            authors: Vec::new(),
            date: None,
            categories: Vec::new(),
            url: None,
            extra: obj,
        },
        warning: None,
    })
}
