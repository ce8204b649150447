//! Retrieval quality on a BEIR-format benchmark: nDCG@10, MRR@10 and recall@100, with
//! BEIR's definitions (it calls `pytrec_eval`, i.e. `trec_eval`):
//!
//! - **nDCG@10**: `DCG = Σ_{i=1..10} rel_i / log2(i + 1)` over the ranking (linear gain,
//!   as `trec_eval`'s `ndcg_cut`), divided by the DCG of the ideal ranking of the
//!   query's judged documents; 0 when nothing relevant is judged.
//! - **MRR@10**: `1 / rank` of the first relevant (`rel > 0`) document within the top
//!   10, else 0.
//! - **recall@100**: relevant documents in the top 100 over all relevant documents.
//!
//! Each is averaged over the queries that have judgments. As BEIR does by default
//! (`ignore_identical_ids`), a document whose id equals the query id is dropped from
//! that query's ranking.
//!
//! Queries are embedded in one batch up front (much faster than one at a time), then
//! each is searched through [`Engine::search_embedded`], the same path as `search`.

use crate::embed::Encoder;
use crate::search::{self, Engine, Mode, SearchParams};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Depth of each ranking: the deepest cut-off measured (recall@100).
pub const DEPTH: usize = 100;

/// Errors of reading benchmark files or running the queries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: no judged query has a text in the queries file")]
    NoQueries { path: PathBuf },
    #[error(transparent)]
    Search(#[from] search::Error),
}

/// Relevance judgments: query id → (document id → grade).
pub type Qrels = HashMap<String, HashMap<String, i64>>;

/// One benchmark query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: String,
    pub text: String,
}

/// The three measurements, averaged over the judged queries.
#[derive(Debug, Clone, Serialize)]
pub struct RetrievalReport {
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
    #[serde(rename = "recall@100")]
    pub recall_at_100: f64,
    /// Queries measured (those with judgments and a text).
    pub queries: usize,
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a BEIR `queries.jsonl` (`{"_id", "text"}` per line).
///
/// # Errors
/// Unreadable file or a malformed line.
pub fn read_queries(path: &Path) -> Result<Vec<Query>, Error> {
    #[derive(Deserialize)]
    struct Line {
        #[serde(rename = "_id")]
        id: serde_json::Value,
        text: String,
    }
    let mut out = Vec::new();
    for (i, line) in read(path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        out.push(Query {
            id: id_string(&parsed.id),
            text: parsed.text,
        });
    }
    Ok(out)
}

/// Ids may be written as JSON strings or numbers.
fn id_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads judgments: BEIR's TSV (`query-id<TAB>corpus-id<TAB>score`, header line first),
/// or JSON Lines (`{"query_id", "corpus_id", "score"}`), told apart by the first
/// non-blank character (`{` means JSON Lines).
///
/// # Errors
/// Unreadable file or a malformed line.
pub fn read_qrels(path: &Path) -> Result<Qrels, Error> {
    let text = read(path)?;
    let jsonl = text.trim_start().starts_with('{');
    let mut qrels = Qrels::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: String| Error::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        if line.trim().is_empty() {
            continue;
        }
        let (q, d, score) = if jsonl {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            let score = v["score"]
                .as_i64()
                .or_else(|| v["score"].as_f64().map(|f| f as i64))
                .ok_or_else(|| bad("missing integer 'score'".into()))?;
            if v["query_id"].is_null() || v["corpus_id"].is_null() {
                return Err(bad("missing 'query_id' or 'corpus_id'".into()));
            }
            (id_string(&v["query_id"]), id_string(&v["corpus_id"]), score)
        } else {
            let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
            if cols.len() != 3 {
                return Err(bad(format!(
                    "expected 3 tab-separated columns, found {}",
                    cols.len()
                )));
            }
            match cols[2].parse::<i64>() {
                Ok(s) => (cols[0].to_string(), cols[1].to_string(), s),
                // The header line ("query-id corpus-id score").
                Err(_) if i == 0 => continue,
                Err(_) => return Err(bad(format!("score '{}' is not an integer", cols[2]))),
            }
        };
        qrels.entry(q).or_default().insert(d, score);
    }
    Ok(qrels)
}

/// nDCG at `k` of one ranking (document ids, best first) against its judgments.
pub fn ndcg_at(ranking: &[&str], rels: &HashMap<String, i64>, k: usize) -> f64 {
    let gain = |r: i64| r.max(0) as f64;
    let discount = |i: usize| (i as f64 + 2.0).log2();
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| gain(rels.get(*d).copied().unwrap_or(0)) / discount(i))
        .sum();
    let mut ideal: Vec<i64> = rels.values().copied().filter(|&r| r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &r)| gain(r) / discount(i))
        .sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// Reciprocal rank of the first relevant document within the top `k`, else 0.
pub fn mrr_at(ranking: &[&str], rels: &HashMap<String, i64>, k: usize) -> f64 {
    ranking
        .iter()
        .take(k)
        .position(|d| rels.get(*d).is_some_and(|&r| r > 0))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// Share of the relevant documents found in the top `k`.
pub fn recall_at(ranking: &[&str], rels: &HashMap<String, i64>, k: usize) -> f64 {
    let relevant = rels.values().filter(|&&r| r > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranking
        .iter()
        .take(k)
        .filter(|d| rels.get(**d).is_some_and(|&r| r > 0))
        .count();
    found as f64 / relevant as f64
}

/// Runs every judged query through `engine` in `params.mode` (at depth [`DEPTH`]) and
/// averages the three measurements.
///
/// # Errors
/// [`Error::NoQueries`] when no judged query has a text; search and model errors.
pub fn evaluate(
    engine: &Engine,
    queries: &[Query],
    qrels: &Qrels,
    qrels_path: &Path,
    params: &SearchParams,
    encoder: &dyn Encoder,
) -> Result<RetrievalReport, Error> {
    let judged: Vec<&Query> = queries
        .iter()
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    if judged.is_empty() {
        return Err(Error::NoQueries {
            path: qrels_path.to_path_buf(),
        });
    }
    let params = SearchParams {
        k: DEPTH + 1, // one spare for the dropped identical id
        explain: false,
        ..params.clone()
    };
    let vectors = if params.mode == Mode::Keyword {
        vec![None; judged.len()]
    } else {
        let texts: Vec<&str> = judged.iter().map(|q| q.text.as_str()).collect();
        engine.check_model(encoder.info())?;
        encoder
            .embed(&texts)
            .map_err(search::Error::from)?
            .into_iter()
            .map(Some)
            .collect()
    };
    let (mut ndcg, mut mrr, mut recall) = (0.0, 0.0, 0.0);
    for (q, v) in judged.iter().zip(&vectors) {
        let rels = &qrels[&q.id];
        // A query that is all stop words has no keyword hits; it still counts (as 0).
        let hits = match engine.search_embedded(&q.text, v.as_deref(), &params, encoder) {
            Ok(r) => r.hits,
            Err(search::Error::Invalid(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let ranking: Vec<&str> = hits
            .iter()
            .map(|h| h.paper.id.0.as_str())
            .filter(|d| *d != q.id)
            .take(DEPTH)
            .collect();
        ndcg += ndcg_at(&ranking, rels, 10);
        mrr += mrr_at(&ranking, rels, 10);
        recall += recall_at(&ranking, rels, 100);
    }
    let n = judged.len() as f64;
    Ok(RetrievalReport {
        ndcg_at_10: ndcg / n,
        mrr_at_10: mrr / n,
        recall_at_100: recall / n,
        queries: judged.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rels(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
        pairs.iter().map(|(d, r)| (d.to_string(), *r)).collect()
    }

    #[test]
    fn ndcg_by_hand() {
        // Relevant: a (grade 2) and b (grade 1). Ranking: x, a, y, b.
        // DCG  = 2/log2(3) + 1/log2(5) = 1.261860 + 0.430677 = 1.692536
        // IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.630930 = 2.630930
        // nDCG = 0.643322
        let r = rels(&[("a", 2), ("b", 1), ("z", 0)]);
        let ranking = ["x", "a", "y", "b"];
        assert!((ndcg_at(&ranking, &r, 10) - 0.643322).abs() < 1e-6);
        // Cut at 2: DCG = 1.261860, IDCG@2 = 2.630930 → 0.479625.
        assert!((ndcg_at(&ranking, &r, 2) - 0.479625).abs() < 1e-6);
        // Perfect ranking.
        assert!((ndcg_at(&["a", "b"], &r, 10) - 1.0).abs() < 1e-12);
        // Nothing relevant judged.
        assert_eq!(ndcg_at(&["a"], &rels(&[("a", 0)]), 10), 0.0);
    }

    #[test]
    fn mrr_and_recall_by_hand() {
        let r = rels(&[("a", 1), ("b", 1), ("c", 0)]);
        assert_eq!(mrr_at(&["c", "x", "b", "a"], &r, 10), 1.0 / 3.0);
        assert_eq!(mrr_at(&["c", "x", "b"], &r, 2), 0.0);
        assert_eq!(recall_at(&["c", "x", "b"], &r, 100), 0.5);
        assert_eq!(recall_at(&["a", "b"], &r, 1), 0.5);
    }

    #[test]
    fn reads_tsv_and_jsonl_qrels() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = dir.path().join("q.tsv");
        fs::write(
            &tsv,
            "query-id\tcorpus-id\tscore\n1\t31715818\t1\n1\t42\t2\n3\t7\t1\n",
        )
        .unwrap();
        let q = read_qrels(&tsv).unwrap();
        assert_eq!(q["1"]["42"], 2);
        assert_eq!(q["3"].len(), 1);
        let jsonl = dir.path().join("q.jsonl");
        fs::write(&jsonl, "{\"query_id\":\"1\",\"corpus_id\":\"42\",\"score\":2}\n{\"query_id\":3,\"corpus_id\":\"7\",\"score\":1}\n").unwrap();
        let q = read_qrels(&jsonl).unwrap();
        assert_eq!(q["1"]["42"], 2);
        assert_eq!(q["3"]["7"], 1);
        fs::write(&tsv, "query-id\tcorpus-id\tscore\n1\t2\tx\n").unwrap();
        assert!(read_qrels(&tsv)
            .unwrap_err()
            .to_string()
            .contains("q.tsv:2"));
    }
}
