//! `paperscope sync`: the daily run. Harvest what the feed file names since the last
//! sync, apply it to the index as one commit (new papers in, changed ones replaced,
//! deletions out), then say what is new: each saved search's new hits, the topics' new
//! papers, new and growing topics (ids kept by [`crate::topics::lineage`]) — the
//! [`Digest`], written as Markdown, HTML and JSON.
//!
//! **State.** Beside the feed file, `NAME.sync/` holds `state.json` (per source, the last
//! day harvested; the number and time of the last sync) and the harvested files. The
//! state is replaced only after the commit and the digest are written: a sync that fails
//! or is killed is simply run again, and it harvests the same days again (a harvest never
//! leaves a half file, and records already in the index are recognised as unchanged).
//!
//! **Days.** A harvester source asks for the days from its last sync's end (inclusive:
//! records of that day that arrived after the last run are still found) to today (UTC, or
//! `--until`); the first sync starts at the source's `from`, else yesterday.

use super::digest::{Digest, Item, SearchReport, SourceReport, TopicItem, TopicsSection};
use super::{FeedFile, Source};
use crate::cancel::Cancel;
use crate::corpus::{self, ReadOptions};
use crate::embed::Encoder;
use crate::harvest;
use crate::index::{self, BuildOptions, Index};
use crate::search::{Engine, Limits};
use crate::text::date;
use crate::topics::{self, History, Status, TopicParams};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Errors of a sync; each names what failed. Nothing is half-applied (see the module doc).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("source {source_name}: {error}")]
    Harvest {
        source_name: String,
        #[source]
        error: Box<harvest::Error>,
    },
    #[error(transparent)]
    Corpus(#[from] corpus::Error),
    #[error(transparent)]
    Index(#[from] index::Error),
    #[error(transparent)]
    Search(#[from] crate::search::Error),
    #[error("topics: {0}")]
    Topics(#[from] topics::Error),
    #[error(transparent)]
    History(#[from] topics::lineage::Error),
    #[error("saved search {name:?}: {error}")]
    SavedSearch {
        name: String,
        error: crate::search::Error,
    },
    #[error("{path} is not an index and this sync found no papers to start one with")]
    NothingToIndex { path: PathBuf },
    #[error("sync state {path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rendering the digest: {0}")]
    Render(#[from] askama::Error),
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Last day to harvest, `YYYY-MM-DD`. Default: today (UTC).
    pub until: Option<String>,
}

/// What a sync did, and where its digest went.
#[derive(Debug)]
pub struct Synced {
    pub digest: Digest,
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub json: PathBuf,
    /// Problems with input records (skipped or fixed lines), as `file:line: reason`.
    pub problems: Vec<String>,
}

/// `state.json` (see the module doc).
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    syncs: u64,
    last_at: Option<String>,
    /// The index the feed was last synced into.
    index: Option<String>,
    /// Per [`Source::key`]: the last day harvested.
    sources: BTreeMap<String, SourceState>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SourceState {
    until: String,
}

impl State {
    fn load(path: &Path) -> Result<State, Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State {
                path: path.to_path_buf(),
                reason: format!("{e}; delete it to start over (the next sync then starts at each source's `from`)"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                version: 1,
                ..State::default()
            }),
            Err(e) => Err(Error::State {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        }
    }

    fn save(&self, path: &Path) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(self).expect("the state always serialises");
        crate::persist::replace_file(path, &bytes).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The folder of a feed file's sync state and harvested files.
pub fn state_dir(feed: &FeedFile) -> PathBuf {
    let stem = feed
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "feed".into());
    feed.base_dir().join(format!("{stem}.sync"))
}

/// Runs one sync of `feed` into the index at `index_dir` (created by the first sync if
/// absent). See the module doc.
///
/// # Errors
/// See [`Error`]; the index and the state are then as before (or the index holds the
/// commit and the next sync finds its records unchanged).
pub fn sync(
    index_dir: &Path,
    feed: &FeedFile,
    encoder: &dyn Encoder,
    opts: &Options,
    progress: impl FnMut(index::Progress),
) -> Result<Synced, Error> {
    let dir = state_dir(feed);
    let state_path = dir.join("state.json");
    let mut state = State::load(&state_path)?;
    let until = opts.until.clone().unwrap_or_else(date::today);
    let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();

    // 1. Harvest.
    let mut files = Vec::new();
    let mut sources = Vec::new();
    for source in &feed.sources {
        let key = source.key();
        let from = state
            .sources
            .get(&key)
            .map(|s| s.until.clone())
            .or_else(|| source.from().map(str::to_string))
            .or_else(|| date::add_days(&until, -1))
            .unwrap_or_else(|| until.clone());
        let out = dir.join("harvest").join(format!("{}.jsonl", slug(&key)));
        let report = match source {
            Source::Arxiv {
                set,
                categories,
                base_url,
                delay,
                timeout,
                retries,
                ..
            } => {
                let mut o = harvest::arxiv::Options::new(set, Some(&from));
                o.categories = categories.clone();
                o.until = Some(until.clone());
                if let Some(u) = base_url {
                    o.base_url = u.clone();
                }
                o.delay = delay.unwrap_or(o.delay);
                o.timeout = timeout.unwrap_or(o.timeout);
                o.retries = retries.unwrap_or(o.retries);
                Some(harvest::arxiv::harvest(&o, &out))
            }
            Source::HfDaily {
                base_url,
                delay,
                timeout,
                retries,
                ..
            } => {
                let mut o = harvest::hf_daily::Options::new(&from);
                o.until = Some(until.clone());
                if let Some(u) = base_url {
                    o.base_url = u.clone();
                }
                o.delay = delay.unwrap_or(o.delay);
                o.timeout = timeout.unwrap_or(o.timeout);
                o.retries = retries.unwrap_or(o.retries);
                Some(harvest::hf_daily::harvest(&o, &out))
            }
            Source::File { path } => {
                let path = feed.resolve(path);
                // Read alone for its own counts; read again below with the others, where
                // the last record of an id wins across files.
                let own = corpus::read_files(std::slice::from_ref(&path), &ReadOptions::default())?;
                sources.push(SourceReport {
                    source: key.clone(),
                    from: None,
                    until: None,
                    records: own.papers.len(),
                    deleted: own.deleted.len(),
                });
                files.push(path);
                None
            }
        };
        match report {
            Some(Ok(r)) => {
                sources.push(SourceReport {
                    source: key,
                    from: Some(from),
                    until: Some(until.clone()),
                    records: r.records,
                    deleted: r.deleted,
                });
                files.push(r.out);
            }
            Some(Err(error)) => {
                return Err(Error::Harvest {
                    source_name: key,
                    error: Box::new(error),
                })
            }
            None => {}
        }
    }

    // 2. Apply: one commit.
    let corpus = corpus::read_files(&files, &ReadOptions::default())?;
    let problems: Vec<String> = corpus
        .report
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect();
    let before = match index_dir.join("manifest.json").exists() {
        true => Some(Index::open(index_dir)?),
        false => None,
    };
    let mut added = Vec::new();
    let mut replaced = 0;
    for p in &corpus.papers {
        match before.as_ref().and_then(|i| i.doc_id(&p.id)) {
            None => added.push(p.id.clone()),
            Some(d) if before.as_ref().is_some_and(|i| i.paper(d) != p) => replaced += 1,
            Some(_) => {}
        }
    }
    let unchanged = corpus.papers.len() - added.len() - replaced;
    let file_names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let report = match &before {
        Some(_) => index::commit(
            index_dir,
            index::Changes {
                upserts: corpus.papers,
                removals: corpus.deleted,
                sources: file_names,
            },
            encoder,
            index::Merge::Auto,
            progress,
        )?,
        None if corpus.papers.is_empty() => {
            return Err(Error::NothingToIndex {
                path: index_dir.to_path_buf(),
            })
        }
        None => index::build(
            index_dir,
            corpus.papers,
            encoder,
            &BuildOptions {
                sources: file_names,
                ..BuildOptions::default()
            },
            progress,
        )?,
    };
    drop(before);

    // 3. What is new.
    let engine = Engine::open(index_dir, Limits::command_line())?;
    let new_ids: HashSet<&str> = added.iter().map(|id| id.0.as_str()).collect();
    let per_section = feed.digest.per_section;
    let mut searches = Vec::new();
    for s in &feed.searches {
        let matched = saved_search(&engine, s, encoder).map_err(|error| Error::SavedSearch {
            name: s.name.clone(),
            error,
        })?;
        searches.push(SearchReport {
            name: s.name.clone(),
            query: s.query.clone(),
            new: matched
                .into_iter()
                .filter(|p| new_ids.contains(p.id.0.as_str()))
                .take(per_section)
                .map(Item::new)
                .collect(),
            limit: s.limit.unwrap_or(super::DEFAULT_LIMIT),
        });
    }
    let topics = match feed.topics.enabled {
        Some(false) => None,
        _ => Some(topics_section(index_dir, feed, &engine, encoder, &new_ids)?),
    };

    let digest = Digest {
        title: feed.digest.title.clone(),
        sync: state.syncs + 1,
        at: at.clone(),
        since: state.last_at.clone(),
        index: index_dir.display().to_string(),
        generation: report.generation,
        papers: report.papers,
        sources,
        added: added.len(),
        replaced,
        removed: report.removed,
        unchanged,
        searches,
        topics,
    };

    // 4. Write the digest, then the state.
    let digests = feed.resolve(&feed.digest.dir);
    let stem = format!("{}-sync{:03}", &until, digest.sync);
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, Error> {
        let path = digests.join(name);
        crate::persist::replace_file(&path, bytes).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let md = digest.markdown();
    let html = digest.html()?;
    let json = serde_json::to_vec_pretty(&digest).expect("a digest always serialises");
    let markdown = write(&format!("{stem}.md"), md.as_bytes())?;
    let html_path = write(&format!("{stem}.html"), html.as_bytes())?;
    let json_path = write(&format!("{stem}.json"), &json)?;
    write("latest.md", md.as_bytes())?;
    write("latest.html", html.as_bytes())?;

    for source in &feed.sources {
        if !matches!(source, Source::File { .. }) {
            state.sources.insert(
                source.key(),
                SourceState {
                    until: until.clone(),
                },
            );
        }
    }
    state.syncs += 1;
    state.last_at = Some(at);
    state.index = Some(index_dir.display().to_string());
    state.save(&state_path)?;
    Ok(Synced {
        digest,
        markdown,
        html: html_path,
        json: json_path,
        problems,
    })
}

/// The digest's topics part: the feed's selection clustered, ids continued from the
/// previous run, this sync's new papers placed in their topics.
fn topics_section(
    index_dir: &Path,
    feed: &FeedFile,
    engine: &Engine,
    encoder: &dyn Encoder,
    new_ids: &HashSet<&str>,
) -> Result<TopicsSection, Error> {
    let params = TopicParams {
        query: feed.topics.query.clone(),
        k: match &feed.topics.k {
            Some(k) => k.parse()?,
            None => topics::KChoice::Auto,
        },
        limits: topics::Limits::batch(),
        ..TopicParams::default()
    };
    let history = History::for_index(index_dir, &params);
    let previous = history.load()?;
    let params = TopicParams {
        prefer_k: previous.as_ref().map(|p| p.topics.len()),
        ..params
    };
    let mut report = topics::run(engine, &params, encoder, &Cancel::never())?;
    let snapshot = history.apply(&mut report, previous.as_ref(), engine.index().generation());
    history.save(&snapshot)?;
    let per_section = feed.digest.per_section;
    let item = |t: &topics::Topic| -> TopicItem {
        let new: Vec<Item> = t
            .papers
            .iter()
            .filter(|p| new_ids.contains(p.0.as_str()))
            .filter_map(|p| engine.paper(p).ok())
            .map(Item::new)
            .collect();
        TopicItem {
            id: t.id,
            label: t.label.clone(),
            size: t.size,
            previous_size: t.previous_size,
            growth: t.growth,
            new_count: new.len(),
            new: new.into_iter().take(per_section).collect(),
        }
    };
    let by_status = |s: Status| -> Vec<TopicItem> {
        report
            .topics
            .iter()
            .filter(|t| t.status == Some(s))
            .map(item)
            .collect()
    };
    let mut with_new: Vec<TopicItem> = report
        .topics
        .iter()
        .map(item)
        .filter(|t| t.new_count > 0)
        .collect();
    with_new.sort_by_key(|t| (std::cmp::Reverse(t.new_count), t.id));
    let history = report
        .history
        .clone()
        .expect("History::apply always sets the report's history. This is a bug.");
    Ok(TopicsSection {
        selection: match &params.query {
            Some(q) => format!("the papers about “{q}”"),
            None => "the whole collection".into(),
        },
        topics: report.topics.len(),
        new: by_status(Status::New),
        grown: by_status(Status::Grown),
        gone: history
            .gone
            .iter()
            .map(|g| (g.id, g.label.clone(), g.size))
            .collect(),
        with_new,
        previous_at: history.previous_at,
    })
}

/// [`super::matches`] with the query embedded here.
fn saved_search<'a>(
    engine: &'a Engine,
    s: &super::SavedSearch,
    encoder: &dyn Encoder,
) -> Result<Vec<&'a crate::paper::Paper>, crate::search::Error> {
    let qv = match s.params()?.needs_embedding() {
        true => {
            engine.check_model(encoder.info())?;
            Some(encoder.embed_one(&s.query)?)
        }
        false => None,
    };
    super::matches(engine, s, qv.as_deref(), encoder)
}

/// `key` as a file name.
fn slug(key: &str) -> String {
    let s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let hash = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
    format!("{}-{:08x}", s.trim_matches('-'), hash as u32)
}
