//! Topics: find the papers about something (or take them all) and split them into groups a
//! person would name.
//!
//! One call, [`run`], does the whole job for both front ends (CLI and HTTP): select
//! ([`select`]), cluster the selected papers' stored vectors ([`cluster`]), describe each
//! group by class-based TF-IDF ([`terms`]), and count it per month. [`layout::map`] places
//! the papers on a 2-D map where topics stand apart, [`html::render`] draws the report as
//! one self-contained page, and [`Cache`] keeps reports (and maps) per index generation so
//! whole-collection topics are computed once, not per request.
//!
//! **Determinism.** Same index, same [`TopicParams`] → byte-identical JSON: the selection
//! is in `DocId` order, k-means is seeded by [`TopicParams::seed`], every ranking breaks
//! ties by id or term, and no hash-map order reaches the output.
//!
//! **Ids.** Within one run, topics are listed by decreasing size (ties: the topic holding
//! the smaller `DocId`). A run alone numbers them `0..k` in that order; with a [`History`]
//! (the CLI and `sync` keep one per selection in the index directory) each topic takes the
//! id of the previous run's topic it continues, matched by centroid similarity with an
//! optimal assignment ([`lineage`]), so ids mean the same thing across runs and commits.
//! `--sort growth` reorders the list without renaming topics.
//!
//! **Window.** [`TopicParams::window`] keeps only the selected papers within a date range
//! (and/or a category): the topics *of that period*.
//!
//! **Growth.** "Recent" is the [`RECENT_DAYS`] days up to the window's end (its `to`, else
//! the latest date among the selected papers), "earlier" every dated paper before that. A
//! topic's growth is its share of the selection's recent papers over its share of the
//! earlier ones, reported only when the topic has at least [`GROWTH_MIN_PAPERS`] papers in
//! each period: no smoothing, so no growth is ever claimed from zero recent papers, and a
//! topic whose papers are nearly all recent says so by its counts (`recent`, `earlier`)
//! instead of an invented ratio. Above 1 the topic is rising.

pub mod cache;
pub mod cluster;
pub mod collection;
pub mod html;
pub mod layout;
pub mod lineage;
pub mod select;
pub mod terms;

use crate::cancel::Cancel;
use crate::embed::Encoder;
use crate::filter::Filter;
use crate::paper::{DocId, PaperId};
use crate::search::{self, Engine};
use crate::text::date;
use ndarray::Array2;
use serde::Serialize;
use std::collections::BTreeMap;
use std::str::FromStr;

pub use cache::{Cache, Computed};
pub use collection::{Collection, InMemory};
pub use layout::{MapPoint, TopicMap};
pub use lineage::{History, HistoryReport, Status};
pub use select::{Mode, SelectionReport};

/// Errors of a topic run. The "too large"/"out of range"/"too few" variants are the
/// caller's to fix (HTTP 400).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error(transparent)]
    Cancelled(#[from] crate::cancel::Cancelled),
    #[error("the selection has {papers} papers, more than the limit of {max}; narrow the query")]
    SelectionTooLarge { papers: usize, max: usize },
    #[error("k = {k} is out of range: it must be between 1 and {max}")]
    KOutOfRange { k: usize, max: usize },
    #[error("cannot make {k} topics from {papers} papers; ask for fewer")]
    TooFewPapers { k: usize, papers: usize },
    #[error("invalid k {0:?}: expected a number or \"auto\"")]
    InvalidK(String),
    #[error("invalid sort {0:?}: expected \"size\" or \"growth\"")]
    InvalidSort(String),
    #[error("clustering failed: {0}")]
    Clustering(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("projection failed: {0}")]
    Projection(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Search(#[from] search::Error),
}

impl Error {
    /// Whether the error is the request's fault (bad query, limits), as opposed to a
    /// failure of the service. The HTTP layer maps these to 400.
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            Error::InvalidQuery(_)
                | Error::SelectionTooLarge { .. }
                | Error::KOutOfRange { .. }
                | Error::TooFewPapers { .. }
                | Error::InvalidK(_)
                | Error::InvalidSort(_)
        )
    }
}

/// How many topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KChoice {
    /// Chosen by silhouette (see [`cluster`]).
    #[default]
    Auto,
    Fixed(usize),
}

impl FromStr for KChoice {
    type Err = Error;
    /// `auto` or a positive number.
    fn from_str(s: &str) -> Result<KChoice, Error> {
        match s.trim() {
            "auto" => Ok(KChoice::Auto),
            n => n
                .parse::<usize>()
                .map(KChoice::Fixed)
                .map_err(|_| Error::InvalidK(s.to_string())),
        }
    }
}

impl std::fmt::Display for KChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KChoice::Auto => f.write_str("auto"),
            KChoice::Fixed(k) => write!(f, "{k}"),
        }
    }
}

/// Order of the topic list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Largest first (id order).
    #[default]
    Size,
    /// Fastest-rising first (topics without a growth figure last).
    Growth,
}

impl std::fmt::Display for SortBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SortBy::Size => "size",
            SortBy::Growth => "growth",
        })
    }
}

impl FromStr for SortBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<SortBy, Error> {
        match s.trim() {
            "size" => Ok(SortBy::Size),
            "growth" => Ok(SortBy::Growth),
            _ => Err(Error::InvalidSort(s.to_string())),
        }
    }
}

/// Bounds on the work one run may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest selection clustered; beyond it, [`Error::SelectionTooLarge`].
    pub max_selection: usize,
    /// Largest `k` (also the top of the auto range); beyond it, [`Error::KOutOfRange`].
    pub max_k: usize,
}

impl Default for Limits {
    /// Interactive limits (the HTTP service): at most 20,000 papers and k ≤ 100, which
    /// keeps one request to seconds on two cores.
    fn default() -> Limits {
        Limits {
            max_selection: 20_000,
            max_k: 100,
        }
    }
}

impl Limits {
    /// Batch limits (the CLI): any selection, k ≤ 1000.
    pub fn batch() -> Limits {
        Limits {
            max_selection: usize::MAX,
            max_k: 1_000,
        }
    }
}

/// What to compute. Build with struct update syntax from `TopicParams::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicParams {
    /// Papers about this (see [`select`]); `None`: the whole collection. Default `None`.
    pub query: Option<String>,
    /// Default [`KChoice::Auto`].
    pub k: KChoice,
    /// Seed of k-means (and of the silhouette sample). Default 0.
    pub seed: u64,
    /// Default [`SortBy::Size`].
    pub sort: SortBy,
    /// Default [`Limits::default`] (interactive).
    pub limits: Limits,
    /// Only the selected papers this filter matches (a date range, a category). Default:
    /// none.
    pub window: Filter,
    /// With auto k, keep this many topics when it clusters about as well as the best
    /// (see [`cluster::auto`]): the previous run's count, set from a [`History`].
    pub prefer_k: Option<usize>,
}

impl TopicParams {
    /// Checks the query and `k` against the limits.
    ///
    /// # Errors
    /// [`Error::InvalidQuery`] for a blank query, [`Error::KOutOfRange`], an invalid
    /// window ([`search::Error::Invalid`]).
    pub fn validate(&self) -> Result<(), Error> {
        self.window
            .validate()
            .map_err(|e| Error::Search(search::Error::Invalid(e)))?;
        if let Some(q) = &self.query {
            if q.trim().is_empty() {
                return Err(Error::InvalidQuery("empty query".into()));
            }
        }
        if let KChoice::Fixed(k) = self.k {
            if k == 0 || k > self.limits.max_k {
                return Err(Error::KOutOfRange {
                    k,
                    max: self.limits.max_k,
                });
            }
        }
        Ok(())
    }
}

/// Papers a topic needs in each period before a growth figure is given for it.
pub const GROWTH_MIN_PAPERS: usize = 5;

/// Length of the recent period of [`Topic::growth`], in days.
pub const RECENT_DAYS: i32 = 90;

/// One topic.
#[derive(Debug, Clone, Serialize)]
pub struct Topic {
    /// See the module doc: `0..k` by size for a run alone, the continued topic's id with a
    /// [`History`].
    pub id: usize,
    /// A few of the best terms.
    pub label: String,
    /// c-TF-IDF terms with weights, best first.
    pub terms: Vec<(String, f32)>,
    pub size: usize,
    /// The three papers closest to the centroid, closest first.
    pub representative: Vec<PaperId>,
    /// Every member, in index order.
    pub papers: Vec<PaperId>,
    /// Papers per `YYYY-MM` (dated papers only), in month order.
    pub monthly: BTreeMap<String, usize>,
    /// Papers dated in the recent period, and before it (see the module doc).
    pub recent: usize,
    pub earlier: usize,
    /// Share of recent papers over share of earlier ones; `None` below
    /// [`GROWTH_MIN_PAPERS`] in either period (see the module doc).
    pub growth: Option<f64>,
    /// Against the previous run, when there is a [`History`]; else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// The continued topic's size in the previous run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_size: Option<usize>,
    /// Unit mean of the members' vectors: what [`lineage`] matches runs by.
    #[serde(skip)]
    pub centroid: Vec<f32>,
}

/// How the clustering was done.
#[derive(Debug, Clone, Serialize)]
pub struct ClusteringReport {
    /// Topics made (empty k-means clusters dropped).
    pub k: usize,
    /// `"auto"` or `"fixed"`.
    pub k_mode: &'static str,
    pub seed: u64,
    /// With auto k: `[[k, mean silhouette], ...]` for every candidate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub silhouettes: Vec<(usize, f32)>,
    pub sort: SortBy,
    /// The periods growth compares; `None` without dated papers.
    pub growth: Option<GrowthPeriods>,
}

/// What [`Topic::growth`] compares.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GrowthPeriods {
    /// First and last day of the recent period, inclusive.
    pub recent_from: String,
    pub recent_to: String,
    /// Dated selected papers in the recent period, and before it.
    pub recent: usize,
    pub earlier: usize,
    /// See [`GROWTH_MIN_PAPERS`].
    pub min_papers: usize,
}

/// The result of a run: `{"topics":[...],"selection":{...},"clustering":{...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct TopicsReport {
    pub topics: Vec<Topic>,
    pub selection: SelectionReport,
    pub clustering: ClusteringReport,
    /// The comparison with the previous run, when a [`History`] was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryReport>,
}

/// Selects, clusters and describes (see the module doc).
///
/// # Errors
/// [`Error::InvalidQuery`] for a blank query; [`Error::KOutOfRange`],
/// [`Error::SelectionTooLarge`], [`Error::TooFewPapers`] beyond the limits; model errors.
pub fn run(
    engine: &Engine,
    params: &TopicParams,
    encoder: &dyn Encoder,
    cancel: &Cancel,
) -> Result<TopicsReport, Error> {
    params.validate()?;
    let query_vector = match params.query.as_deref() {
        None => None,
        Some(q) => {
            engine.check_model(encoder.info())?;
            Some(encoder.embed_one(q).map_err(search::Error::from)?)
        }
    };
    run_on(engine.index(), params, query_vector.as_deref(), cancel)
}

/// [`run`] over any [`Collection`], given the query's embedding (`query_vector`, by the
/// collection's model) when [`TopicParams::query`] is set.
///
/// # Errors
/// As [`run`]; [`Error::InvalidQuery`] also when a query comes without its vector.
pub fn run_on(
    collection: &dyn Collection,
    params: &TopicParams,
    query_vector: Option<&[f32]>,
    cancel: &Cancel,
) -> Result<TopicsReport, Error> {
    params.validate()?;
    let mut selection = match (params.query.as_deref(), query_vector) {
        (None, _) => select::all(collection),
        (Some(q), Some(qv)) => select::about(collection, q.trim(), qv),
        (Some(_), None) => {
            return Err(Error::InvalidQuery(
                "a topic query needs its embedding. This is a bug.".into(),
            ))
        }
    };
    if !params.window.is_empty() {
        let before = selection.docs.len();
        selection
            .docs
            .retain(|&d| params.window.matches(collection.paper(d)));
        selection.report.papers = selection.docs.len();
        selection.report.outside_window = Some(before - selection.docs.len());
    }
    if selection.docs.len() > params.limits.max_selection {
        return Err(Error::SelectionTooLarge {
            papers: selection.docs.len(),
            max: params.limits.max_selection,
        });
    }
    cancel.check()?;
    describe(collection, selection, params, cancel)
}

/// The selected papers' vectors, one row each.
pub fn matrix(index: &dyn Collection, docs: &[DocId]) -> Array2<f32> {
    let dim = index.dim();
    let mut m = Array2::zeros((docs.len(), dim));
    for (mut row, &d) in m.rows_mut().into_iter().zip(docs) {
        row.assign(&ndarray::ArrayView1::from(index.vector(d)));
    }
    m
}

fn describe(
    index: &dyn Collection,
    selection: select::Selection,
    params: &TopicParams,
    cancel: &Cancel,
) -> Result<TopicsReport, Error> {
    let docs = &selection.docs;
    let periods = growth_periods(index, docs, params.window.to.as_deref());
    let k_mode = match params.k {
        KChoice::Auto => "auto",
        KChoice::Fixed(_) => "fixed",
    };
    if docs.is_empty() {
        return Ok(TopicsReport {
            topics: Vec::new(),
            selection: selection.report,
            clustering: ClusteringReport {
                k: 0,
                k_mode,
                seed: params.seed,
                silhouettes: Vec::new(),
                sort: params.sort,
                growth: periods,
            },
            history: None,
        });
    }
    let data = matrix(index, docs);
    let clustering = match params.k {
        KChoice::Auto => cluster::auto(
            data.view(),
            params.seed,
            params.limits.max_k,
            params.prefer_k,
            cancel,
        )?,
        KChoice::Fixed(k) => cluster::kmeans(data.view(), k, params.seed)?,
    };
    let k = clustering.k();
    cancel.check()?;

    // Renumber clusters by decreasing size, ties by smallest member (first in doc order).
    let mut sizes = vec![0usize; k];
    let mut first = vec![usize::MAX; k];
    for (row, &c) in clustering.assignment.iter().enumerate() {
        sizes[c] += 1;
        first[c] = first[c].min(row);
    }
    let mut order: Vec<usize> = (0..k).filter(|&c| sizes[c] > 0).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(sizes[c]), first[c]));
    let mut new_id = vec![usize::MAX; k];
    for (id, &c) in order.iter().enumerate() {
        new_id[c] = id;
    }
    let topic_of: Vec<usize> = clustering.assignment.iter().map(|&c| new_id[c]).collect();
    let kept = order.len();

    let texts: Vec<String> = docs.iter().map(|&d| index.paper(d).text()).collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let excluded = terms::Excluded::from_query(params.query.as_deref());
    let all_terms = terms::ctfidf(&text_refs, &topic_of, kept, &excluded);

    let mut members: Vec<Vec<usize>> = vec![Vec::new(); kept];
    for (row, &t) in topic_of.iter().enumerate() {
        members[t].push(row);
    }
    let month = |row: usize| index.paper(docs[row]).date.as_deref().and_then(month_of);
    let period = |row: usize| {
        let p = periods.as_ref()?;
        let d = index.paper(docs[row]).date.as_deref()?;
        (d <= p.recent_to.as_str()).then(|| d >= p.recent_from.as_str())
    };
    let mut topics: Vec<Topic> = order
        .iter()
        .zip(all_terms)
        .enumerate()
        .map(|(id, (&c, terms))| {
            let rows = &members[id];
            let centroid = clustering.centroids.row(c);
            let mut closest: Vec<(f32, usize)> = rows
                .iter()
                .map(|&r| (data.row(r).dot(&centroid), r))
                .collect();
            closest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut monthly = BTreeMap::new();
            for &r in rows {
                if let Some(m) = month(r) {
                    *monthly.entry(m).or_insert(0) += 1;
                }
            }
            let (mut recent, mut earlier) = (0, 0);
            for is_recent in rows.iter().filter_map(|&r| period(r)) {
                if is_recent {
                    recent += 1;
                } else {
                    earlier += 1;
                }
            }
            let growth = periods.as_ref().and_then(|p| {
                (recent >= GROWTH_MIN_PAPERS && earlier >= GROWTH_MIN_PAPERS).then(|| {
                    let recent_share = recent as f64 / p.recent as f64;
                    let earlier_share = earlier as f64 / p.earlier as f64;
                    ((recent_share / earlier_share) * 1e3).round() / 1e3
                })
            });
            let mut centroid = vec![0f32; data.ncols()];
            for &r in rows {
                for (c, x) in centroid.iter_mut().zip(data.row(r)) {
                    *c += x;
                }
            }
            crate::vector::normalize(&mut centroid);
            Topic {
                id,
                label: terms::label(&terms),
                terms,
                size: rows.len(),
                representative: closest
                    .iter()
                    .take(3)
                    .map(|&(_, r)| index.paper(docs[r]).id.clone())
                    .collect(),
                papers: rows
                    .iter()
                    .map(|&r| index.paper(docs[r]).id.clone())
                    .collect(),
                monthly,
                recent,
                earlier,
                growth,
                status: None,
                previous_size: None,
                centroid,
            }
        })
        .collect();
    if params.sort == SortBy::Growth {
        topics.sort_by(|a, b| match (a.growth, b.growth) {
            (Some(x), Some(y)) => y.total_cmp(&x).then(a.id.cmp(&b.id)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.id.cmp(&b.id),
        });
    }
    Ok(TopicsReport {
        topics,
        selection: selection.report,
        clustering: ClusteringReport {
            k: kept,
            k_mode,
            seed: params.seed,
            silhouettes: clustering.silhouettes,
            sort: params.sort,
            growth: periods,
        },
        history: None,
    })
}

/// `YYYY-MM` of a `YYYY-MM-DD` date.
fn month_of(date: &str) -> Option<String> {
    let m = date.get(..7)?;
    (m.as_bytes()[4] == b'-').then(|| m.to_string())
}

/// The periods growth compares (see the module doc): the [`RECENT_DAYS`] up to `to` (a
/// window's end, any [`date::Period`] form) or else the latest date among `docs`, and
/// everything before. `None` without dated papers.
fn growth_periods(
    index: &dyn Collection,
    docs: &[DocId],
    to: Option<&str>,
) -> Option<GrowthPeriods> {
    let end = match to.and_then(date::Period::parse) {
        Some(p) => {
            let (y, m, d) = p.last_day();
            format!("{y:04}-{m:02}-{d:02}")
        }
        None => docs
            .iter()
            .filter_map(|&d| index.paper(d).date.clone())
            .max()?,
    };
    let recent_from = date::add_days(&end, 1 - RECENT_DAYS)?;
    let (mut recent, mut earlier) = (0, 0);
    for d in docs.iter().filter_map(|&d| index.paper(d).date.as_deref()) {
        if d > end.as_str() {
            continue;
        }
        if d >= recent_from.as_str() {
            recent += 1;
        } else {
            earlier += 1;
        }
    }
    Some(GrowthPeriods {
        recent_from,
        recent_to: end,
        recent,
        earlier,
        min_papers: GROWTH_MIN_PAPERS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_and_sort() {
        assert_eq!("auto".parse::<KChoice>().unwrap(), KChoice::Auto);
        assert_eq!("40".parse::<KChoice>().unwrap(), KChoice::Fixed(40));
        assert!("forty".parse::<KChoice>().is_err());
        assert_eq!("growth".parse::<SortBy>().unwrap(), SortBy::Growth);
        assert!("date".parse::<SortBy>().is_err());
    }

    #[test]
    fn months() {
        assert_eq!(month_of("2025-03-18").as_deref(), Some("2025-03"));
        assert_eq!(month_of("2025"), None);
    }
}
