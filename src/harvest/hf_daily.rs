//! The Hugging Face Daily Papers API: `GET {base}/api/daily_papers?date=YYYY-MM-DD`, one
//! request per day, each a JSON list of `{"paper": {...}, ...}`.
//!
//! A paper maps to paperscope's fields as follows: the arXiv id as id, `summary` as the
//! abstract, author names, `publishedAt`'s day as `published`, the arXiv abstract page as
//! `url`, and the day it was listed as `listing_date`. Hugging Face's own signals are
//! kept as extra fields under their API names: `upvotes`, `numComments`, `githubRepo`,
//! `githubStars`, `projectPage`, `ai_summary`, `ai_keywords`. A paper listed on several
//! days of one run is written once, with its last listing (the freshest counts).

use super::{
    next_day, parse_flag_day, start_day, today, write_state, Error, Http, Output, Record, Report,
    State,
};
use crate::paper::{arxiv_abs_url, normalize_whitespace};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Where the Hugging Face API lives.
pub const DEFAULT_BASE_URL: &str = "https://huggingface.co";

/// What to harvest and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Default: [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// First day, `YYYY-MM-DD`; empty continues from the state file (up to today).
    pub from: String,
    /// Last day, inclusive. Default: the first day when one is given, else today.
    pub until: Option<String>,
    /// Least time between requests. Default: 3 s.
    pub delay: Duration,
    /// Retries of a failed request. Default: 5.
    pub retries: u32,
    /// Longest time one request may take. Default: 60 s.
    pub timeout: Duration,
    /// First wait before a retry when the server names none, doubled each time.
    /// Default: 2 s.
    pub backoff: Duration,
}

impl Options {
    /// Options for the days from `from` (empty: from the state file) with the defaults.
    pub fn new(from: &str) -> Options {
        Options {
            base_url: DEFAULT_BASE_URL.to_string(),
            from: from.to_string(),
            until: None,
            delay: Duration::from_secs(3),
            retries: 5,
            timeout: Duration::from_secs(60),
            backoff: Duration::from_secs(2),
        }
    }
}

/// Harvests the papers listed on the days the options name into `out` (JSON Lines,
/// replaced atomically) and records the last day in `out`'s state file.
///
/// # Errors
/// [`Error::Invalid`] for bad dates, no start date, or a state file of another source;
/// network and write errors otherwise. On any error `out` and its state file are left as
/// they were.
pub fn harvest(opts: &Options, out: &Path) -> Result<Report, Error> {
    let given = Some(opts.from.as_str()).filter(|f| !f.is_empty());
    let from = start_day("date", given, out, |state| {
        if state.source != "hf-daily" {
            return Err(format!(
                "{} holds the state of a {} harvest; pass --date to start anew",
                super::state_path(out).display(),
                state.source
            ));
        }
        Ok(())
    })?;
    let until = match &opts.until {
        Some(u) => parse_flag_day("until", u)?,
        None if given.is_some() => from.clone(),
        None => today(),
    };
    if until < from {
        return Err(Error::Invalid(format!(
            "--until {until} is before the start day {from}"
        )));
    }
    let mut http = Http::new(&opts.base_url, opts.delay, opts.retries, opts.timeout);
    http.backoff = opts.backoff;
    let mut papers: Vec<Map<String, Value>> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut pages = 0;
    let mut day = from.clone();
    while day <= until {
        let url = format!("{}/api/daily_papers?date={day}", http.base_url);
        let items = http.get(&url, parse_day_list)?;
        pages += 1;
        for item in &items {
            if let Some(record) = to_record(item, &day) {
                let json = record.into_json();
                let id = json["id"].as_str().unwrap_or_default().to_string();
                match by_id.get(&id) {
                    Some(&i) => papers[i] = json,
                    None => {
                        by_id.insert(id, papers.len());
                        papers.push(json);
                    }
                }
            }
        }
        tracing::info!("{day}: {} papers listed", items.len());
        day = next_day(&day);
    }
    let mut output = Output::create(out)?;
    for p in &papers {
        output.line(p)?;
    }
    output.commit()?;
    write_state(
        out,
        &State {
            source: "hf-daily".into(),
            set: None,
            categories: Vec::new(),
            until: until.clone(),
            latest_datestamp: None,
        },
    )?;
    Ok(Report {
        records: papers.len(),
        deleted: 0,
        requests: http.requests,
        retries: http.retried,
        pages,
        out: out.to_path_buf(),
        from,
        until,
    })
}

fn parse_day_list(body: &[u8]) -> Result<Vec<Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err("expected a JSON list of papers".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// The record of one listed item; `None` without a paper id.
fn to_record(item: &Value, day: &str) -> Option<Record> {
    let paper = item.get("paper")?;
    let text = |key: &str| {
        paper
            .get(key)
            .or_else(|| item.get(key))
            .and_then(Value::as_str)
            .map(normalize_whitespace)
            .unwrap_or_default()
    };
    let id = text("id");
    if id.is_empty() {
        return None;
    }
    let authors = paper
        .get("authors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("name").and_then(Value::as_str))
        .map(normalize_whitespace)
        .filter(|a| !a.is_empty())
        .collect();
    let mut extra = Map::new();
    extra.insert("listing_date".into(), day.into());
    for key in [
        "upvotes",
        "githubRepo",
        "githubStars",
        "projectPage",
        "ai_summary",
    ] {
        if let Some(v @ (Value::String(_) | Value::Number(_))) = paper.get(key) {
            extra.insert(key.into(), v.clone());
        }
    }
    if let Some(n @ Value::Number(_)) = item.get("numComments") {
        extra.insert("numComments".into(), n.clone());
    }
    let keywords: Vec<Value> = paper
        .get("ai_keywords")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|k| k.is_string())
        .cloned()
        .collect();
    if !keywords.is_empty() {
        extra.insert("ai_keywords".into(), keywords.into());
    }
    Some(Record {
        url: arxiv_abs_url(&id),
        title: text("title"),
        abstract_: text("summary"),
        authors,
        published: paper
            .get("publishedAt")
            .and_then(Value::as_str)
            .and_then(crate::text::date::parse_day),
        categories: Vec::new(),
        extra,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_item_maps_to_paperscope_fields() {
        let item = json!({
            "paper": {"id": "2509.04664", "title": "Why Language Models\nHallucinate",
                      "summary": "Like students\nfacing hard exam questions.",
                      "authors": [{"name": "Adam Tauman Kalai"}, {"name": "Ofir Nachum"}],
                      "publishedAt": "2025-09-04T21:26:31.000Z", "upvotes": 26,
                      "ai_keywords": ["hallucinations", 3], "githubRepo": null},
            "numComments": 2
        });
        let r = to_record(&item, "2025-09-08").unwrap().into_json();
        assert_eq!(r["id"], "2509.04664");
        assert_eq!(r["title"], "Why Language Models Hallucinate");
        assert_eq!(r["abstract"], "Like students facing hard exam questions.");
        assert_eq!(r["authors"], json!(["Adam Tauman Kalai", "Ofir Nachum"]));
        assert_eq!(r["published"], "2025-09-04");
        assert_eq!(r["url"], "https://arxiv.org/abs/2509.04664");
        assert_eq!(r["upvotes"], 26);
        assert_eq!(r["ai_keywords"], json!(["hallucinations"]));
        assert_eq!(r["listing_date"], "2025-09-08");
        assert!(r.get("githubRepo").is_none());
        assert_eq!(r["numComments"], 2);
        assert!(to_record(&json!({"paper": {"title": "no id"}}), "2025-09-08").is_none());
    }

    #[test]
    fn a_day_is_a_json_list() {
        assert!(parse_day_list(b"[]").unwrap().is_empty());
        assert!(parse_day_list(b"{\"error\": \"x\"}").is_err());
        assert!(parse_day_list(b"[{\"paper\": ").is_err());
    }
}
