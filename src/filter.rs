//! Which papers a query may return, as data: a [`Filter`] (category and date range, as
//! the user gave it) and, resolved against one collection, a [`DocMask`] (one bit per
//! [`DocId`]).
//!
//! Both are plain values rather than predicates so that every retriever can take them: the
//! HNSW walk and the exact scan test the mask's bits, the keyword collector skips papers
//! whose bit is clear, and a store that filters remotely (SQL over category and date) can
//! translate the [`Filter`] itself.

use crate::paper::{DocId, Paper};
use crate::text::date;
use fixedbitset::FixedBitSet;

/// Restricts results to papers with a category and/or a date range. Empty fields match
/// everything; a paper without a date never matches a date bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// An arXiv category (`cs.CL`), matched exactly against any of the paper's categories,
    /// or an archive prefix ending in `.` or `*` (`cs.`, `cond-mat*`).
    pub category: Option<String>,
    /// Earliest date, inclusive, `YYYY-MM-DD`, or `YYYY-MM` / `YYYY` from its first day.
    pub from: Option<String>,
    /// Latest date, inclusive, same forms, up to the last day of the month or year.
    pub to: Option<String>,
}

// Which requests are valid is the engine's to say: `Filter::validate` is in
// `crate::search`, with the other request checks and their error codes.
impl Filter {
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
        let Some(d) = p.date.as_deref() else {
            return false;
        };
        self.from.as_deref().is_none_or(|f| date::on_or_after(d, f))
            && self.to.as_deref().is_none_or(|t| date::on_or_before(d, t))
    }

    /// The papers of `papers` (indexed by DocId) that pass, as a mask.
    pub fn mask(&self, papers: &[Paper]) -> DocMask {
        let mut bits = FixedBitSet::with_capacity(papers.len());
        for (d, p) in papers.iter().enumerate() {
            if self.matches(p) {
                bits.insert(d);
            }
        }
        DocMask(bits)
    }
}

/// A set of [`DocId`]s of one collection, one bit each: the papers a query may return.
/// 15 KB for 118,000 papers, built once per query and read by every retriever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocMask(FixedBitSet);

impl DocMask {
    /// Every paper of a collection of `len`.
    pub fn all(len: usize) -> DocMask {
        let mut bits = FixedBitSet::with_capacity(len);
        bits.insert_range(..);
        DocMask(bits)
    }

    /// No paper of a collection of `len`.
    pub fn none(len: usize) -> DocMask {
        DocMask(FixedBitSet::with_capacity(len))
    }

    /// The size of the collection (one past the largest DocId).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the collection is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The papers it holds, ascending.
    pub fn iter(&self) -> impl Iterator<Item = DocId> + '_ {
        self.0.ones().map(|d| d as DocId)
    }

    /// Whether `doc` may be returned (false beyond the collection).
    #[inline]
    pub fn contains(&self, doc: DocId) -> bool {
        self.0.contains(doc as usize)
    }

    /// Takes `doc` out (one beyond the collection is ignored).
    pub fn remove(&mut self, doc: DocId) {
        if (doc as usize) < self.0.len() {
            self.0.set(doc as usize, false);
        }
    }

    /// Puts `doc` back (one beyond the collection is ignored).
    pub fn insert(&mut self, doc: DocId) {
        if (doc as usize) < self.0.len() {
            self.0.insert(doc as usize);
        }
    }

    /// How many papers may be returned.
    pub fn count(&self) -> usize {
        self.0.count_ones(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(date: Option<&str>, cats: &[&str]) -> Paper {
        Paper {
            id: "x".into(),
            title: "t".into(),
            abstract_: String::new(),
            authors: vec![],
            date: date.map(str::to_string),
            categories: cats.iter().map(|c| c.to_string()).collect(),
            url: None,
            extra: Default::default(),
        }
    }

    fn filter(c: Option<&str>, from: Option<&str>, to: Option<&str>) -> Filter {
        Filter {
            category: c.map(str::to_string),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
        }
    }

    #[test]
    fn filters_by_category_and_date_prefixes() {
        let p = paper(Some("2025-03-18"), &["cs.CL", "cs.AI"]);
        let f = filter;
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
    fn masks_hold_the_papers_that_pass() {
        let papers = [
            paper(Some("2024-01-01"), &["cs.CL"]),
            paper(Some("2025-01-01"), &["cs.CL"]),
            paper(None, &["cs.AI"]),
        ];
        let m = filter(Some("cs.CL"), Some("2025"), None).mask(&papers);
        assert_eq!(
            (m.contains(0), m.contains(1), m.contains(2)),
            (false, true, false)
        );
        assert_eq!(m.count(), 1);
        assert!(!m.contains(3));
        let mut all = DocMask::all(3);
        assert_eq!(all.count(), 3);
        all.remove(1);
        all.remove(7);
        assert_eq!((all.contains(1), all.count()), (false, 2));
        all.insert(1);
        all.insert(9);
        assert_eq!(all, DocMask::all(3));
    }
}
