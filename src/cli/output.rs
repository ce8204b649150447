//! Formatting results for people (aligned text) and programs (JSON).

use crate::explain::Explanation;
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
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<&'a Explanation>,
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
            explanation: h.explanation.as_ref(),
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
    // Cosines are 0.xxx; BM25 scores (keyword mode) can reach two digits before the point.
    let score_w = hits
        .iter()
        .map(|h| format!("{:.3}", h.score).len())
        .max()
        .unwrap_or(5);
    for (rank, h) in hits.iter().enumerate() {
        let title: String = h.paper.title.chars().take(90).collect();
        let cut = if title.len() < h.paper.title.len() {
            "…"
        } else {
            ""
        };
        writeln!(
            out,
            "{:>3}  {:>score_w$.3}  {:<id_w$}  {:<10}  {title}{cut}",
            rank + 1,
            h.score,
            h.paper.id.0,
            h.paper.date.as_deref().unwrap_or("-"),
        )?;
        if let Some(e) = &h.explanation {
            explanation_text(out, e)?;
        }
    }
    Ok(())
}

/// Indented lines under a hit: shared terms, closest sentence, per-list ranks.
fn explanation_text(out: &mut impl Write, e: &Explanation) -> std::io::Result<()> {
    const PAD: &str = "       ";
    if !e.terms.is_empty() {
        let terms: Vec<String> = e
            .terms
            .iter()
            .map(|t| format!("{} {:.1} ({})", t.term, t.score, t.fields.join("+")))
            .collect();
        writeln!(out, "{PAD}terms: {}", terms.join(" · "))?;
    }
    if !e.shared_terms.is_empty() {
        let terms: Vec<String> = e
            .shared_terms
            .iter()
            .map(|t| format!("{} (in {} papers)", t.term, t.papers))
            .collect();
        writeln!(out, "{PAD}shared: {}", terms.join(" · "))?;
    }
    if let Some(s) = &e.sentence {
        let text: String = s.text.chars().take(200).collect();
        let cut = if text.len() < s.text.len() { "…" } else { "" };
        writeln!(
            out,
            "{PAD}closest sentence ({:.2}): \"{text}{cut}\"",
            s.score
        )?;
    }
    // The hit's rank in each list it was in before fusion (`similar` has one list, and its
    // rank is the hit's own).
    let ranks: Vec<String> = [("semantic", e.semantic_rank), ("keyword", e.keyword_rank)]
        .iter()
        .filter_map(|(name, r)| r.map(|r| format!("{name} {r}")))
        .collect();
    if e.shared_terms.is_empty() && !ranks.is_empty() {
        writeln!(out, "{PAD}rank: {}", ranks.join(", "))?;
    }
    Ok(())
}
