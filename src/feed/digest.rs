//! "What's new": the digest a [`super::sync`] writes, as data ([`Digest`], also its JSON)
//! and rendered as Markdown and as a self-contained HTML page.
//!
//! Record text is data, never markup: Markdown escapes every character Markdown (and the
//! HTML it may embed) would interpret, and the page is an askama template with
//! auto-escaping.

use crate::paper::Paper;
use askama::Template;
use serde::Serialize;

/// A paper as a digest lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: String,
    pub title: String,
    /// The first three authors, "et al." after.
    pub authors: String,
    pub date: Option<String>,
    pub url: Option<String>,
    pub categories: Vec<String>,
}

impl Item {
    pub fn new(p: &Paper) -> Item {
        let mut authors = p
            .authors
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if p.authors.len() > 3 {
            authors.push_str(" et al.");
        }
        Item {
            id: p.id.0.clone(),
            title: if p.title.is_empty() {
                p.id.0.clone()
            } else {
                p.title.clone()
            },
            authors,
            date: p.date.clone(),
            // Only web links become links: a record's `javascript:` URL must not.
            url: p
                .source_url()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            categories: p.categories.clone(),
        }
    }
}

/// What one source brought.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub source: String,
    /// The days asked for (harvesters), inclusive; absent for files.
    pub from: Option<String>,
    pub until: Option<String>,
    pub records: usize,
    pub deleted: usize,
}

/// A saved search's new hits.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    pub name: String,
    pub query: String,
    /// New papers among the search's first `limit` results, best first.
    pub new: Vec<Item>,
    pub limit: usize,
}

/// A topic as the digest shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TopicItem {
    pub id: usize,
    pub label: String,
    pub size: usize,
    pub previous_size: Option<usize>,
    pub growth: Option<f64>,
    /// This sync's new papers in the topic.
    pub new: Vec<Item>,
    /// How many new papers it has (the list may be cut to the section length).
    pub new_count: usize,
}

/// The topics part.
#[derive(Debug, Clone, Serialize)]
pub struct TopicsSection {
    /// Which papers were grouped, in words.
    pub selection: String,
    pub topics: usize,
    /// Topics that did not exist at the previous run.
    pub new: Vec<TopicItem>,
    /// Topics that grew since the previous run (see [`crate::topics::lineage`]).
    pub grown: Vec<TopicItem>,
    /// Previous topics with no continuation: `(id, label, size)`.
    pub gone: Vec<(usize, String, usize)>,
    /// Every topic with new papers, most new first.
    pub with_new: Vec<TopicItem>,
    /// When the topics were last computed, if before.
    pub previous_at: Option<String>,
}

/// One sync's digest.
#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    pub title: String,
    /// The sync's number (1 for the first) and when it ran (RFC 3339, UTC).
    pub sync: u64,
    pub at: String,
    /// When the previous sync ran.
    pub since: Option<String>,
    pub index: String,
    pub generation: u64,
    pub papers: usize,
    pub sources: Vec<SourceReport>,
    pub added: usize,
    pub replaced: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub searches: Vec<SearchReport>,
    pub topics: Option<TopicsSection>,
}

impl Digest {
    /// Whether this sync brought anything: a paper in, changed or out.
    pub fn has_news(&self) -> bool {
        self.added + self.replaced + self.removed > 0
    }

    /// The digest in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let day = self.at.get(..10).unwrap_or(&self.at);
        s += &format!("# {} — {}\n\n", md(&self.title), day);
        s += &format!(
            "Sync {} at {}{}. Index `{}`: generation {}, {} papers.\n\n",
            self.sync,
            self.at,
            self.since
                .as_ref()
                .map(|p| format!(" (previous: {p})"))
                .unwrap_or_default(),
            self.index.replace('`', "'"),
            self.generation,
            self.papers
        );
        s += &format!(
            "**{} new, {} updated, {} removed** ({} unchanged records skipped).\n\n",
            self.added, self.replaced, self.removed, self.unchanged
        );
        if !self.sources.is_empty() {
            s += "## Sources\n\n";
            for r in &self.sources {
                s += &format!("- {}", md(&r.source));
                if let (Some(f), Some(u)) = (&r.from, &r.until) {
                    s += &format!(", {f} to {u}");
                }
                s += &format!(": {} records", r.records);
                if r.deleted > 0 {
                    s += &format!(", {} deletions", r.deleted);
                }
                s += "\n";
            }
            s += "\n";
        }
        s += "## Saved searches\n\n";
        if self.searches.is_empty() {
            s += "_None in the feed file._\n\n";
        }
        for q in &self.searches {
            s += &format!(
                "### {} — “{}” ({} new)\n\n",
                md(&q.name),
                md(&q.query),
                q.new.len()
            );
            if q.new.is_empty() {
                s += "_No new papers._\n\n";
            }
            for i in &q.new {
                s += &item_md(i);
            }
            if !q.new.is_empty() {
                s += "\n";
            }
        }
        if let Some(t) = &self.topics {
            s += &format!("## Topics of {}\n\n", md(&t.selection));
            match &t.previous_at {
                Some(p) => {
                    s += &format!(
                        "{} topics; compared with the run of {p}: {} new, {} grown, {} gone.\n\n",
                        t.topics,
                        t.new.len(),
                        t.grown.len(),
                        t.gone.len()
                    )
                }
                None => s += &format!("{} topics (first run: ids start here).\n\n", t.topics),
            }
            for (title, list) in [("New topics", &t.new), ("Growing topics", &t.grown)] {
                if list.is_empty() {
                    continue;
                }
                s += &format!("### {title}\n\n");
                for x in list {
                    s += &format!("- {}{}\n", topic_md(x), growth_md(x));
                }
                s += "\n";
            }
            if !t.gone.is_empty() {
                s += "### Gone\n\n";
                for (id, label, size) in &t.gone {
                    s += &format!("- #{id} {} (had {size} papers)\n", md(label));
                }
                s += "\n";
            }
            s += "### New papers by topic\n\n";
            if t.with_new.is_empty() {
                s += "_No new papers._\n\n";
            }
            for x in &t.with_new {
                s += &format!("**{}** — {} new\n\n", topic_md(x), x.new_count);
                for i in &x.new {
                    s += &item_md(i);
                }
                s += "\n";
            }
        }
        s
    }

    /// The digest as one HTML page (no script, no external resources).
    ///
    /// # Errors
    /// A template error (none expected: the template is compiled in).
    pub fn html(&self) -> Result<String, askama::Error> {
        DigestPage { d: self }.render()
    }
}

#[derive(Template)]
#[template(path = "digest.html")]
struct DigestPage<'a> {
    d: &'a Digest,
}

fn topic_md(x: &TopicItem) -> String {
    let mut s = format!("#{} {} ({} papers", x.id, md(&x.label), x.size);
    if let Some(p) = x.previous_size {
        s += &format!(", was {p}");
    }
    s + ")"
}

fn growth_md(x: &TopicItem) -> String {
    x.growth
        .map(|g| format!(", growth {g:.2}"))
        .unwrap_or_default()
}

fn item_md(i: &Item) -> String {
    let title = md(&i.title);
    let mut s = match &i.url {
        Some(u) => format!("- [{title}](<{}>)", u.replace(['<', '>', ' '], "")),
        None => format!("- {title}"),
    };
    s += &format!(" `{}`", i.id.replace('`', "'"));
    if !i.authors.is_empty() {
        s += &format!(" — {}", md(&i.authors));
    }
    if let Some(d) = &i.date {
        s += &format!(" · {d}");
    }
    if let Some(c) = i.categories.first() {
        s += &format!(" · {}", md(c));
    }
    s + "\n"
}

/// `text` with every character inline Markdown or HTML would interpret escaped.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // Record text never starts a line here, so only the inline syntax matters:
            // emphasis, code, links, strikethrough, tables, math.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_record_text() {
        assert_eq!(
            md("a <script>x</script>"),
            "a &lt;script&gt;x&lt;/script&gt;"
        );
        assert_eq!(md("[link](javascript:x)"), "\\[link\\](javascript:x)");
        assert_eq!(md("**bold** _i_ $x$"), "\\*\\*bold\\*\\* \\_i\\_ \\$x\\$");
    }
}
