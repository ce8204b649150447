//! Formatting results for people (aligned text) and programs (JSON).

use crate::search::Hit;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct JsonHit<'a> {
    id: &'a str,
    title: &'a str,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a str>,
}

/// `{"results":[{"id","title","score","date"},...]}`, best first.
pub fn hits_json(out: &mut impl Write, hits: &[Hit<'_>]) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Results<'a> {
        results: Vec<JsonHit<'a>>,
    }
    let results = hits
        .iter()
        .map(|h| JsonHit {
            id: &h.paper.id.0,
            title: &h.paper.title,
            score: h.score,
            date: h.paper.date.as_deref(),
        })
        .collect();
    serde_json::to_writer(&mut *out, &Results { results })?;
    writeln!(out)
}

/// One line per hit: rank, score, id, date, title (cut to fit a terminal line).
pub fn hits_text(out: &mut impl Write, hits: &[Hit<'_>]) -> std::io::Result<()> {
    if hits.is_empty() {
        return writeln!(out, "no results");
    }
    let id_w = hits.iter().map(|h| h.paper.id.0.len()).max().unwrap_or(2);
    for (rank, h) in hits.iter().enumerate() {
        let title: String = h.paper.title.chars().take(90).collect();
        let cut = if title.len() < h.paper.title.len() {
            "…"
        } else {
            ""
        };
        writeln!(
            out,
            "{:>3}  {:.3}  {:<id_w$}  {:<10}  {title}{cut}",
            rank + 1,
            h.score,
            h.paper.id.0,
            h.paper.date.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}
