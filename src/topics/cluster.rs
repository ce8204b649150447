//! Grouping vectors: k-means (linfa-clustering) for a given `k`, and the choice of `k` by
//! silhouette for `--k auto`.
//!
//! **Why k-means.** Topics must partition the selection (every paper in exactly one
//! group, so assignments and monthly counts add up), run in minutes on 118k × 384 and be
//! reproducible from a seed. linfa's k-means is seeded (Xoshiro256+, k-means++ init), its
//! parallel steps (assignment) are per-row and its reductions are sequential, so the same
//! input and seed give the same centroids on any number of threads. Density methods
//! (HDBSCAN) leave a noise class and scale worse with dimension.
//!
//! **Scale.** Cost is `runs × iterations × n × k × dim`. [`KMeansConfig::for_size`] keeps
//! that bounded: 10 restarts and up to 300 iterations for small selections, 2 restarts and
//! 40 iterations past [`LARGE`] papers (k-means on text embeddings gains little after a few
//! dozen iterations; the tolerance stops earlier anyway).
//!
//! **Auto k.** Candidates are the grid values 2..=10, 12, 15, 20, 25, 30, 40, 50 between
//! `√n / 2` and `2√n` (the usual `√n` rule of thumb, widened), capped by `n / 3` and the
//! caller's maximum ([`auto_candidates`]). For each, cluster a sample of at most
//! [`SILHOUETTE_SAMPLE`] papers and score the result by its mean silhouette (Euclidean
//! distance between unit vectors, i.e. a monotone function of cosine). The best-scoring
//! `k` wins, ties to the smaller `k`; the full selection is then clustered with it.
//! Why a window and not 2..50: on sentence embeddings the silhouette falls almost
//! monotonically with `k` (measured on the 51 "emergent" papers of the test index:
//! 0.058 at k = 2, 0.034 at k = 15), so over a wide range it always picks 2 — two
//! groups nobody would name. Inside the window it still separates better from worse `k`. The silhouette is computed
//! here from one precomputed distance matrix shared by all candidates: linfa's
//! `silhouette_score` recomputes (and allocates) every pairwise distance for every `k`,
//! which is O(candidates × n² × dim) instead of O(n² × dim + candidates × n²). A unit test
//! checks that both give the same number.

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use super::Error;
use crate::cancel::Cancel;

/// Selections larger than this get the cheaper k-means schedule.
pub const LARGE: usize = 20_000;

/// Papers scored by silhouette when choosing `k` automatically.
pub const SILHOUETTE_SAMPLE: usize = 1_500;

/// k-means schedule.
#[derive(Debug, Clone, Copy)]
pub struct KMeansConfig {
    /// Independent k-means++ restarts; the lowest-inertia one is kept.
    pub runs: usize,
    /// Iteration cap per restart.
    pub max_iterations: u64,
    /// Convergence: stop when centroids move less than this (L2 over all of them).
    pub tolerance: f32,
}

impl KMeansConfig {
    /// The schedule for `n` papers (see the module doc).
    pub fn for_size(n: usize) -> KMeansConfig {
        if n > LARGE {
            KMeansConfig {
                runs: 2,
                max_iterations: 40,
                tolerance: 1e-3,
            }
        } else {
            KMeansConfig {
                runs: 10,
                max_iterations: 300,
                tolerance: 1e-4,
            }
        }
    }
}

/// The result of clustering `n` vectors.
#[derive(Debug, Clone)]
pub struct Clustering {
    /// Cluster of each row, `0..k`. Some clusters may end up empty.
    pub assignment: Vec<usize>,
    /// `k × dim`.
    pub centroids: Array2<f32>,
    /// With auto k: each candidate `k` and its mean silhouette on the sample.
    pub silhouettes: Vec<(usize, f32)>,
}

impl Clustering {
    pub fn k(&self) -> usize {
        self.centroids.nrows()
    }
}

/// Clusters the rows of `data` into exactly `k` groups.
///
/// # Errors
/// [`Error::TooFewPapers`] when `k` exceeds the number of rows; [`Error::Clustering`] when
/// linfa fails (it should not on finite input).
pub fn kmeans(data: ArrayView2<'_, f32>, k: usize, seed: u64) -> Result<Clustering, Error> {
    kmeans_with(data, k, seed, KMeansConfig::for_size(data.nrows()))
}

fn kmeans_with(
    data: ArrayView2<'_, f32>,
    k: usize,
    seed: u64,
    config: KMeansConfig,
) -> Result<Clustering, Error> {
    let n = data.nrows();
    if k == 0 || k > n {
        return Err(Error::TooFewPapers { k, papers: n });
    }
    let dataset = DatasetBase::from(data);
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(config.runs)
        .max_n_iterations(config.max_iterations)
        .tolerance(config.tolerance)
        .fit(&dataset)
        .map_err(|e| Error::Clustering(Box::new(e)))?;
    let assignment = model.predict(&data).to_vec();
    Ok(Clustering {
        assignment,
        centroids: model.centroids().to_owned(),
        silhouettes: Vec::new(),
    })
}

/// The candidate values of `k` for `n` papers: the grid values between `√n / 2` and
/// `2√n` (at least 2, at most `n / 3` and `max_k`); if the window is empty (large `n`),
/// the top of the grid under `max_k`.
pub fn auto_candidates(n: usize, max_k: usize) -> Vec<usize> {
    const GRID: [usize; 16] = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 50];
    let root = (n as f64).sqrt();
    let lo = ((root / 2.0).ceil() as usize).max(2);
    let hi = ((2.0 * root).floor() as usize).min(n / 3).min(max_k);
    let window: Vec<usize> = GRID.into_iter().filter(|&k| k >= lo && k <= hi).collect();
    if !window.is_empty() || hi < 2 {
        return window;
    }
    // √n / 2 is past the grid: the largest few grid values allowed.
    let allowed: Vec<usize> = GRID.into_iter().filter(|&k| k <= hi).collect();
    allowed[allowed.len().saturating_sub(4)..].to_vec()
}

/// Chooses `k` by silhouette (see the module doc) and clusters all rows with it. With too
/// few rows for any candidate (fewer than 6), everything is one group.
///
/// # Errors
/// As [`kmeans`].
///
/// Checks `cancel` before each candidate's clustering, so an abandoned request stops
/// within one k-means run.
pub fn auto(
    data: ArrayView2<'_, f32>,
    seed: u64,
    max_k: usize,
    cancel: &Cancel,
) -> Result<Clustering, Error> {
    let n = data.nrows();
    let candidates = auto_candidates(n, max_k);
    if candidates.is_empty() {
        return kmeans(data, 1, seed);
    }
    let rows: Vec<usize> = if n > SILHOUETTE_SAMPLE {
        let mut rows = sample(
            &mut Xoshiro256Plus::seed_from_u64(seed),
            n,
            SILHOUETTE_SAMPLE,
        )
        .into_vec();
        rows.sort_unstable();
        rows
    } else {
        (0..n).collect()
    };
    let sample = data.select(Axis(0), &rows);
    let dist = distance_matrix(sample.view());
    // Restarts on the sample are cheap; fewer than the full schedule keeps auto fast.
    let config = KMeansConfig {
        runs: 3,
        ..KMeansConfig::for_size(rows.len())
    };
    let mut silhouettes = Vec::with_capacity(candidates.len());
    for &k in &candidates {
        cancel.check()?;
        let c = kmeans_with(sample.view(), k, seed, config)?;
        silhouettes.push((k, silhouette(&dist, &c.assignment, k)));
    }
    let best = silhouettes
        .iter()
        .fold(None::<(usize, f32)>, |best, &(k, s)| match best {
            Some((_, bs)) if bs >= s => best,
            _ => Some((k, s)),
        })
        .map(|(k, _)| k)
        .expect("candidates is not empty. This is a bug.");
    cancel.check()?;
    let mut c = kmeans(data, best, seed)?;
    c.silhouettes = silhouettes;
    Ok(c)
}

/// Euclidean distances between all rows, `n × n`, row-major.
fn distance_matrix(data: ArrayView2<'_, f32>) -> Vec<f32> {
    let gram = data.dot(&data.t());
    let norms: Vec<f32> = (0..data.nrows()).map(|i| gram[[i, i]]).collect();
    let n = data.nrows();
    let mut d = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            d[i * n + j] = (norms[i] + norms[j] - 2.0 * gram[[i, j]]).max(0.0).sqrt();
        }
    }
    d
}

/// Mean silhouette of `assignment` (clusters `0..k`) over an `n × n` distance matrix.
/// Points in singleton clusters score 0 (as in scikit-learn); one non-empty cluster
/// scores 0.
fn silhouette(dist: &[f32], assignment: &[usize], k: usize) -> f32 {
    let n = assignment.len();
    let mut sizes = vec![0usize; k];
    for &c in assignment {
        sizes[c] += 1;
    }
    if sizes.iter().filter(|&&s| s > 0).count() < 2 {
        return 0.0;
    }
    let mut sums = vec![0f64; k];
    let mut total = 0f64;
    for i in 0..n {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for j in 0..n {
            sums[assignment[j]] += f64::from(dist[i * n + j]);
        }
        let own = assignment[i];
        if sizes[own] <= 1 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let m = a.max(b);
        if m > 0.0 {
            total += (b - a) / m;
        }
    }
    (total / n as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::metrics::SilhouetteScore;
    use ndarray::array;

    fn blobs() -> Array2<f32> {
        array![
            [0.0, 0.0],
            [0.1, 0.0],
            [0.0, 0.2],
            [5.0, 5.0],
            [5.1, 5.0],
            [5.0, 5.3],
            [9.0, 0.0],
            [9.2, 0.1],
            [9.0, 0.4],
        ]
    }

    #[test]
    fn silhouette_matches_linfa() {
        let data = blobs();
        let labels = ndarray::Array1::from(vec![0usize, 0, 1, 1, 1, 2, 2, 2, 0]);
        let ours = silhouette(&distance_matrix(data.view()), labels.as_slice().unwrap(), 3);
        let ds = DatasetBase::new(data.mapv(f64::from), labels);
        let theirs = ds.silhouette_score().unwrap();
        assert!(
            (f64::from(ours) - theirs).abs() < 1e-5,
            "{ours} vs {theirs}"
        );
    }

    #[test]
    fn kmeans_finds_blobs_and_is_deterministic() {
        let data = blobs();
        let a = kmeans(data.view(), 3, 7).unwrap();
        let b = kmeans(data.view(), 3, 7).unwrap();
        assert_eq!(a.assignment, b.assignment);
        assert_eq!(a.centroids, b.centroids);
        let g = &a.assignment;
        assert!(g[0] == g[1] && g[1] == g[2] && g[3] == g[4] && g[6] == g[8]);
        assert!(g[0] != g[3] && g[3] != g[6] && g[0] != g[6]);
    }

    #[test]
    fn auto_picks_three_blobs() {
        let data = blobs();
        let c = auto(data.view(), 1, 10, &Cancel::never()).unwrap();
        assert_eq!(c.k(), 3, "{:?}", c.silhouettes);
    }

    #[test]
    fn auto_candidates_follow_the_square_root_rule() {
        assert_eq!(auto_candidates(9, 10), vec![2, 3]);
        assert_eq!(auto_candidates(51, 100), vec![4, 5, 6, 7, 8, 9, 10, 12]);
        assert_eq!(auto_candidates(118_000, 100), vec![25, 30, 40, 50]);
        assert_eq!(auto_candidates(118_000, 40), vec![20, 25, 30, 40]);
        assert!(auto_candidates(5, 10).is_empty());
    }

    #[test]
    fn k_beyond_rows_is_an_error() {
        assert!(matches!(
            kmeans(blobs().view(), 10, 1),
            Err(Error::TooFewPapers { k: 10, papers: 9 })
        ));
    }
}
