//! What the HTML pages show: one askama template struct per page (templates in
//! `templates/`, compiled into the binary, HTML-escaped by default), and the view-models
//! they draw, built from library results.
//!
//! **Escaping.** Every record field reaches the page through `{{ ... }}`, which askama
//! escapes for HTML (text and attribute values alike); no template uses `|safe`. Links
//! are built here: paper ids are percent-encoded into paths, query strings are encoded by
//! `serde_urlencoded`, and a record's own `url` is linked only when it is `http(s)` (a
//! `javascript:` url in a hostile record is not linked at all).

use crate::explain::Explanation;
use crate::export;
use crate::paper::Paper;
use crate::search::{Hit, Mode, Sort};
use crate::topics::{self, TopicsReport};
use askama::Template;

/// The search form as the page's query string gives it; every field is text so that a bad
/// value is shown back and explained, not refused before the page renders.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct SearchForm {
    pub q: String,
    pub mode: String,
    pub category: String,
    pub from: String,
    pub to: String,
    pub sort: String,
    pub page: String,
    pub explain: String,
}

impl SearchForm {
    /// The query string of this form, with `page` and `explain` as given, empty fields
    /// left out (shareable, short URLs).
    pub fn query_string(&self, page: Option<usize>, explain: bool) -> String {
        let page = page.filter(|&p| p > 1).map(|p| p.to_string());
        let pairs: Vec<(&str, &str)> = [
            ("q", self.q.as_str()),
            ("mode", self.mode.as_str()),
            ("category", self.category.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("sort", self.sort.as_str()),
            ("page", page.as_deref().unwrap_or("")),
            ("explain", if explain { "1" } else { "" }),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        serde_urlencoded::to_string(pairs).expect("pairs of strings always encode. This is a bug.")
    }
}

/// `/?{query}`.
pub fn search_href(pairs: &[(&str, &str)]) -> String {
    format!(
        "/?{}",
        serde_urlencoded::to_string(pairs).expect("pairs of strings always encode. This is a bug.")
    )
}

/// `/papers/{id}` with the id percent-encoded as one path segment (arXiv's old ids hold a
/// `/`).
pub fn paper_href(id: &str) -> String {
    let mut out = String::from("/papers/");
    for b in id.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The three export links of a list, `(label, href)`, for `/export?{query}&format=`.
pub fn export_links(query: &str) -> Vec<(&'static str, String)> {
    let sep = if query.is_empty() { "" } else { "&" };
    [("BibTeX", "bibtex"), ("CSV", "csv"), ("RIS", "ris")]
        .into_iter()
        .map(|(label, f)| (label, format!("/export?{query}{sep}format={f}")))
        .collect()
}

/// A record's link, if it is one a page may follow: `http://` or `https://` only.
fn web_link(url: Option<String>) -> Option<String> {
    url.filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

/// One result as a page lists it.
pub struct HitView {
    pub rank: usize,
    pub href: String,
    pub title: String,
    pub authors: Vec<String>,
    pub date: Option<String>,
    pub categories: Vec<String>,
    pub snippet: String,
    pub score: String,
    pub score_help: &'static str,
    /// Shared terms, for similar papers.
    pub shared: Vec<String>,
    pub why: Option<WhyView>,
    /// The link that shows this page again with explanations.
    pub why_href: Option<String>,
}

/// "Why this result", as text.
pub struct WhyView {
    pub terms: Vec<String>,
    pub sentence: Option<String>,
    pub ranks: String,
}

/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 300;

/// The first `max` characters of `text`, cut back to a word, with `…` if cut.
fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => {
            let cut = text[..end].rfind(' ').unwrap_or(end);
            format!("{}…", text[..cut].trim_end_matches([',', ';', ':', ' ']))
        }
    }
}

fn score_help(mode: Option<Mode>) -> &'static str {
    match mode {
        Some(Mode::Hybrid) => "fused score, 0 to 1",
        Some(Mode::Semantic) | None => "cosine similarity of the embeddings",
        Some(Mode::Keyword) => "BM25 score",
    }
}

impl HitView {
    /// `mode` is the text query's mode, or `None` for paper-to-paper results.
    pub fn new(rank: usize, h: &Hit<'_>, mode: Option<Mode>, why_href: Option<String>) -> Self {
        let p = h.paper;
        let e = h.explanation.as_ref();
        HitView {
            rank,
            href: paper_href(&p.id.0),
            title: title_of(p),
            authors: p.authors.clone(),
            date: p.date.clone(),
            categories: p.categories.clone(),
            snippet: snippet(&p.abstract_, SNIPPET_CHARS),
            score: format!("{:.3}", h.score),
            score_help: score_help(mode),
            shared: e
                .map(|e| e.shared_terms.iter().map(|t| t.term.clone()).collect())
                .unwrap_or_default(),
            why: e.filter(|_| mode.is_some()).map(WhyView::from),
            why_href,
        }
    }
}

impl From<&Explanation> for WhyView {
    fn from(e: &Explanation) -> Self {
        let ranks: Vec<String> = [("semantic", e.semantic_rank), ("keyword", e.keyword_rank)]
            .iter()
            .filter_map(|(name, r)| r.map(|r| format!("{name} {r}")))
            .collect();
        WhyView {
            terms: e
                .terms
                .iter()
                .map(|t| format!("{} {:.1} ({})", t.term, t.score, t.fields.join("+")))
                .collect(),
            sentence: e
                .sentence
                .as_ref()
                .map(|s| format!("{} ({:.2})", s.text, s.score)),
            ranks: ranks.join(", "),
        }
    }
}

/// A paper's title, or its id when it has none.
fn title_of(p: &Paper) -> String {
    match p.title.is_empty() {
        true => p.id.0.clone(),
        false => p.title.clone(),
    }
}

/// A page of results.
pub struct ResultsView {
    pub hits: Vec<HitView>,
    pub summary: String,
    pub empty_hint: String,
    pub page: usize,
    pub pages: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub exports: Vec<(&'static str, String)>,
}

/// `/`: the search form, and results or an error when a query was given.
#[derive(Template)]
#[template(path = "search.html")]
pub struct SearchPage {
    pub papers: usize,
    pub form: SearchForm,
    pub modes: [(&'static str, &'static str); 3],
    pub sorts: [(&'static str, &'static str); 2],
    pub results: Option<ResultsView>,
    pub error: Option<String>,
}

impl SearchPage {
    /// Whether the form's mode is `v` (an empty mode is the default, hybrid).
    fn is_mode(&self, v: &str) -> bool {
        self.form.mode == v || (self.form.mode.is_empty() && v == "hybrid")
    }

    /// Whether the form's sort is `v` (empty: relevance).
    fn is_sort(&self, v: &str) -> bool {
        self.form.sort == v || (self.form.sort.is_empty() && v == "relevance")
    }

    pub fn new(papers: usize, form: SearchForm) -> Self {
        SearchPage {
            papers,
            form,
            modes: [
                ("hybrid", "Hybrid (meaning + words)"),
                ("semantic", "Semantic (meaning)"),
                ("keyword", "Keyword (exact words)"),
            ],
            sorts: [("relevance", "Relevance"), ("newest", "Newest first")],
            results: None,
            error: None,
        }
    }
}

/// `/papers/{id}`.
#[derive(Template)]
#[template(path = "paper.html")]
pub struct PaperPage {
    pub papers: usize,
    pub id: String,
    pub title: String,
    pub authors: Vec<(String, String)>,
    pub date: Option<String>,
    pub categories: Vec<(String, String)>,
    pub abstract_: String,
    pub url: Option<String>,
    pub pdf: Option<String>,
    pub bibtex: String,
    pub exports: Vec<(&'static str, String)>,
    pub similar: Vec<HitView>,
}

impl PaperPage {
    pub fn new(papers: usize, p: &Paper, similar: &[Hit<'_>]) -> Self {
        let ids = serde_urlencoded::to_string([("ids", p.id.0.as_str())])
            .expect("pairs of strings always encode. This is a bug.");
        PaperPage {
            papers,
            id: p.id.0.clone(),
            title: title_of(p),
            // An author search: their name as a phrase, by words (BM25 indexes authors).
            authors: p
                .authors
                .iter()
                .map(|a| {
                    let q = format!("\"{a}\"");
                    (a.clone(), search_href(&[("q", &q), ("mode", "keyword")]))
                })
                .collect(),
            date: p.date.clone(),
            categories: p
                .categories
                .iter()
                .map(|c| {
                    // The category's papers: its name as a keyword query (BM25 indexes
                    // categories) under the category filter, newest first.
                    let href = search_href(&[
                        ("q", c),
                        ("mode", "keyword"),
                        ("category", c),
                        ("sort", "newest"),
                    ]);
                    (c.clone(), href)
                })
                .collect(),
            abstract_: p.abstract_.clone(),
            url: web_link(p.source_url()),
            pdf: web_link(p.pdf_url()),
            bibtex: export::bibtex(p),
            exports: export_links(&ids),
            similar: similar
                .iter()
                .enumerate()
                .map(|(i, h)| HitView::new(i + 1, h, None, None))
                .collect(),
        }
    }
}

/// `/for-you`: a shell the script fills from this browser's likes.
#[derive(Template)]
#[template(path = "for_you.html")]
pub struct ForYouPage {
    pub papers: usize,
}

/// The topics form.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct TopicsForm {
    pub q: String,
    pub k: String,
    pub seed: String,
    pub sort: String,
    /// The date window (see [`crate::topics::TopicParams::window`]).
    pub from: String,
    pub to: String,
}

/// One topic's points on the map, in the SVG's coordinates.
pub struct MapGroup {
    pub id: usize,
    pub label: String,
    pub colour: String,
    pub points: Vec<(String, String)>,
    pub cx: String,
    pub cy: String,
}

/// A paper listed under a topic.
pub struct TopicPaper {
    pub href: String,
    pub title: String,
    pub date: Option<String>,
}

/// One topic of the list.
pub struct TopicView {
    pub id: usize,
    pub label: String,
    pub colour: String,
    pub size: usize,
    pub growth: Option<String>,
    /// Against the selection's last recorded run (`topics`, `sync`): "new", "was 40".
    pub change: Option<String>,
    pub terms: String,
    pub search_href: String,
    pub exports: Vec<(&'static str, String)>,
    pub papers: Vec<TopicPaper>,
    pub more: usize,
}

/// `/topics`.
#[derive(Template)]
#[template(path = "topics.html")]
pub struct TopicsPage {
    pub papers: usize,
    pub form: TopicsForm,
    pub summary: String,
    pub map_w: u32,
    pub map_h: u32,
    pub map_caption: String,
    pub groups: Vec<MapGroup>,
    pub topics: Vec<TopicView>,
}

/// Papers drawn on the topics map at most (each topic keeps its share): the page stays
/// well under 150 KB.
pub const MAP_POINTS: usize = 1_200;
/// Papers listed under each topic at most (all of them are in its export).
pub const TOPIC_PAPERS: usize = 8;
const MAP_W: u32 = 800;
const MAP_H: u32 = 560;
const MAP_PAD: f32 = 12.0;

impl TopicsPage {
    /// The page for `report`, its map `map` and the index it came from.
    pub fn new(
        form: TopicsForm,
        report: &TopicsReport,
        map: &topics::TopicMap,
        index: &crate::index::Index,
    ) -> Self {
        let s = &report.selection;
        let mut summary = format!(
            "{} topics over {} of {} papers",
            report.topics.len(),
            s.papers,
            s.collection
        );
        if s.query.is_some() {
            summary.push_str(&format!(
                " ({} matched by words, {} by meaning, {} by both)",
                s.lexical, s.semantic, s.both
            ));
        }
        let stride = map.points.len().div_ceil(MAP_POINTS).max(1);
        let place = |x: f32, y: f32| {
            (
                format!("{:.1}", MAP_PAD + x * (MAP_W as f32 - 2.0 * MAP_PAD)),
                format!("{:.1}", MAP_PAD + y * (MAP_H as f32 - 2.0 * MAP_PAD)),
            )
        };
        // By the topic's position in the report (the map's `topic`).
        let mut per_topic: Vec<Vec<(String, String)>> = vec![Vec::new(); report.topics.len()];
        for p in map.points.iter().step_by(stride) {
            if let Some(v) = per_topic.get_mut(p.topic) {
                v.push(place(p.x, p.y));
            }
        }
        let drawn: usize = per_topic.iter().map(Vec::len).sum();
        let groups = report
            .topics
            .iter()
            .enumerate()
            .map(|(pos, t)| {
                let (cx, cy) = map.centres.get(pos).copied().unwrap_or((0.5, 0.5));
                let (cx, cy) = place(cx, cy);
                MapGroup {
                    id: t.id,
                    label: t.label.clone(),
                    colour: topics::html::colour(t.id),
                    points: std::mem::take(&mut per_topic[pos]),
                    cx,
                    cy,
                }
            })
            .collect();
        // Links re-run the same selection and clustering (same q, k and seed: the same
        // topics, by determinism).
        let mut base: Vec<(&str, &str)> = vec![("q", form.q.as_str())];
        base.push(("k", form.k.as_str()));
        base.push(("seed", form.seed.as_str()));
        base.push(("from", form.from.as_str()));
        base.push(("to", form.to.as_str()));
        base.retain(|(_, v)| !v.is_empty());
        let topics = report
            .topics
            .iter()
            .map(|t| {
                let id = t.id.to_string();
                let mut pairs = base.clone();
                pairs.push(("topic", &id));
                let query = serde_urlencoded::to_string(&pairs)
                    .expect("pairs of strings always encode. This is a bug.");
                let top: Vec<&str> = t.terms.iter().take(3).map(|(w, _)| w.as_str()).collect();
                let search = match form.q.trim().is_empty() {
                    true => top.join(" "),
                    false => format!("{} {}", form.q.trim(), top.join(" ")),
                };
                // The representatives first (closest to the centroid), then the rest.
                let mut ids: Vec<&crate::paper::PaperId> = t.representative.iter().collect();
                ids.extend(t.papers.iter().filter(|p| !t.representative.contains(p)));
                let papers: Vec<TopicPaper> = ids
                    .into_iter()
                    .filter_map(|id| index.doc_id(id).map(|d| index.paper(d)))
                    .take(TOPIC_PAPERS)
                    .map(|p| TopicPaper {
                        href: paper_href(&p.id.0),
                        title: title_of(p),
                        date: p.date.clone(),
                    })
                    .collect();
                TopicView {
                    id: t.id,
                    label: t.label.clone(),
                    colour: topics::html::colour(t.id),
                    size: t.size,
                    growth: t.growth.map(|g| format!("{g:.2}")),
                    change: match (t.status, t.previous_size) {
                        (Some(topics::Status::New), _) => Some("new since the last run".into()),
                        (Some(topics::Status::Grown | topics::Status::Shrunk), Some(p)) => {
                            Some(format!("was {p} papers"))
                        }
                        _ => None,
                    },
                    terms: t
                        .terms
                        .iter()
                        .take(8)
                        .map(|(w, _)| w.as_str())
                        .collect::<Vec<_>>()
                        .join(" · "),
                    search_href: search_href(&[("q", &search)]),
                    exports: export_links(&query),
                    more: t.size.saturating_sub(papers.len()),
                    papers,
                }
            })
            .collect();
        TopicsPage {
            papers: index.len(),
            form,
            summary,
            map_w: MAP_W,
            map_h: MAP_H,
            map_caption: format!(
                "Each dot is a paper ({drawn} of {} drawn), coloured by topic; numbers mark topic centres. Projection: t-SNE of the papers, topics set apart (README, Topics). Click a topic to list its papers.",
                s.papers
            ),
            groups,
            topics,
        }
    }
}

/// An error, as a page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub papers: usize,
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

/// The summary line above a page of results.
pub fn summary(total: usize, offset: usize, shown: usize, sort: Sort, took_ms: f64) -> String {
    let range = match shown {
        0 => String::new(),
        n => format!("; results {}–{}", offset + 1, offset + n),
    };
    let order = match sort {
        Sort::Relevance => "",
        Sort::Newest => " (the most relevant, newest first)",
    };
    format!("{total} papers ranked{order}{range} · {took_ms:.0} ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_links_encode_ids_as_one_segment() {
        assert_eq!(paper_href("2503.13531v2"), "/papers/2503.13531v2");
        assert_eq!(paper_href("hep-th/9901001"), "/papers/hep-th%2F9901001");
        assert_eq!(paper_href("a b\"<"), "/papers/a%20b%22%3C");
    }

    #[test]
    fn only_web_links_are_followed() {
        assert_eq!(web_link(Some("javascript:alert(1)".into())), None);
        assert_eq!(web_link(Some("data:text/html,x".into())), None);
        assert!(web_link(Some("https://arxiv.org/abs/1".into())).is_some());
    }

    #[test]
    fn form_urls_leave_out_empty_fields() {
        let form = SearchForm {
            q: "a&b c".into(),
            mode: "keyword".into(),
            ..Default::default()
        };
        assert_eq!(
            form.query_string(Some(2), true),
            "q=a%26b+c&mode=keyword&page=2&explain=1"
        );
        assert_eq!(form.query_string(Some(1), false), "q=a%26b+c&mode=keyword");
    }
}
