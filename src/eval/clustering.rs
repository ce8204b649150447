//! Clustering quality against known labels: V-measure (with homogeneity and
//! completeness), NMI and ARI, as fractions in `0..=1` (ARI can dip below 0).
//!
//! The protocol is MTEB's ArxivClusteringP2P/S2S: embed each labelled paper's
//! `title + " " + abstract` (or the title alone), cluster into `k` groups (by default the
//! number of distinct labels) and score the groups against the labels. The clustering is
//! [`crate::topics::cluster::kmeans`], the exact code path of `paperscope topics`, so the
//! figure measures what users get.
//!
//! NMI here uses the arithmetic mean of the two entropies (scikit-learn's default), which
//! makes it numerically equal to the V-measure with β = 1; both are reported because
//! papers quote either name.

use crate::topics::{self, cluster};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Errors of reading labelled data or embeddings.
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
    #[error("{path}: {found} embeddings for {want} records (the file must hold one line per record of the data file, in order)")]
    Count {
        path: PathBuf,
        found: usize,
        want: usize,
    },
    #[error("no labelled records in {path} (after the label filter)")]
    Empty { path: PathBuf },
    #[error(transparent)]
    Topics(#[from] topics::Error),
}

/// Which text of a paper is embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum TextField {
    /// S2S: the title alone.
    #[serde(rename = "title")]
    Title,
    /// P2P: `title + " " + abstract`.
    #[default]
    #[serde(rename = "title+abstract")]
    TitleAbstract,
}

/// One labelled record, as in `arxiv_clustering/clustering.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    #[serde(default)]
    pub title: String,
    #[serde(default, rename = "abstract")]
    pub abstract_: String,
    pub label: String,
    /// Line number in the data file, 0-based (to match precomputed embeddings).
    #[serde(skip)]
    pub line: usize,
}

impl Labelled {
    pub fn text(&self, field: TextField) -> String {
        match field {
            TextField::Title => self.title.clone(),
            TextField::TitleAbstract => format!("{} {}", self.title, self.abstract_),
        }
    }
}

/// Reads JSON Lines with `title`, `abstract`, `label`, keeping labels that start with
/// `label_prefix` (all with `None`).
///
/// # Errors
/// I/O errors, unparsable lines, [`Error::Empty`].
pub fn read_labelled(path: &Path, label_prefix: Option<&str>) -> Result<Vec<Labelled>, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let mut rec: Labelled = serde_json::from_str(&line).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        rec.line = i;
        if label_prefix.is_none_or(|p| rec.label.starts_with(p)) {
            out.push(rec);
        }
    }
    if out.is_empty() {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// Reads precomputed embeddings (`{"embedding":[...]}` per line, as `paperscope embed`
/// writes them, one per line of the data file) for `records`.
///
/// # Errors
/// I/O and parse errors; [`Error::Count`] when the file is shorter than the data.
pub fn read_embeddings(path: &Path, records: &[Labelled]) -> Result<Vec<Vec<f32>>, Error> {
    #[derive(Deserialize)]
    struct Line {
        embedding: Vec<f32>,
    }
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut all = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        let l: Line = serde_json::from_str(&line).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        all.push(l.embedding);
    }
    let want = records.iter().map(|r| r.line + 1).max().unwrap_or(0);
    if all.len() < want {
        return Err(Error::Count {
            path: path.to_path_buf(),
            found: all.len(),
            want,
        });
    }
    Ok(records.iter().map(|r| all[r.line].clone()).collect())
}

/// Scores of one clustering against labels.
#[derive(Debug, Clone, Serialize)]
pub struct ClusteringEval {
    pub v_measure: f64,
    pub homogeneity: f64,
    pub completeness: f64,
    pub nmi: f64,
    pub ari: f64,
    /// Clusters made (with `--k auto`, the chosen k).
    pub k: usize,
    /// With `--k auto`: each candidate k and its mean silhouette (see `topics::cluster`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub silhouettes: Vec<(usize, f32)>,
    pub n: usize,
    /// Distinct labels among the records.
    pub labels: usize,
    pub seed: u64,
}

/// Clusters `vectors` (one row per label) into `k` groups with the topics k-means (or
/// with the topics' automatic choice of `k`) and scores them against `labels`.
///
/// # Errors
/// [`topics::Error`] from clustering (e.g. `k` larger than the number of rows).
pub fn evaluate(
    vectors: ArrayView2<'_, f32>,
    labels: &[String],
    k: topics::KChoice,
    seed: u64,
) -> Result<ClusteringEval, Error> {
    let clustering = match k {
        topics::KChoice::Fixed(k) => cluster::kmeans(vectors, k, seed)?,
        topics::KChoice::Auto => cluster::auto(
            vectors,
            seed,
            topics::Limits::batch().max_k,
            None,
            &crate::cancel::Cancel::never(),
        )?,
    };
    let k = clustering.k();
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for l in labels {
        let next = ids.len();
        ids.entry(l.as_str()).or_insert(next);
    }
    let truth: Vec<usize> = labels.iter().map(|l| ids[l.as_str()]).collect();
    let (h, c, v) = v_measure(&truth, &clustering.assignment);
    Ok(ClusteringEval {
        v_measure: v,
        homogeneity: h,
        completeness: c,
        nmi: nmi(&truth, &clustering.assignment),
        ari: ari(&truth, &clustering.assignment),
        k,
        silhouettes: clustering.silhouettes,
        n: labels.len(),
        labels: ids.len(),
        seed,
    })
}

/// Contingency counts `n[(class, cluster)]`, class sizes and cluster sizes.
type Contingency = (
    HashMap<(usize, usize), f64>,
    HashMap<usize, f64>,
    HashMap<usize, f64>,
);

fn contingency(truth: &[usize], pred: &[usize]) -> Contingency {
    assert_eq!(
        truth.len(),
        pred.len(),
        "one prediction per label. This is a bug."
    );
    let (mut joint, mut a, mut b) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (&t, &p) in truth.iter().zip(pred) {
        *joint.entry((t, p)).or_insert(0.0) += 1.0;
        *a.entry(t).or_insert(0.0) += 1.0;
        *b.entry(p).or_insert(0.0) += 1.0;
    }
    (joint, a, b)
}

fn entropy(sizes: &HashMap<usize, f64>, n: f64) -> f64 {
    sizes.values().map(|&s| -(s / n) * (s / n).ln()).sum()
}

/// Mutual information of the two labelings (nats), and their entropies.
fn mutual_information(truth: &[usize], pred: &[usize]) -> (f64, f64, f64) {
    let n = truth.len() as f64;
    let (joint, a, b) = contingency(truth, pred);
    let mi = joint
        .iter()
        .map(|(&(t, p), &nij)| nij / n * (n * nij / (a[&t] * b[&p])).ln())
        .sum::<f64>()
        .max(0.0);
    (mi, entropy(&a, n), entropy(&b, n))
}

/// Homogeneity, completeness and V-measure (β = 1) of `pred` against `truth`
/// (Rosenberg & Hirschberg 2007; as scikit-learn computes them, 1.0 for zero entropy).
pub fn v_measure(truth: &[usize], pred: &[usize]) -> (f64, f64, f64) {
    if truth.is_empty() {
        return (1.0, 1.0, 1.0);
    }
    let (mi, hc, hk) = mutual_information(truth, pred);
    let h = if hc == 0.0 { 1.0 } else { mi / hc };
    let c = if hk == 0.0 { 1.0 } else { mi / hk };
    let v = if h + c == 0.0 {
        0.0
    } else {
        2.0 * h * c / (h + c)
    };
    (h, c, v)
}

/// Normalised mutual information, arithmetic-mean normalisation.
pub fn nmi(truth: &[usize], pred: &[usize]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let (mi, hc, hk) = mutual_information(truth, pred);
    if hc == 0.0 && hk == 0.0 {
        return 1.0;
    }
    mi / ((hc + hk) / 2.0)
}

/// Adjusted Rand index (Hubert & Arabie 1985).
pub fn ari(truth: &[usize], pred: &[usize]) -> f64 {
    let n = truth.len() as f64;
    let (joint, a, b) = contingency(truth, pred);
    let c2 = |x: f64| x * (x - 1.0) / 2.0;
    let index: f64 = joint.values().map(|&x| c2(x)).sum();
    let sa: f64 = a.values().map(|&x| c2(x)).sum();
    let sb: f64 = b.values().map(|&x| c2(x)).sum();
    let expected = sa * sb / c2(n).max(f64::MIN_POSITIVE);
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < 1e-12 {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfect_and_permuted_labelings_score_one() {
        let t = [0, 0, 1, 1, 2, 2];
        let p = [2, 2, 0, 0, 1, 1];
        let (h, c, v) = v_measure(&t, &p);
        assert!(close(h, 1.0) && close(c, 1.0) && close(v, 1.0));
        assert!(close(nmi(&t, &p), 1.0));
        assert!(close(ari(&t, &p), 1.0));
    }

    #[test]
    fn one_cluster_is_complete_but_not_homogeneous() {
        let t = [0, 0, 1, 1];
        let p = [0, 0, 0, 0];
        let (h, c, v) = v_measure(&t, &p);
        assert!(close(h, 0.0) && close(c, 1.0) && close(v, 0.0));
        assert!(close(ari(&t, &p), 0.0));
    }

    #[test]
    fn hand_computed_example() {
        // truth: {a,a,a,b,b,b}; pred splits as {a,a,b} {a,b,b}.
        // H(C) = H(K) = ln 2. I = 2 × (2/6 ln(2·6/(3·3)) + 1/6 ln(1·6/(3·3)))
        //   = 2/3 ln(4/3) + 1/3 ln(2/3) = 0.0566330…
        let t = [0, 0, 0, 1, 1, 1];
        let p = [0, 0, 1, 0, 1, 1];
        let mi = 2.0 / 3.0 * (4.0f64 / 3.0).ln() + 1.0 / 3.0 * (2.0f64 / 3.0).ln();
        let want = mi / 2f64.ln();
        let (h, c, v) = v_measure(&t, &p);
        assert!(
            close(h, want) && close(c, want) && close(v, want),
            "{v} vs {want}"
        );
        assert!(close(nmi(&t, &p), want));
        // ARI: pairs within joint cells: 1+0+0+1 = 2; Σ C(a,2) = Σ C(b,2) = 6; C(6,2) = 15.
        // expected = 36/15 = 2.4; max = 6; ARI = (2 - 2.4)/(6 - 2.4) = -1/9.
        assert!(close(ari(&t, &p), -1.0 / 9.0), "{}", ari(&t, &p));
    }

    #[test]
    fn scikit_learn_documented_values() {
        // From scikit-learn's docs: v_measure_score([0, 0, 1, 1], [0, 0, 1, 2]) = 0.8 (with
        // homogeneity 1.0, completeness 0.66…), adjusted_rand_score(…) = 0.5714285714.
        let t = [0, 0, 1, 1];
        let p = [0, 0, 1, 2];
        let (h, c, v) = v_measure(&t, &p);
        assert!(
            close(h, 1.0) && (c - 2.0 / 3.0).abs() < 1e-3 && (v - 0.8).abs() < 1e-3,
            "{h} {c} {v}"
        );
        assert!((ari(&t, &p) - 0.5714285714).abs() < 1e-9);
        // Computed independently (Python, same formulas) for [0,0,0,1,1,1] vs [0,0,1,1,2,2]:
        // homogeneity 0.6666667, completeness 0.4206198, V 0.5158037, ARI 0.2424242.
        let t = [0, 0, 0, 1, 1, 1];
        let p = [0, 0, 1, 1, 2, 2];
        let (h, c, v) = v_measure(&t, &p);
        assert!((h - 0.6666667).abs() < 1e-6, "{h}");
        assert!((c - 0.4206198).abs() < 1e-6, "{c}");
        assert!((v - 0.5158037).abs() < 1e-6, "{v}");
        assert!((ari(&t, &p) - 0.2424242).abs() < 1e-6);
    }
}
