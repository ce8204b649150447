//! The engine's rules — modes, pages, filters, exclusions, recommend, validation — over a
//! small index built with [`FakeEncoder`]: milliseconds, no model files. What depends on
//! the real model's sense of meaning is tested in `tests/` with the real model.

use super::*;
use crate::embed::fake::FakeEncoder;
use crate::index::{self, BuildOptions};

/// 24 papers: pairs sharing a topic word, categories cs.CL / cs.LG / cond-mat, dates
/// spread over 2023-2025 (the last two undated).
fn papers() -> Vec<Paper> {
    let topics = [
        "transformer",
        "graph",
        "kagome",
        "diffusion",
        "retrieval",
        "agents",
        "protein",
        "quantum",
        "robotics",
        "speech",
        "vision",
        "privacy",
    ];
    (0..24)
        .map(|i| {
            let topic = topics[i / 2];
            Paper {
                id: PaperId(format!("p{i:02}")),
                title: format!("{topic} study number {i}"),
                abstract_: format!("We study {topic} models. Variant {i} of the {topic} method."),
                authors: vec![format!("Author {}", i % 3)],
                date: (i < 22).then(|| format!("202{}-{:02}-15", 3 + i % 3, 1 + i % 12)),
                categories: vec![["cs.CL", "cs.LG", "cond-mat.str-el"][i % 3].to_string()],
                url: None,
                extra: Default::default(),
            }
        })
        .collect()
}

fn engine(limits: Limits) -> (tempfile::TempDir, Engine, FakeEncoder) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("idx");
    let encoder = FakeEncoder::new(32);
    index::build(&out, papers(), &encoder, &BuildOptions::default(), |_| {}).unwrap();
    let engine = Engine::open(&out, limits).unwrap();
    (dir, engine, encoder)
}

fn ids(r: &Results<'_>) -> Vec<String> {
    r.hits.iter().map(|h| h.paper.id.0.clone()).collect()
}

#[test]
fn every_mode_finds_the_pair_sharing_the_query_word_first() {
    let (_d, e, enc) = engine(Limits::default());
    for mode in [Mode::Semantic, Mode::Keyword, Mode::Hybrid] {
        let params = SearchParams {
            k: 2,
            mode,
            ..Default::default()
        };
        let mut got = ids(&e.search("kagome", &params, &enc).unwrap());
        got.sort();
        assert_eq!(got, ["p04", "p05"], "{mode}");
    }
}

#[test]
fn pages_follow_each_other_in_every_mode() {
    let (_d, e, enc) = engine(Limits::default());
    for mode in [Mode::Semantic, Mode::Keyword, Mode::Hybrid] {
        let all = SearchParams {
            k: 12,
            mode,
            ..Default::default()
        };
        let whole = ids(&e.search("study models", &all, &enc).unwrap());
        let mut paged = Vec::new();
        for offset in (0..12).step_by(4) {
            let p = SearchParams {
                k: 4,
                offset,
                mode,
                ..Default::default()
            };
            paged.extend(ids(&e.search("study models", &p, &enc).unwrap()));
        }
        assert_eq!(paged, whole, "{mode}");
    }
}

#[test]
fn filters_give_full_pages_of_matching_papers_only() {
    let (_d, e, enc) = engine(Limits::default());
    let params = SearchParams {
        k: 5,
        filter: Filter {
            category: Some("cs.LG".into()),
            from: Some("2024".into()),
            to: None,
        },
        ..Default::default()
    };
    let r = e.search("study", &params, &enc).unwrap();
    let matching = papers()
        .into_iter()
        .filter(|p| params.filter.matches(p))
        .count();
    assert_eq!(r.total, matching);
    assert_eq!(r.hits.len(), 5.min(matching));
    for h in &r.hits {
        assert!(params.filter.matches(h.paper), "{}", h.paper.id);
    }
}

#[test]
fn similar_and_recommend_never_return_their_examples() {
    let (_d, e, _enc) = engine(Limits::default());
    let params = SearchParams {
        k: 23,
        ..Default::default()
    };
    let r = e.similar(&PaperId("p06".into()), &params).unwrap();
    assert_eq!(r.total, 23);
    assert!(!ids(&r).contains(&"p06".to_string()));
    assert_eq!(ids(&r)[0], "p07", "its topic twin comes first");
    let rec = Recommend {
        positive: vec![PaperId("p06".into())],
        negative: vec![PaperId("p08".into())],
        text: None,
    };
    let r = e.recommend(&rec, &params).unwrap();
    assert!(!ids(&r).iter().any(|id| id == "p06" || id == "p08"));
    assert_eq!(ids(&r)[0], "p07");
}

#[test]
fn mistakes_are_typed_with_one_code_each() {
    let (_d, e, enc) = engine(Limits::default());
    let invalid = |q: &str, p: SearchParams| match e.search(q, &p, &enc) {
        Err(Error::Invalid(i)) => i.code(),
        other => panic!("expected a mistake, got {:?}", other.map(|r| ids(&r))),
    };
    let d = SearchParams::default;
    assert_eq!(invalid("  ", d()), "empty_query");
    assert_eq!(invalid(&"a".repeat(2_001), d()), "query_too_long");
    assert_eq!(invalid("x", SearchParams { k: 0, ..d() }), "invalid_k");
    assert_eq!(invalid("x", SearchParams { k: 101, ..d() }), "invalid_k");
    assert_eq!(
        invalid(
            "x",
            SearchParams {
                offset: 1_001,
                ..d()
            }
        ),
        "invalid_offset"
    );
    let explain = SearchParams {
        k: 21,
        explain: true,
        ..d()
    };
    assert_eq!(invalid("x", explain), "explain_k_too_large");
    let boost = SearchParams {
        title_boost: f32::NAN,
        ..d()
    };
    assert_eq!(invalid("x", boost), "invalid_title_boost");
    let reversed = SearchParams {
        filter: Filter {
            from: Some("2025".into()),
            to: Some("2024".into()),
            ..Default::default()
        },
        ..d()
    };
    assert_eq!(invalid("x", reversed), "invalid_date_range");
    assert_eq!("fuzzy".parse::<Mode>().unwrap_err().code(), "invalid_mode");
    // The command line's limits allow what a shared server refuses.
    let (_d2, cli, enc) = engine(Limits::command_line());
    assert!(cli
        .search("x", &SearchParams { k: 1_000, ..d() }, &enc)
        .is_ok());
}

#[test]
fn a_query_model_other_than_the_index_s_is_refused() {
    let (_d, e, _enc) = engine(Limits::default());
    let other = FakeEncoder::new(48);
    let err = e
        .search("kagome", &SearchParams::default(), &other)
        .unwrap_err();
    assert!(
        matches!(err, Error::Index(index::Error::ModelMismatch { .. })),
        "{err}"
    );
    // Keyword mode needs no model, so any encoder will do.
    let keyword = SearchParams {
        mode: Mode::Keyword,
        ..Default::default()
    };
    assert!(e.search("kagome", &keyword, &other).is_ok());
}

#[test]
fn newest_orders_the_most_relevant_by_date() {
    let (_d, e, enc) = engine(Limits::default());
    for mode in [Mode::Semantic, Mode::Keyword, Mode::Hybrid] {
        let params = SearchParams {
            mode,
            k: 24,
            sort: Sort::Newest,
            ..Default::default()
        };
        let r = e.search("study models", &params, &enc).unwrap();
        let dates: Vec<Option<&str>> = r.hits.iter().map(|h| h.paper.date.as_deref()).collect();
        assert!(dates.len() > 2, "{mode}");
        // Newest first, undated last.
        assert!(
            dates
                .windows(2)
                .all(|w| w[1].is_none() || w[0].is_some_and(|a| Some(a) >= w[1])),
            "{mode}: {dates:?}"
        );
        assert!(r.total <= NEWEST_POOL);
        // Pages of the date order follow each other.
        let second = SearchParams {
            k: 5,
            offset: 5,
            ..params.clone()
        };
        let page = e.search("study models", &second, &enc).unwrap();
        assert_eq!(ids(&page), ids(&r)[5..10].to_vec(), "{mode}");
    }
    assert_eq!("newest".parse(), Ok(Sort::Newest));
    assert_eq!("oldest".parse::<Sort>().unwrap_err().code(), "invalid_sort");
}
