//! `paperscope topics` and `paperscope eval clustering` on real papers with the real model:
//! the seed check (the emergent papers split into groups a person would name), output
//! formats, determinism, limits.

mod common;

use common::{json, ok, paperscope, shared_index};
use paperscope::topics::{self, Error, KChoice, Limits, TopicParams};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};

fn topic_of(report: &Value) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for t in report["topics"].as_array().unwrap() {
        for p in t["papers"].as_array().unwrap() {
            let old = m.insert(p.as_str().unwrap().to_string(), t["id"].as_u64().unwrap());
            assert!(old.is_none(), "{p} in two topics");
        }
    }
    m
}

/// Invariants every report must satisfy.
fn check_report(r: &Value) {
    let topics = r["topics"].as_array().unwrap();
    let sizes: u64 = topics.iter().map(|t| t["size"].as_u64().unwrap()).sum();
    assert_eq!(sizes, r["selection"]["papers"].as_u64().unwrap());
    assert_eq!(topic_of(r).len() as u64, sizes);
    let ids: BTreeSet<u64> = topics.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..topics.len() as u64).collect());
    for t in topics {
        let papers: BTreeSet<&str> = t["papers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(papers.len() as u64, t["size"].as_u64().unwrap());
        let rep = t["representative"].as_array().unwrap();
        assert!(!rep.is_empty() && rep.len() <= 3);
        assert!(rep.iter().all(|p| papers.contains(p.as_str().unwrap())));
        assert!(!t["label"].as_str().unwrap().is_empty());
        let w: Vec<f64> = t["terms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[1].as_f64().unwrap())
            .collect();
        assert!(
            w.windows(2).all(|p| p[0] >= p[1]),
            "terms not best first: {w:?}"
        );
        let monthly: u64 = t["monthly"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert!(monthly <= t["size"].as_u64().unwrap());
    }
}

#[test]
fn emergent_papers_split_into_groups_a_person_would_name() {
    let idx = shared_index().to_str().unwrap();
    let r = json(&ok(&[
        "topics",
        "--index",
        idx,
        "--query",
        "emergent",
        "--seed",
        "7",
        "--json",
        "--no-history",
    ]));
    check_report(&r);
    let sel = &r["selection"];
    assert_eq!(sel["mode"], "keyword");
    // Every seed paper is about "emergent" (in its title); lexical matching finds them.
    let topic = topic_of(&r);
    let seed_found = (1..=25)
        .filter(|i| topic.contains_key(&format!("seed-{i:03}")))
        .count();
    assert!(
        seed_found >= 23,
        "{seed_found} of 25 seed papers selected: {sel}"
    );
    assert!(sel["lexical"].as_u64().unwrap() >= 23, "{sel}");
    // The two emergent-misalignment papers share a topic.
    assert_eq!(topic["seed-007"], topic["seed-009"], "{r}");
    // Auto k splits the 24 papers finer than the bottom of its window (it made 4 groups
    // when it took the best silhouette, merging every LLM/agent paper). At 6 groups the
    // emergent-communication paper (006) goes with the multi-agent papers and the
    // emergent-language one (024) with the language-model papers; the README says so.
    assert!(r["topics"].as_array().unwrap().len() >= 5, "{r}");
    assert_eq!(topic["seed-006"], topic["seed-002"], "{r}");
    // The kagome-metal paper never joins an ML topic.
    let kagome = topic["seed-018"];
    assert_eq!(topic.values().filter(|&&t| t == kagome).count(), 1, "{r}");
    // The query's own word forms never label a topic.
    for t in r["topics"].as_array().unwrap() {
        for term in t["terms"].as_array().unwrap() {
            let term = term[0].as_str().unwrap();
            assert!(
                !term.contains("emergen") && !term.contains("emerging"),
                "{term}"
            );
        }
    }
}

#[test]
fn same_arguments_and_seed_give_identical_bytes() {
    let idx = shared_index().to_str().unwrap();
    let args = [
        "topics",
        "--index",
        idx,
        "--query",
        "emergent",
        "--k",
        "auto",
        "--seed",
        "3",
        "--json",
        "--no-history",
    ];
    assert_eq!(ok(&args), ok(&args));
    let args = [
        "topics",
        "--index",
        idx,
        "--k",
        "6",
        "--seed",
        "11",
        "--json",
        "--no-history",
    ];
    let a = ok(&args);
    assert_eq!(a, ok(&args));
    check_report(&json(&a));
}

#[test]
fn batch_run_writes_assignments_html_and_sorts_by_growth() {
    let idx = shared_index().to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("topics.csv");
    let html = tmp.path().join("topics.html");
    let out = ok(&[
        "topics",
        "--index",
        idx,
        "--k",
        "8",
        "--seed",
        "7",
        "--sort",
        "growth",
        "--json",
        "--no-history",
        "--assignments",
        csv.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let r = json(&out);
    check_report(&r);
    assert_eq!(r["selection"]["papers"], r["selection"]["collection"]);
    assert_eq!(r["topics"].as_array().unwrap().len(), 8);
    // Topics with a growth figure first, fastest-rising first; the others after.
    let growth: Vec<Option<f64>> = r["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["growth"].as_f64())
        .collect();
    assert!(
        growth.windows(2).all(|w| match (w[0], w[1]) {
            (Some(a), Some(b)) => a >= b,
            (a, b) => a.is_some() || b.is_none(),
        }),
        "{growth:?}"
    );

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("paper_id,topic_id"));
    let topic = topic_of(&r);
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), topic.len());
    for row in rows {
        let (p, t) = row.split_once(',').unwrap();
        assert_eq!(topic[p], t.parse::<u64>().unwrap(), "{row}");
    }

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg"));
    assert_eq!(page.matches("<circle").count(), topic.len());
    // Self-contained: nothing is fetched.
    for bad in ["src=", "href=", "@import", "url("] {
        assert!(!page.contains(bad), "page references {bad}");
    }
    for t in r["topics"].as_array().unwrap() {
        assert!(page.contains(&format!("#{} ", t["id"])));
    }
}

#[test]
fn human_output_lists_topics_with_representative_papers() {
    let idx = shared_index().to_str().unwrap();
    let text = ok(&[
        "topics",
        "--index",
        idx,
        "--query",
        "emergent",
        "--k",
        "4",
        "--no-history",
    ]);
    assert!(text.contains("papers about \"emergent\""), "{text}");
    assert!(
        text.contains("#0 ") && text.contains("#3 ") && !text.contains("#4 "),
        "{text}"
    );
    assert!(
        text.contains("terms: ") && text.contains("     - seed-"),
        "{text}"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let idx = shared_index().to_str().unwrap();
    for (args, want) in [
        (vec!["--k", "0"], "out of range"),
        (vec!["--k", "many"], "expected a number or \"auto\""),
        (vec!["--query", "  "], "empty query"),
        (
            vec!["--query", "emergent misalignment", "--k", "400"],
            "cannot make 400 topics",
        ),
    ] {
        let mut full = vec!["topics", "--index", idx];
        full.extend(args);
        let out = paperscope(&full);
        assert_eq!(out.status.code(), Some(2), "{full:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{full:?}: {err}");
    }
}

#[test]
fn library_limits_are_request_errors() {
    let engine =
        paperscope::search::Engine::open(shared_index(), paperscope::search::Limits::default())
            .unwrap();
    let opts = paperscope::embed::EmbedOptions::default();
    let model = paperscope::embed::Embedder::load(&common::model_dir(), &opts).unwrap();
    let never = paperscope::cancel::Cancel::never();
    let params = TopicParams {
        query: Some("emergent".into()),
        limits: Limits {
            max_selection: 10,
            max_k: 100,
        },
        ..TopicParams::default()
    };
    let e = topics::run(&engine, &params, &model, &never).unwrap_err();
    assert!(matches!(e, Error::SelectionTooLarge { max: 10, .. }), "{e}");
    assert!(e.is_invalid_request());
    let params = TopicParams {
        k: KChoice::Fixed(101),
        ..TopicParams::default()
    };
    let e = topics::run(&engine, &params, &model, &never).unwrap_err();
    assert!(matches!(e, Error::KOutOfRange { k: 101, max: 100 }) && e.is_invalid_request());

    // A phrase query selects semantic neighbours only, and the page renders from the report.
    let params = TopicParams {
        query: Some("agents that invent their own communication protocol".into()),
        seed: 1,
        ..TopicParams::default()
    };
    let r = topics::run(&engine, &params, &model, &never).unwrap();
    assert_eq!(r.selection.mode, topics::Mode::Semantic);
    assert_eq!(r.selection.lexical, 0);
    assert!(
        r.topics
            .iter()
            .flat_map(|t| &t.papers)
            .any(|p| p.0 == "seed-006"),
        "{:?}",
        r.selection
    );
    let page = topics::html::render(&r, engine.index()).unwrap();
    assert!(page.contains("Emergent Compositional Communication"));
}

#[test]
fn eval_clustering_scores_labelled_papers() {
    // Labelled by arXiv primary category: three well-separated fields from the test slice.
    let tmp = tempfile::tempdir().unwrap();
    let slice = common::arxiv_slice(tmp.path(), common::SLICE);
    let data = tmp.path().join("labelled.jsonl");
    let mut out = std::fs::File::create(&data).unwrap();
    let mut per_label: HashMap<String, usize> = HashMap::new();
    for line in std::io::BufReader::new(std::fs::File::open(slice).unwrap()).lines() {
        let r = json(&line.unwrap());
        let Some(label) = r["primary_category"].as_str() else {
            continue;
        };
        let n = per_label.entry(label.to_string()).or_default();
        if ["cs.CV", "cs.CL", "cs.RO"].contains(&label) && *n < 25 {
            *n += 1;
            let rec =
                serde_json::json!({"title": r["title"], "abstract": r["abstract"], "label": label});
            writeln!(out, "{rec}").unwrap();
        }
    }
    drop(out);
    let d = data.to_str().unwrap();
    let r = json(&ok(&["eval", "clustering", "--data", d, "--json"]));
    assert_eq!(r["k"], 3);
    let n = r["n"].as_u64().unwrap();
    assert!(n >= 40, "{r}");
    for key in ["v_measure", "nmi", "ari"] {
        let v = r[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    // Vision, language and robotics abstracts separate well above chance.
    assert!(r["v_measure"].as_f64().unwrap() > 0.3, "{r}");
    let only = json(&ok(&[
        "eval",
        "clustering",
        "--data",
        d,
        "--labels-prefix",
        "cs.C",
        "--text",
        "title",
        "--json",
    ]));
    assert_eq!(only["k"], 2);
    assert!(only["n"].as_u64().unwrap() < n);
    let text = ok(&["eval", "clustering", "--data", d, "--k", "2"]);
    assert!(text.starts_with("v_measure: 0."), "{text}");
}

#[test]
fn keyword_selection_keeps_the_concept_not_the_everyday_word() {
    let idx = shared_index().to_str().unwrap();
    let r = json(&ok(&[
        "topics",
        "--index",
        idx,
        "--query",
        "emergent",
        "--k",
        "2",
        "--json",
        "--no-history",
    ]));
    let engine =
        paperscope::search::Engine::open(shared_index(), paperscope::search::Limits::default())
            .unwrap();
    // Every lexical match says emergent/emergence/emergently; none is selected only for
    // "emerging", "emerged" or "emergency" (26 of the arXiv records use those loosely).
    let family = [
        "emergent",
        "emergence",
        "emergently",
        "emergences",
        "emergents",
    ];
    for id in topic_of(&r).keys() {
        let p = engine
            .paper(&paperscope::paper::PaperId(id.clone()))
            .unwrap();
        let text = format!("{} {}", p.title, p.abstract_).to_lowercase();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        assert!(
            words.iter().any(|w| family.contains(w)),
            "{id} selected without a word of the family: {}",
            p.title
        );
    }
    assert!(
        r["selection"]["lexical"].as_u64().unwrap() >= 23,
        "{}",
        r["selection"]
    );
}

#[test]
fn the_map_keeps_topics_apart_and_the_cache_computes_once() {
    let engine =
        paperscope::search::Engine::open(shared_index(), paperscope::search::Limits::default())
            .unwrap();
    let opts = paperscope::embed::EmbedOptions::default();
    let model = paperscope::embed::Embedder::load(&common::model_dir(), &opts).unwrap();
    let never = paperscope::cancel::Cancel::never();
    let params = TopicParams {
        k: KChoice::Fixed(8),
        seed: 7,
        ..TopicParams::default()
    };
    let cache = topics::Cache::new(2);
    let start = std::time::Instant::now();
    let first = cache
        .get_or_run(1, &engine, &params, &model, &never)
        .unwrap();
    let cold = start.elapsed();
    let start = std::time::Instant::now();
    let again = cache
        .get_or_run(1, &engine, &params, &model, &never)
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again));
    assert!(
        start.elapsed() < cold / 10,
        "{:?} vs {cold:?}",
        start.elapsed()
    );

    let (report, map) = (&first.report, &first.map);
    assert_eq!(map.centres.len(), report.topics.len());
    assert_eq!(map.points.len(), 425);
    for p in &map.points {
        assert!(
            (0.0..=1.0).contains(&p.x) && (0.0..=1.0).contains(&p.y),
            "{p:?}"
        );
        let id = &engine.index().paper(p.doc).id;
        assert!(report.topics[p.topic].papers.contains(id));
    }
    // Topics stand apart, far better than on the PCA-of-centroids map.
    let docs: Vec<_> = map.points.iter().map(|p| p.doc).collect();
    let topic: Vec<usize> = map.points.iter().map(|p| p.topic).collect();
    let xy: Vec<(f32, f32)> = map.points.iter().map(|p| (p.x, p.y)).collect();
    let data = topics::matrix(engine.index(), &docs);
    let q = topics::layout::quality(data.view(), &xy, &topic, &map.centres, 10);
    let base = topics::layout::pca_of_centroids(data.view(), &topic, 8).unwrap();
    let centres = topics::layout::centres_of(&base, &topic, 8);
    let qb = topics::layout::quality(data.view(), &base, &topic, &centres, 10);
    assert!(q.topic_agreement > 0.9 && q.own_centre > 0.9, "{q:?}");
    assert!(q.trustworthiness > qb.trustworthiness, "{q:?} vs {qb:?}");
    assert!(
        q.topic_agreement > qb.topic_agreement + 0.2,
        "{q:?} vs {qb:?}"
    );
}

/// Topic ids continue across runs and commits: the same topics keep their ids, added
/// papers make topics grow or appear under fresh ids, a dissolved topic is reported gone
/// and its id never given again; a date window keeps only the papers of the period.
#[test]
fn topic_ids_continue_across_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let slice = common::arxiv_slice(tmp.path(), 400);
    let text = std::fs::read_to_string(&slice).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let first = tmp.path().join("first.jsonl");
    let later = tmp.path().join("later.jsonl");
    std::fs::write(&first, lines[..300].join("\n")).unwrap();
    std::fs::write(&later, lines[300..].join("\n")).unwrap();
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    let seed = common::seed_file();
    ok(&[
        "index",
        "--out",
        idx_s,
        seed.to_str().unwrap(),
        first.to_str().unwrap(),
    ]);
    let run = || json(&ok(&["topics", "--index", idx_s, "--k", "6", "--json"]));
    let ids = |r: &Value| -> BTreeSet<u64> {
        r["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect()
    };

    let one = run();
    assert!(
        one["history"]["previous_at"].is_null(),
        "{}",
        one["history"]
    );
    assert_eq!(ids(&one), (0..6).collect());
    // Unchanged collection: every topic continues under its id, steady.
    let two = run();
    assert_eq!(two["topics"], one["topics"].clone().tap_status("steady"));
    assert_eq!(two["history"]["kept"], 6);
    assert_eq!(two["history"]["previous_generation"], 1);

    // 100 more papers: topics continue (ids from the first run) or are new (ids ≥ 6).
    ok(&["add", "--index", idx_s, later.to_str().unwrap()]);
    let three = run();
    let h = &three["history"];
    assert_eq!(h["previous_generation"], 1);
    assert!(h["kept"].as_u64().unwrap() >= 4, "{h}");
    for t in three["topics"].as_array().unwrap() {
        let id = t["id"].as_u64().unwrap();
        match t["status"].as_str().unwrap() {
            "new" => assert!(id >= 6 && t["previous_size"].is_null(), "{t}"),
            _ => assert!(id < 6 && t["previous_size"].is_u64(), "{t}"),
        }
    }
    let kept = three["history"]["kept"].as_u64().unwrap();
    let gone = three["history"]["gone"].as_array().unwrap().len() as u64;
    assert_eq!(kept + gone, 6, "{h}");

    // Remove every paper of one topic: it is gone, and its id is not given again.
    let victim = &three["topics"][0];
    let victim_id = victim["id"].as_u64().unwrap();
    let mut remove = vec!["remove", "--index", idx_s];
    remove.extend(
        victim["papers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap()),
    );
    ok(&remove);
    let given: BTreeSet<u64> = ids(&one).union(&ids(&three)).copied().collect();
    let four = run();
    let h = &four["history"];
    assert!(
        h["gone"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"].as_u64() == Some(victim_id)),
        "{h}"
    );
    for t in four["topics"].as_array().unwrap() {
        let id = t["id"].as_u64().unwrap();
        assert_ne!(id, victim_id, "a dissolved topic's id came back: {t}");
        if t["status"] == "new" {
            assert!(
                id > *given.iter().max().unwrap(),
                "new topic reuses an id: {t}"
            );
        }
    }

    // A window: only the period's papers, and growth only with enough papers each side.
    let windowed = json(&ok(&[
        "topics", "--index", idx_s, "--k", "3", "--from", "2025", "--json",
    ]));
    let sel = &windowed["selection"];
    assert!(sel["outside_window"].as_u64().unwrap() > 0, "{sel}");
    assert_eq!(
        sel["papers"].as_u64().unwrap() + sel["outside_window"].as_u64().unwrap(),
        sel["collection"].as_u64().unwrap()
    );
    for r in [&one, &three, &windowed] {
        for t in r["topics"].as_array().unwrap() {
            if t["growth"].is_f64() {
                assert!(
                    t["recent"].as_u64() >= Some(5) && t["earlier"].as_u64() >= Some(5),
                    "{t}"
                );
            }
            if t["recent"] == 0 {
                assert!(
                    t["growth"].is_null(),
                    "growth claimed from no recent papers: {t}"
                );
            }
        }
    }
}

/// `status` set on every topic of a report (what a rerun of an unchanged collection adds).
trait TapStatus {
    fn tap_status(self, status: &str) -> Value;
}

impl TapStatus for Value {
    fn tap_status(mut self, status: &str) -> Value {
        for t in self.as_array_mut().unwrap() {
            let size = t["size"].clone();
            t["status"] = status.into();
            t["previous_size"] = size;
        }
        self
    }
}
