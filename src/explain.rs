//! "Why this result": what a researcher needs to judge a hit without opening it.
//!
//! For a query hit, an [`Explanation`] gives
//! - the **terms** query and paper share, each with the BM25 points it earned (from
//!   [`crate::keyword::KeywordIndex::explain`]; they sum to the keyword score), so an
//!   exact match on a gene name or acronym is visible at a glance;
//! - the abstract **sentence** closest to the query by embedding, i.e. where in the
//!   abstract the claim is addressed, which a dense score alone never says;
//! - the paper's **rank in each list** before fusion: found by both, or only by meaning,
//!   or only by words.
//!
//! For `similar`, the **shared terms** of the two papers, rarest in the collection first:
//! the specific vocabulary (a method, an organism, a dataset) that makes them neighbours.
//!
//! Explanations cost an extra embedding pass over the hits' sentences, so they are
//! computed only when asked for (`explain`), and the work per hit is bounded: at most
//! [`MAX_SENTENCES`] sentences of each abstract are embedded.

use crate::embed::{self, Encoder};
use crate::keyword::{SharedTerm, TermScore};
use crate::paper::Score;
use crate::vector::dot;
use serde::Serialize;

/// Why a paper was returned. Empty parts are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Explanation {
    /// Query terms found in the paper, largest contribution first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<TermScore>,
    /// The abstract sentence closest in meaning to the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentence: Option<Sentence>,
    /// 1-based rank among semantic candidates, if among them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_rank: Option<u32>,
    /// 1-based rank among keyword candidates, if among them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword_rank: Option<u32>,
    /// For `similar`: terms both papers use, most distinctive first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_terms: Vec<SharedTerm>,
}

/// One sentence of an abstract and its cosine similarity to the query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentence {
    pub text: String,
    pub score: Score,
}

/// Sentences of one abstract embedded to find the closest, at most (the first ones; an
/// abstract rarely has more). Bounds the cost of an explained hit to one small batch.
pub const MAX_SENTENCES: usize = 12;

/// Abbreviations after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g.", "i.e.", "et al.", "al.", "fig.", "figs.", "vs.", "cf.", "approx.", "resp.", "eq.",
    "no.", "dr.", "ref.", "refs.", "sec.", "ca.",
];

/// Splits an abstract into sentences: a `.`, `?` or `!` followed by white space and then
/// an upper-case letter, a digit or an opening bracket ends one, except after common
/// abbreviations ("e.g.", "et al.", "Fig."). Sentences keep their punctuation; empty
/// input gives none.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let Some(&(_, next)) = chars.get(i + 1) else {
            continue;
        };
        if !next.is_whitespace() {
            continue;
        }
        let after = chars[i + 1..]
            .iter()
            .map(|&(_, c)| c)
            .find(|c| !c.is_whitespace());
        if !after.is_some_and(|a| a.is_uppercase() || a.is_ascii_digit() || a == '(' || a == '[') {
            continue;
        }
        let end = pos + c.len_utf8();
        let candidate = &text[start..end];
        let lower = candidate.to_lowercase();
        let last_word = lower
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or("")
            .trim_start_matches(|c: char| !c.is_alphanumeric());
        if c == '.'
            && ABBREVIATIONS
                .iter()
                .any(|a| last_word == *a || lower.ends_with(&format!(" {a}")))
        {
            continue;
        }
        let s = candidate.trim();
        if !s.is_empty() {
            out.push(s);
        }
        start = end;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// For each abstract, its sentence closest to `query` (a unit vector) among its first
/// [`MAX_SENTENCES`], embedding all of them for all abstracts in one batch.
///
/// # Errors
/// Embedding failures.
pub fn closest_sentences(
    encoder: &dyn Encoder,
    query: &[f32],
    abstracts: &[&str],
) -> Result<Vec<Option<Sentence>>, embed::Error> {
    let split: Vec<Vec<&str>> = abstracts
        .iter()
        .map(|a| {
            let mut s = split_sentences(a);
            s.truncate(MAX_SENTENCES);
            s
        })
        .collect();
    let flat: Vec<&str> = split.iter().flatten().copied().collect();
    let vectors = encoder.embed(&flat)?;
    let mut vectors = vectors.into_iter();
    Ok(split
        .iter()
        .map(|sentences| {
            sentences
                .iter()
                .zip(vectors.by_ref())
                .map(|(s, v)| Sentence {
                    text: s.to_string(),
                    score: dot(query, &v),
                })
                .max_by(|a, b| a.score.total_cmp(&b.score))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_but_not_abbreviations() {
        let text = "We study BRCA1, e.g. in mice. Results (Fig. 2) differ vs. controls! 3 of 5 improved? yes. (Smith et al. 2020) agree. Final";
        assert_eq!(
            split_sentences(text),
            [
                "We study BRCA1, e.g. in mice.",
                "Results (Fig. 2) differ vs. controls!",
                "3 of 5 improved? yes.",
                "(Smith et al. 2020) agree.",
                "Final"
            ]
        );
        assert!(split_sentences("  ").is_empty());
        assert_eq!(split_sentences("One sentence."), ["One sentence."]);
        assert_eq!(
            split_sentences("Value 3.5 mg. Next"),
            ["Value 3.5 mg.", "Next"]
        );
    }
}
