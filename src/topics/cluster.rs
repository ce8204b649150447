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
//! **Auto k.** Candidates are the values of [`K_GRID`] between `√n / 2` (at most 20) and
//! `2√n` (at most [`MAX_AUTO_K`] = 40), capped by `n / 3` and the caller's maximum
//! ([`auto_candidates`]). For each, cluster a sample of at most [`SILHOUETTE_SAMPLE`]
//! papers and score the result by its mean silhouette (Euclidean distance between unit
//! vectors, i.e. a monotone function of cosine). The chosen `k` is the **largest** whose
//! silhouette is within [`TOLERANCE`] (10%) of the best, or within the best's standard
//! error where that is wider (few papers: the "one-standard-error rule" of model
//! selection, here leaning to the finer split) ([`choose_k`]); the full selection is then
//! clustered with it.
//! Why the largest and not the best: on sentence embeddings the silhouette is low
//! (0.02-0.06) and nearly flat in `k`, its differences within the window are sampling
//! noise, and taking the maximum picked the bottom of the window: 4 groups for the 51
//! "emergent" papers of the test index, merging every LLM/agent paper. Merging two themes
//! a person would tell apart costs more than splitting one theme in two (the reader sees
//! two neighbouring labels), so ties go to the finer split; a `k` that scores clearly
//! worse (a real drop in separation) is still not taken. Why a window at all: over 2..100
//! the silhouette falls almost monotonically (0.058 at k = 2, 0.034 at k = 15 on those 51
//! papers), so the window is what sets the scale: about `√n` topics (the usual rule of
//! thumb, widened), never more than 40, the most a legend or list can show. The silhouette is computed
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

/// The grid `k` is chosen from: fine steps where one topic more or less matters, coarser
/// ones beyond.
pub const K_GRID: [usize; 19] = [
    2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 30, 35, 40,
];

/// How far below the best mean silhouette a larger `k` may score and still be chosen,
/// as a fraction of the best, at least (see the module doc).
pub const TOLERANCE: f32 = 0.1;

/// The most topics `--k auto` makes: a legend, a list or a map of more than about 40
/// groups is more than a person scans.
pub const MAX_AUTO_K: usize = 40;

/// The candidate values of `k` for `n` papers: the grid values between `√n / 2` (at most
/// 20) and `2√n` (at most [`MAX_AUTO_K`], `n / 3` and `max_k`); if that is empty (a small
/// `max_k`), the largest few grid values under the caps.
pub fn auto_candidates(n: usize, max_k: usize) -> Vec<usize> {
    let root = (n as f64).sqrt();
    let lo = ((root / 2.0).ceil() as usize).clamp(2, 20);
    let hi = ((2.0 * root).floor() as usize)
        .min(MAX_AUTO_K)
        .min(n / 3)
        .min(max_k);
    let window: Vec<usize> = K_GRID.into_iter().filter(|&k| k >= lo && k <= hi).collect();
    if !window.is_empty() || hi < 2 {
        return window;
    }
    let allowed: Vec<usize> = K_GRID.into_iter().filter(|&k| k <= hi).collect();
    allowed[allowed.len().saturating_sub(4)..].to_vec()
}

/// The `k` chosen from `(k, mean silhouette)` pairs: the largest whose silhouette is
/// within [`TOLERANCE`] of the best, or within `noise` (the best's standard error) if that
/// is wider (see the module doc).
pub fn choose_k(silhouettes: &[(usize, f32)], noise: f32) -> Option<usize> {
    let floor = floor(silhouettes, noise);
    silhouettes
        .iter()
        .filter(|&&(_, s)| s >= floor)
        .map(|&(k, _)| k)
        .max()
}

/// Whether `k`'s silhouette is within the tolerance [`choose_k`] allows of the best.
fn acceptable(silhouettes: &[(usize, f32)], noise: f32, k: usize) -> bool {
    let floor = floor(silhouettes, noise);
    silhouettes.iter().any(|&(c, s)| c == k && s >= floor)
}

/// The least silhouette a chosen `k` may have: the best's, less [`TOLERANCE`] of it or
/// `noise`, whichever is wider.
fn floor(silhouettes: &[(usize, f32)], noise: f32) -> f32 {
    let best = silhouettes
        .iter()
        .map(|&(_, s)| s)
        .fold(f32::NEG_INFINITY, f32::max);
    best - (TOLERANCE * best.abs()).max(noise)
}

/// Chooses `k` by silhouette (see the module doc) and clusters all rows with it. With too
/// few rows for any candidate (fewer than 6), everything is one group.
///
/// `prefer` (the previous run's topic count, when a history is kept) is also tried, and
/// chosen whenever its silhouette is as acceptable as the chosen k's (within the same
/// tolerance of the best): a collection that grew a little keeps its number of topics,
/// so fewer topics dissolve and reappear under new ids.
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
    prefer: Option<usize>,
    cancel: &Cancel,
) -> Result<Clustering, Error> {
    let n = data.nrows();
    let mut candidates = auto_candidates(n, max_k);
    if let Some(p) = prefer.filter(|&p| p >= 2 && p <= max_k.min(n / 3)) {
        if !candidates.is_empty() && !candidates.contains(&p) {
            candidates.push(p);
            candidates.sort_unstable();
        }
    }
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
    let mut errors = Vec::with_capacity(candidates.len());
    for &k in &candidates {
        cancel.check()?;
        let c = kmeans_with(sample.view(), k, seed, config)?;
        let (mean, error) = silhouette_with_error(&dist, &c.assignment, k);
        silhouettes.push((k, mean));
        errors.push(error);
    }
    // The standard error of the best-scoring k.
    let noise = silhouettes
        .iter()
        .zip(&errors)
        .max_by(|a, b| a.0 .1.total_cmp(&b.0 .1))
        .map_or(0.0, |(_, &e)| e);
    let best = choose_k(&silhouettes, noise).expect("candidates is not empty. This is a bug.");
    let best = match prefer {
        Some(p) if p != best && acceptable(&silhouettes, noise, p) => p,
        _ => best,
    };
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
#[cfg(test)]
fn silhouette(dist: &[f32], assignment: &[usize], k: usize) -> f32 {
    silhouette_with_error(dist, assignment, k).0
}

/// Mean silhouette and its standard error (standard deviation of the points' silhouettes
/// over `√n`).
fn silhouette_with_error(dist: &[f32], assignment: &[usize], k: usize) -> (f32, f32) {
    let n = assignment.len();
    let mut sizes = vec![0usize; k];
    for &c in assignment {
        sizes[c] += 1;
    }
    if sizes.iter().filter(|&&s| s > 0).count() < 2 {
        return (0.0, 0.0);
    }
    let mut sums = vec![0f64; k];
    let mut total = 0f64;
    let mut squares = 0f64;
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
            squares += ((b - a) / m).powi(2);
        }
    }
    let nf = n as f64;
    let mean = total / nf;
    let var = (squares / nf - mean * mean).max(0.0);
    (mean as f32, (var / nf).sqrt() as f32)
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
        let c = auto(data.view(), 1, 10, None, &Cancel::never()).unwrap();
        assert_eq!(c.k(), 3, "{:?}", c.silhouettes);
    }

    #[test]
    fn auto_candidates_follow_the_square_root_rule() {
        assert_eq!(auto_candidates(9, 10), vec![2, 3]);
        assert_eq!(auto_candidates(24, 100), vec![3, 4, 5, 6, 7, 8]);
        assert_eq!(auto_candidates(51, 100), vec![4, 5, 6, 7, 8, 9, 10, 12, 14]);
        assert_eq!(auto_candidates(2_836, 100), vec![20, 23, 26, 30, 35, 40]);
        assert_eq!(auto_candidates(118_000, 100), vec![20, 23, 26, 30, 35, 40]);
        assert_eq!(auto_candidates(118_000, 25), vec![20, 23]);
        assert_eq!(auto_candidates(118_000, 12), vec![8, 9, 10, 12]);
        assert!(auto_candidates(5, 10).is_empty());
    }

    #[test]
    fn flat_silhouettes_choose_the_finer_split_and_a_clear_best_wins() {
        // Flat within noise (the emergent papers): the largest k, not the smallest.
        let flat = [(4, 0.058), (5, 0.055), (6, 0.056), (7, 0.053)];
        assert_eq!(choose_k(&flat, 0.0), Some(7));
        // A clear best: a larger k that scores much worse is not taken.
        let peak = [(2, 0.30), (3, 0.62), (4, 0.41), (5, 0.35)];
        assert_eq!(choose_k(&peak, 0.0), Some(3));
        // Unless the scores are that noisy (few papers).
        assert_eq!(choose_k(&peak, 0.3), Some(5));
        assert_eq!(choose_k(&[], 0.0), None);
    }

    #[test]
    fn k_beyond_rows_is_an_error() {
        assert!(matches!(
            kmeans(blobs().view(), 10, 1),
            Err(Error::TooFewPapers { k: 10, papers: 9 })
        ));
    }
}
