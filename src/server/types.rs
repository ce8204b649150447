//! Wire formats of the HTTP API (requests and responses), kept apart from the domain types
//! so that `Paper` and friends need not follow the wire.

use super::error::TeiError;
use crate::explain::Explanation;
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
    /// `semantic` (embeddings), `keyword` (BM25) or `hybrid` (both, fused; the default).
    #[param(example = "hybrid")]
    pub mode: Option<String>,
    /// `relevance` (default), or `date` (alias `newest`): the 100 most relevant results,
    /// newest first.
    #[param(example = "relevance")]
    pub sort: Option<String>,
    /// Add to each result why it was found: the query terms it contains with their BM25
    /// points, its abstract sentence closest to the query, its rank in each list (default
    /// false; k ≤ 20 with it).
    pub explain: Option<bool>,
    /// Documented as [`FilterQuery`]'s own parameters (utoipa does not expand a flattened
    /// field).
    #[serde(flatten)]
    #[param(ignore)]
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
    /// Add to each result the title and abstract terms the two papers share, most
    /// distinctive first (default false).
    pub explain: Option<bool>,
    /// Documented as [`FilterQuery`]'s own parameters (utoipa does not expand a flattened
    /// field).
    #[serde(flatten)]
    #[param(ignore)]
    pub filter: FilterQuery,
}

/// Query string of `/v1/topics` and `/topics`.
#[derive(Debug, Default, Deserialize, IntoParams)]
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
    /// Only papers dated on or after this (`YYYY-MM-DD`, `YYYY-MM`, `YYYY`).
    pub from: Option<String>,
    /// Only papers dated on or before this (same forms); growth is measured up to it.
    pub to: Option<String>,
    /// Only papers of this category (`cs.CL`) or archive (`cs.`).
    pub category: Option<String>,
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

/// Body of `POST /embed`: text-embeddings-inference's request, every field of it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeiEmbedRequest {
    /// One text or a list of texts (at most 64), none empty.
    pub inputs: Inputs,
    /// Must be true (the default): paperscope's vectors are always unit length.
    #[serde(default = "default_normalize")]
    #[schema(default = true)]
    pub normalize: bool,
    /// Cut inputs longer than the model's limit (256 tokens) instead of refusing them
    /// (413). Default false, as TEI's.
    #[schema(default = false, nullable = true)]
    pub truncate: Option<bool>,
    /// Which end truncation keeps: only `Right` (the default) is supported.
    #[serde(default)]
    pub truncation_direction: TruncationDirection,
    /// Must be null: this model has no prompts.
    #[schema(nullable = true)]
    pub prompt_name: Option<String>,
    /// Must be null or the model's dimension (384): vectors are not shortened.
    #[schema(nullable = true)]
    pub dimensions: Option<usize>,
}

fn default_normalize() -> bool {
    true
}

/// TEI's truncation direction, spelled as TEI spells it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum TruncationDirection {
    Left,
    #[default]
    Right,
}

impl TeiEmbedRequest {
    /// Refuses, with the reason, each option this server cannot honour for a model of
    /// dimension `dim`.
    pub fn check_options(&self, dim: usize) -> Result<(), TeiError> {
        if !self.normalize {
            return Err(TeiError::Invalid(
                "`normalize: false` is not supported: paperscope's embeddings are always unit length (the index relies on it)".into(),
            ));
        }
        if self.truncation_direction == TruncationDirection::Left {
            return Err(TeiError::Invalid(
                "`truncation_direction: Left` is not supported: truncation keeps the start of a text".into(),
            ));
        }
        if let Some(name) = &self.prompt_name {
            return Err(TeiError::Invalid(format!(
                "`prompt_name` {name:?} is not supported: this model has no prompts"
            )));
        }
        match self.dimensions {
            Some(d) if d != dim => Err(TeiError::Invalid(format!(
                "`dimensions` {d} is not supported: this model's embeddings have {dim} dimensions"
            ))),
            _ => Ok(()),
        }
    }
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
    /// Results are ordered by it. Semantic mode, similar, recommend: cosine similarity;
    /// keyword mode: BM25; hybrid: the fused score, 0..=1.
    pub score: f32,
    /// Why this result; only with `explain=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<ExplanationItem>,
}

/// Why a result was returned. Empty parts are left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationItem {
    /// Query terms the paper contains, largest contribution first (search).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<TermItem>,
    /// The abstract sentence closest in meaning to the query (search).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentence: Option<SentenceItem>,
    /// 1-based rank in the semantic list before fusion, if the paper was in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_rank: Option<u32>,
    /// 1-based rank in the keyword list before fusion, if the paper was in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword_rank: Option<u32>,
    /// Terms both papers use, rarest in the collection first (similar).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_terms: Vec<SharedTermItem>,
}

/// A query term found in the paper.
#[derive(Debug, Serialize, ToSchema)]
pub struct TermItem {
    /// The word as the query wrote it.
    pub term: String,
    /// Its indexed form (lower case, stemmed).
    pub stem: String,
    /// BM25 points it earned; the terms' points sum to the paper's keyword score.
    pub score: f32,
    /// Fields it was found in: title, abstract, authors, categories.
    pub fields: Vec<&'static str>,
}

/// An abstract sentence and its cosine similarity to the query.
#[derive(Debug, Serialize, ToSchema)]
pub struct SentenceItem {
    pub text: String,
    pub score: f32,
}

/// A term two papers share.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharedTermItem {
    /// The word as the first paper writes it.
    pub term: String,
    pub stem: String,
    /// BM25's inverse document frequency: higher is rarer.
    pub idf: f32,
    /// Papers in the collection that contain it.
    pub papers: u64,
}

impl From<&Explanation> for ExplanationItem {
    fn from(e: &Explanation) -> Self {
        ExplanationItem {
            terms: e
                .terms
                .iter()
                .map(|t| TermItem {
                    term: t.term.clone(),
                    stem: t.stem.clone(),
                    score: t.score,
                    fields: t.fields.clone(),
                })
                .collect(),
            sentence: e.sentence.as_ref().map(|s| SentenceItem {
                text: s.text.clone(),
                score: s.score,
            }),
            semantic_rank: e.semantic_rank,
            keyword_rank: e.keyword_rank,
            shared_terms: e
                .shared_terms
                .iter()
                .map(|t| SharedTermItem {
                    term: t.term.clone(),
                    stem: t.stem.clone(),
                    idf: t.idf,
                    papers: t.papers,
                })
                .collect(),
        }
    }
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
    /// Live papers of the commit served.
    pub papers: usize,
    /// The commit served (grows with every `add`, `remove`, `compact` or rebuild).
    pub generation: u64,
    /// Its segments.
    pub segments: usize,
    /// When that commit was made, RFC 3339.
    pub committed_at: String,
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
            explanation: h.explanation.as_ref().map(ExplanationItem::from),
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
