//! Formatting results for people (aligned text) and programs (JSON).

use crate::explain::Explanation;
use crate::search::Hit;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// What `paperscope index` did: one line on stderr, or one JSON object with `--json`.
#[derive(Debug, Serialize)]
pub struct IndexSummary {
    /// Papers indexed.
    pub papers: usize,
    /// Lines skipped as malformed or incomplete.
    pub skipped: usize,
    /// Records dropped for repeating an earlier id.
    pub duplicates: usize,
    /// Tokens embedded.
    pub tokens: usize,
    /// Wall time of the whole build, model loading included.
    pub seconds: f64,
    pub papers_per_second: f64,
    pub tokens_per_second: f64,
    /// The index directory written.
    pub out: String,
}

impl IndexSummary {
    pub fn new(
        papers: usize,
        skipped: usize,
        duplicates: usize,
        tokens: usize,
        took: Duration,
        out: &Path,
    ) -> IndexSummary {
        let seconds = took.as_secs_f64();
        IndexSummary {
            papers,
            skipped,
            duplicates,
            tokens,
            seconds,
            papers_per_second: papers as f64 / seconds,
            tokens_per_second: tokens as f64 / seconds,
            out: out.display().to_string(),
        }
    }
}

impl std::fmt::Display for IndexSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "indexed {} papers ({} skipped, {} duplicate ids) into {}: {} tokens, {:.1} s, {:.1} papers/s, {:.0} tokens/s",
            self.papers,
            self.skipped,
            self.duplicates,
            self.out,
            self.tokens,
            self.seconds,
            self.papers_per_second,
            self.tokens_per_second,
        )
    }
}

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

/// Widest id column: longer ids are printed whole and push their line's date and title
/// right (a column as wide as a freak 70,000-byte id would be useless; and a format
/// width over 65,535 panics).
const MAX_ID_WIDTH: usize = 40;

/// One line per hit: rank, score, id, date, title (cut to fit a terminal line).
pub fn hits_text(out: &mut impl Write, hits: &[Hit<'_>]) -> std::io::Result<()> {
    if hits.is_empty() {
        return writeln!(out, "no results");
    }
    let id_w = hits
        .iter()
        .map(|h| h.paper.id.0.chars().count())
        .max()
        .unwrap_or(2)
        .min(MAX_ID_WIDTH);
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
