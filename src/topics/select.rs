//! Which papers a topic run covers.
//!
//! - **No query**: every paper of the index.
//! - **Keyword query** (one or two words, e.g. `emergent`): the union of
//!   - *lexical* matches: papers whose title or abstract contains, for every query word, a
//!     word of the same [`family`]: the same word up to its plural or possessive ending,
//!     and the adjective/noun/adverb triples that name one concept (`-ent`/`-ence`/`-ently`,
//!     `-ant`/`-ance`/`-antly`, `-al`/`-ally`, `-ive`/`-ively`); so `emergent` finds
//!     `emergence` and `emergently` but not `emerging`, `emerged` or `emergency`, and
//!   - *semantic* neighbours: papers whose cosine similarity to the query's embedding is
//!     at least [`KEYWORD_THRESHOLD`].
//!
//!   Why not stems: a Porter/Snowball stem merges a word with every inflection and
//!   derivation (`emerg` is the stem of `emergent`, `emergence`, `emerging`, `emerged`,
//!   `emerges` and `emergency`), and the verb forms are mostly the everyday word ("has
//!   emerged as", "emerging technologies"). On the 118k arXiv collection that took the
//!   "emergent" selection from 2,836 papers to 10,840, most of them not about emergence
//!   (precision measured in the README). A person who types a word means that word and its
//!   grammatical variants, not everything that shares its root.
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

use super::Collection;
use crate::paper::DocId;
use crate::text::words;
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
    /// Selected papers left out by [`super::TopicParams::window`]; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_window: Option<usize>,
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

/// The family of a lower-case word: the key that every form of it the user means shares.
///
/// Three rewrites of the ending, in order:
/// 1. plural (and, since apostrophes are dropped, possessive): `-ies` → `-y`, `-sses` →
///    `-ss`, `-ches`/`-shes`/`-xes`/`-zes` lose `-es`, other `-s` go (not `-ss`, `-us`,
///    `-is`);
/// 2. the noun and adverb of an adjective become the adjective: `-ence`/`-ently` →
///    `-ent`, `-ance`/`-antly` → `-ant`, `-ally` → `-al`, `-ively` → `-ive` (at least
///    three letters must remain before the suffix);
/// 3. a final `-e` goes (`cache`/`caches`, `emerge`/`emerges`).
///
/// Verb inflections (`-ing`, `-ed`) and other derivations (`-ency`, `-ation`, `-ity`)
/// are left alone on purpose: they usually change the sense (`emerging technologies`,
/// `emergency`), and a person who means them can type them.
pub fn family(word: &str) -> String {
    let mut w = word.to_string();
    let n = w.len();
    if n > 4 && w.ends_with("ies") {
        w.truncate(n - 3);
        w.push('y');
    } else if w.ends_with("sses")
        || (n > 4
            && ["ches", "shes", "xes", "zes"]
                .iter()
                .any(|s| w.ends_with(s)))
    {
        w.truncate(n - 2);
    } else if n > 3 && w.ends_with('s') && !["ss", "us", "is"].iter().any(|s| w.ends_with(s)) {
        w.truncate(n - 1);
    }
    const DERIVED: [(&str, &str); 6] = [
        ("ently", "ent"),
        ("ence", "ent"),
        ("antly", "ant"),
        ("ance", "ant"),
        ("ively", "ive"),
        ("ally", "al"),
    ];
    for (from, to) in DERIVED {
        if w.len() >= from.len() + 3 && w.ends_with(from) {
            w.truncate(w.len() - from.len());
            w.push_str(to);
            break;
        }
    }
    if w.len() > 3 && w.ends_with('e') {
        w.pop();
    }
    w
}

/// Every paper.
pub fn all(index: &dyn Collection) -> Selection {
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
            outside_window: None,
        },
    }
}

/// Papers about `query`, given its embedding `qv` (see the module doc).
pub fn about(index: &dyn Collection, query: &str, qv: &[f32]) -> Selection {
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
        let wanted: Vec<String> = words(query).map(|w| family(&w)).collect();
        // A word of family `f` starts with all of `f` but its last two letters (the
        // rewrites only touch the ending), so only those words are looked up.
        let heads: Vec<String> = wanted
            .iter()
            .map(|f| {
                f.chars()
                    .take(f.chars().count().saturating_sub(2).max(1))
                    .collect()
            })
            .collect();
        index
            .docs()
            .filter(|&d| {
                let p = index.paper(d);
                let mut found = vec![false; wanted.len()];
                for w in words(&p.title).chain(words(&p.abstract_)) {
                    // Hyphenated words also count by their parts ("self-emergent").
                    let parts = w
                        .contains('-')
                        .then(|| w.split('-').filter(|s| !s.is_empty()));
                    for part in std::iter::once(w.as_str()).chain(parts.into_iter().flatten()) {
                        for (i, (f, head)) in wanted.iter().zip(&heads).enumerate() {
                            if !found[i] && part.starts_with(head.as_str()) && family(part) == *f {
                                found[i] = true;
                            }
                        }
                    }
                    if found.iter().all(|&x| x) {
                        return true;
                    }
                }
                false
            })
            .collect()
    } else {
        HashSet::new()
    };
    let mut docs: Vec<DocId> = semantic.union(&lexical).copied().collect();
    docs.sort_unstable();
    let rule = if keyword {
        format!(
            "keyword query: papers whose title or abstract has, for every query word, a word of its family ({}: the word, its plural, and its -ent/-ence/-ently, -ant/-ance/-antly, -al/-ally, -ive/-ively forms), plus papers with cosine similarity >= {threshold} to the query",
            words(query)
                .map(|w| family(&w))
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
            outside_window: None,
        },
        docs,
    }
}

#[cfg(test)]
mod tests {
    use super::family;

    #[test]
    fn families_keep_the_concept_and_drop_the_everyday_verb() {
        let f = |w: &str| family(w);
        for same in [
            "emergent",
            "emergence",
            "emergences",
            "emergently",
            "emergents",
        ] {
            assert_eq!(f(same), f("emergent"), "{same}");
        }
        for other in [
            "emerging",
            "emerged",
            "emerge",
            "emerges",
            "emergency",
            "emergencies",
        ] {
            assert_ne!(f(other), f("emergent"), "{other}");
        }
        assert_eq!(f("emergencies"), f("emergency"));
        assert_eq!(f("emerges"), f("emerge"));
        assert_eq!(f("graphs"), f("graph"));
        assert_eq!(f("processes"), f("process"));
        assert_eq!(f("caches"), f("cache"));
        assert_eq!(f("technologies"), f("technology"));
        assert_eq!(f("causally"), f("causal"));
        assert_eq!(f("relevance"), f("relevant"));
        assert_eq!(f("analysis"), "analysis");
        assert_ne!(f("transformation"), f("transformer"));
        assert_ne!(f("learned"), f("learning"));
        // Short words are left alone: "hence" is not a noun of "hent".
        assert_eq!(f("hence"), "henc");
    }
}
