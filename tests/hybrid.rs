//! Hybrid retrieval with the real binary, model and data: each mode on real papers,
//! exact terms found by hybrid where semantic search misses them, explanations, and the
//! BEIR evaluation on a slice of SciFact.

mod common;

use common::{json, ok, paperscope, shared_index};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn search(mode: &str, k: &str, query: &str, extra: &[&str]) -> serde_json::Value {
    let idx = shared_index().to_str().unwrap();
    let mut args = vec!["search", "--index", idx, "-k", k, "--json", "--mode", mode];
    args.extend_from_slice(extra);
    args.push(query);
    json(&ok(&args))
}

#[test]
fn every_mode_finds_the_emergent_misalignment_papers() {
    for mode in ["semantic", "keyword", "hybrid"] {
        let found = ids(&search(
            mode,
            "5",
            "emergent misalignment after narrow finetuning",
            &[],
        ));
        assert_eq!(found.len(), 5, "{mode}");
        assert_eq!(found[0], "seed-007", "{mode}: {found:?}");
        // Semantic alone (measured) ranks "Emergent Abilities ... a Mirage?" second and
        // the other misalignment paper below the top 5; the words bring it back.
        if mode != "semantic" {
            assert_eq!(found[1], "seed-009", "{mode}: {found:?}");
        }
    }
    // Hybrid is the default.
    let idx = shared_index().to_str().unwrap();
    let default = json(&ok(&[
        "search",
        "--index",
        idx,
        "-k",
        "5",
        "--json",
        "emergent misalignment",
    ]));
    let hybrid = search("hybrid", "5", "emergent misalignment", &[]);
    assert_eq!(default, hybrid);

    let out = paperscope(&["search", "--index", idx, "--mode", "fuzzy", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expected semantic, keyword or hybrid"),
        "{err}"
    );
}

#[test]
fn every_mode_pages_and_filters_on_the_command_line() {
    let q = "emergent misalignment after narrow finetuning";
    for mode in ["semantic", "keyword", "hybrid"] {
        let all = ids(&search(mode, "6", q, &[]));
        let second = ids(&search(mode, "3", q, &["--offset", "3"]));
        assert_eq!(second, all[3..].to_vec(), "{mode}");
        let recent = search(mode, "10", q, &["--from", "2026"]);
        let dates: Vec<&str> = recent["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["date"].as_str().unwrap())
            .collect();
        assert!(!dates.is_empty(), "{mode}");
        assert!(dates.iter().all(|d| *d >= "2026"), "{mode}: {dates:?}");
    }
    let idx = shared_index().to_str().unwrap();
    let out = paperscope(&["search", "--index", idx, "--from", "2025-13", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'from' must be YYYY-MM-DD"), "{err}");
}

/// An acronym (non-small-cell lung cancer) that occurs in exactly one of the 425 papers,
/// in its abstract only: 2503.12401, on whole-slide image classification.
const ACRONYM: &str = "NSCLC";
const ACRONYM_QUERY: &str = "NSCLC";

fn rank_of(results: &serde_json::Value, id: &str) -> Option<usize> {
    ids(results).iter().position(|x| x == id).map(|i| i + 1)
}

#[test]
fn hybrid_finds_an_exact_acronym_that_semantic_search_misses_and_says_why() {
    // The one paper that contains the acronym, by keyword search.
    let kw = search("keyword", "10", ACRONYM, &[]);
    let found = ids(&kw);
    assert_eq!(
        found.len(),
        1,
        "{ACRONYM} should occur in one paper: {found:?}"
    );
    let target = &found[0];

    let semantic = search("semantic", "10", ACRONYM_QUERY, &[]);
    let sem_rank = rank_of(&semantic, target);
    assert_ne!(
        sem_rank,
        Some(1),
        "semantic alone already finds it; pick a harder acronym"
    );

    let hybrid = search("hybrid", "10", ACRONYM_QUERY, &["--explain"]);
    assert_eq!(
        rank_of(&hybrid, target),
        Some(1),
        "semantic rank {sem_rank:?}: {hybrid}"
    );

    // The explanation names the shared term and where it came from.
    let e = &hybrid["results"][0]["explanation"];
    let terms: Vec<&str> = e["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["term"].as_str().unwrap())
        .collect();
    assert!(terms.contains(&ACRONYM), "{e}");
    let t = e["terms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["term"] == ACRONYM)
        .unwrap();
    assert!(t["score"].as_f64().unwrap() > 0.0, "{e}");
    assert!(
        t["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "abstract"),
        "{e}"
    );
    assert_eq!(e["keyword_rank"], 1, "{e}");
    let sentence = e["sentence"]["text"].as_str().unwrap();
    assert!(!sentence.is_empty(), "{e}");
    assert!(e["sentence"]["score"].as_f64().unwrap() > 0.0);

    // The human output shows the same, under the hit.
    let idx = shared_index().to_str().unwrap();
    let text = ok(&[
        "search",
        "--index",
        idx,
        "-k",
        "1",
        "--explain",
        ACRONYM_QUERY,
    ]);
    assert!(text.contains(&format!("terms: {ACRONYM} ")), "{text}");
    assert!(text.contains("closest sentence ("), "{text}");
}

#[test]
fn similar_explains_the_distinctive_shared_terms() {
    let idx = shared_index().to_str().unwrap();
    let out = json(&ok(&[
        "similar",
        "--index",
        idx,
        "-k",
        "1",
        "--json",
        "--explain",
        "seed-007",
    ]));
    assert_eq!(ids(&out), ["seed-009"]);
    let shared: Vec<String> = out["results"][0]["explanation"]["shared_terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["term"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(
        shared.iter().any(|t| t.starts_with("misalign")),
        "{shared:?}"
    );
}

/// An index of format 1 (one immutable directory, before segments) is refused with the
/// way forward, and `index --replace` migrates it without embedding anything again.
#[test]
fn a_format_1_index_says_how_to_migrate_and_migrates_without_embedding() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old");
    std::fs::create_dir(&old).unwrap();
    // Format 1's layout: records and vectors at the top, a manifest saying version 1.
    let seg = shared_index().join("seg-000001");
    for f in ["papers.jsonl", "vectors.f32"] {
        std::fs::copy(seg.join(f), old.join(f)).unwrap();
    }
    let current = json(&std::fs::read_to_string(shared_index().join("manifest.json")).unwrap());
    let manifest = serde_json::json!({
        "format_version": 1,
        "model": current["model"],
        "count": current["count"],
        "dim": 384,
        "sources": current["sources"],
    });
    std::fs::write(old.join("manifest.json"), manifest.to_string()).unwrap();
    let old_s = old.to_str().unwrap();
    let out = paperscope(&["search", "--index", old_s, "emergent misalignment"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("format version 1") && err.contains("--replace") && err.contains("reused"),
        "{err}"
    );
    let seed = common::seed_file();
    let migrated = json(&ok(&[
        "index",
        "--replace",
        "--json",
        "--out",
        old_s,
        seed.to_str().unwrap(),
    ]));
    assert_eq!(
        (
            migrated["papers"].as_u64(),
            migrated["embedded"].as_u64(),
            migrated["reused"].as_u64()
        ),
        (Some(25), Some(0), Some(25)),
        "{migrated}"
    );
    let found = ids(&json(&ok(&[
        "search",
        "--index",
        old_s,
        "-k",
        "2",
        "--json",
        "emergent misalignment",
    ])));
    assert_eq!(found.len(), 2);
}

// ---- BEIR evaluation on a slice of SciFact train ----

/// Judged queries in the slice.
const QUERIES: usize = 40;
/// Unjudged papers added as distractors.
const DISTRACTORS: usize = 200;

struct Slice {
    _tmp: tempfile::TempDir,
    corpus: PathBuf,
    queries: PathBuf,
    qrels: PathBuf,
    index: PathBuf,
}

/// The first [`QUERIES`] judged train queries, their relevant papers and [`DISTRACTORS`]
/// other papers, written as BEIR files.
fn scifact_slice() -> &'static Slice {
    static SLICE: OnceLock<Slice> = OnceLock::new();
    SLICE.get_or_init(|| {
        let src = common::shared().join("data/scifact_beir");
        let tmp = tempfile::tempdir().unwrap();
        let qrels_text = std::fs::read_to_string(src.join("qrels/train.tsv")).unwrap();
        let mut lines = qrels_text.lines();
        let header = lines.next().unwrap();
        let mut chosen: Vec<String> = Vec::new();
        let mut kept = vec![header.to_string()];
        let mut relevant = HashSet::new();
        for line in lines {
            let cols: Vec<&str> = line.split('\t').collect();
            if !chosen.contains(&cols[0].to_string()) {
                if chosen.len() == QUERIES {
                    continue;
                }
                chosen.push(cols[0].to_string());
            }
            relevant.insert(cols[1].to_string());
            kept.push(line.to_string());
        }
        let qrels = tmp.path().join("qrels.tsv");
        std::fs::write(&qrels, kept.join("\n") + "\n").unwrap();

        let corpus = tmp.path().join("corpus.jsonl");
        let mut out = std::fs::File::create(&corpus).unwrap();
        let mut distractors = 0;
        for line in std::fs::read_to_string(src.join("corpus.jsonl"))
            .unwrap()
            .lines()
        {
            let id = json(line)["_id"].as_str().unwrap().to_string();
            let take = relevant.contains(&id) || distractors < DISTRACTORS;
            if take {
                if !relevant.contains(&id) {
                    distractors += 1;
                }
                writeln!(out, "{line}").unwrap();
            }
        }
        let slice = Slice {
            corpus,
            queries: src.join("queries.jsonl"),
            qrels,
            index: tmp.path().join("idx"),
            _tmp: tmp,
        };
        // Build the index here, once, rather than in whichever tests race to it first.
        let (_, stderr) = eval_in(&slice, "keyword");
        assert!(stderr.contains("building index"), "{stderr}");
        slice
    })
}

fn eval(mode: &str) -> (serde_json::Value, String) {
    eval_in(scifact_slice(), mode)
}

/// `paperscope eval retrieval` on the slice's corpus, queries and judgments.
fn run_eval(s: &Slice, index: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "eval",
        "retrieval",
        "--corpus",
        s.corpus.to_str().unwrap(),
        "--queries",
        s.queries.to_str().unwrap(),
        "--qrels",
        s.qrels.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    paperscope(&args)
}

fn eval_in(s: &Slice, mode: &str) -> (serde_json::Value, String) {
    let out = run_eval(s, &s.index, &["--mode", mode, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (json(&String::from_utf8(out.stdout).unwrap()), stderr)
}

#[test]
fn eval_retrieval_measures_every_mode_on_scifact() {
    let mut ndcg = HashMap::new();
    for mode in ["semantic", "keyword", "hybrid"] {
        let (r, _) = eval(mode);
        assert_eq!(r["queries"], QUERIES, "{r}");
        for m in ["ndcg@10", "mrr@10", "recall@100"] {
            let v = r[m].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{mode} {m}: {r}");
        }
        // ~240 papers: every mode should do far better than chance.
        assert!(r["ndcg@10"].as_f64().unwrap() > 0.5, "{mode}: {r}");
        assert!(r["recall@100"].as_f64().unwrap() > 0.8, "{mode}: {r}");
        ndcg.insert(mode, r["ndcg@10"].as_f64().unwrap());
    }
    // The index is built once and reused.
    let (_, stderr) = eval("hybrid");
    assert!(stderr.contains("reusing index"), "{stderr}");
    // Hybrid is not worse than the weaker of the two (the full comparison, on all 809
    // queries, is in the README).
    assert!(
        ndcg["hybrid"] >= ndcg["semantic"].min(ndcg["keyword"]),
        "{ndcg:?}"
    );
}

#[test]
fn eval_retrieval_reads_jsonl_qrels_and_reports_bad_files() {
    let s = scifact_slice();
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("qrels.jsonl");
    let tsv = std::fs::read_to_string(&s.qrels).unwrap();
    let mut out = String::new();
    for line in tsv.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        out += &format!(
            "{}\n",
            serde_json::json!({"query_id": c[0], "corpus_id": c[1], "score": 1})
        );
    }
    std::fs::write(&jsonl, out).unwrap();
    let run = |qrels: &Path| {
        paperscope(&[
            "eval",
            "retrieval",
            "--corpus",
            s.corpus.to_str().unwrap(),
            "--queries",
            s.queries.to_str().unwrap(),
            "--qrels",
            qrels.to_str().unwrap(),
            "--index",
            s.index.to_str().unwrap(),
            "--mode",
            "keyword",
            "--json",
        ])
    };
    let from_jsonl = run(&jsonl);
    assert!(
        from_jsonl.status.success(),
        "{}",
        String::from_utf8_lossy(&from_jsonl.stderr)
    );
    let from_tsv = run(&s.qrels);
    assert_eq!(from_jsonl.stdout, from_tsv.stdout);

    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "query-id\tcorpus-id\tscore\n1\t2\n").unwrap();
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.tsv:2"));
}

/// `eval retrieval --index X` never replaces an index X of another collection (it did,
/// silently: issue 16 #2).
#[test]
fn eval_retrieval_refuses_to_replace_an_index_of_another_collection() {
    let s = scifact_slice();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("seed-idx");
    ok(&[
        "index",
        "--out",
        other.to_str().unwrap(),
        common::seed_file().to_str().unwrap(),
    ]);
    let before = std::fs::read(other.join("manifest.json")).unwrap();
    let out = run_eval(s, &other, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("holds another collection"), "{stderr}");
    assert_eq!(std::fs::read(other.join("manifest.json")).unwrap(), before);
}
