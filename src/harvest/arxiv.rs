//! arXiv over OAI-PMH (`verb=ListRecords`, `metadataPrefix=arXiv`).
//!
//! One run asks for the records of a set changed between two days and follows
//! `resumptionToken` pages until the list ends. A record maps to paperscope's fields as
//! follows: id without `oai:arXiv.org:` and without a version suffix; title and abstract
//! with whitespace collapsed (the XML reader decodes entities); authors as
//! "Forenames Keyname Suffix"; categories as listed (primary first); `published` is the
//! first version's day (`created`); `url` the abstract page; `doi`, `journal-ref`,
//! `comments`, `license` and `report-no` are kept as extra fields (the names of arXiv's
//! metadata snapshot). A header with `status="deleted"` becomes a deletion record.
//!
//! With categories given, a record is kept when it has any of them. Deletions carry no
//! categories and are always kept: removing an id the index does not hold does nothing.
//! The OAI-PMH error `noRecordsMatch` is an empty harvest; any other is an error.

use super::{
    deletion, parse_flag_day, start_day, today, write_state, Error, Http, Output, Record, Report,
    State,
};
use crate::paper::{arxiv_abs_url, normalize_whitespace};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// arXiv's OAI-PMH endpoint.
pub const DEFAULT_BASE_URL: &str = "https://oaipmh.arxiv.org/oai";

/// What to harvest and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// OAI-PMH endpoint. Default: [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// OAI-PMH set (`cs`, `physics:hep-th`, `math`, ...); empty for all of arXiv.
    pub set: String,
    /// Keep only records with any of these categories (`cs.CL`); empty keeps all.
    pub categories: Vec<String>,
    /// First datestamp day, `YYYY-MM-DD`; `None` continues from the state file.
    pub from: Option<String>,
    /// Last datestamp day; `None` means up to now.
    pub until: Option<String>,
    /// Least time between requests. Default: 3 s, as arXiv asks of harvesters.
    pub delay: Duration,
    /// Retries of a failed request. Default: 5.
    pub retries: u32,
    /// Longest time one request may take. Default: 120 s.
    pub timeout: Duration,
    /// First wait before a retry when the server names none, doubled each time.
    /// Default: 2 s.
    pub backoff: Duration,
}

impl Options {
    /// Options for harvesting `set` from `from` (or from the state file) with the defaults.
    pub fn new(set: &str, from: Option<&str>) -> Options {
        Options {
            base_url: DEFAULT_BASE_URL.to_string(),
            set: set.to_string(),
            categories: Vec::new(),
            from: from.map(str::to_string),
            until: None,
            delay: Duration::from_secs(3),
            retries: 5,
            timeout: Duration::from_secs(120),
            backoff: Duration::from_secs(2),
        }
    }
}

/// Harvests the records the options ask for into `out` (JSON Lines, replaced atomically)
/// and records where it stopped in `out`'s state file.
///
/// # Errors
/// [`Error::Invalid`] for bad dates, no start date, or a state file of another harvest;
/// network, OAI-PMH and write errors otherwise. On any error `out` and its state file are
/// left as they were.
pub fn harvest(opts: &Options, out: &Path) -> Result<Report, Error> {
    let from = start_day("from", opts.from.as_deref(), out, |state| {
        if state.source != "arxiv" || state.set.as_deref() != Some(opts.set.as_str()) {
            return Err(format!(
                "{} holds the state of another harvest ({} set {:?}); pass --from to start anew",
                super::state_path(out).display(),
                state.source,
                state.set.as_deref().unwrap_or("")
            ));
        }
        Ok(())
    })?;
    let until = opts
        .until
        .as_deref()
        .map(|u| parse_flag_day("until", u))
        .transpose()?;
    if until.as_ref().is_some_and(|u| *u < from) {
        return Err(Error::Invalid(format!(
            "--until {} is before the start day {from}",
            until.as_deref().unwrap_or_default()
        )));
    }
    let mut http = Http::new(&opts.base_url, opts.delay, opts.retries, opts.timeout);
    http.backoff = opts.backoff;
    let mut params = vec![
        ("verb", "ListRecords"),
        ("metadataPrefix", "arXiv"),
        ("from", from.as_str()),
    ];
    if !opts.set.is_empty() {
        params.push(("set", opts.set.as_str()));
    }
    if let Some(u) = &until {
        params.push(("until", u.as_str()));
    }
    let mut url = with_query(&http.base_url, &params);
    let mut output = Output::create(out)?;
    let (mut records, mut deleted, mut pages) = (0, 0, 0);
    let mut latest: Option<String> = None;
    loop {
        let page = http.get(&url, parse_page)?;
        pages += 1;
        let list = match page {
            Page::List(list) => list,
            Page::Error(e) if e.code == "noRecordsMatch" => break,
            Page::Error(e) => {
                return Err(Error::Oai {
                    url,
                    code: e.code,
                    message: normalize_whitespace(&e.message),
                })
            }
        };
        for rec in list.record {
            let stamp = rec.header.datestamp.trim();
            if latest.as_deref().is_none_or(|l| stamp > l) {
                latest = Some(stamp.to_string());
            }
            match to_line(rec, &opts.categories) {
                Some(Line::Paper(m)) => {
                    records += 1;
                    output.line(&m)?;
                }
                Some(Line::Deleted(m)) => {
                    deleted += 1;
                    output.line(&m)?;
                }
                None => {}
            }
        }
        tracing::info!("page {pages}: {records} records, {deleted} deletions so far");
        match list.resumption_token.map(|t| t.value.trim().to_string()) {
            Some(token) if !token.is_empty() => {
                url = with_query(
                    &http.base_url,
                    &[("verb", "ListRecords"), ("resumptionToken", &token)],
                );
            }
            _ => break,
        }
    }
    output.commit()?;
    let until = until.unwrap_or_else(today);
    write_state(
        out,
        &State {
            source: "arxiv".into(),
            set: Some(opts.set.clone()),
            categories: opts.categories.clone(),
            until: until.clone(),
            latest_datestamp: latest,
        },
    )?;
    Ok(Report {
        records,
        deleted,
        requests: http.requests,
        retries: http.retried,
        pages,
        out: out.to_path_buf(),
        from,
        until,
    })
}

fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).expect("string pairs encode. This is a bug.");
    format!("{base}?{query}")
}

/// One OAI-PMH response: a list of records, or an OAI-PMH error.
enum Page {
    List(ListRecords),
    Error(OaiError),
}

fn parse_page(body: &[u8]) -> Result<Page, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    let doc: OaiPmh = quick_xml::de::from_str(text).map_err(|e| format!("not OAI-PMH XML: {e}"))?;
    if let Some(e) = doc.error.into_iter().next() {
        return Ok(Page::Error(e));
    }
    doc.list_records
        .map(Page::List)
        .ok_or_else(|| "neither <ListRecords> nor <error> in the response".to_string())
}

enum Line {
    Paper(Map<String, Value>),
    Deleted(Map<String, Value>),
}

/// The output line of a record; `None` when the category filter drops it or it carries
/// no usable id.
fn to_line(rec: OaiRecord, categories: &[String]) -> Option<Line> {
    let header_id = rec.header.identifier.trim();
    let header_id = header_id
        .strip_prefix("oai:arXiv.org:")
        .unwrap_or(header_id);
    if rec.header.status.as_deref() == Some("deleted") {
        return Some(Line::Deleted(deletion(strip_version(header_id))));
    }
    let meta = rec.metadata?.arxiv;
    let id = match meta.id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => strip_version(id),
        _ => strip_version(header_id),
    };
    if id.is_empty() {
        return None;
    }
    let cats: Vec<String> = meta
        .categories
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !categories.is_empty() && !cats.iter().any(|c| categories.contains(c)) {
        return None;
    }
    let authors = meta
        .authors
        .map(|a| a.author)
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let parts = [a.forenames, a.keyname, a.suffix];
            normalize_whitespace(&parts.into_iter().flatten().collect::<Vec<_>>().join(" "))
        })
        .filter(|a| !a.is_empty())
        .collect();
    let mut extra = Map::new();
    for (key, value) in [
        ("doi", meta.doi),
        ("journal-ref", meta.journal_ref),
        ("comments", meta.comments),
        ("license", meta.license),
        ("report-no", meta.report_no),
    ] {
        if let Some(v) = value.map(|v| normalize_whitespace(&v)) {
            if !v.is_empty() {
                extra.insert(key.to_string(), v.into());
            }
        }
    }
    Some(Line::Paper(
        Record {
            url: arxiv_abs_url(id),
            id: id.to_string(),
            title: normalize_whitespace(meta.title.as_deref().unwrap_or_default()),
            abstract_: normalize_whitespace(meta.abstract_.as_deref().unwrap_or_default()),
            authors,
            published: meta
                .created
                .as_deref()
                .and_then(crate::text::date::parse_day),
            categories: cats,
            extra,
        }
        .into_json(),
    ))
}

/// `id` without a trailing version (`2101.00001v2` → `2101.00001`).
fn strip_version(id: &str) -> &str {
    match id.rfind('v') {
        Some(i)
            if i > 0
                && id.as_bytes()[i - 1].is_ascii_digit()
                && id.len() > i + 1
                && id[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &id[..i]
        }
        _ => id,
    }
}

// The OAI-PMH envelope and the `arXiv` metadata format, as far as they are used. Unknown
// elements (responseDate, request, setSpec, affiliation, proxy, ...) are ignored.

#[derive(Deserialize)]
struct OaiPmh {
    #[serde(default)]
    error: Vec<OaiError>,
    #[serde(rename = "ListRecords")]
    list_records: Option<ListRecords>,
}

#[derive(Deserialize)]
struct OaiError {
    #[serde(rename = "@code")]
    code: String,
    #[serde(rename = "$text", default)]
    message: String,
}

#[derive(Deserialize)]
struct ListRecords {
    #[serde(default)]
    record: Vec<OaiRecord>,
    #[serde(rename = "resumptionToken")]
    resumption_token: Option<ResumptionToken>,
}

#[derive(Deserialize)]
struct ResumptionToken {
    #[serde(rename = "$text", default)]
    value: String,
}

#[derive(Deserialize)]
struct OaiRecord {
    header: Header,
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Header {
    #[serde(rename = "@status")]
    status: Option<String>,
    identifier: String,
    #[serde(default)]
    datestamp: String,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(rename = "arXiv")]
    arxiv: ArxivMeta,
}

#[derive(Deserialize)]
struct ArxivMeta {
    id: Option<String>,
    created: Option<String>,
    authors: Option<Authors>,
    title: Option<String>,
    categories: Option<String>,
    comments: Option<String>,
    #[serde(rename = "report-no")]
    report_no: Option<String>,
    #[serde(rename = "journal-ref")]
    journal_ref: Option<String>,
    doi: Option<String>,
    license: Option<String>,
    #[serde(rename = "abstract")]
    abstract_: Option<String>,
}

#[derive(Deserialize)]
struct Authors {
    #[serde(default)]
    author: Vec<Author>,
}

#[derive(Deserialize)]
struct Author {
    keyname: Option<String>,
    forenames: Option<String>,
    suffix: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped_from_ids() {
        assert_eq!(strip_version("2101.00001v2"), "2101.00001");
        assert_eq!(strip_version("hep-th/9504118v1"), "hep-th/9504118");
        assert_eq!(strip_version("hep-th/9504118"), "hep-th/9504118");
        assert_eq!(strip_version("solv-int/9901001"), "solv-int/9901001");
    }

    #[test]
    fn a_record_maps_to_paperscope_fields() {
        let xml = r#"<OAI-PMH><ListRecords><record><header><identifier>oai:arXiv.org:0801.3931</identifier>
            <datestamp>2013-03-26</datestamp></header><metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/">
            <id>0801.3931</id><created>2008-01-25</created><authors><author><keyname>Manos</keyname>
            <forenames>T.</forenames></author><author><keyname>Smith</keyname><forenames>J.</forenames>
            <suffix>Jr</suffix></author></authors><title>Dynamical  study
            of barred galaxy models</title><categories>astro-ph.GA physics.comp-ph</categories>
            <comments>to appear in &quot;Chaos in Astronomy&quot;</comments><abstract> We study &amp; compare
            orbits.</abstract></arXiv></metadata></record>
            <record><header status="deleted"><identifier>oai:arXiv.org:0801.0001</identifier>
            <datestamp>2013-03-27</datestamp></header></record>
            <resumptionToken cursor="0" completeListSize="2"></resumptionToken></ListRecords></OAI-PMH>"#;
        let Ok(Page::List(list)) = parse_page(xml.as_bytes()) else {
            panic!("a ListRecords page")
        };
        assert!(list.resumption_token.unwrap().value.is_empty());
        let mut lines = list.record.into_iter().map(|r| to_line(r, &[]));
        let Some(Some(Line::Paper(p))) = lines.next() else {
            panic!("a paper")
        };
        assert_eq!(p["id"], "0801.3931");
        assert_eq!(p["title"], "Dynamical study of barred galaxy models");
        assert_eq!(p["abstract"], "We study & compare orbits.");
        assert_eq!(p["authors"], serde_json::json!(["T. Manos", "J. Smith Jr"]));
        assert_eq!(p["published"], "2008-01-25");
        assert_eq!(
            p["categories"],
            serde_json::json!(["astro-ph.GA", "physics.comp-ph"])
        );
        assert_eq!(p["url"], "https://arxiv.org/abs/0801.3931");
        assert_eq!(p["comments"], "to appear in \"Chaos in Astronomy\"");
        let Some(Some(Line::Deleted(d))) = lines.next() else {
            panic!("a deletion")
        };
        assert_eq!(
            serde_json::Value::Object(d),
            serde_json::json!({"id": "0801.0001", "deleted": true})
        );
    }

    #[test]
    fn oai_errors_and_foreign_documents_are_told_apart() {
        let err = r#"<?xml version="1.0"?><OAI-PMH><responseDate>x</responseDate>
            <error code="badResumptionToken">expired</error></OAI-PMH>"#;
        assert!(
            matches!(parse_page(err.as_bytes()), Ok(Page::Error(e)) if e.code == "badResumptionToken")
        );
        assert!(parse_page(b"<html><body>Retry after 10 seconds</body></html>").is_err());
        assert!(parse_page(b"<OAI-PMH><ListRecords><record><header>").is_err());
    }
}
