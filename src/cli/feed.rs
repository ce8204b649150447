//! `paperscope sync`: the feed file and flags to [`crate::feed::sync`], one call, a
//! summary.

use super::args::SyncArgs;
use super::{embedding_bar, load_model, show_progress, UsageError};
use crate::feed::{sync, FeedFile};
use anyhow::{Context, Result};
use std::io::Write;

pub(super) fn sync(a: SyncArgs) -> Result<()> {
    if let Some(d) = &a.until {
        if crate::text::date::parse_day(d).is_none() {
            return Err(UsageError(format!("--until {d:?} is not a day (YYYY-MM-DD)")).into());
        }
    }
    let feed = FeedFile::read(&a.feed).map_err(|e| UsageError(e.to_string()))?;
    let embedder = load_model(&a.model)?;
    let bar = embedding_bar(0);
    let synced = sync::sync(
        &a.index,
        &feed,
        &embedder,
        &sync::Options { until: a.until },
        |p| show_progress(&bar, p),
    )
    .with_context(|| format!("syncing {} into {}", a.feed.display(), a.index.display()))?;
    bar.finish_and_clear();
    for p in &synced.problems {
        eprintln!("warning: {p}");
    }
    let d = &synced.digest;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, d)?;
        writeln!(out)?;
        return Ok(());
    }
    for s in &d.sources {
        writeln!(
            out,
            "{}: {} records, {} deletions",
            s.source, s.records, s.deleted
        )?;
    }
    writeln!(
        out,
        "sync {}: {} new, {} updated, {} removed; index generation {}, {} papers",
        d.sync, d.added, d.replaced, d.removed, d.generation, d.papers
    )?;
    for s in &d.searches {
        writeln!(out, "search {}: {} new", s.name, s.new.len())?;
    }
    if let Some(t) = &d.topics {
        writeln!(
            out,
            "topics: {} ({} new, {} grown, {} gone; {} with new papers)",
            t.topics,
            t.new.len(),
            t.grown.len(),
            t.gone.len(),
            t.with_new.len()
        )?;
    }
    writeln!(out, "digest: {}", synced.markdown.display())?;
    writeln!(out, "        {}", synced.html.display())?;
    Ok(())
}
