//! Which papers a topic run covers.
//!
//! - **No query**: every paper of the index.
//! - **Keyword query** (one or two words, e.g. `emergent`): the union of
//!   - *lexical* matches: papers whose title or abstract contains, for every query word, a
//!     word with the same Porter stem (so `emergent` also finds `emergence`, `emerging`,
//!     `emerge`, `emerged`; stems are coarse, so `generation` also finds `general`), and
//!   - *semantic* neighbours: papers whose cosine similarity to the query's embedding is
//!     at least [`KEYWORD_THRESHOLD`].
//!
//!   A bare keyword embeds poorly (one word says little to a sentence model), so lexical
//!   matching carries most of the recall and the threshold is set high enough that the
//!   neighbours it adds are about the keyword's sense, not merely about the same field.
//! - **Longer query** (three words or more): semantic neighbours at
//!   [`PHRASE_THRESHOLD`] or above; a sentence embeds well, and words of a sentence
//!   matched lexically would select far too much.
//!
//! The report says how many papers each part contributed. Papers are returned in
//! `DocId` order so later steps are deterministic.

use crate::index::Index;
use crate::paper::DocId;
use crate::text::{words, Stemmer};
use crate::vector::dot;
use serde::Serialize;
use std::collections::HashSet;

/// Cosine similarity a paper needs to a keyword query's embedding. Measured on the test
/// index: papers containing "emergent" score up to 0.41 with the bare word, papers without
/// it at most 0.26 (off-topic), so the semantic part only admits papers closer to the
/// keyword than any that merely use it.
pub const KEYWORD_THRESHOLD: f32 = 0.45;

/// Cosine similarity a paper needs to a longer query's embedding. Measured on the test
/// index: "agents that invent their own communication protocol" scores 0.37-0.41 with the
/// three papers about exactly that and at most 0.27 with the rest.
pub const PHRASE_THRESHOLD: f32 = 0.35;

/// Queries of at most this many words are keyword queries.
pub const KEYWORD_MAX_WORDS: usize = 2;

/// How the selection was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    All,
    Keyword,
    Semantic,
}

/// The selection's summary, as reported in JSON under `"selection"`.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionReport {
    /// The query as given; `null` for the whole collection.
    pub query: Option<String>,
    pub mode: Mode,
    /// The rule, in words.
    pub rule: String,
    /// Papers in the index.
    pub collection: usize,
    /// Papers selected (the union of the parts).
    pub papers: usize,
    /// Papers matched lexically (keyword mode), whether or not also semantic neighbours.
    pub lexical: usize,
    /// Papers above the similarity threshold, whether or not also lexical matches.
    pub semantic: usize,
    /// Papers found by both parts.
    pub both: usize,
    /// The similarity threshold used, if any.
    pub threshold: Option<f32>,
}

/// Selected papers and the summary.
pub struct Selection {
    pub docs: Vec<DocId>,
    pub report: SelectionReport,
}

/// Whether `query` is a keyword query (see the module doc).
pub fn is_keyword(query: &str) -> bool {
    words(query).count() <= KEYWORD_MAX_WORDS
}

/// Every paper.
pub fn all(index: &Index) -> Selection {
    Selection {
        docs: index.docs().collect(),
        report: SelectionReport {
            query: None,
            mode: Mode::All,
            rule: "every paper of the index".into(),
            collection: index.len(),
            papers: index.len(),
            lexical: 0,
            semantic: 0,
            both: 0,
            threshold: None,
        },
    }
}

/// Papers about `query`, given its embedding `qv` (see the module doc).
pub fn about(index: &Index, query: &str, qv: &[f32]) -> Selection {
    let keyword = is_keyword(query);
    let threshold = if keyword {
        KEYWORD_THRESHOLD
    } else {
        PHRASE_THRESHOLD
    };
    let semantic: HashSet<DocId> = index
        .docs()
        .filter(|&d| dot(qv, index.vector(d)) >= threshold)
        .collect();
    let lexical: HashSet<DocId> = if keyword {
        let stemmer = Stemmer::english();
        let wanted: Vec<String> = words(query)
            .map(|w| stemmer.stem(&w).into_owned())
            .collect();
        index
            .docs()
            .filter(|&d| {
                let p = index.paper(d);
                // Hyphenated words also count by their parts ("self-emergent").
                let ws: Vec<String> = words(&p.title)
                    .chain(words(&p.abstract_))
                    .flat_map(|w| {
                        let parts: Vec<String> = if w.contains('-') {
                            w.split('-')
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect()
                        } else {
                            Vec::new()
                        };
                        std::iter::once(w).chain(parts)
                    })
                    .collect();
                wanted.iter().all(|stem| {
                    // Porter only rewrites a word's ending, so a word with this stem starts
                    // with all but the stem's last letter; stem only those (stemming every
                    // word of 118k abstracts would dominate the run).
                    let head: String = stem
                        .chars()
                        .take(stem.chars().count().saturating_sub(1).max(1))
                        .collect();
                    ws.iter()
                        .any(|w| w.starts_with(&head) && stemmer.stem(w).as_ref() == stem.as_str())
                })
            })
            .collect()
    } else {
        HashSet::new()
    };
    let mut docs: Vec<DocId> = semantic.union(&lexical).copied().collect();
    docs.sort_unstable();
    let rule = if keyword {
        format!(
            "keyword query: papers whose title or abstract has a word with the Porter stem of every query word ({}), plus papers with cosine similarity >= {threshold} to the query",
            words(query)
                .map(|w| Stemmer::english().stem(&w).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("phrase query (more than {KEYWORD_MAX_WORDS} words): papers with cosine similarity >= {threshold} to the query")
    };
    Selection {
        report: SelectionReport {
            query: Some(query.to_string()),
            mode: if keyword {
                Mode::Keyword
            } else {
                Mode::Semantic
            },
            rule,
            collection: index.len(),
            papers: docs.len(),
            lexical: lexical.len(),
            semantic: semantic.len(),
            both: lexical.intersection(&semantic).count(),
            threshold: Some(threshold),
        },
        docs,
    }
}
