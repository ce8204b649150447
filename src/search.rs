//! The front door for queries: [`Engine`] answers "papers about this text", "papers like
//! this paper" and "papers like these, unlike those" over one [`Index`].
//!
//! The CLI and the HTTP service both build a [`SearchParams`], call the engine and format
//! its [`Results`]; neither holds search logic of its own.
//!
//! **Filters keep full pages.** With a category or date filter, HNSW search runs with the
//! filter applied inside the graph walk; when the filter is selective the walk can run out
//! of matching candidates before it has `offset + k` of them. Then (and whenever fewer than
//! [`EXACT_SCAN_BELOW`] papers match at all) the engine scans the matching papers exactly,
//! so a filtered query returns a full page whenever enough papers match.

use crate::embed::{self, Embedder, Vector};
use crate::index::{self, Index};
use crate::paper::{DocId, Paper, PaperId, Score};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Errors of answering a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown paper id: {0}")]
    PaperNotFound(PaperId),
    #[error("unknown paper ids: {}", .0.iter().map(|i| i.0.as_str()).collect::<Vec<_>>().join(", "))]
    PapersNotFound(Vec<PaperId>),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error(transparent)]
    Index(#[from] index::Error),
    #[error(transparent)]
    Embed(#[from] embed::Error),
}

/// Restricts results to papers with a category and/or a date range. Empty fields match
/// everything; a paper without a date never matches a date bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// An arXiv category (`cs.CL`), matched exactly against any of the paper's categories,
    /// or an archive prefix ending in `.` or `*` (`cs.`, `cond-mat*`).
    pub category: Option<String>,
    /// Earliest date, inclusive, `YYYY-MM-DD` (or `YYYY-MM`, `YYYY`).
    pub from: Option<String>,
    /// Latest date, inclusive, same forms.
    pub to: Option<String>,
}

impl Filter {
    /// Checks the date bounds' syntax and order.
    ///
    /// # Errors
    /// [`Error::InvalidQuery`] naming the bad bound.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, v) in [("from", &self.from), ("to", &self.to)] {
            if let Some(d) = v {
                if !valid_date_prefix(d) {
                    return Err(Error::InvalidQuery(format!(
                        "'{name}' must be YYYY-MM-DD, YYYY-MM or YYYY, got '{d}'"
                    )));
                }
            }
        }
        if let (Some(f), Some(t)) = (&self.from, &self.to) {
            if f > t {
                return Err(Error::InvalidQuery(format!(
                    "'from' ({f}) is after 'to' ({t})"
                )));
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.category.is_none() && self.from.is_none() && self.to.is_none()
    }

    pub fn matches(&self, p: &Paper) -> bool {
        if let Some(c) = &self.category {
            let ok = match c.strip_suffix('*') {
                Some(prefix) => p.categories.iter().any(|pc| pc.starts_with(prefix)),
                None if c.ends_with('.') => {
                    p.categories.iter().any(|pc| pc.starts_with(c.as_str()))
                }
                None => p.categories.iter().any(|pc| pc == c),
            };
            if !ok {
                return false;
            }
        }
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some(date) = p.date.as_deref() else {
            return false;
        };
        // A bound of YYYY or YYYY-MM covers the whole year or month: compare prefixes.
        let from_ok = self.from.as_deref().is_none_or(|f| date >= f);
        let to_ok = self
            .to
            .as_deref()
            .is_none_or(|t| &date[..t.len().min(date.len())] <= t);
        from_ok && to_ok
    }
}

fn valid_date_prefix(d: &str) -> bool {
    let b = d.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| d[r].parse().ok())?
    };
    let month_ok = || b[4] == b'-' && num(5..7).is_some_and(|m| (1..=12).contains(&m));
    match b.len() {
        4 => num(0..4).is_some(),
        7 => num(0..4).is_some() && month_ok(),
        10 => {
            num(0..4).is_some()
                && month_ok()
                && b[7] == b'-'
                && num(8..10).is_some_and(|day| (1..=31).contains(&day))
        }
        _ => false,
    }
}

/// What to return.
#[derive(Debug, Clone)]
pub struct SearchParams {
    /// Number of results. Default 10.
    pub k: usize,
    /// Results to skip (pagination). Default 0.
    pub offset: usize,
    pub filter: Filter,
    /// HNSW candidate list size; `None` uses the index's `ef_search`.
    pub ef: Option<usize>,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            k: 10,
            offset: 0,
            filter: Filter::default(),
            ef: None,
        }
    }
}

/// One result.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub doc: DocId,
    pub paper: &'a Paper,
    /// Cosine similarity to the query; results are ordered by it, best first.
    pub score: Score,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Results<'a> {
    pub hits: Vec<Hit<'a>>,
    /// Papers the query was ranked over: those passing the filter, minus excluded ones.
    pub total: usize,
}

/// Below this many matching papers, a filtered query scans them exactly instead of
/// walking the graph: as fast, and exact.
pub const EXACT_SCAN_BELOW: usize = 2_000;

/// "Papers like these, unlike those": the Rocchio query
/// `q = text + POSITIVE_WEIGHT·mean(positives) − NEGATIVE_WEIGHT·mean(negatives)`,
/// normalised (the free text term only when given).
#[derive(Debug, Clone, Default)]
pub struct Recommend {
    pub positive: Vec<PaperId>,
    pub negative: Vec<PaperId>,
    /// An embedded free-text query to add, if any.
    pub text: Option<Vector>,
}

const POSITIVE_WEIGHT: f32 = 1.0;
/// Smaller than the positive weight, as in Rocchio's classic setting: negatives push away
/// from what the user dislikes without overturning what they asked for.
const NEGATIVE_WEIGHT: f32 = 0.5;

/// An index plus the model that embeds queries for it. The model is loaded on first use,
/// so paper-to-paper queries (`similar`) never pay for it.
pub struct Engine {
    index: Index,
    model_dir: PathBuf,
    embedder: OnceLock<Embedder>,
}

impl Engine {
    /// Opens the index at `index_dir`; `model_dir` is where query embeddings come from.
    ///
    /// # Errors
    /// Any [`index::Error`] of opening the index.
    pub fn open(index_dir: &Path, model_dir: &Path) -> Result<Engine, Error> {
        Ok(Engine {
            index: Index::open(index_dir)?,
            model_dir: model_dir.to_path_buf(),
            embedder: OnceLock::new(),
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The query model, loaded (and checked against the index) on first call.
    ///
    /// # Errors
    /// Loading failures, or a model that does not match the index.
    pub fn embedder(&self) -> Result<&Embedder, Error> {
        if let Some(e) = self.embedder.get() {
            return Ok(e);
        }
        let e = Embedder::load(&self.model_dir)?;
        self.index.check_model(e.info())?;
        // A concurrent first call may have won the race; either value is the same model.
        Ok(self.embedder.get_or_init(|| e))
    }

    /// Papers closest in meaning to `query`.
    ///
    /// # Errors
    /// [`Error::InvalidQuery`] for a blank query or bad filter; model errors.
    pub fn search(&self, query: &str, params: &SearchParams) -> Result<Results<'_>, Error> {
        if query.trim().is_empty() {
            return Err(Error::InvalidQuery("empty query".into()));
        }
        params.filter.validate()?;
        let v = self.embedder()?.embed_one(query)?;
        self.search_vector(&v, params)
    }

    /// Papers closest to an already-embedded query (the HTTP service embeds on its own
    /// worker thread, then calls this).
    ///
    /// # Errors
    /// [`Error::InvalidQuery`] for a bad filter or a vector of the wrong dimension.
    pub fn search_vector(&self, v: &[f32], params: &SearchParams) -> Result<Results<'_>, Error> {
        params.filter.validate()?;
        self.check_dim(v)?;
        Ok(self.rank(v, params, &HashSet::new()))
    }

    /// Papers closest to the paper `id`, the paper itself excluded.
    ///
    /// # Errors
    /// [`Error::PaperNotFound`]; [`Error::InvalidQuery`] for a bad filter.
    pub fn similar(&self, id: &PaperId, params: &SearchParams) -> Result<Results<'_>, Error> {
        params.filter.validate()?;
        let doc = self.doc(id)?;
        Ok(self.rank(self.index.vector(doc), params, &HashSet::from([doc])))
    }

    /// Papers like `rec.positive` and unlike `rec.negative` (see [`Recommend`]); the example
    /// papers themselves are never returned.
    ///
    /// # Errors
    /// [`Error::PapersNotFound`] naming every unknown id; [`Error::InvalidQuery`] when there
    /// is nothing to recommend from (no positives and no text).
    pub fn recommend(&self, rec: &Recommend, params: &SearchParams) -> Result<Results<'_>, Error> {
        params.filter.validate()?;
        if rec.positive.is_empty() && rec.text.is_none() {
            return Err(Error::InvalidQuery(
                "recommend needs at least one positive id or a text".into(),
            ));
        }
        let unknown: Vec<PaperId> = rec
            .positive
            .iter()
            .chain(&rec.negative)
            .filter(|id| self.index.doc_id(id).is_none())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(Error::PapersNotFound(unknown));
        }
        let docs = |ids: &[PaperId]| -> Vec<DocId> {
            ids.iter().filter_map(|id| self.index.doc_id(id)).collect()
        };
        let (pos, neg) = (docs(&rec.positive), docs(&rec.negative));
        let dim = self.index.manifest().dim;
        let mut q = vec![0f32; dim];
        if let Some(t) = &rec.text {
            self.check_dim(t)?;
            q.iter_mut().zip(t).for_each(|(a, b)| *a += b);
        }
        for (set, weight) in [(&pos, POSITIVE_WEIGHT), (&neg, -NEGATIVE_WEIGHT)] {
            let w = weight / set.len().max(1) as f32;
            for &d in set {
                q.iter_mut()
                    .zip(self.index.vector(d))
                    .for_each(|(a, b)| *a += w * b);
            }
        }
        let norm = embed::dot(&q, &q).sqrt();
        if norm < 1e-6 {
            return Err(Error::InvalidQuery(
                "positives and negatives cancel out; nothing to recommend from".into(),
            ));
        }
        q.iter_mut().for_each(|x| *x /= norm);
        let exclude: HashSet<DocId> = pos.into_iter().chain(neg).collect();
        Ok(self.rank(&q, params, &exclude))
    }

    /// The record of paper `id`.
    ///
    /// # Errors
    /// [`Error::PaperNotFound`].
    pub fn paper(&self, id: &PaperId) -> Result<&Paper, Error> {
        Ok(self.index.paper(self.doc(id)?))
    }

    fn doc(&self, id: &PaperId) -> Result<DocId, Error> {
        self.index
            .doc_id(id)
            .ok_or_else(|| Error::PaperNotFound(id.clone()))
    }

    fn check_dim(&self, v: &[f32]) -> Result<(), Error> {
        let dim = self.index.manifest().dim;
        if v.len() != dim {
            return Err(Error::InvalidQuery(format!(
                "query vector has {} dimensions, the index {dim}",
                v.len()
            )));
        }
        Ok(())
    }

    /// The ranking core: top `offset + k` of the papers that pass the filter and are not
    /// excluded, then the requested page.
    fn rank(&self, v: &[f32], params: &SearchParams, exclude: &HashSet<DocId>) -> Results<'_> {
        let idx = &self.index;
        let need = params.offset + params.k;
        let filter = &params.filter;
        let accept = |d: DocId| !exclude.contains(&d) && filter.matches(idx.paper(d));
        let (found, total) = if filter.is_empty() {
            let total = idx.len()
                - exclude
                    .iter()
                    .filter(|&&d| (d as usize) < idx.len())
                    .count();
            // Exclusions (the query paper, recommend's examples) are few: search for that
            // many more without a filter and drop them, several times faster than
            // hnsw_rs's filtered walk.
            let mut found = idx.search_ann(v, need + exclude.len(), params.ef, None);
            found.retain(|h| !exclude.contains(&h.0));
            found.truncate(need);
            (found, total)
        } else {
            let total = (0..idx.len() as DocId).filter(|&d| accept(d)).count();
            let found = if total < EXACT_SCAN_BELOW {
                Vec::new()
            } else {
                idx.search_ann(v, need, params.ef, Some(&accept))
            };
            (found, total)
        };
        let found = if found.len() < need.min(total) {
            // The graph walk ran out of accepted candidates (or was skipped): scan exactly.
            idx.search_exact(v, need, Some(&accept))
        } else {
            found
        };
        let hits = found
            .into_iter()
            .skip(params.offset)
            .take(params.k)
            .map(|(doc, score)| Hit {
                doc,
                paper: idx.paper(doc),
                score,
            })
            .collect();
        Results { hits, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(date: Option<&str>, cats: &[&str]) -> Paper {
        Paper {
            id: PaperId("x".into()),
            title: "t".into(),
            abstract_: String::new(),
            authors: vec![],
            date: date.map(str::to_string),
            categories: cats.iter().map(|c| c.to_string()).collect(),
            url: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn filters_by_category_and_date_prefixes() {
        let p = paper(Some("2025-03-18"), &["cs.CL", "cs.AI"]);
        let f = |c: Option<&str>, from: Option<&str>, to: Option<&str>| Filter {
            category: c.map(str::to_string),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
        };
        assert!(f(Some("cs.AI"), None, None).matches(&p));
        assert!(!f(Some("cs.CV"), None, None).matches(&p));
        assert!(f(Some("cs."), None, None).matches(&p));
        assert!(f(Some("cs*"), None, None).matches(&p));
        assert!(!f(Some("cs"), None, None).matches(&p));
        assert!(f(None, Some("2025-03"), Some("2025-03")).matches(&p));
        assert!(f(None, Some("2025"), Some("2025")).matches(&p));
        assert!(f(None, Some("2025-03-18"), Some("2025-03-18")).matches(&p));
        assert!(!f(None, Some("2025-03-19"), None).matches(&p));
        assert!(!f(None, None, Some("2025-02")).matches(&p));
        assert!(!f(None, Some("2000"), None).matches(&paper(None, &[])));
    }

    #[test]
    fn rejects_bad_dates() {
        let bad = |from: &str| Filter {
            from: Some(from.into()),
            ..Default::default()
        };
        assert!(bad("2025-3-1").validate().is_err());
        assert!(bad("yesterday").validate().is_err());
        assert!(bad("2025-13").validate().is_err());
        assert!(bad("2025-03-32").validate().is_err());
        assert!(bad("2025-03").validate().is_ok());
        let reversed = Filter {
            from: Some("2025".into()),
            to: Some("2024".into()),
            ..Default::default()
        };
        assert!(reversed.validate().is_err());
    }
}
