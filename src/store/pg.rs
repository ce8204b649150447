//! A collection in PostgreSQL + pgvector, over one or more shards: the store for a
//! collection larger than one machine, many serving processes or several indexers at once.
//!
//! **Schema**, created and upgraded by paperscope (never by hand), each step recorded in
//! `paperscope_migrations` under an advisory lock, so that two indexers starting at once
//! do not both create it: `papers` (the record, a SHA-256 of the embedded text, the vector
//! as `halfvec(dim)` with an HNSW cosine index, a generated `tsvector` with a GIN index)
//! and `paperscope_meta` (the model identity; a store refuses another model, as an index
//! directory does).
//!
//! **Queries** follow [`crate::search`]'s rules with SQL doing each shard's part:
//! - semantic: `ORDER BY embedding <=> q LIMIT n` with `hnsw.iterative_scan =
//!   relaxed_order`, so a selective filter still fills the page (without it pgvector
//!   returns fewer than `n` rows once the graph walk's `ef_search` candidates are spent),
//!   re-sorted exactly afterwards because relaxed order may be slightly off;
//! - keyword: PostgreSQL full-text search (English stemming, title terms weighted by the
//!   title boost), the query's terms OR-ed as BM25 does, ranked by `ts_rank` with length
//!   normalisation. It has no IDF, so it ranks below BM25 (README, "Scaling out");
//! - hybrid: both lists from every shard, merged, fused by [`crate::fusion`] exactly as
//!   for a local index.
//!
//! **Shards** are queried in parallel and their top lists merged. A shard that fails makes
//! the whole query fail with [`Error::Shards`] naming it, unless the query allows a
//! partial answer, and then its [`Page`] lists the shards it lacks.
//!
//! **Writes** are one transaction per shard (upsert by id; a record whose text hash is
//! unchanged keeps its vector, so it is never re-embedded). Across shards a commit is not
//! atomic: a failure on one shard leaves the others committed, and re-running the same
//! `add` completes it (it is idempotent).

use super::{Server, ShardSet};
use crate::embed::{ModelInfo, Vector};
use crate::filter::Filter;
use crate::fusion::{self, Fused};
use crate::paper::{DocId, Paper, PaperId, Score};
use crate::search::{self, Limits, Mode, SearchParams, Sort};
use crate::topics::InMemory;
use futures_util::future::join_all;
use futures_util::TryStreamExt;
use pgvector::HalfVector;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

/// Errors of a PostgreSQL store. Servers are named by `host:port/db` only.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("shard {server} cannot be reached: {reason}")]
    Connect { server: String, reason: String },
    #[error("{}", shards_message(.0))]
    Shards(Vec<ShardFailure>),
    #[error("shard {server}: {reason}")]
    Query { server: String, reason: String },
    #[error("shard {server} holds no paperscope store; create one with `paperscope index --out URL ...`")]
    NoStore { server: String },
    #[error("shard {server} has schema version {found}, newer than this paperscope ({known}); upgrade paperscope")]
    NewerSchema {
        server: String,
        found: i32,
        known: i32,
    },
    #[error("the store at {server} was built with model {store_model} ({store_sha}), not {model} ({model_sha}); vectors of different models are not comparable: use the store's model or build another store")]
    ModelMismatch {
        server: String,
        store_model: String,
        store_sha: String,
        model: String,
        model_sha: String,
    },
    #[error("{0} is not supported on a PostgreSQL store")]
    Unsupported(&'static str),
    #[error(transparent)]
    Search(#[from] search::Error),
}

/// One shard that did not answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShardFailure {
    /// `host:port/db`.
    pub shard: String,
    pub reason: String,
}

fn shards_message(f: &[ShardFailure]) -> String {
    let list: Vec<String> = f
        .iter()
        .map(|f| format!("{} ({})", f.shard, f.reason))
        .collect();
    format!(
        "{} of the store's shards did not answer: {}; no partial answer is given (allow_partial gives one)",
        f.len(),
        list.join(", ")
    )
}

impl Error {
    /// Whether the error is an unreachable or failing shard (HTTP 502/503), rather than
    /// the request's fault or a bug.
    pub fn is_shard_failure(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Shards(_) | Error::Query { .. }
        )
    }

    fn failures(self) -> Vec<ShardFailure> {
        match self {
            Error::Connect { server, reason } | Error::Query { server, reason } => {
                vec![ShardFailure {
                    shard: server,
                    reason,
                }]
            }
            Error::Shards(f) => f,
            other => vec![ShardFailure {
                shard: String::new(),
                reason: other.to_string(),
            }],
        }
    }
}

/// The schema steps, in order; `paperscope_migrations` records those applied. `{dim}`
/// is the model's dimension.
const MIGRATIONS: &[(&str, &str)] = &[(
    "papers, model identity, HNSW and full-text indexes",
    "CREATE EXTENSION IF NOT EXISTS vector;
     CREATE TABLE paperscope_meta (key text PRIMARY KEY, value jsonb NOT NULL);
     CREATE TABLE papers (
         id text PRIMARY KEY,
         title text NOT NULL,
         abstract text NOT NULL,
         authors text[] NOT NULL,
         date text,
         categories text[] NOT NULL,
         url text,
         extra jsonb NOT NULL,
         text_hash bytea NOT NULL,
         embedding halfvec({dim}) NOT NULL,
         tsv tsvector GENERATED ALWAYS AS (
             setweight(to_tsvector('english', title), 'A') ||
             setweight(to_tsvector('english', abstract), 'B')) STORED);
     CREATE INDEX papers_embedding ON papers
         USING hnsw (embedding halfvec_cosine_ops) WITH (m = 16, ef_construction = 128);
     CREATE INDEX papers_tsv ON papers USING gin (tsv);
     CREATE INDEX papers_date ON papers (date COLLATE \"C\");
     CREATE INDEX papers_categories ON papers USING gin (categories);",
)];

/// Candidate list of the HNSW walk; with iterative scan on, pgvector walks further when a
/// filter leaves fewer rows than the query's limit. Same as a local index's default.
const EF_SEARCH: usize = 128;

/// Connections kept per server: queries of one process run on at most this many
/// backends of each shard at once.
const CONNECTIONS: usize = 4;

/// Rows per pipelined batch of upserts.
const WRITE_BATCH: usize = 256;

/// Reconnecting connections to one server, used round robin.
struct Pool {
    server: Server,
    conns: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
}

impl Pool {
    fn new(server: Server) -> Pool {
        Pool {
            server,
            conns: (0..CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A connection, (re)opened if it is not open: a server that restarted is used again
    /// without restarting paperscope.
    async fn get(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, Error> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        let mut guard = self.conns[i].lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = None;
            let (client, conn) = self
                .server
                .config
                .connect(NoTls)
                .await
                .map_err(|e| self.connect_error(&e))?;
            tokio::spawn(async move {
                // Ends when the server closes the connection; the next `get` reconnects.
                let _ = conn.await;
            });
            client
                .batch_execute(&format!(
                    "SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {EF_SEARCH}"
                ))
                .await
                .map_err(|e| self.query_error(&e))?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    fn connect_error(&self, e: &tokio_postgres::Error) -> Error {
        Error::Connect {
            server: self.server.name.clone(),
            reason: reason(e),
        }
    }

    fn query_error(&self, e: &tokio_postgres::Error) -> Error {
        let server = self.server.name.clone();
        if e.is_closed() || e.as_db_error().is_none() {
            Error::Connect {
                server,
                reason: reason(e),
            }
        } else {
            Error::Query {
                server,
                reason: reason(e),
            }
        }
    }
}

/// The error's text with its cause (tokio-postgres puts "connection refused" in the
/// source); neither contains the connection string.
fn reason(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => db.message().to_string(),
        (None, Some(src)) => format!("{e}: {src}"),
        (None, None) => e.to_string(),
    }
}

/// A connection's client; the guard is only taken through [`Pool::get`], which opens it.
fn client<'a>(g: &'a tokio::sync::MutexGuard<'_, Option<Client>>) -> &'a Client {
    g.as_ref()
        .expect("Pool::get returns an open connection. This is a bug.")
}

struct ShardPools {
    primary: Pool,
    replicas: Vec<Pool>,
    next_replica: AtomicUsize,
}

impl ShardPools {
    /// Where reads go: a replica when the shard lists any (round robin), else the primary.
    fn reader(&self) -> &Pool {
        if self.replicas.is_empty() {
            &self.primary
        } else {
            let i = self.next_replica.fetch_add(1, Ordering::Relaxed);
            &self.replicas[i % self.replicas.len()]
        }
    }
}

/// One result, owned (the records live in PostgreSQL, not in this process).
#[derive(Debug, Clone)]
pub struct PgHit {
    pub paper: Paper,
    pub score: Score,
    pub semantic_rank: Option<u32>,
    pub keyword_rank: Option<u32>,
}

/// A page of results, and the shards it lacks when the store allows partial answers.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub hits: Vec<PgHit>,
    pub total: usize,
    /// Shards that did not answer (only with `allow_partial`; else the query failed).
    pub missing: Vec<ShardFailure>,
}

/// What a write did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteReport {
    pub added: usize,
    pub replaced: usize,
    /// Records whose text was unchanged: stored again without embedding.
    pub unchanged: usize,
    pub removed: usize,
    pub not_found: Vec<PaperId>,
    pub embedded: usize,
}

/// A collection in PostgreSQL shards.
pub struct PgStore {
    set: ShardSet,
    shards: Vec<ShardPools>,
    limits: Limits,
}

/// A paper to write with its text hash, and its vector once known.
pub struct Pending {
    pub paper: Paper,
    hash: [u8; 32],
    /// `None` until embedded; [`PgStore::plan`] fills it for unchanged texts.
    pub vector: Option<Vector>,
    existed: bool,
    unchanged: bool,
}

impl PgStore {
    /// A store over `set`; nothing is connected until the first query.
    pub fn new(set: ShardSet, limits: Limits) -> PgStore {
        let shards = set
            .shards
            .iter()
            .map(|s| ShardPools {
                primary: Pool::new(s.primary.clone()),
                replicas: s.replicas.iter().cloned().map(Pool::new).collect(),
                next_replica: AtomicUsize::new(0),
            })
            .collect();
        PgStore {
            set,
            shards,
            limits,
        }
    }

    pub fn shards(&self) -> &ShardSet {
        &self.set
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Creates or upgrades the schema on every primary and records `model` there; refuses a
    /// store of another model.
    ///
    /// # Errors
    /// [`Error::ModelMismatch`], [`Error::NewerSchema`], an unreachable shard.
    pub async fn prepare_for(&self, model: &ModelInfo) -> Result<(), Error> {
        let all = join_all(self.shards.iter().map(|s| migrate(&s.primary, model))).await;
        all.into_iter().collect()
    }

    /// Checks that every shard holds a store of `model`.
    ///
    /// # Errors
    /// [`Error::NoStore`], [`Error::ModelMismatch`], failing shards.
    pub async fn check_model(&self, model: &ModelInfo) -> Result<(), Error> {
        self.fan_out(false, |p: &ShardPools| async move {
            let pool = p.reader();
            let g = pool.get().await?;
            check_stored_model(pool, client(&g), model).await
        })
        .await?;
        Ok(())
    }

    /// Runs `f` on every shard in parallel. Failing shards fail the whole call, unless
    /// `partial` answers are allowed (and some shard answered): then they are returned as
    /// missing.
    async fn fan_out<'a, T, F, Fut>(
        &'a self,
        partial: bool,
        f: F,
    ) -> Result<(Vec<T>, Vec<ShardFailure>), Error>
    where
        F: Fn(&'a ShardPools) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let results = join_all(self.shards.iter().map(f)).await;
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for r in results {
            match r {
                Ok(t) => ok.push(t),
                Err(e) if e.is_shard_failure() => failed.extend(e.failures()),
                Err(e) => return Err(e),
            }
        }
        if !failed.is_empty() && (!partial || ok.is_empty()) {
            return Err(Error::Shards(failed));
        }
        Ok((ok, failed))
    }

    /// Papers for `query` ([`SearchParams::mode`]); `v` is its embedding (all modes but
    /// keyword). The same checks as [`search::Engine::search_embedded`]; `partial`: answer
    /// without the shards that fail, naming them in [`Page::missing`].
    ///
    /// # Errors
    /// [`search::Error::Invalid`] for a bad request, [`Error::Unsupported`] for
    /// explanations, failing shards.
    pub async fn search(
        &self,
        query: &str,
        v: Option<&[f32]>,
        params: &SearchParams,
        partial: bool,
    ) -> Result<Page, Error> {
        self.limits
            .check_text("q", query)
            .map_err(search::Error::from)?;
        params.validate(&self.limits).map_err(search::Error::from)?;
        if params.explain {
            return Err(Error::Unsupported("explain"));
        }
        let need = match params.sort {
            Sort::Relevance => params.offset + params.k,
            Sort::Newest => search::NEWEST_POOL,
        };
        let vector = || {
            v.ok_or(Error::Search(search::Error::Embed(
                crate::embed::Error::Forward("no query embedding given".into()),
            )))
        };
        let (mut papers, mut ranked, mut total, missing) = match params.mode {
            Mode::Semantic => {
                let v = vector()?;
                let (lists, missing) = self
                    .fan_out(partial, |p| semantic_on(p, v, need, &params.filter, &[]))
                    .await?;
                let (papers, list, total) = merge(lists, need);
                (papers, ranked_as(&list, true), total, missing)
            }
            Mode::Keyword => {
                let (lists, missing) = self
                    .fan_out(partial, |p| keyword_on(p, query, None, need, params))
                    .await?;
                let (papers, list, total) = merge(lists, need);
                (papers, ranked_as(&list, false), total, missing)
            }
            Mode::Hybrid => {
                let v = vector()?;
                let depth = need.max(search::HYBRID_CANDIDATES);
                let (lists, missing) = self
                    .fan_out(partial, |p| async move {
                        let (s, k) = tokio::try_join!(
                            semantic_on(p, v, depth, &params.filter, &[]),
                            keyword_on(p, query, Some(v), depth, params)
                        )?;
                        Ok((s, k))
                    })
                    .await?;
                let (sem, kw): (Vec<_>, Vec<_>) = lists.into_iter().unzip();
                let (mut papers, mut semantic, total) = merge(sem, depth);
                let (kw_papers, keyword, _) = merge(kw, depth);
                // As for a local index: keyword candidates that the semantic list missed
                // get their exact cosine (computed by SQL), so fusion sees both scores.
                let seen: HashSet<DocId> = semantic.iter().map(|h| h.0).collect();
                let mut keyword_ids = Vec::with_capacity(keyword.len());
                for (doc, score) in keyword {
                    let (paper, cosine) = kw_papers[doc as usize].clone();
                    let d = match papers.iter().position(|(p, _)| p.id == paper.id) {
                        Some(d) => d as DocId,
                        None => {
                            papers.push((paper, cosine));
                            (papers.len() - 1) as DocId
                        }
                    };
                    if !seen.contains(&d) {
                        semantic.push((d, cosine));
                    }
                    keyword_ids.push((d, score));
                }
                crate::index::sort_hits(&mut semantic);
                let fused = fusion::fuse(&semantic, &keyword_ids, params.fusion);
                (papers, fused, total, missing)
            }
        };
        if params.sort == Sort::Newest {
            ranked.truncate(search::NEWEST_POOL);
            total = total.min(search::NEWEST_POOL);
            ranked.sort_by(|a, b| {
                let date = |f: &Fused| papers[f.doc as usize].0.date.clone();
                date(b).cmp(&date(a))
            });
        }
        let hits = ranked
            .into_iter()
            .skip(params.offset)
            .take(params.k)
            .map(|f| PgHit {
                paper: std::mem::replace(&mut papers[f.doc as usize].0, empty_paper()),
                score: f.score,
                semantic_rank: f.semantic_rank,
                keyword_rank: f.keyword_rank,
            })
            .collect();
        Ok(Page {
            hits,
            total,
            missing,
        })
    }

    /// Papers closest to paper `id` (fetched from its shard), the paper excluded.
    ///
    /// # Errors
    /// [`search::Error::PaperNotFound`], bad parameters, failing shards.
    pub async fn similar(
        &self,
        id: &PaperId,
        params: &SearchParams,
        partial: bool,
    ) -> Result<Page, Error> {
        params.validate(&self.limits).map_err(search::Error::from)?;
        if params.explain {
            return Err(Error::Unsupported("explain"));
        }
        let v = self.vector(id).await?;
        self.rank(&v, params, std::slice::from_ref(id), partial)
            .await
    }

    /// Papers like `rec`'s positives and unlike its negatives, by the same Rocchio query
    /// as over an index directory ([`search::rocchio`]); each example's vector comes from
    /// its shard, and examples are never returned.
    ///
    /// # Errors
    /// [`search::Error::PapersNotFound`] naming every unknown id, bad parameters, failing
    /// shards.
    pub async fn recommend(
        &self,
        rec: &search::Recommend,
        params: &SearchParams,
        partial: bool,
    ) -> Result<Page, Error> {
        params.validate(&self.limits).map_err(search::Error::from)?;
        rec.validate(&self.limits).map_err(search::Error::from)?;
        let fetched = join_all(
            rec.positive
                .iter()
                .chain(&rec.negative)
                .map(|id| self.vector(id)),
        )
        .await;
        let (mut vectors, mut unknown) = (Vec::new(), Vec::new());
        for (id, v) in rec.positive.iter().chain(&rec.negative).zip(fetched) {
            match v {
                Ok(v) => vectors.push(v),
                Err(Error::Search(search::Error::PaperNotFound(_))) => unknown.push(id.clone()),
                Err(e) => return Err(e),
            }
        }
        if !unknown.is_empty() {
            return Err(search::Error::PapersNotFound(unknown).into());
        }
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let (pos, neg) = refs.split_at(rec.positive.len());
        let dim = vectors.first().or(rec.text.as_ref()).map_or(0, Vec::len);
        let q = search::rocchio(dim, rec.text.as_deref(), pos, neg).map_err(search::Error::from)?;
        let exclude: Vec<PaperId> = rec.positive.iter().chain(&rec.negative).cloned().collect();
        self.rank(&q, params, &exclude, partial).await
    }

    /// The semantic ranking of every shard, merged: the page of papers nearest to `v`.
    async fn rank(
        &self,
        v: &[f32],
        params: &SearchParams,
        exclude: &[PaperId],
        partial: bool,
    ) -> Result<Page, Error> {
        let need = params.offset + params.k;
        let (lists, missing) = self
            .fan_out(partial, |p| {
                semantic_on(p, v, need, &params.filter, exclude)
            })
            .await?;
        let (papers, list, total) = merge(lists, need);
        let hits = ranked_as(&list, true)
            .into_iter()
            .skip(params.offset)
            .take(params.k)
            .map(|f| PgHit {
                paper: papers[f.doc as usize].0.clone(),
                score: f.score,
                semantic_rank: f.semantic_rank,
                keyword_rank: None,
            })
            .collect();
        Ok(Page {
            hits,
            total,
            missing,
        })
    }

    /// The stored vector of paper `id`, from the shard that holds it.
    ///
    /// # Errors
    /// [`search::Error::PaperNotFound`], the shard failing.
    pub async fn vector(&self, id: &PaperId) -> Result<Vector, Error> {
        let pool = self.shards[self.set.shard_of(&id.0)].reader();
        let g = pool.get().await?;
        let row = client(&g)
            .query_opt("SELECT embedding FROM papers WHERE id = $1", &[&id.0])
            .await
            .map_err(|e| pool.query_error(&e))?
            .ok_or_else(|| search::Error::PaperNotFound(id.clone()))?;
        Ok(row
            .get::<_, HalfVector>(0)
            .to_vec()
            .iter()
            .map(|h| h.to_f32())
            .collect())
    }

    /// The record of paper `id`.
    ///
    /// # Errors
    /// [`search::Error::PaperNotFound`], the shard failing.
    pub async fn paper(&self, id: &PaperId) -> Result<Paper, Error> {
        let pool = self.shards[self.set.shard_of(&id.0)].reader();
        let g = pool.get().await?;
        let row = client(&g)
            .query_opt(
                &format!("SELECT {PAPER_COLUMNS} FROM papers WHERE id = $1"),
                &[&id.0],
            )
            .await
            .map_err(|e| pool.query_error(&e))?
            .ok_or_else(|| search::Error::PaperNotFound(id.clone()))?;
        Ok(paper_of(&row))
    }

    /// Every paper with its vector, from all shards, in id order: what a topic run over
    /// the whole store clusters. Rows are streamed from each shard and held as `f32` in
    /// memory (4 bytes × dim per paper: 1.5 kB for 384 dimensions), so a topic run needs
    /// the memory of the collection's vectors in one process.
    ///
    /// # Errors
    /// Failing shards (a topic run never goes partial).
    pub async fn collection(&self, dim: usize) -> Result<InMemory, Error> {
        let (parts, _) = self
            .fan_out(false, |p| async move {
                let pool = p.reader();
                let g = pool.get().await?;
                let q = |e: tokio_postgres::Error| pool.query_error(&e);
                let rows = client(&g)
                    .query_raw(
                        &format!("SELECT {PAPER_COLUMNS}, embedding FROM papers"),
                        std::iter::empty::<&str>(),
                    )
                    .await
                    .map_err(q)?;
                futures_util::pin_mut!(rows);
                let mut out = Vec::new();
                while let Some(row) = rows.try_next().await.map_err(q)? {
                    let v: Vec<f32> = row
                        .get::<_, HalfVector>(8)
                        .to_vec()
                        .iter()
                        .map(|h| h.to_f32())
                        .collect();
                    out.push((paper_of(&row), v));
                }
                Ok(out)
            })
            .await?;
        let mut rows: Vec<(Paper, Vec<f32>)> = parts.into_iter().flatten().collect();
        rows.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(InMemory::new(dim, rows))
    }

    /// Live papers on all shards.
    ///
    /// # Errors
    /// Failing shards.
    pub async fn count(&self) -> Result<usize, Error> {
        let (counts, _) = self
            .fan_out(false, |p| async move {
                let pool = p.reader();
                let g = pool.get().await?;
                let n: i64 = client(&g)
                    .query_one("SELECT count(*) FROM papers", &[])
                    .await
                    .map_err(|e| pool.query_error(&e))?
                    .get(0);
                Ok(n as usize)
            })
            .await?;
        Ok(counts.into_iter().sum())
    }

    /// Which of `papers` need a vector: those new to the store or whose text changed. The
    /// others get their stored vector back and are not embedded again. The result is
    /// grouped by shard, not in the order of `papers`.
    ///
    /// # Errors
    /// Failing shards (writes never go partial).
    pub async fn plan(&self, papers: Vec<Paper>) -> Result<Vec<Pending>, Error> {
        let mut by_shard: Vec<Vec<Pending>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        for paper in papers {
            let hash: [u8; 32] = Sha256::digest(paper.text().as_bytes()).into();
            by_shard[self.set.shard_of(&paper.id.0)].push(Pending {
                paper,
                hash,
                vector: None,
                existed: false,
                unchanged: false,
            });
        }
        let planned = join_all(self.shards.iter().zip(by_shard).map(
            |(s, mut pending)| async move {
                let pool = &s.primary;
                let g = pool.get().await?;
                let ids: Vec<&str> = pending.iter().map(|p| p.paper.id.0.as_str()).collect();
                let rows = client(&g)
                    .query(
                        "SELECT id, text_hash, embedding FROM papers WHERE id = ANY($1)",
                        &[&ids],
                    )
                    .await
                    .map_err(|e| pool.query_error(&e))?;
                let stored: HashMap<String, (Vec<u8>, HalfVector)> = rows
                    .iter()
                    .map(|r| (r.get(0), (r.get(1), r.get(2))))
                    .collect();
                for p in &mut pending {
                    if let Some((hash, v)) = stored.get(&p.paper.id.0) {
                        p.existed = true;
                        if hash.as_slice() == p.hash {
                            p.unchanged = true;
                            p.vector = Some(v.to_vec().iter().map(|h| h.to_f32()).collect());
                        }
                    }
                }
                Ok::<_, Error>(pending)
            },
        ))
        .await;
        let mut all = Vec::new();
        for p in planned {
            all.extend(p?);
        }
        Ok(all)
    }

    /// Writes `pending` (every vector filled in) and deletes `removals`, one transaction
    /// per shard.
    ///
    /// # Errors
    /// Failing shards; a paper without a vector is a bug.
    pub async fn write(
        &self,
        pending: Vec<Pending>,
        removals: &[PaperId],
    ) -> Result<WriteReport, Error> {
        let mut by_shard: Vec<(Vec<Pending>, Vec<&str>)> =
            (0..self.shards.len()).map(|_| Default::default()).collect();
        for p in pending {
            by_shard[self.set.shard_of(&p.paper.id.0)].0.push(p);
        }
        for id in removals {
            by_shard[self.set.shard_of(&id.0)].1.push(&id.0);
        }
        let results = join_all(
            self.shards
                .iter()
                .zip(by_shard)
                .map(|(s, (pending, removals))| write_shard(&s.primary, pending, removals)),
        )
        .await;
        let mut report = WriteReport::default();
        let mut failed = Vec::new();
        for r in results {
            match r {
                Ok(r) => {
                    report.added += r.added;
                    report.replaced += r.replaced;
                    report.unchanged += r.unchanged;
                    report.removed += r.removed;
                    report.not_found.extend(r.not_found);
                }
                Err(e) => failed.extend(e.failures()),
            }
        }
        if !failed.is_empty() {
            return Err(Error::Shards(failed));
        }
        Ok(report)
    }
}

/// Creates or upgrades the schema of one primary, and records or checks the model.
async fn migrate(pool: &Pool, model: &ModelInfo) -> Result<(), Error> {
    let mut g = pool.get().await?;
    let c = g
        .as_mut()
        .expect("Pool::get returns an open connection. This is a bug.");
    let q = |e: tokio_postgres::Error| pool.query_error(&e);
    let tx = c.transaction().await.map_err(q)?;
    // One migrator at a time per database; the lock ends with the transaction.
    tx.execute("SELECT pg_advisory_xact_lock(7305262)", &[])
        .await
        .map_err(q)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS paperscope_migrations (
             version int PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(q)?;
    let done: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM paperscope_migrations",
            &[],
        )
        .await
        .map_err(q)?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if done > known {
        return Err(Error::NewerSchema {
            server: pool.server.name.clone(),
            found: done,
            known,
        });
    }
    for (i, (description, sql)) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(&sql.replace("{dim}", &model.dim.to_string()))
            .await
            .map_err(q)?;
        tx.execute(
            "INSERT INTO paperscope_migrations (version, description) VALUES ($1, $2)",
            &[&(i as i32 + 1), description],
        )
        .await
        .map_err(q)?;
    }
    let value = serde_json::to_value(model).expect("ModelInfo serialises. This is a bug.");
    tx.execute(
        "INSERT INTO paperscope_meta (key, value) VALUES ('model', $1) ON CONFLICT (key) DO NOTHING",
        &[&value],
    )
    .await
    .map_err(q)?;
    check_stored_model(pool, &tx, model).await?;
    tx.commit().await.map_err(q)
}

async fn check_stored_model(
    pool: &Pool,
    c: &impl tokio_postgres::GenericClient,
    model: &ModelInfo,
) -> Result<(), Error> {
    let row = c
        .query_opt("SELECT value FROM paperscope_meta WHERE key = 'model'", &[])
        .await
        .map_err(|e| match e.as_db_error().map(|d| d.code()) {
            Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Error::NoStore {
                server: pool.server.name.clone(),
            },
            _ => pool.query_error(&e),
        })?
        .ok_or_else(|| Error::NoStore {
            server: pool.server.name.clone(),
        })?;
    let stored: ModelInfo = serde_json::from_value(row.get(0)).map_err(|e| Error::Query {
        server: pool.server.name.clone(),
        reason: format!("unreadable model record: {e}"),
    })?;
    if stored.weights_sha256 != model.weights_sha256
        || stored.pooling != model.pooling
        || stored.dim != model.dim
    {
        return Err(Error::ModelMismatch {
            server: pool.server.name.clone(),
            store_model: stored.name,
            store_sha: stored.weights_sha256,
            model: model.name.clone(),
            model_sha: model.weights_sha256.clone(),
        });
    }
    Ok(())
}

/// Writes one shard's part of a commit as one transaction.
async fn write_shard(
    pool: &Pool,
    pending: Vec<Pending>,
    removals: Vec<&str>,
) -> Result<WriteReport, Error> {
    let mut report = WriteReport::default();
    if pending.is_empty() && removals.is_empty() {
        return Ok(report);
    }
    let mut g = pool.get().await?;
    let c = g
        .as_mut()
        .expect("Pool::get returns an open connection. This is a bug.");
    let q = |e: tokio_postgres::Error| pool.query_error(&e);
    let tx = c.transaction().await.map_err(q)?;
    let upsert = tx
        .prepare(&format!(
            "INSERT INTO papers ({PAPER_COLUMNS}, text_hash, embedding)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET title = $2, abstract = $3, authors = $4, date = $5,
                 categories = $6, url = $7, extra = $8, text_hash = $9, embedding = $10"
        ))
        .await
        .map_err(q)?;
    for chunk in pending.chunks(WRITE_BATCH) {
        // Pipelined: the batch's statements are sent without waiting for each reply.
        let writes = chunk.iter().map(|p| {
            let v = p
                .vector
                .as_deref()
                .expect("every paper is embedded before writing. This is a bug.");
            let paper = &p.paper;
            let extra = serde_json::Value::Object(paper.extra.clone());
            let v = HalfVector::from_f32_slice(v);
            let tx = &tx;
            let upsert = &upsert;
            async move {
                tx.execute(
                    upsert,
                    &[
                        &paper.id.0,
                        &paper.title,
                        &paper.abstract_,
                        &paper.authors,
                        &paper.date,
                        &paper.categories,
                        &paper.url,
                        &extra,
                        &p.hash.as_slice(),
                        &v,
                    ],
                )
                .await
            }
        });
        for r in join_all(writes).await {
            r.map_err(q)?;
        }
        for p in chunk {
            match (p.existed, p.unchanged) {
                (false, _) => report.added += 1,
                (true, false) => report.replaced += 1,
                (true, true) => report.unchanged += 1,
            }
        }
    }
    if !removals.is_empty() {
        let deleted = tx
            .query(
                "DELETE FROM papers WHERE id = ANY($1) RETURNING id",
                &[&removals],
            )
            .await
            .map_err(q)?;
        let deleted: HashSet<String> = deleted.iter().map(|r| r.get(0)).collect();
        report.removed = deleted.len();
        report.not_found = removals
            .iter()
            .filter(|id| !deleted.contains(**id))
            .map(|id| PaperId(id.to_string()))
            .collect();
    }
    tx.commit().await.map_err(q)?;
    Ok(report)
}

const PAPER_COLUMNS: &str = "id, title, abstract, authors, date, categories, url, extra";

fn paper_of(row: &Row) -> Paper {
    let extra: serde_json::Value = row.get(7);
    Paper {
        id: PaperId(row.get(0)),
        title: row.get(1),
        abstract_: row.get(2),
        authors: row.get(3),
        date: row.get(4),
        categories: row.get(5),
        url: row.get(6),
        extra: match extra {
            serde_json::Value::Object(m) => m,
            _ => Default::default(),
        },
    }
}

fn empty_paper() -> Paper {
    Paper {
        id: PaperId(String::new()),
        title: String::new(),
        abstract_: String::new(),
        authors: Vec::new(),
        date: None,
        categories: Vec::new(),
        url: None,
        extra: Default::default(),
    }
}

/// One shard's ranked list: each paper with its score and (keyword lists) its cosine to
/// the query, and the number of papers it ranked over.
struct ShardList {
    hits: Vec<(Paper, Score, Score)>,
    total: usize,
}

/// The filter as SQL over `$first..`; its parameters are appended to `args`.
fn filter_sql(filter: &Filter, first: usize, args: &mut Vec<String>) -> String {
    let mut sql = String::from("TRUE");
    let mut n = first;
    if let Some(c) = &filter.category {
        match c
            .strip_suffix('*')
            .or_else(|| c.ends_with('.').then_some(c.as_str()))
        {
            Some(prefix) => {
                sql += &format!(
                    " AND EXISTS (SELECT 1 FROM unnest(categories) c WHERE starts_with(c, ${n}))"
                );
                args.push(prefix.to_string());
            }
            None => {
                sql += &format!(" AND ${n} = ANY(categories)");
                args.push(c.clone());
            }
        }
        n += 1;
    }
    // Dates are YYYY-MM-DD text; a bound covers its whole month or year (as
    // `crate::text::date` compares them).
    if let Some(f) = &filter.from {
        sql += &format!(" AND date COLLATE \"C\" >= ${n}");
        args.push(f.clone());
        n += 1;
    }
    if let Some(t) = &filter.to {
        sql += &format!(" AND left(date, {}) COLLATE \"C\" <= ${n}", t.len());
        args.push(t.clone());
    }
    sql
}

fn params_of<'a>(
    fixed: &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)],
    args: &'a [String],
) -> Vec<&'a (dyn tokio_postgres::types::ToSql + Sync)> {
    fixed
        .iter()
        .copied()
        .chain(
            args.iter()
                .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)),
        )
        .collect()
}

/// One shard's nearest papers to `v` that pass the filter and are not excluded.
async fn semantic_on(
    p: &ShardPools,
    v: &[f32],
    need: usize,
    filter: &Filter,
    exclude: &[PaperId],
) -> Result<ShardList, Error> {
    let pool = p.reader();
    let g = pool.get().await?;
    let mut args = Vec::new();
    let where_ = filter_sql(filter, 4, &mut args);
    let q = HalfVector::from_f32_slice(v);
    let excluded: Vec<&str> = exclude.iter().map(|i| i.0.as_str()).collect();
    let limit = need as i64;
    let fixed: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&q, &limit, &excluded];
    let sql = format!(
        "WITH c AS MATERIALIZED (
             SELECT {PAPER_COLUMNS}, embedding <=> $1 AS d FROM papers
             WHERE {where_} AND id <> ALL($3) ORDER BY embedding <=> $1 LIMIT $2)
         SELECT *, 1 - d FROM c ORDER BY d"
    );
    let mut count_args = Vec::new();
    let count_where = filter_sql(filter, 2, &mut count_args);
    let count = format!("SELECT count(*) FROM papers WHERE {count_where} AND id <> ALL($1)");
    let c = client(&g);
    let all = params_of(&fixed, &args);
    let count_fixed: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&excluded];
    let count_args = params_of(&count_fixed, &count_args);
    let (rows, n) = tokio::try_join!(c.query(&sql, &all), c.query_one(&count, &count_args))
        .map_err(|e| pool.query_error(&e))?;
    let total: i64 = n.get(0);
    Ok(ShardList {
        hits: rows
            .iter()
            .map(|r| {
                let s: f64 = r.get(9);
                (paper_of(r), s as Score, s as Score)
            })
            .collect(),
        total: total as usize,
    })
}

/// The ts_rank weights {D, C, B, A} for a title boost: title (A) terms count `boost`
/// times abstract (B) terms, the larger weight 1 (ts_rank takes weights up to 1).
fn weights(title_boost: Score) -> Vec<f32> {
    let (a, b) = if title_boost >= 1.0 {
        (1.0, 1.0 / title_boost)
    } else {
        (title_boost, 1.0)
    };
    vec![0.0, 0.0, b, a]
}

/// ts_rank normalisation: 1 divides by 1 + log(document length), BM25's length
/// normalisation in spirit.
const RANK_NORMALIZATION: i32 = 1;

/// One shard's papers containing a query term, best first; with `v`, each carries its
/// cosine to the query as well.
async fn keyword_on(
    p: &ShardPools,
    query: &str,
    v: Option<&[f32]>,
    need: usize,
    params: &SearchParams,
) -> Result<ShardList, Error> {
    let pool = p.reader();
    let g = pool.get().await?;
    let mut args = Vec::new();
    let where_ = filter_sql(&params.filter, 4, &mut args);
    let limit = need as i64;
    let w = weights(params.title_boost);
    let text = query.to_string();
    let fixed: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&text, &limit, &w];
    let q = v.map(HalfVector::from_f32_slice);
    // The query vector, when given, is the last parameter.
    let cosine = match v {
        Some(_) => format!("1 - (embedding <=> ${})", 4 + args.len()),
        None => "0::float8".to_string(),
    };
    let mut all = params_of(&fixed, &args);
    if let Some(q) = &q {
        all.push(q);
    }
    // The query's stemmed terms OR-ed (as BM25 scores any term), quoted so that no
    // character of the user's text is tsquery syntax.
    let sql = format!(
        "WITH q AS (SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(t), ' | '), '')) AS q
                    FROM unnest(tsvector_to_array(to_tsvector('english', $1))) t)
         SELECT {PAPER_COLUMNS}, ts_rank($3, tsv, q.q, {RANK_NORMALIZATION})::float8 AS r,
                {cosine}, count(*) OVER ()
         FROM papers, q WHERE tsv @@ q.q AND {where_}
         ORDER BY r DESC, id LIMIT $2"
    );
    let rows = client(&g)
        .query(&sql, &all)
        .await
        .map_err(|e| pool.query_error(&e))?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(10) as usize);
    Ok(ShardList {
        hits: rows
            .iter()
            .map(|r| {
                let (s, c): (f64, f64) = (r.get(8), r.get(9));
                (paper_of(r), s as Score, c as Score)
            })
            .collect(),
        total,
    })
}

/// Every shard's lists merged: the papers with their cosine to the query, the ranking as
/// positions among those papers with scores, and the summed total.
type Merged = (Vec<(Paper, Score)>, Vec<(DocId, Score)>, usize);

/// Every shard's list merged into the best `need`: the papers (with their cosine), the
/// ranking by position in that vector, and the summed total.
fn merge(lists: Vec<ShardList>, need: usize) -> Merged {
    let total = lists.iter().map(|l| l.total).sum();
    let mut all: Vec<(Paper, Score, Score)> = lists.into_iter().flat_map(|l| l.hits).collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
    all.truncate(need);
    let ranking = all
        .iter()
        .enumerate()
        .map(|(i, h)| (i as DocId, h.1))
        .collect();
    let papers = all.into_iter().map(|(p, _, c)| (p, c)).collect();
    (papers, ranking, total)
}

/// A single list as [`Fused`] entries, with its rank recorded on its side.
fn ranked_as(hits: &[(DocId, Score)], semantic: bool) -> Vec<Fused> {
    hits.iter()
        .enumerate()
        .map(|(i, &(doc, score))| {
            let rank = Some(i as u32 + 1);
            Fused {
                doc,
                score,
                semantic_rank: if semantic { rank } else { None },
                keyword_rank: if semantic { None } else { rank },
            }
        })
        .collect()
}
