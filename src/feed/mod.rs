//! Following a field: the feed file that names what to harvest and which searches to
//! watch, the daily [`sync`] that brings the collection up to date and says what is new
//! ([`digest`]), and saved searches as Atom feeds ([`atom`]).
//!
//! A feed file is TOML (see README, "Following a field"):
//!
//! ```toml
//! [digest]
//! title = "Emergent abilities watch"
//!
//! [[source]]
//! kind = "arxiv"            # arXiv OAI-PMH; also "hf-daily" and "file"
//! set = "cs"
//! categories = ["cs.CL", "cs.LG"]
//! from = "2026-11-01"       # where the first sync starts
//!
//! [[search]]
//! name = "emergent-abilities"
//! query = "emergent abilities of large language models"
//! category = "cs.CL"
//! ```
//!
//! Everything the file says is checked when it is read ([`FeedFile::read`]): a mistake is
//! reported with the file and, where TOML knows it, the line — before anything is fetched.

pub mod atom;
pub mod digest;
pub mod sync;

use crate::filter::Filter;
use crate::search::{Engine, Mode, SearchParams};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A saved search's results a new paper must rank among to count as a hit, by default.
pub const DEFAULT_LIMIT: usize = 50;

/// Most results a saved search looks at (the HTTP service's page limit).
pub const MAX_LIMIT: usize = 100;

/// Least cosine similarity between a saved search's query and a paper for the paper to
/// count as a match (semantic and hybrid modes), by default: the threshold at which
/// topics take a phrase's semantic neighbours ([`crate::topics::select::PHRASE_THRESHOLD`]).
/// Without it, a young collection's first results would include papers on anything.
pub const DEFAULT_MIN_SIMILARITY: f32 = crate::topics::select::PHRASE_THRESHOLD;

/// Errors of reading a feed file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read feed file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A feed file, checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedFile {
    #[serde(default)]
    pub digest: DigestSettings,
    /// The selection whose topics the digest follows; default: the whole collection.
    #[serde(default)]
    pub topics: TopicSettings,
    #[serde(default, rename = "source")]
    pub sources: Vec<Source>,
    #[serde(default, rename = "search")]
    pub searches: Vec<SavedSearch>,
    /// Where the file was read from: relative paths in it are relative to its folder.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[digest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSettings {
    /// Heading of every digest.
    #[serde(default = "default_title")]
    pub title: String,
    /// Folder of the digests, relative to the feed file. Default `digests`.
    #[serde(default = "default_digest_dir")]
    pub dir: PathBuf,
    /// Papers listed per saved search and per topic at most.
    #[serde(default = "default_per_section")]
    pub per_section: usize,
}

impl Default for DigestSettings {
    fn default() -> DigestSettings {
        DigestSettings {
            title: default_title(),
            dir: default_digest_dir(),
            per_section: default_per_section(),
        }
    }
}

fn default_title() -> String {
    "What's new".into()
}

fn default_digest_dir() -> PathBuf {
    PathBuf::from("digests")
}

fn default_per_section() -> usize {
    20
}

/// `[topics]`: the selection of [`crate::topics::TopicParams`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    /// Papers about this; default: every paper.
    pub query: Option<String>,
    /// A number or `auto` (default).
    pub k: Option<String>,
    /// Set to false to leave topics out of the digest.
    pub enabled: Option<bool>,
}

/// One `[[source]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Source {
    /// arXiv's OAI-PMH interface ([`crate::harvest::arxiv`]).
    Arxiv {
        set: String,
        #[serde(default)]
        categories: Vec<String>,
        /// First day of the first sync (`YYYY-MM-DD`); later syncs continue from the last.
        from: Option<String>,
        base_url: Option<String>,
        #[serde(default, with = "humantime_serde_opt")]
        delay: Option<Duration>,
        #[serde(default, with = "humantime_serde_opt")]
        timeout: Option<Duration>,
        retries: Option<u32>,
    },
    /// Hugging Face Daily Papers ([`crate::harvest::hf_daily`]).
    HfDaily {
        from: Option<String>,
        base_url: Option<String>,
        #[serde(default, with = "humantime_serde_opt")]
        delay: Option<Duration>,
        #[serde(default, with = "humantime_serde_opt")]
        timeout: Option<Duration>,
        retries: Option<u32>,
    },
    /// A file read again at every sync (a Zotero/BibTeX export, JSON Lines): changed
    /// entries are replaced, new ones added.
    File { path: PathBuf },
}

impl Source {
    /// A stable name of what this source follows: the key of its progress in the sync
    /// state, and its name in the digest.
    pub fn key(&self) -> String {
        match self {
            Source::Arxiv {
                set, categories, ..
            } if categories.is_empty() => format!("arxiv {set}"),
            Source::Arxiv {
                set, categories, ..
            } => format!("arxiv {set} [{}]", categories.join(", ")),
            Source::HfDaily { .. } => "hf-daily".into(),
            Source::File { path } => format!("file {}", path.display()),
        }
    }

    /// The first day of the first sync, if the file gives one.
    pub fn from(&self) -> Option<&str> {
        match self {
            Source::Arxiv { from, .. } | Source::HfDaily { from, .. } => from.as_deref(),
            Source::File { .. } => None,
        }
    }
}

/// One `[[search]]`: a query with filters whose new hits each sync reports and that
/// `serve --feed` publishes as `/feeds/NAME.atom`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSearch {
    /// Letters, digits, `-` and `_`: the feed's URL.
    pub name: String,
    pub query: String,
    /// `semantic`, `keyword` or `hybrid` (default).
    pub mode: Option<String>,
    pub category: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// A new paper is a hit when it ranks among the search's first `limit` results.
    /// Default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`].
    pub limit: Option<usize>,
    /// ... and, unless in keyword mode, is at least this close in meaning to the query
    /// (cosine). Default [`DEFAULT_MIN_SIMILARITY`].
    pub min_similarity: Option<f32>,
}

impl SavedSearch {
    /// The search's parameters: its first `limit` results by relevance.
    ///
    /// # Errors
    /// An unknown mode.
    pub fn params(&self) -> Result<SearchParams, crate::search::Invalid> {
        Ok(SearchParams {
            k: self.limit.unwrap_or(DEFAULT_LIMIT),
            mode: match &self.mode {
                Some(m) => m.parse()?,
                None => Mode::default(),
            },
            filter: Filter {
                category: self.category.clone(),
                from: self.from.clone(),
                to: self.to.clone(),
            },
            ..SearchParams::default()
        })
    }
}

impl FeedFile {
    /// Reads and checks the feed file at `path`.
    ///
    /// # Errors
    /// [`Error::Read`]; [`Error::Invalid`] naming the mistake (TOML syntax with its line,
    /// an unknown field or kind, a bad date, a duplicate or unusable search name, ...).
    pub fn read(path: &Path) -> Result<FeedFile, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        FeedFile::parse(&text, path)
    }

    /// [`FeedFile::read`] on text already read; `path` names it in errors and anchors
    /// its relative paths.
    ///
    /// # Errors
    /// As [`FeedFile::read`].
    pub fn parse(text: &str, path: &Path) -> Result<FeedFile, Error> {
        let invalid = |message: String| Error::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut feed: FeedFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        feed.path = path.to_path_buf();
        let limits = crate::search::Limits::default();
        let mut names = std::collections::HashSet::new();
        for s in &feed.searches {
            let what = format!("search {:?}", s.name);
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(format!(
                    "{what}: a name is letters, digits, '-' and '_' (it becomes /feeds/NAME.atom)"
                )));
            }
            if !names.insert(s.name.as_str()) {
                return Err(invalid(format!("{what} is named twice")));
            }
            let mut params = s.params().map_err(|e| invalid(format!("{what}: {e}")))?;
            if s.min_similarity.is_some_and(|m| !(-1.0..=1.0).contains(&m)) {
                return Err(invalid(format!(
                    "{what}: min_similarity is a cosine, between -1 and 1"
                )));
            }
            if !(1..=MAX_LIMIT).contains(&params.k) {
                return Err(invalid(format!(
                    "{what}: limit must be between 1 and {MAX_LIMIT}"
                )));
            }
            params.k = params.k.min(limits.max_k);
            limits
                .check_text("query", &s.query)
                .and_then(|()| params.validate(&limits))
                .map_err(|e| invalid(format!("{what}: {e}")))?;
        }
        for s in &feed.sources {
            if let Some(from) = s.from() {
                if crate::text::date::parse_day(from).is_none() {
                    return Err(invalid(format!(
                        "source {:?}: from = {from:?} is not a day (YYYY-MM-DD)",
                        s.key()
                    )));
                }
            }
            if let Source::Arxiv { set, .. } = s {
                if set.trim().is_empty() {
                    return Err(invalid("an arxiv source needs a set (e.g. \"cs\")".into()));
                }
            }
        }
        if let Some(k) = &feed.topics.k {
            k.parse::<crate::topics::KChoice>()
                .map_err(|e| invalid(format!("[topics] {e}")))?;
        }
        if feed.digest.per_section == 0 {
            return Err(invalid("[digest] per_section must be at least 1".into()));
        }
        Ok(feed)
    }

    /// The folder relative paths of the file start from.
    pub fn base_dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// `path` as the file means it: relative to the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir().join(path)
        }
    }

    /// The saved search called `name`.
    pub fn search(&self, name: &str) -> Option<&SavedSearch> {
        self.searches.iter().find(|s| s.name == name)
    }
}

/// A saved search's matches: its first `limit` results, by relevance, that are at least
/// `min_similarity` close to the query in meaning (keyword mode: all of them). `qv` is
/// the query's embedding, `None` in keyword mode; `encoder` is not used to embed.
///
/// # Errors
/// As [`Engine::search_embedded`].
pub fn matches<'a>(
    engine: &'a Engine,
    search: &SavedSearch,
    qv: Option<&[f32]>,
    encoder: &dyn crate::embed::Encoder,
) -> Result<Vec<&'a crate::paper::Paper>, crate::search::Error> {
    let params = search.params()?;
    engine.validate(&search.query, &params)?;
    let results = engine.search_embedded(&search.query, qv, &params, encoder)?;
    let floor = search.min_similarity.unwrap_or(DEFAULT_MIN_SIMILARITY);
    Ok(results
        .hits
        .into_iter()
        .filter(|h| qv.is_none_or(|v| crate::vector::dot(v, engine.index().vector(h.doc)) >= floor))
        .map(|h| h.paper)
        .collect())
}

/// `delay = "3s"`-style durations (humantime) in the feed file.
mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            humantime::parse_duration(&s).map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {s:?} ({e}): write e.g. \"3s\" or \"500ms\""
                ))
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FeedFile, Error> {
        FeedFile::parse(text, Path::new("feeds/feed.toml"))
    }

    #[test]
    fn reads_a_whole_feed_file() {
        let f = parse(
            r#"
[digest]
title = "Watch"
[topics]
query = "emergent"
k = "8"
[[source]]
kind = "arxiv"
set = "cs"
categories = ["cs.CL"]
from = "2026-11-01"
delay = "0s"
[[source]]
kind = "hf-daily"
[[source]]
kind = "file"
path = "library.bib"
[[search]]
name = "emergent-abilities"
query = "emergent abilities"
mode = "semantic"
category = "cs.CL"
limit = 20
"#,
        )
        .unwrap();
        assert_eq!(f.sources.len(), 3);
        assert_eq!(f.sources[0].key(), "arxiv cs [cs.CL]");
        assert_eq!(
            f.resolve(Path::new("library.bib")),
            Path::new("feeds/library.bib")
        );
        let p = f.searches[0].params().unwrap();
        assert_eq!((p.k, p.mode), (20, Mode::Semantic));
        assert_eq!(f.digest.dir, Path::new("digests"));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, want) in [
            (
                "[[search]]\nname = \"a b\"\nquery = \"x\"",
                "a name is letters",
            ),
            (
                "[[search]]\nname = \"a\"\nquery = \"x\"\n[[search]]\nname = \"a\"\nquery = \"y\"",
                "named twice",
            ),
            ("[[search]]\nname = \"a\"\nquery = \"  \"", "empty"),
            (
                "[[search]]\nname = \"a\"\nquery = \"x\"\nmode = \"fuzzy\"",
                "fuzzy",
            ),
            (
                "[[search]]\nname = \"a\"\nquery = \"x\"\nlimit = 0",
                "limit",
            ),
            (
                "[[search]]\nname = \"a\"\nquery = \"x\"\nfrom = \"2025-13\"",
                "2025-13",
            ),
            ("[[source]]\nkind = \"gopher\"", "gopher"),
            (
                "[[source]]\nkind = \"arxiv\"\nset = \"cs\"\nfrom = \"yesterday\"",
                "not a day",
            ),
            (
                "[[source]]\nkind = \"arxiv\"\nset = \"cs\"\ndelay = \"soon\"",
                "soon",
            ),
            ("[topics]\nk = \"many\"", "many"),
            ("[digest]\ncolour = \"red\"", "colour"),
            ("[[search]\nname = 1", "line 1"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with("feeds/feed.toml: "), "{e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
