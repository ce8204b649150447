//! Wire formats of the HTTP API (requests and responses), kept apart from the domain types
//! so that `Paper` and friends need not follow the wire.

use crate::paper::Paper;
use crate::search::Hit;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query string of `/v1/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The query text (1..=2000 characters).
    pub q: Option<String>,
    /// Results per page, 1..=100 (default 10).
    pub k: Option<usize>,
    /// Results to skip, 0..=1000 (default 0).
    pub offset: Option<usize>,
    #[serde(flatten)]
    #[param(inline)]
    pub filter: FilterQuery,
}

/// Filters shared by search, similar and recommend.
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct FilterQuery {
    /// Category (`cs.CL`), or an archive prefix (`cs.`, `cond-mat*`).
    pub category: Option<String>,
    /// Earliest date, inclusive: YYYY-MM-DD, YYYY-MM or YYYY.
    pub from: Option<String>,
    /// Latest date, inclusive: YYYY-MM-DD, YYYY-MM or YYYY.
    pub to: Option<String>,
}

/// Query string of `/v1/papers/{id}/similar`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Results per page, 1..=100 (default 10).
    pub k: Option<usize>,
    /// Results to skip, 0..=1000 (default 0).
    pub offset: Option<usize>,
    #[serde(flatten)]
    #[param(inline)]
    pub filter: FilterQuery,
}

/// Query string of `/v1/topics` and `/topics`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopicsQuery {
    /// Papers about this (keyword or phrase); absent: the whole collection.
    pub q: Option<String>,
    /// Number of topics, 1..=100, or `auto` (default).
    pub k: Option<String>,
    /// Seed of the clustering (default 0); same seed, same answer.
    pub seed: Option<u64>,
    /// `size` (default) or `growth`.
    pub sort: Option<String>,
}

/// Body of `POST /v1/recommend`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    /// Papers to find more like (ids).
    #[serde(default)]
    pub positive: Vec<String>,
    /// Papers to steer away from (ids).
    #[serde(default)]
    pub negative: Vec<String>,
    /// Optional free text to add to the query.
    pub text: Option<String>,
    /// Results per page, 1..=100 (default 10).
    pub k: Option<usize>,
    /// Results to skip, 0..=1000 (default 0).
    pub offset: Option<usize>,
    pub category: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Body of `POST /v1/embed` (the shape of text-embeddings-inference's `/embed`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedRequest {
    /// One text or a list of texts (at most 64).
    pub inputs: Inputs,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Inputs {
    One(String),
    Many(Vec<String>),
}

/// One search result.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultItem {
    pub id: String,
    pub title: String,
    pub authors: Vec<String>,
    pub date: Option<String>,
    pub categories: Vec<String>,
    /// The abstract's opening, cut at a word boundary (about 300 characters).
    pub snippet: String,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub results: Vec<ResultItem>,
    /// Papers ranked: those passing the filters (examples excluded).
    pub total: usize,
    pub offset: usize,
    pub k: usize,
    /// Server-side time, milliseconds.
    pub took_ms: f64,
}

/// A paper record.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaperRecord {
    pub id: String,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_: String,
    pub authors: Vec<String>,
    pub date: Option<String>,
    pub categories: Vec<String>,
    pub url: Option<String>,
    /// Input fields paperscope does not interpret, as they were.
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl From<&Paper> for PaperRecord {
    fn from(p: &Paper) -> Self {
        PaperRecord {
            id: p.id.0.clone(),
            title: p.title.clone(),
            abstract_: p.abstract_.clone(),
            authors: p.authors.clone(),
            date: p.date.clone(),
            categories: p.categories.clone(),
            url: p.url.clone(),
            extra: p.extra.clone(),
        }
    }
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub papers: usize,
    pub model: String,
    pub built_at: String,
    pub version: &'static str,
}

/// Length of result snippets, in characters.
const SNIPPET_CHARS: usize = 300;

impl From<&Hit<'_>> for ResultItem {
    fn from(h: &Hit<'_>) -> Self {
        let p = h.paper;
        ResultItem {
            id: p.id.0.clone(),
            title: p.title.clone(),
            authors: p.authors.clone(),
            date: p.date.clone(),
            categories: p.categories.clone(),
            snippet: snippet(&p.abstract_, SNIPPET_CHARS),
            score: h.score,
        }
    }
}

/// The first `max` characters of `text`, cut back to a word boundary, with `…` if cut.
fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => {
            let cut = text[..end].rfind(' ').unwrap_or(end);
            format!("{}…", text[..cut].trim_end_matches([',', ';', ':', ' ']))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn snippets_cut_at_words() {
        assert_eq!(super::snippet("short", 10), "short");
        assert_eq!(super::snippet("one two three four", 9), "one two…");
        assert_eq!(super::snippet("ééééé", 3), "ééé…");
    }
}
