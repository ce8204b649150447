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
    /// Live papers in the index afterwards.
    pub papers: usize,
    /// Lines skipped as malformed or incomplete.
    pub skipped: usize,
    /// Records that replaced an earlier record of the same id in the input.
    pub duplicates: usize,
    /// The commit published (the previous one when nothing changed).
    pub generation: u64,
    /// Whether anything changed.
    pub committed: bool,
    pub added: usize,
    pub replaced: usize,
    /// Records identical to the indexed paper: left alone.
    pub unchanged: usize,
    pub removed: usize,
    /// Texts embedded, and vectors reused (same text already indexed).
    pub embedded: usize,
    pub reused: usize,
    /// Tokens embedded.
    pub tokens: usize,
    pub segments: usize,
    /// Papers the new segment's own graph search missed before the repair, and after.
    pub unreachable_before_repair: usize,
    pub unreachable: usize,
    /// Wall time of the whole command, model loading included.
    pub seconds: f64,
    pub embed_seconds: f64,
    pub graph_seconds: f64,
    pub tokens_per_second: f64,
    /// The index directory.
    pub out: String,
}

impl IndexSummary {
    pub fn new(
        read: &crate::corpus::ReadReport,
        commit: &crate::index::CommitReport,
        took: Duration,
        out: &Path,
    ) -> IndexSummary {
        let seconds = took.as_secs_f64();
        IndexSummary {
            papers: commit.papers,
            skipped: read.skipped,
            duplicates: read.duplicates,
            generation: commit.generation,
            committed: commit.committed,
            added: commit.added,
            replaced: commit.replaced,
            unchanged: commit.unchanged,
            removed: commit.removed,
            embedded: commit.embedded,
            reused: commit.reused,
            tokens: commit.tokens,
            segments: commit.segments,
            unreachable_before_repair: commit.reachability.unreachable_before,
            unreachable: commit.reachability.unreachable_after,
            seconds,
            embed_seconds: commit.embed_seconds,
            graph_seconds: commit.graph_seconds,
            tokens_per_second: if commit.embed_seconds > 0.0 {
                commit.tokens as f64 / commit.embed_seconds
            } else {
                0.0
            },
            out: out.display().to_string(),
        }
    }
}

impl std::fmt::Display for IndexSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.committed {
            return write!(
                f,
                "{}: unchanged at generation {} ({} papers; {} records identical), {:.1} s",
                self.out, self.generation, self.papers, self.unchanged, self.seconds
            );
        }
        write!(
            f,
            "{}: generation {}, {} papers in {} segment(s): {} added, {} replaced, {} unchanged, {} removed ({} skipped lines, {} duplicate ids); embedded {} ({} tokens, {:.1} s), reused {} vectors; graph {:.1} s ({} unreachable before repair, {} after); {:.1} s in all",
            self.out,
            self.generation,
            self.papers,
            self.segments,
            self.added,
            self.replaced,
            self.unchanged,
            self.removed,
            self.skipped,
            self.duplicates,
            self.embedded,
            self.tokens,
            self.embed_seconds,
            self.reused,
            self.graph_seconds,
            self.unreachable_before_repair,
            self.unreachable,
            self.seconds,
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
