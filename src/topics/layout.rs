//! A 2-D map of a [`TopicsReport`] in which topics stand apart: each drawn paper gets a
//! point in `0..=1 × 0..=1`, each topic a centre.
//!
//! **Projection.** Barnes-Hut t-SNE (the `bhtsne` crate) on the papers, with one change to the
//! input distances: two papers of different topics are [`TOPIC_GAP`] times the median
//! nearest-neighbour distance further apart than their vectors say ("supervised" t-SNE).
//! Plain t-SNE keeps each paper's neighbours near it (trustworthiness well above PCA's),
//! but k-means topics of sentence embeddings touch each other, so their points interleave
//! at the borders; the gap pulls each topic's points together without moving a paper away
//! from the papers it resembles inside its topic. PCA of the topic centroids (the earlier
//! map) is linear: it keeps the two directions in which topics differ most and throws the
//! other 382 away, so on 20 or more topics most of them land on top of each other.
//! [`quality`] measures both properties; the figures are in the README.
//!
//! **Speed.** Each paper's nearest neighbours are found exactly from one `n × n` product of
//! the vectors (fast matrix code; no tree search in 384 dimensions) and handed to
//! `bhtsne` (`barnes_hut_with_neighbors`), which runs [`EPOCHS`] iterations of Barnes-Hut
//! t-SNE at perplexity [`PERPLEXITY`]. 2,836 papers take 0.75-0.93 s on two busy cores
//! (README). At most [`MAX_POINTS`]
//! papers are drawn: every n-th member of each topic, so proportions hold.
//!
//! **Robustness.** t-SNE cannot be squeezed by one far point as PCA can (it models
//! neighbourhoods, not distances), and the final scaling to `0..=1` maps the 1st-99th
//! percentile box of the points to the unit square and clamps the few outside it, so a
//! stray paper never shrinks the rest of the map into a corner. Both axes get the same
//! scale, so the map's shape is not distorted.
//!
//! **Determinism.** The subsample is by stride, the neighbours are exact (ties by index)
//! and t-SNE starts from a fixed layout (two seeded random projections, scaled small), so
//! the same report and index give the same map up to floating-point summation order.

use super::Collection;
use super::{Error, TopicsReport};
use crate::paper::DocId;
use linfa::prelude::*;
use linfa_reduction::Pca;
use ndarray::{Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;

/// Papers drawn at most.
pub const MAX_POINTS: usize = 3_000;

/// t-SNE iterations (the first quarter with early exaggeration).
pub const EPOCHS: usize = 300;

/// t-SNE perplexity (the effective number of neighbours each paper keeps near it).
pub const PERPLEXITY: f32 = 15.0;

/// Barnes-Hut accuracy: larger is faster and coarser (0.5 is the usual default).
pub const THETA: f32 = 0.7;

/// Extra distance between papers of different topics, in units of the median distance of
/// a paper to its nearest neighbour.
pub const TOPIC_GAP: f32 = 1.0;

/// One drawn paper.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapPoint {
    pub doc: DocId,
    /// Position of the paper's topic in [`TopicsReport::topics`] (report order).
    pub topic: usize,
    /// `0..=1`.
    pub x: f32,
    /// `0..=1`.
    pub y: f32,
}

/// The map of a report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicMap {
    /// The drawn papers, topic by topic in report order, each topic's in its `papers` order.
    pub points: Vec<MapPoint>,
    /// One centre per topic of the report, in report order: the median of its points
    /// (`(0.5, 0.5)` for a topic with none drawn).
    pub centres: Vec<(f32, f32)>,
}

/// The map of `report`, whose papers must come from `index`.
///
/// # Errors
/// [`Error::Projection`] if PCA fails on the vectors (it should not on finite input).
pub fn map(report: &TopicsReport, index: &dyn Collection) -> Result<TopicMap, Error> {
    let total: usize = report.topics.iter().map(|t| t.size).sum();
    let stride = total.div_ceil(MAX_POINTS).max(1);
    let mut docs = Vec::new();
    let mut topics = Vec::new();
    for (ti, t) in report.topics.iter().enumerate() {
        for id in t.papers.iter().step_by(stride) {
            if let Some(d) = index.doc_id(id) {
                docs.push(d);
                topics.push(ti);
            }
        }
    }
    let data = super::matrix(index, &docs);
    let xy = project(data.view(), &topics)?;
    let points: Vec<MapPoint> = docs
        .iter()
        .zip(&topics)
        .zip(&xy)
        .map(|((&doc, &topic), &(x, y))| MapPoint { doc, topic, x, y })
        .collect();
    let centres = centres(&points, report.topics.len());
    Ok(TopicMap { points, centres })
}

/// 2-D positions in `0..=1` of the rows of `data` (unit vectors), `topic[i]` the topic of
/// row `i` (see the module doc).
///
/// # Errors
/// None today; the `Result` leaves room for projections that can fail.
pub fn project(data: ArrayView2<'_, f32>, topic: &[usize]) -> Result<Vec<(f32, f32)>, Error> {
    let n = data.nrows();
    match n {
        0 => return Ok(Vec::new()),
        1 => return Ok(vec![(0.5, 0.5)]),
        2 => return Ok(vec![(0.0, 0.5), (1.0, 0.5)]),
        _ => {}
    }
    let perplexity = (((n - 1) / 3) as f32).min(PERPLEXITY);
    let k = ((3.0 * perplexity) as usize).clamp(1, n - 1);
    let neighbours = neighbours(data, topic, k);
    let ids: Vec<usize> = (0..n).collect();
    let mut tsne: bhtsne::tSNE<f32, usize> = bhtsne::tSNE::new(&ids);
    tsne.perplexity(perplexity)
        .epochs(EPOCHS)
        .stop_lying_epoch(EPOCHS / 4)
        .momentum_switch_epoch(EPOCHS / 4)
        .initial_embedding(initial(data));
    tsne.barnes_hut_with_neighbors(THETA, &neighbours);
    let y = tsne.embedding();
    let xy: Vec<(f32, f32)> = y.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    Ok(normalise(&xy))
}

/// Each row's `k` nearest rows by Euclidean distance plus the topic gap (see the module
/// doc), nearest first: exact, from one `n × n` product.
fn neighbours(
    data: ArrayView2<'_, f32>,
    topic: &[usize],
    k: usize,
) -> Vec<Vec<bhtsne::Neighbor<f32>>> {
    let n = data.nrows();
    let gram = data.dot(&data.t());
    let norms: Vec<f32> = (0..n).map(|i| gram[[i, i]]).collect();
    let dist = |i: usize, j: usize| (norms[i] + norms[j] - 2.0 * gram[[i, j]]).max(0.0).sqrt();
    let mut nearest: Vec<f32> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i)
                .map(|j| dist(i, j))
                .fold(f32::INFINITY, f32::min)
        })
        .collect();
    nearest.sort_by(f32::total_cmp);
    let gap = TOPIC_GAP * nearest[n / 2].max(1e-6);
    let by = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let mut row: Vec<(f32, usize)> = Vec::with_capacity(n);
    (0..n)
        .map(|i| {
            row.clear();
            row.extend((0..n).filter(|&j| j != i).map(|j| {
                let d = dist(i, j);
                (if topic[i] == topic[j] { d } else { d + gap }, j)
            }));
            row.select_nth_unstable_by(k - 1, by);
            row.truncate(k);
            row.sort_by(by);
            row.iter()
                .map(|&(distance, index)| bhtsne::Neighbor { index, distance })
                .collect()
        })
        .collect()
}

/// A fixed starting layout: two seeded random projections of the rows, scaled to a small
/// spread (as t-SNE implementations start), so runs are reproducible.
fn initial(data: ArrayView2<'_, f32>) -> Vec<f32> {
    let mut rng = Xoshiro256Plus::seed_from_u64(0x6d_6170);
    let r = Array2::from_shape_fn((data.ncols(), 2), |_| rng.gen_range(-1.0f32..1.0));
    let y = data.dot(&r);
    let sd = y.column(0).std(0.0).max(1e-12);
    y.iter().map(|v| v / sd * 1e-4).collect()
}

/// Scales points into `0..=1`: the 1st-99th percentile box becomes the unit square (same
/// scale on both axes, centred), points outside it are clamped.
pub fn normalise(xy: &[(f32, f32)]) -> Vec<(f32, f32)> {
    if xy.is_empty() {
        return Vec::new();
    }
    let pct = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        let lo = v[(v.len() - 1) / 100];
        let hi = v[v.len() - 1 - (v.len() - 1) / 100];
        (lo, hi)
    };
    let (x0, x1) = pct(xy.iter().map(|p| p.0).collect());
    let (y0, y1) = pct(xy.iter().map(|p| p.1).collect());
    let span = (x1 - x0).max(y1 - y0);
    // Also catches NaN.
    if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return vec![(0.5, 0.5); xy.len()];
    }
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    xy.iter()
        .map(|&(x, y)| {
            (
                ((x - cx) / span + 0.5).clamp(0.0, 1.0),
                ((y - cy) / span + 0.5).clamp(0.0, 1.0),
            )
        })
        .collect()
}

/// The median point of each of `k` topics (`(0.5, 0.5)` for an empty one).
fn centres(points: &[MapPoint], k: usize) -> Vec<(f32, f32)> {
    let mut xs: Vec<Vec<f32>> = vec![Vec::new(); k];
    let mut ys: Vec<Vec<f32>> = vec![Vec::new(); k];
    for p in points {
        xs[p.topic].push(p.x);
        ys[p.topic].push(p.y);
    }
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.5)
    };
    xs.into_iter()
        .zip(ys)
        .map(|(x, y)| (median(x), median(y)))
        .collect()
}

/// How well a map shows the data: see [`quality`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Trustworthiness at `k` (Venna & Kaski; scikit-learn's `trustworthiness`): 1 when
    /// every paper's `k` nearest neighbours on the map are among its `k` nearest in the
    /// vector space, lower when the map invents neighbours. PCA-like random maps score
    /// about 0.5.
    pub trustworthiness: f64,
    /// Share of each paper's `k` nearest neighbours on the map that are of its topic
    /// (1: topics never interleave).
    pub topic_agreement: f64,
    /// Share of papers nearer to their own topic's centre than to any other (1: no topic
    /// covers another's middle).
    pub own_centre: f64,
}

/// Scores `xy` (the map of the rows of `data`, unit vectors, with `topic[i]` the topic of
/// row `i` and `centres` the topic centres) at neighbourhood size `k`. `O(n²)`: meant for
/// measurement and tests, not per request.
pub fn quality(
    data: ArrayView2<'_, f32>,
    xy: &[(f32, f32)],
    topic: &[usize],
    centres: &[(f32, f32)],
    k: usize,
) -> Quality {
    let n = data.nrows();
    assert!(k < n / 2, "k must be below n / 2. This is a bug.");
    let gram = data.dot(&data.t());
    // Ranks in the original space: rank[i][j] = position of j among i's neighbours (1 = nearest).
    let mut t_sum = 0f64;
    let mut agree = 0usize;
    let mut rank = vec![0usize; n];
    for i in 0..n {
        let mut order: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        order.sort_by(|&a, &b| gram[[i, b]].total_cmp(&gram[[i, a]]).then(a.cmp(&b)));
        for (r, &j) in order.iter().enumerate() {
            rank[j] = r + 1;
        }
        let d2 = |j: usize| {
            let (dx, dy) = (xy[i].0 - xy[j].0, xy[i].1 - xy[j].1);
            dx * dx + dy * dy
        };
        let mut low: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        low.sort_by(|&a, &b| d2(a).total_cmp(&d2(b)).then(a.cmp(&b)));
        for &j in &low[..k] {
            if rank[j] > k {
                t_sum += (rank[j] - k) as f64;
            }
            if topic[j] == topic[i] {
                agree += 1;
            }
        }
    }
    let (kf, nf) = (k as f64, n as f64);
    let trustworthiness = 1.0 - 2.0 / (nf * kf * (2.0 * nf - 3.0 * kf - 1.0)) * t_sum;
    let own = (0..n)
        .filter(|&i| {
            let d = |c: (f32, f32)| (xy[i].0 - c.0).powi(2) + (xy[i].1 - c.1).powi(2);
            let mine = d(centres[topic[i]]);
            centres
                .iter()
                .enumerate()
                .all(|(t, &c)| t == topic[i] || d(c) >= mine)
        })
        .count();
    Quality {
        trustworthiness,
        topic_agreement: agree as f64 / (nf * kf),
        own_centre: own as f64 / nf,
    }
}

/// The earlier map, kept to measure against: PCA fitted on the topic centroids, papers
/// projected onto it, scaled to `0..=1` by min and max.
///
/// # Errors
/// [`Error::Projection`] if PCA fails.
pub fn pca_of_centroids(
    data: ArrayView2<'_, f32>,
    topic: &[usize],
    k: usize,
) -> Result<Vec<(f32, f32)>, Error> {
    let dim = data.ncols();
    let mut cent = Array2::<f64>::zeros((k, dim));
    let mut count = vec![0f64; k];
    for (row, &t) in data.rows().into_iter().zip(topic) {
        let mut c = cent.row_mut(t);
        c += &row.mapv(f64::from);
        count[t] += 1.0;
    }
    for (mut c, n) in cent.axis_iter_mut(Axis(0)).zip(&count) {
        c /= n.max(1.0);
    }
    let model = Pca::params(2)
        .fit(&DatasetBase::from(cent))
        .map_err(|e| Error::Projection(Box::new(e)))?;
    let p = model.predict(&DatasetBase::from(data.mapv(f64::from)));
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for r in p.rows() {
        for a in 0..2 {
            lo[a] = lo[a].min(r[a]);
            hi[a] = hi[a].max(r[a]);
        }
    }
    Ok(p.rows()
        .into_iter()
        .map(|r| {
            let s = |a: usize| ((r[a] - lo[a]) / (hi[a] - lo[a]).max(1e-12)) as f32;
            (s(0), s(1))
        })
        .collect())
}

/// The centre (median) of each topic's points.
pub fn centres_of(xy: &[(f32, f32)], topic: &[usize], k: usize) -> Vec<(f32, f32)> {
    let points: Vec<MapPoint> = xy
        .iter()
        .zip(topic)
        .map(|(&(x, y), &t)| MapPoint {
            doc: 0,
            topic: t,
            x,
            y,
        })
        .collect();
    centres(&points, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `k` clusters of `per` unit vectors in 64 dimensions: each a random centre plus
    /// noise, so clusters overlap a little in every direction and PCA of the centroids
    /// cannot show them all apart.
    fn clusters(k: usize, per: usize, noise: f32, seed: u64) -> (Array2<f32>, Vec<usize>) {
        let dim = 64;
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..k)
            .map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();
        let mut data = Array2::zeros((k * per, dim));
        let mut topic = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for i in 0..per {
                let mut row = data.row_mut(c * per + i);
                for (x, &m) in row.iter_mut().zip(centre) {
                    *x = m + noise * rng.gen_range(-1.0f32..1.0);
                }
                let norm = row.dot(&row).sqrt();
                row /= norm;
                topic.push(c);
            }
        }
        (data, topic)
    }

    #[test]
    fn separated_clusters_stay_apart_and_beat_pca() {
        let k = 12;
        let (data, topic) = clusters(k, 40, 0.9, 3);
        let xy = project(data.view(), &topic).unwrap();
        assert!(xy
            .iter()
            .all(|&(x, y)| (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)));
        let q = quality(data.view(), &xy, &topic, &centres_of(&xy, &topic, k), 10);
        let base = pca_of_centroids(data.view(), &topic, k).unwrap();
        let qb = quality(
            data.view(),
            &base,
            &topic,
            &centres_of(&base, &topic, k),
            10,
        );
        assert!(q.topic_agreement > 0.95, "{q:?}");
        assert!(q.own_centre > 0.95, "{q:?}");
        assert!(
            q.trustworthiness > qb.trustworthiness + 0.05,
            "{q:?} vs PCA {qb:?}"
        );
        assert!(
            q.topic_agreement > qb.topic_agreement,
            "{q:?} vs PCA {qb:?}"
        );
    }

    #[test]
    fn one_outlier_does_not_squeeze_the_map() {
        let (mut data, topic) = clusters(4, 30, 0.5, 5);
        // The last paper points the opposite way of everything else.
        let mean = data.mean_axis(Axis(0)).unwrap();
        let far = -&mean / mean.dot(&mean).sqrt();
        data.row_mut(119).assign(&far);
        let xy = project(data.view(), &topic).unwrap();
        let xs: Vec<f32> = xy.iter().map(|p| p.0).collect();
        let ys: Vec<f32> = xy.iter().map(|p| p.1).collect();
        let spread = |v: &[f32]| {
            v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min)
        };
        // Without the outlier the rest still fill most of the square.
        let (rx, ry) = (spread(&xs[..119]), spread(&ys[..119]));
        assert!(rx.max(ry) > 0.8, "{rx} {ry}");
    }

    #[test]
    fn normalise_clamps_outliers_into_the_unit_square() {
        let mut xy: Vec<(f32, f32)> = (0..200).map(|i| (i as f32, (i % 7) as f32)).collect();
        xy.push((1e6, -1e6));
        let out = normalise(&xy);
        assert_eq!(out[200], (1.0, 0.0));
        assert!(out[199].0 > 0.9, "{:?}", out[199]);
        assert!(out
            .iter()
            .all(|p| (0.0..=1.0).contains(&p.0) && (0.0..=1.0).contains(&p.1)));
    }
}
