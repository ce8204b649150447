//! A saved search as an Atom feed (RFC 4287), so that any feed reader becomes the alert
//! system: `serve --feed FEED.toml` publishes `/feeds/NAME.atom`.
//!
//! The entries are the search's first `limit` results (as in the digest), newest first,
//! at most [`ENTRIES`]: a paper that arrives in the collection and ranks among them
//! appears at the top, and a reader that has seen the others (by their stable entry ids)
//! shows it as new. Texts are plain-text Atom elements, escaped by the writer.

use super::SavedSearch;
use crate::paper::Paper;
use atom_syndication::{Category, Entry, Feed, FixedDateTime, Generator, Link, Person, Text};

/// Entries per feed at most.
pub const ENTRIES: usize = 30;

/// The feed of `search` whose results (best first) are `papers`. `base` is the server's
/// own URL (`http://host:port`) and `page` a paper's page path on it, for links;
/// `updated` the time of the index's last commit (RFC 3339), used when no paper has a
/// date.
pub fn render(
    search: &SavedSearch,
    papers: &[&Paper],
    base: &str,
    page: impl Fn(&Paper) -> String,
    updated: &str,
) -> String {
    let fallback = parse_time(updated)
        .unwrap_or_else(|| FixedDateTime::parse_from_rfc3339("1970-01-01T00:00:00Z").unwrap());
    let mut newest: Vec<&Paper> = papers.to_vec();
    // Stable: papers of one day keep their relevance order.
    newest.sort_by(|a, b| b.date.cmp(&a.date));
    newest.truncate(ENTRIES);
    let entries: Vec<Entry> = newest
        .iter()
        .map(|p| entry(p, &format!("{base}{}", page(p)), fallback))
        .collect();
    let feed_updated = entries
        .iter()
        .map(|e| *e.updated())
        .max()
        .unwrap_or(fallback);
    let query = serde_urlencoded::to_string([("q", search.query.as_str())])
        .expect("a pair of strings always encodes. This is a bug.");
    let mut feed = Feed::default();
    feed.set_id(format!("urn:paperscope:search:{}", search.name));
    feed.set_title(Text::plain(format!("paperscope: {}", search.name)));
    feed.set_subtitle(Some(Text::plain(format!(
        "New papers for “{}”: its first {} results, newest first",
        search.query,
        search.limit.unwrap_or(super::DEFAULT_LIMIT)
    ))));
    feed.set_updated(feed_updated);
    feed.set_links(vec![
        link(&format!("{base}/feeds/{}.atom", search.name), "self"),
        link(&format!("{base}/?{query}"), "alternate"),
    ]);
    feed.set_authors(vec![Person {
        name: "paperscope".into(),
        ..Person::default()
    }]);
    feed.set_generator(Some(Generator {
        value: "paperscope".into(),
        uri: None,
        version: Some(env!("CARGO_PKG_VERSION").into()),
    }));
    feed.set_entries(entries);
    feed.to_string()
}

fn entry(p: &Paper, page: &str, fallback: FixedDateTime) -> Entry {
    let when = p
        .date
        .as_deref()
        .and_then(|d| parse_time(&format!("{d}T00:00:00Z")))
        .unwrap_or(fallback);
    let mut links = vec![link(page, "alternate")];
    if let Some(u) = p
        .source_url()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    {
        links.push(link(&u, "related"));
    }
    let mut e = Entry::default();
    // The source's URL is the paper's identity wherever it is served from.
    e.set_id(
        p.source_url()
            .unwrap_or_else(|| format!("urn:paperscope:paper:{}", p.id.0)),
    );
    e.set_title(Text::plain(if p.title.is_empty() {
        p.id.0.clone()
    } else {
        p.title.clone()
    }));
    e.set_updated(when);
    e.set_published(Some(when));
    e.set_links(links);
    e.set_authors(
        p.authors
            .iter()
            .map(|a| Person {
                name: a.clone(),
                ..Person::default()
            })
            .collect::<Vec<_>>(),
    );
    e.set_categories(
        p.categories
            .iter()
            .map(|c| Category {
                term: c.clone(),
                ..Category::default()
            })
            .collect::<Vec<_>>(),
    );
    if !p.abstract_.is_empty() {
        e.set_summary(Some(Text::plain(p.abstract_.clone())));
    }
    e
}

fn link(href: &str, rel: &str) -> Link {
    Link {
        href: href.to_string(),
        rel: rel.to_string(),
        ..Link::default()
    }
}

fn parse_time(s: &str) -> Option<FixedDateTime> {
    FixedDateTime::parse_from_rfc3339(s).ok()
}
