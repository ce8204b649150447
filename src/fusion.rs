//! Fusing two ranked lists (semantic and keyword) into one: pure functions, no I/O.
//!
//! Two families are offered because the literature disagrees on which is better and the
//! answer depends on the data; the default was chosen by measurement on SciFact train
//! (README, "Hybrid search", has the numbers):
//!
//! - **Reciprocal rank fusion** (Cormack et al. 2009): `Σ 1 / (k + rank)`. Uses ranks
//!   only, so it needs no calibration between cosine similarities and BM25 scores.
//! - **Score blending**: each list's scores are min-max normalised to `0..=1` over its
//!   candidates, then mixed as `α·semantic + (1-α)·keyword`; a paper absent from a list
//!   gets 0 there. Uses how *much* better a candidate is, which ranks throw away.
//!
//! Invariant: the output is sorted best first with ties broken by DocId, so results are
//! deterministic.

use crate::paper::{DocId, Score};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// How to fuse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion with constant `k` (60 in the original paper).
    Rrf { k: f32 },
    /// Min-max normalised score blend; `alpha` is the semantic weight, `0..=1`.
    Blend { alpha: f32 },
    /// Score blend normalised by each list's maximum with a floor of 0 ("theoretical
    /// min-max", Bruch et al. 2023): a candidate at the bottom of one list keeps the part
    /// of its score it really has instead of being set to 0 there.
    Tmm { alpha: f32 },
}

/// The semantic weight of min-max blending when none is given (`blend` alone): its best on
/// SciFact train, nDCG@10 0.734 (0.731 at α = 0.5, 0.730 at 0.7).
pub const DEFAULT_BLEND_ALPHA: f32 = 0.6;

/// The semantic weight of theoretical-min-max blending when none is given (`tmm` alone, and
/// the default fusion): its best on SciFact train, nDCG@10 0.7349 (0.7334 at α = 0.45, 0.7307
/// at 0.55, 0.7318 at 0.6; README, "Hybrid search").
pub const DEFAULT_TMM_ALPHA: f32 = 0.5;

/// The constant of reciprocal rank fusion when none is given (`rrf` alone), as in the
/// original paper.
pub const DEFAULT_RRF_K: f32 = 60.0;

impl Default for Fusion {
    /// [`Fusion::Tmm`] with α = [`DEFAULT_TMM_ALPHA`]: as good as the best min-max blend
    /// on SciFact train (0.7349 against 0.7340) and, unlike it, it does not bury the one
    /// paper that contains a rare query term (min-max set its semantic part to 0 when it
    /// was the last semantic candidate, so it could never beat the keyword weight).
    fn default() -> Self {
        Fusion::Tmm {
            alpha: DEFAULT_TMM_ALPHA,
        }
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fusion::Rrf { k } => write!(f, "rrf:{k}"),
            Fusion::Blend { alpha } => write!(f, "blend:{alpha}"),
            Fusion::Tmm { alpha } => write!(f, "tmm:{alpha}"),
        }
    }
}

/// A malformed fusion spec.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid fusion '{0}': expected rrf, rrf:K (K > 0), blend, blend:ALPHA, tmm or tmm:ALPHA (0 <= ALPHA <= 1)"
)]
pub struct ParseFusionError(String);

impl FromStr for Fusion {
    type Err = ParseFusionError;

    /// `rrf`, `rrf:60`, `blend`, `blend:0.3`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseFusionError(s.to_string());
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a.parse::<f32>().map_err(|_| bad())?)),
            None => (s, None),
        };
        match name {
            "rrf" => {
                let k = arg.unwrap_or(DEFAULT_RRF_K);
                (k > 0.0 && k.is_finite())
                    .then_some(Fusion::Rrf { k })
                    .ok_or_else(bad)
            }
            "blend" | "tmm" => {
                let default = if name == "tmm" {
                    DEFAULT_TMM_ALPHA
                } else {
                    DEFAULT_BLEND_ALPHA
                };
                let alpha = arg.unwrap_or(default);
                if !(0.0..=1.0).contains(&alpha) {
                    return Err(bad());
                }
                Ok(if name == "tmm" {
                    Fusion::Tmm { alpha }
                } else {
                    Fusion::Blend { alpha }
                })
            }
            _ => Err(bad()),
        }
    }
}

/// One fused result, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub doc: DocId,
    /// The fused score (RRF sum, or blended normalised score in `0..=1`).
    pub score: Score,
    /// 1-based rank in the semantic list, if it was there.
    pub semantic_rank: Option<u32>,
    /// 1-based rank in the keyword list, if it was there.
    pub keyword_rank: Option<u32>,
}

/// Fuses two lists, each best first. Every paper of either list appears once.
pub fn fuse(semantic: &[(DocId, Score)], keyword: &[(DocId, Score)], fusion: Fusion) -> Vec<Fused> {
    let mut by_doc: HashMap<DocId, Fused> = HashMap::new();
    let lists = [(semantic, true), (keyword, false)];
    for (list, is_semantic) in lists {
        let norm = normaliser(list, matches!(fusion, Fusion::Tmm { .. }));
        for (i, &(doc, score)) in list.iter().enumerate() {
            let rank = i as u32 + 1;
            let part = match fusion {
                Fusion::Rrf { k } => 1.0 / (k + rank as f32),
                Fusion::Blend { alpha } | Fusion::Tmm { alpha } => {
                    let w = if is_semantic { alpha } else { 1.0 - alpha };
                    w * norm(score)
                }
            };
            let e = by_doc.entry(doc).or_insert(Fused {
                doc,
                score: 0.0,
                semantic_rank: None,
                keyword_rank: None,
            });
            // A list may (by contract it should not) repeat a paper: count its best rank once.
            let slot = if is_semantic {
                &mut e.semantic_rank
            } else {
                &mut e.keyword_rank
            };
            if slot.is_none() {
                *slot = Some(rank);
                e.score += part;
            }
        }
    }
    let mut out: Vec<Fused> = by_doc.into_values().collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)));
    out
}

/// Min-max normalisation over a list's scores (with `floor_zero`, the minimum is taken as
/// 0, and scores below it count as 0); a list of equal scores maps to 1.
fn normaliser(list: &[(DocId, Score)], floor_zero: bool) -> impl Fn(Score) -> Score {
    let (lo, hi) = list.iter().fold(
        (Score::INFINITY, Score::NEG_INFINITY),
        |(lo, hi), &(_, s)| (lo.min(s), hi.max(s)),
    );
    let lo = if floor_zero { 0.0 } else { lo };
    move |s| {
        if hi > lo {
            ((s - lo) / (hi - lo)).max(0.0)
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_rare_term_match_is_not_buried() {
        // Paper 9 alone contains the query's rare term (keyword rank 1) but is the last
        // semantic candidate; 0..5 are semantic favourites with middling keyword scores.
        let mut semantic: Vec<(DocId, Score)> =
            (0..8).map(|d| (d, 0.62 - d as f32 * 0.02)).collect();
        semantic.push((9, 0.40));
        let keyword = vec![(9, 8.4), (0, 3.1), (1, 2.9), (2, 2.5)];
        let top = |f| fuse(&semantic, &keyword, f)[0].doc;
        assert_eq!(top(Fusion::default()), 9);
        // What min-max blending did: the rare match's semantic part became 0.
        assert_ne!(top(Fusion::Blend { alpha: 0.6 }), 9);
    }

    #[test]
    fn a_bare_method_name_means_its_default() {
        assert_eq!("tmm".parse::<Fusion>().unwrap(), Fusion::default());
        assert_eq!(
            "blend".parse::<Fusion>().unwrap(),
            Fusion::Blend {
                alpha: DEFAULT_BLEND_ALPHA
            }
        );
        assert_eq!(
            "rrf".parse::<Fusion>().unwrap(),
            Fusion::Rrf { k: DEFAULT_RRF_K }
        );
        assert_eq!(
            "blend:0.3".parse::<Fusion>().unwrap(),
            Fusion::Blend { alpha: 0.3 }
        );
        assert!("blend:1.5".parse::<Fusion>().is_err());
        assert!("rrf:0".parse::<Fusion>().is_err());
    }

    #[test]
    fn rrf_by_hand() {
        let sem = [(1, 0.9), (2, 0.8)];
        let kw = [(2, 12.0), (3, 5.0)];
        let out = fuse(&sem, &kw, Fusion::Rrf { k: 60.0 });
        let docs: Vec<DocId> = out.iter().map(|f| f.doc).collect();
        assert_eq!(docs, [2, 1, 3]);
        assert!((out[0].score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-7);
        assert_eq!(
            (out[0].semantic_rank, out[0].keyword_rank),
            (Some(2), Some(1))
        );
        // 1 and 3 both have one rank-1/rank-2 contribution: 1/61 vs 1/62.
        assert!((out[1].score - 1.0 / 61.0).abs() < 1e-7);
        assert_eq!(out[2].keyword_rank, Some(2));
        assert_eq!(out[2].semantic_rank, None);
    }

    #[test]
    fn blend_by_hand() {
        let sem = [(1, 0.9), (2, 0.7), (4, 0.5)];
        let kw = [(3, 20.0), (2, 15.0), (1, 10.0)];
        // Normalised: sem 1→1, 2→0.5, 4→0; kw 3→1, 2→0.5, 1→0.
        let out = fuse(&sem, &kw, Fusion::Blend { alpha: 0.75 });
        let want = [(1, 0.75), (2, 0.5), (3, 0.25), (4, 0.0)];
        assert_eq!(out.len(), want.len());
        for (f, (doc, score)) in out.iter().zip(want) {
            assert_eq!(f.doc, doc);
            assert!((f.score - score).abs() < 1e-6, "{f:?}");
        }
        // alpha 1 is semantic order, alpha 0 keyword order (absent papers last).
        let only_sem = fuse(&sem, &kw, Fusion::Blend { alpha: 1.0 });
        assert_eq!(
            only_sem.iter().take(3).map(|f| f.doc).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let only_kw = fuse(&sem, &kw, Fusion::Blend { alpha: 0.0 });
        assert_eq!(
            only_kw.iter().take(3).map(|f| f.doc).collect::<Vec<_>>(),
            [3, 2, 1]
        );
    }

    #[test]
    fn empty_and_single_lists() {
        assert!(fuse(&[], &[], Fusion::default()).is_empty());
        let out = fuse(&[(7, 0.3)], &[], Fusion::default());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].doc, 7);
    }

    #[test]
    fn parses_specs() {
        assert_eq!("rrf".parse::<Fusion>().unwrap(), Fusion::Rrf { k: 60.0 });
        assert_eq!("rrf:10".parse::<Fusion>().unwrap(), Fusion::Rrf { k: 10.0 });
        assert_eq!(
            "blend:0.3".parse::<Fusion>().unwrap(),
            Fusion::Blend { alpha: 0.3 }
        );
        assert!("blend:1.5".parse::<Fusion>().is_err());
        assert!("rrf:-1".parse::<Fusion>().is_err());
        assert!("max".parse::<Fusion>().is_err());
        let f = Fusion::Blend { alpha: 0.4 };
        assert_eq!(f.to_string().parse::<Fusion>().unwrap(), f);
    }
}
