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
//! **Ids.** Topic ids are `0..k` by decreasing size (ties: the topic holding the smaller
//! `DocId`); they are stable within a run, so `--sort growth` reorders the list without
//! renaming topics, and `--assignments` agrees with `--json`.
//!
//! **Growth.** Months are `YYYY-MM` of each paper's date. With `L` the latest month among
//! the selected papers, "recent" is `L` and the two months before it, "before" everything
//! earlier. A topic's growth is its share of the selection's recent papers over its share
//! of the earlier ones, each smoothed by adding one paper to the topic and `k` to the
//! selection (so a topic with no earlier papers gets a large finite figure, not infinity).
//! Above 1 the topic is rising. `null` when either period has no dated papers.

pub mod cache;
pub mod cluster;
pub mod html;
pub mod layout;
pub mod select;
pub mod terms;

use crate::cancel::Cancel;
use crate::embed::Encoder;
use crate::index::Index;
use crate::paper::{DocId, PaperId};
use crate::search::{self, Engine};
use ndarray::Array2;
use serde::Serialize;
use std::collections::BTreeMap;
use std::str::FromStr;

pub use cache::{Cache, Computed};
pub use layout::{MapPoint, TopicMap};
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
}

impl TopicParams {
    /// Checks the query and `k` against the limits.
    ///
    /// # Errors
    /// [`Error::InvalidQuery`] for a blank query, [`Error::KOutOfRange`].
    pub fn validate(&self) -> Result<(), Error> {
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

/// One topic.
#[derive(Debug, Clone, Serialize)]
pub struct Topic {
    /// `0..k`, by decreasing size; stable within a run.
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
    /// Share of recent papers over share of earlier ones (see the module doc).
    pub growth: Option<f64>,
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
    /// Latest month among the selected papers and the recent window used for growth.
    pub recent_months: Vec<String>,
}

/// The result of a run: `{"topics":[...],"selection":{...},"clustering":{...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct TopicsReport {
    pub topics: Vec<Topic>,
    pub selection: SelectionReport,
    pub clustering: ClusteringReport,
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
    let index = engine.index();
    let selection = match params.query.as_deref() {
        None => select::all(index),
        Some(q) => {
            engine.check_model(encoder.info())?;
            let qv = encoder.embed_one(q).map_err(search::Error::from)?;
            select::about(index, q.trim(), &qv)
        }
    };
    if selection.docs.len() > params.limits.max_selection {
        return Err(Error::SelectionTooLarge {
            papers: selection.docs.len(),
            max: params.limits.max_selection,
        });
    }
    cancel.check()?;
    describe(index, selection, params, cancel)
}

/// The selected papers' vectors, one row each.
pub fn matrix(index: &Index, docs: &[DocId]) -> Array2<f32> {
    let dim = index.manifest().dim;
    let mut m = Array2::zeros((docs.len(), dim));
    for (mut row, &d) in m.rows_mut().into_iter().zip(docs) {
        row.assign(&ndarray::ArrayView1::from(index.vector(d)));
    }
    m
}

fn describe(
    index: &Index,
    selection: select::Selection,
    params: &TopicParams,
    cancel: &Cancel,
) -> Result<TopicsReport, Error> {
    let docs = &selection.docs;
    let recent = recent_months(index, docs);
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
                recent_months: recent,
            },
        });
    }
    let data = matrix(index, docs);
    let clustering = match params.k {
        KChoice::Auto => cluster::auto(data.view(), params.seed, params.limits.max_k, cancel)?,
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
    let (sel_recent, sel_before) = period_counts((0..docs.len()).map(month), &recent);
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
            let (t_recent, t_before) = period_counts(rows.iter().map(|&r| month(r)), &recent);
            let growth = (sel_recent > 0 && sel_before > 0).then(|| {
                let kf = kept as f64;
                let recent_share = (t_recent as f64 + 1.0) / (sel_recent as f64 + kf);
                let before_share = (t_before as f64 + 1.0) / (sel_before as f64 + kf);
                ((recent_share / before_share) * 1e3).round() / 1e3
            });
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
                growth,
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
            recent_months: recent,
        },
    })
}

/// `YYYY-MM` of a `YYYY-MM-DD` date.
fn month_of(date: &str) -> Option<String> {
    let m = date.get(..7)?;
    (m.as_bytes()[4] == b'-').then(|| m.to_string())
}

/// The latest month among `docs` and the two before it, latest first; empty without dates.
fn recent_months(index: &Index, docs: &[DocId]) -> Vec<String> {
    let Some(last) = docs
        .iter()
        .filter_map(|&d| index.paper(d).date.as_deref().and_then(month_of))
        .max()
    else {
        return Vec::new();
    };
    let (mut y, mut m): (i32, i32) = match (last[..4].parse(), last[5..7].parse()) {
        (Ok(y), Ok(m)) => (y, m),
        _ => return Vec::new(),
    };
    let mut out = Vec::with_capacity(3);
    for _ in 0..3 {
        out.push(format!("{y:04}-{m:02}"));
        m -= 1;
        if m == 0 {
            m = 12;
            y -= 1;
        }
    }
    out
}

/// Dated papers in the recent window and before it.
fn period_counts(
    months: impl Iterator<Item = Option<String>>,
    recent: &[String],
) -> (usize, usize) {
    let (mut r, mut b) = (0, 0);
    let Some(oldest) = recent.last() else {
        return (0, 0);
    };
    for m in months.flatten() {
        if m >= *oldest {
            r += 1;
        } else {
            b += 1;
        }
    }
    (r, b)
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
    fn months_and_periods() {
        assert_eq!(month_of("2025-03-18").as_deref(), Some("2025-03"));
        assert_eq!(month_of("2025"), None);
        let recent = vec!["2026-01".to_string(), "2025-12".into(), "2025-11".into()];
        let months = ["2026-01", "2025-11", "2025-10", "2024-01"].map(|m| Some(m.to_string()));
        assert_eq!(
            period_counts(months.into_iter().chain([None]), &recent),
            (2, 2)
        );
    }
}
