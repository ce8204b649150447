//! One self-contained HTML page for a [`TopicsReport`]: a 2-D map of the papers coloured
//! by topic (hover shows the title) and the topic list with labels, terms and
//! representative titles. No scripts or styles are fetched: it opens offline.
//!
//! **Projection.** PCA (linfa-reduction) to two dimensions, fitted on the topic
//! centroids when there are at least three topics, else on the papers. Fitting on
//! centroids picks the two directions along which the *topics* differ most, so groups
//! land apart on the map; fitting on all papers mostly shows the spread inside the
//! biggest topic. PCA is linear and instant at any size, unlike t-SNE, so the page can be
//! served per request.
//!
//! [`pca_map`] gives the same projection as data (a [`TopicMap`]) for the web app's topics
//! page, which draws it from a template.
//!
//! **Size.** At most [`MAX_POINTS`] papers are drawn (every n-th member of each topic,
//! so proportions hold); the topic list always covers every topic.

use super::{Error, TopicsReport};
use crate::index::Index;
use crate::paper::DocId;
use linfa::prelude::*;
use linfa_reduction::Pca;
use ndarray::{Array2, Axis};
use std::fmt::Write;

/// One paper on a [`TopicMap`]: `x`, `y` in `0..=1`, `topic` the [`super::Topic::id`].
///
/// Same shape as `layout::MapPoint`, which replaces it (and [`pca_map`]) once the topic
/// layout lands; the web page is written against this shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapPoint {
    pub doc: DocId,
    pub topic: usize,
    pub x: f32,
    pub y: f32,
}

/// The papers of a report placed in the unit square, and each topic's centre
/// (`centres[topic id]`, the mean of its drawn points).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopicMap {
    pub points: Vec<MapPoint>,
    pub centres: Vec<(f32, f32)>,
}

/// The map [`render`] draws (PCA, see the module doc), in the unit square: at most
/// [`MAX_POINTS`] papers, every n-th of each topic.
///
/// # Errors
/// [`Error::Projection`] if PCA fails.
pub fn pca_map(report: &TopicsReport, index: &Index) -> Result<TopicMap, Error> {
    let total: usize = report.topics.iter().map(|t| t.size).sum();
    let stride = total.div_ceil(MAX_POINTS).max(1);
    let mut placed: Vec<(usize, DocId)> = Vec::new();
    for (ti, t) in report.topics.iter().enumerate() {
        for id in t.papers.iter().step_by(stride) {
            if let Some(d) = index.doc_id(id) {
                placed.push((ti, d));
            }
        }
    }
    let xy = project(report, index, &placed)?;
    let k = report.topics.iter().map(|t| t.id + 1).max().unwrap_or(0);
    let mut sums = vec![(0f32, 0f32, 0f32); k];
    let points: Vec<MapPoint> = placed
        .iter()
        .zip(&xy)
        .map(|(&(ti, doc), &(x, y))| {
            let topic = report.topics[ti].id;
            let (x, y) = (
                ((x - PAD) / (W - 2.0 * PAD)).clamp(0.0, 1.0) as f32,
                ((y - PAD) / (H - 2.0 * PAD)).clamp(0.0, 1.0) as f32,
            );
            let s = &mut sums[topic];
            *s = (s.0 + x, s.1 + y, s.2 + 1.0);
            MapPoint { doc, topic, x, y }
        })
        .collect();
    let centres = sums
        .into_iter()
        .map(|(x, y, n)| match n > 0.0 {
            true => (x / n, y / n),
            false => (0.5, 0.5),
        })
        .collect();
    Ok(TopicMap { points, centres })
}

/// Papers drawn on the map at most.
pub const MAX_POINTS: usize = 5_000;

const W: f64 = 860.0;
const H: f64 = 640.0;
const PAD: f64 = 16.0;

/// The page for `report`, whose papers must come from `index`.
///
/// # Errors
/// [`Error::Projection`] if PCA fails on the vectors (it should not on finite input).
pub fn render(report: &TopicsReport, index: &Index) -> Result<String, Error> {
    let total: usize = report.topics.iter().map(|t| t.size).sum();
    let stride = total.div_ceil(MAX_POINTS).max(1);
    // (topic position in the list, doc) of each drawn paper.
    let mut points: Vec<(usize, DocId)> = Vec::new();
    for (ti, t) in report.topics.iter().enumerate() {
        for id in t.papers.iter().step_by(stride) {
            if let Some(d) = index.doc_id(id) {
                points.push((ti, d));
            }
        }
    }
    let xy = project(report, index, &points)?;

    let mut h = String::with_capacity(200 + points.len() * 200);
    let title = match &report.selection.query {
        Some(q) => format!("paperscope topics: {}", esc(q)),
        None => "paperscope topics: whole collection".to_string(),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
body{{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222}}\
.wrap{{display:flex;gap:20px;align-items:flex-start}}\
svg{{border:1px solid #ccc;background:#fcfcfc;flex:none}}\
circle{{stroke:#fff;stroke-width:.5;opacity:.85}}circle:hover{{stroke:#000;stroke-width:2;opacity:1}}\
#tip{{position:fixed;pointer-events:none;background:#222;color:#fff;padding:4px 8px;border-radius:4px;max-width:420px;display:none;font-size:13px}}\
.topics{{max-height:{H}px;overflow:auto;flex:1}}.t{{margin:0 0 12px}}.sw{{display:inline-block;width:12px;height:12px;border-radius:6px;margin-right:6px;vertical-align:middle}}\
.terms{{color:#555;font-size:12px}}ul{{margin:2px 0 0;padding-left:20px}}h1{{font-size:20px;margin:0 0 4px}}.meta{{color:#666;margin-bottom:12px}}\
</style></head><body><h1>{title}</h1><div class=\"meta\">{}</div><div class=\"wrap\">",
        esc(&meta_line(report, points.len(), total)),
    );
    let _ = write!(
        h,
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">"
    );
    for (&(ti, d), &(x, y)) in points.iter().zip(&xy) {
        let t = &report.topics[ti];
        let p = index.paper(d);
        let tip = format!("{} — #{} {}", p.title, t.id, t.label);
        let _ = write!(
            h,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{}\" data-t=\"{}\"><title>{}</title></circle>",
            colour(t.id),
            esc(&tip),
            esc(&tip)
        );
    }
    h.push_str("</svg><div class=\"topics\">");
    for t in &report.topics {
        let _ = write!(
            h,
            "<div class=\"t\"><span class=\"sw\" style=\"background:{}\"></span><b>#{} {}</b> — {} papers{}<div class=\"terms\">{}</div><ul>",
            colour(t.id),
            t.id,
            esc(&t.label),
            t.size,
            t.growth.map(|g| format!(", growth {g:.2}")).unwrap_or_default(),
            esc(&t.terms.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(" · ")),
        );
        for id in &t.representative {
            if let Some(d) = index.doc_id(id) {
                let p = index.paper(d);
                let _ = write!(
                    h,
                    "<li>{} <span class=\"terms\">({}{})</span></li>",
                    esc(&p.title),
                    esc(&id.0),
                    p.date
                        .as_deref()
                        .map(|d| format!(", {d}"))
                        .unwrap_or_default()
                );
            }
        }
        h.push_str("</ul></div>");
    }
    h.push_str(
        "</div></div><div id=\"tip\"></div><script>\
const tip=document.getElementById('tip');\
document.querySelectorAll('circle').forEach(c=>{\
c.addEventListener('mousemove',e=>{tip.textContent=c.dataset.t;tip.style.display='block';\
tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';});\
c.addEventListener('mouseleave',()=>{tip.style.display='none';});});\
</script></body></html>\n",
    );
    Ok(h)
}

fn meta_line(report: &TopicsReport, drawn: usize, total: usize) -> String {
    let s = &report.selection;
    let mut m = format!(
        "{} topics over {} of {} papers",
        report.topics.len(),
        s.papers,
        s.collection
    );
    if s.query.is_some() {
        let _ = write!(
            m,
            " ({} lexical, {} semantic, {} both)",
            s.lexical, s.semantic, s.both
        );
    }
    if drawn < total {
        let _ = write!(m, "; map shows {drawn} of them");
    }
    m.push_str("; map: PCA of the topic centroids");
    m
}

/// Screen coordinates of each point (see the module doc for the projection).
fn project(
    report: &TopicsReport,
    index: &Index,
    points: &[(usize, DocId)],
) -> Result<Vec<(f64, f64)>, Error> {
    let dim = index.manifest().dim;
    let mut data = Array2::<f64>::zeros((points.len(), dim));
    for (mut row, &(_, d)) in data.rows_mut().into_iter().zip(points) {
        row.assign(&ndarray::ArrayView1::from(index.vector(d)).mapv(f64::from));
    }
    if points.len() < 3 {
        return Ok(points
            .iter()
            .enumerate()
            .map(|(i, _)| (W * (i as f64 + 1.0) / (points.len() as f64 + 1.0), H / 2.0))
            .collect());
    }
    let k = report.topics.len();
    let fit_on = if k >= 3 {
        let mut c = Array2::<f64>::zeros((k, dim));
        let mut n = vec![0f64; k];
        for (row, &(ti, _)) in data.rows().into_iter().zip(points) {
            let mut cr = c.row_mut(ti);
            cr += &row;
            n[ti] += 1.0;
        }
        for (mut cr, &n) in c.axis_iter_mut(Axis(0)).zip(&n) {
            if n > 0.0 {
                cr /= n;
            }
        }
        c
    } else {
        data.clone()
    };
    let pca = Pca::params(2)
        .fit(&DatasetBase::from(fit_on))
        .map_err(|e| Error::Projection(Box::new(e)))?;
    let xy: Array2<f64> = pca.predict(&data);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for r in xy.rows() {
        x0 = x0.min(r[0]);
        x1 = x1.max(r[0]);
        y0 = y0.min(r[1]);
        y1 = y1.max(r[1]);
    }
    let sx = (W - 2.0 * PAD) / (x1 - x0).max(1e-9);
    let sy = (H - 2.0 * PAD) / (y1 - y0).max(1e-9);
    Ok(xy
        .rows()
        .into_iter()
        .map(|r| (PAD + (r[0] - x0) * sx, PAD + (r[1] - y0) * sy))
        .collect())
}

/// A distinct colour per topic id: 12 hand-picked, then golden-angle hues.
pub fn colour(id: usize) -> String {
    const BASE: [&str; 12] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf", "#393b79", "#ad494a",
    ];
    match BASE.get(id) {
        Some(c) => (*c).to_string(),
        None => format!("hsl({:.0},60%,45%)", (id as f64 * 137.508) % 360.0),
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
