//! Words that describe a topic: class-based TF-IDF (c-TF-IDF, as in BERTopic) over the
//! titles and abstracts of each topic against the rest of the selection.
//!
//! Each topic's papers are treated as one document. For term `t` and topic `c`:
//!
//! ```text
//! weight(t, c) = √(tf(t, c) / words(c)) × ln(1 + A / tf(t))
//! ```
//!
//! where `tf(t, c)` counts `t` in the topic, `words(c)` is the topic's total term count,
//! `tf(t)` counts `t` over the whole selection and `A` is the mean number of terms per
//! topic. A term frequent in one topic and rare elsewhere scores high; a term common to
//! every topic ("model", "results") scores low without a hand-made list. The square root
//! is BERTopic's `reduce_frequent_words` option: without it, on small selections, words
//! every abstract repeats ("models", "data", "learning") still topped most topics.
//!
//! Terms are lowercased words ([`crate::text::words`]: letters, digits, inner hyphens; at
//! least one letter, two characters) and bigrams of adjacent words. English stop words (scikit-learn's list plus
//! a few words of academic boilerplate) are dropped and break bigrams, as does
//! punctuation. Words whose Porter stem equals a stem of the query are dropped, so the
//! query's own words ("emergent", "emergence") never label a topic. A term must occur at
//! least twice in a topic of two or more papers (a single paper's idiosyncrasy is not a
//! topic's).
//!
//! **Scale.** Terms are counted by 64-bit hash (SipHash with fixed keys, so deterministic),
//! per topic and in parallel; strings are only recovered for each topic's best candidates.
//! Memory is one hash map entry per distinct (topic, term), a few hundred MB at 118k
//! abstracts, with no global vocabulary to build.

use crate::text::{is_topic_stop_word, tokens, words, Stemmer};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Weighted terms of one topic, best first.
pub type Terms = Vec<(String, f32)>;

/// Terms kept per topic.
pub const TOP_TERMS: usize = 10;

/// Stems of the query's words: those words and their forms never become terms.
#[derive(Debug, Clone, Default)]
pub struct Excluded {
    stems: HashSet<String>,
}

impl Excluded {
    /// The stems of the words of `query` (none without a query).
    pub fn from_query(query: Option<&str>) -> Excluded {
        let stemmer = Stemmer::english();
        let stems = query
            .map(|q| words(q).map(|w| stemmer.stem(&w).into_owned()).collect())
            .unwrap_or_default();
        Excluded { stems }
    }
}

/// Calls `f` with every term (unigram and bigram) of `text`, after stop-word and query
/// filtering.
fn for_each_term(text: &str, excluded: &Excluded, stemmer: &Stemmer, mut f: impl FnMut(&str)) {
    let mut prev: Option<String> = None;
    for tok in tokens(text) {
        let Some(w) = tok else {
            prev = None;
            continue;
        };
        // Stemming only when there is something to exclude: it is the costliest step.
        let is_query =
            !excluded.stems.is_empty() && excluded.stems.contains(stemmer.stem(&w).as_ref());
        if is_topic_stop_word(&w) || is_query {
            prev = None;
            continue;
        }
        f(&w);
        if let Some(p) = &prev {
            f(&format!("{p} {w}"));
        }
        prev = Some(w);
    }
}

fn hash(term: &str) -> u64 {
    let mut h = DefaultHasher::new();
    term.hash(&mut h);
    h.finish()
}

/// c-TF-IDF terms of each topic. `docs[i]` is the text of paper `i`, `topic[i]` its topic
/// in `0..k`. Returns `k` lists of at most [`TOP_TERMS`] terms, best first (ties by term).
pub fn ctfidf(docs: &[&str], topic: &[usize], k: usize, excluded: &Excluded) -> Vec<Terms> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &t) in topic.iter().enumerate() {
        members[t].push(i);
    }
    // Per-topic counts by hash, in parallel (each topic reads only its own papers).
    let counts: Vec<HashMap<u64, u32>> = members
        .par_iter()
        .map(|docs_of| {
            let stemmer = Stemmer::english();
            let mut c: HashMap<u64, u32> = HashMap::new();
            for &i in docs_of {
                for_each_term(docs[i], excluded, &stemmer, |t| {
                    *c.entry(hash(t)).or_default() += 1
                });
            }
            c
        })
        .collect();
    let mut total: HashMap<u64, u64> = HashMap::new();
    for c in &counts {
        for (&h, &n) in c {
            *total.entry(h).or_default() += u64::from(n);
        }
    }
    let words_per_topic: Vec<u64> = counts
        .iter()
        .map(|c| c.values().map(|&n| u64::from(n)).sum())
        .collect();
    let nonempty = words_per_topic.iter().filter(|&&w| w > 0).count().max(1);
    let avg = words_per_topic.iter().sum::<u64>() as f64 / nonempty as f64;

    (0..k)
        .into_par_iter()
        .map(|t| {
            let words = words_per_topic[t];
            if words == 0 {
                return Vec::new();
            }
            let min_tf = if members[t].len() >= 2 { 2 } else { 1 };
            let mut scored: Vec<(u64, f64)> = counts[t]
                .iter()
                .filter(|(_, &n)| n >= min_tf)
                .map(|(&h, &n)| {
                    let idf = (1.0 + avg / total[&h] as f64).ln();
                    // √tf: BERTopic's `reduce_frequent_words`, so words every abstract
                    // repeats ("models", "data") do not drown the distinctive ones.
                    (h, f64::from(n).sqrt() / (words as f64).sqrt() * idf)
                })
                .collect();
            // Candidates by (weight, hash) first; strings only for the survivors.
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.truncate(TOP_TERMS * 4);
            let wanted: HashMap<u64, f64> = scored.into_iter().collect();
            let stemmer = Stemmer::english();
            let mut found: HashMap<u64, String> = HashMap::new();
            for &i in &members[t] {
                for_each_term(docs[i], excluded, &stemmer, |term| {
                    let h = hash(term);
                    if wanted.contains_key(&h) && !found.contains_key(&h) {
                        found.insert(h, term.to_string());
                    }
                });
                if found.len() == wanted.len() {
                    break;
                }
            }
            let mut terms: Vec<(String, f64)> =
                found.into_iter().map(|(h, s)| (s, wanted[&h])).collect();
            terms.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            terms.truncate(TOP_TERMS);
            terms
                .into_iter()
                .map(|(s, w)| (s, ((w * 1e4).round() / 1e4) as f32))
                .collect()
        })
        .collect()
}

/// A short name for a topic: its best three terms, skipping another form of a chosen term,
/// a word already inside a chosen bigram and a bigram whose words were both chosen, joined
/// by ", ".
pub fn label(terms: &Terms) -> String {
    let stemmer = Stemmer::english();
    let stems =
        |t: &str| -> Vec<String> { t.split(' ').map(|w| stemmer.stem(w).into_owned()).collect() };
    let mut chosen: Vec<&str> = Vec::new();
    for (t, _) in terms {
        // "model" after "models" (or "language model" after "language models") adds nothing.
        if chosen.iter().any(|c| stems(c) == stems(t)) {
            continue;
        }
        let covered = chosen.iter().any(|c| {
            c.split(' ').any(|w| w == t) || t.split(' ').all(|w| c.split(' ').any(|cw| cw == w))
        });
        let covers: Vec<usize> = chosen
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.contains(' ') && t.split(' ').any(|w| w == **c))
            .map(|(i, _)| i)
            .collect();
        if covered {
            continue;
        }
        // A bigram that contains an earlier single word replaces it.
        if let Some(&i) = covers.first() {
            chosen[i] = t;
            chosen.dedup();
            continue;
        }
        chosen.push(t);
        if chosen.len() == 3 {
            break;
        }
    }
    if chosen.is_empty() {
        "(no distinctive terms)".into()
    } else {
        chosen.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_forms_and_stop_words_are_not_terms() {
        let ex = Excluded::from_query(Some("emergent"));
        let st = Stemmer::english();
        let mut got = Vec::new();
        for_each_term(
            "The emergence of emergent misalignment, emerging fast",
            &ex,
            &st,
            |t| got.push(t.to_string()),
        );
        assert_eq!(got, vec!["misalignment", "fast"]);
    }

    #[test]
    fn distinctive_terms_win() {
        let docs = [
            "emergent misalignment in language models",
            "misalignment after narrow finetuning of language models",
            "kagome metal band structure",
            "kagome lattice band structure of metals",
        ];
        let terms = ctfidf(
            &docs,
            &[0, 0, 1, 1],
            2,
            &Excluded::from_query(Some("emergent")),
        );
        assert_eq!(terms[0][0].0, "language");
        assert!(terms[0].iter().any(|(t, _)| t == "misalignment"));
        assert!(terms[0].iter().any(|(t, _)| t == "language models"));
        assert!(terms[1].iter().any(|(t, _)| t == "band structure"));
        assert!(terms[1].iter().all(|(t, _)| !t.contains("misalignment")));
    }

    #[test]
    fn labels_merge_words_into_bigrams() {
        let terms: Terms = vec![
            ("language".into(), 0.3),
            ("language models".into(), 0.2),
            ("misalignment".into(), 0.1),
            ("models".into(), 0.1),
            ("safety".into(), 0.05),
        ];
        assert_eq!(label(&terms), "language models, misalignment, safety");
    }
}
