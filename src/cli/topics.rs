//! `paperscope topics` and `paperscope eval clustering`: build the parameters, call the
//! library once, format. Kept beside `mod.rs` so the topic commands' formatting lives in
//! one place.

use super::args::{ClusteringArgs, TextArg, TopicsArgs};
use super::{load_model, open_engine};
use crate::cancel::Cancel;
use crate::embed::Encoder;
use crate::eval::clustering::{self, TextField};
use crate::filter::Filter;
use crate::store::postgres_urls;
use crate::topics::{self, Collection, History, Limits, Status, TopicParams, TopicsReport};
use anyhow::{Context, Result};
use ndarray::Array2;
use std::io::Write;
use std::time::Instant;

pub(super) fn topics(a: TopicsArgs) -> Result<()> {
    let start = Instant::now();
    if let Some(urls) = postgres_urls(&a.index) {
        return super::pg::topics(&urls, a);
    }
    let engine = open_engine(&a.index)?;
    let encoder = load_model(&a.model)?;
    let params = params(&a);
    let history = (!a.no_history).then(|| History::for_index(&a.index, &params));
    let previous = history.as_ref().map(History::load).transpose()?.flatten();
    let params = TopicParams {
        prefer_k: previous.as_ref().map(|p| p.topics.len()),
        ..params
    };
    let mut report = topics::run(&engine, &params, &encoder, &Cancel::never())?;
    if let Some(history) = history {
        let snapshot = history.apply(&mut report, previous.as_ref(), engine.index().generation());
        // A read-only index still gets its topics; only the ids' continuity is lost.
        if let Err(e) = history.save(&snapshot) {
            tracing::warn!("{e}; topic ids will not be continued next time");
        }
    }
    write_report(&a, &report, engine.index())?;
    tracing::info!("topics: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// The run's parameters from the command line (no previous k yet).
pub(super) fn params(a: &TopicsArgs) -> TopicParams {
    TopicParams {
        query: a.query.clone(),
        k: a.k,
        seed: a.seed,
        sort: a.sort,
        // The CLI is the batch front end: no selection cap.
        limits: Limits::batch(),
        window: Filter {
            category: a.category.clone(),
            from: a.from.clone(),
            to: a.to.clone(),
        },
        prefer_k: None,
    }
}

/// Writes `report` as asked: `--assignments` CSV, `--html` page, JSON or text on stdout.
pub(super) fn write_report(
    a: &TopicsArgs,
    report: &TopicsReport,
    collection: &dyn Collection,
) -> Result<()> {
    if let Some(path) = &a.assignments {
        let mut csv = String::from("paper_id,topic_id\n");
        let mut rows: Vec<(&str, usize)> = report
            .topics
            .iter()
            .flat_map(|t| t.papers.iter().map(move |p| (p.0.as_str(), t.id)))
            .collect();
        rows.sort_by_key(|&(_, t)| t);
        for (p, t) in rows {
            csv.push_str(&csv_field(p));
            csv.push_str(&format!(",{t}\n"));
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.html {
        let page = topics::html::render(report, collection)?;
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        text(&mut out, report, collection)?;
    }
    Ok(())
}

/// Quotes a CSV field when it needs it (ids with commas or quotes).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn text(out: &mut impl Write, r: &TopicsReport, collection: &dyn Collection) -> Result<()> {
    let s = &r.selection;
    match &s.query {
        Some(q) => writeln!(
            out,
            "{} papers about {q:?} of {} ({:?}: {} lexical, {} semantic, {} both)",
            s.papers, s.collection, s.mode, s.lexical, s.semantic, s.both
        )?,
        None => writeln!(out, "{} papers (the whole collection)", s.papers)?,
    }
    writeln!(out, "rule: {}", s.rule)?;
    let c = &r.clustering;
    write!(out, "{} topics ({} k, seed {})", c.k, c.k_mode, c.seed)?;
    if !c.silhouettes.is_empty() {
        let sil: Vec<String> = c
            .silhouettes
            .iter()
            .map(|(k, v)| format!("{k}:{v:.3}"))
            .collect();
        write!(out, "; silhouette by k: {}", sil.join(" "))?;
    }
    writeln!(out)?;
    if let Some(g) = &c.growth {
        writeln!(
            out,
            "growth: share of {} recent papers ({} to {}) over share of {} earlier ones; given with at least {} in each",
            g.recent, g.recent_from, g.recent_to, g.earlier, g.min_papers
        )?;
    }
    if let Some(h) = &r.history {
        match &h.previous_at {
            Some(at) => {
                write!(
                    out,
                    "since the previous run ({at}): {} kept ({} grown, {} shrunk), {} new, {} gone",
                    h.kept,
                    h.grown,
                    h.shrunk,
                    h.new,
                    h.gone.len()
                )?;
                let gone: Vec<String> = h
                    .gone
                    .iter()
                    .map(|g| format!("#{} {}", g.id, g.label))
                    .collect();
                if !gone.is_empty() {
                    write!(out, ": {}", gone.join(", "))?;
                }
                writeln!(out)?;
            }
            None => writeln!(out, "first run of this selection: topic ids start here")?,
        }
    }
    for t in &r.topics {
        writeln!(out)?;
        write!(out, "#{:<3} {}  ({} papers", t.id, t.label, t.size)?;
        match (t.status, t.previous_size) {
            (Some(Status::New), _) => write!(out, ", new")?,
            (Some(Status::Grown | Status::Shrunk), Some(p)) => write!(out, ", was {p}")?,
            _ => {}
        }
        match t.growth {
            Some(g) => write!(out, ", growth {g:.2}")?,
            None if t.recent >= topics::GROWTH_MIN_PAPERS => write!(
                out,
                ", {} recent, {} earlier: too few earlier papers for a growth figure",
                t.recent, t.earlier
            )?,
            None => {}
        }
        writeln!(out, ")")?;
        let terms: Vec<String> = t
            .terms
            .iter()
            .take(8)
            .map(|(w, x)| format!("{w} {x:.3}"))
            .collect();
        writeln!(out, "     terms: {}", terms.join(" · "))?;
        for id in &t.representative {
            let title = collection
                .doc_id(id)
                .map_or("", |d| collection.paper(d).title.as_str());
            let title: String = title.chars().take(100).collect();
            writeln!(out, "     - {id}  {title}")?;
        }
    }
    Ok(())
}

pub(super) fn eval_clustering(a: ClusteringArgs) -> Result<()> {
    let records = clustering::read_labelled(&a.data, a.labels_prefix.as_deref())?;
    let field = match a.text {
        TextArg::Title => TextField::Title,
        TextArg::TitleAbstract => TextField::TitleAbstract,
    };
    let vectors = match &a.embeddings {
        Some(path) => clustering::read_embeddings(path, &records)?,
        None => {
            let embedder = load_model(&a.model)?;
            let texts: Vec<String> = records.iter().map(|r| r.text(field)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)?
        }
    };
    let dim = vectors.first().map_or(0, Vec::len);
    let flat: Vec<f32> = vectors.into_iter().flatten().collect();
    let data = Array2::from_shape_vec((records.len(), dim), flat)
        .context("embeddings of unequal length")?;
    let labels: Vec<String> = records.iter().map(|r| r.label.clone()).collect();
    let distinct = labels
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let k = a.k.unwrap_or(topics::KChoice::Fixed(distinct));
    let start = Instant::now();
    let report = clustering::evaluate(data.view(), &labels, k, a.seed)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(out, "v_measure: {:.4}", report.v_measure)?;
        writeln!(
            out,
            "(homogeneity {:.4}, completeness {:.4}, nmi {:.4}, ari {:.4}; k {}, {} papers, {} labels, clustered in {:.1} s)",
            report.homogeneity,
            report.completeness,
            report.nmi,
            report.ari,
            report.k,
            report.n,
            report.labels,
            start.elapsed().as_secs_f64()
        )?;
    }
    Ok(())
}
