//! The front door for queries: [`Engine`] answers "papers about this text", "papers like
//! this paper" and "papers like these, unlike those" over one [`Index`].
//!
//! The CLI and the HTTP service both build a [`SearchParams`], call the engine and format
//! its [`Results`]; neither holds search logic of its own.
//!
//! **Filters keep full pages.** With a category or date filter, HNSW search runs with the
//! filter applied inside the graph walk; when the filter is selective the walk can run out
//! of matching candidates before it has `offset + k` of them. Then (and whenever fewer than
//! [`index::EXACT_SCAN_BELOW`] papers match at all) the store scans the matching papers
//! exactly, so a filtered query returns a full page whenever enough papers match (see
//! [`Index::nearest`]).
//!
//! **Three [`Mode`]s** answer a text query: `semantic` (nearest embeddings), `keyword`
//! (BM25 over the [`crate::keyword`] index) and `hybrid` (both, fused by
//! [`crate::fusion`]), the default because on SciFact it beats either alone (README,
//! "Hybrid search"). All three take the same filters and pages. Hybrid fuses the top
//! [`HYBRID_CANDIDATES`] (or `offset + k`, if more) of each list, so pages within the
//! first [`HYBRID_CANDIDATES`] results come from one fused ranking and follow each other
//! exactly.

use crate::embed::{self, Encoder, ModelInfo, Vector};
use crate::explain::{self, Explanation};
use crate::fusion::{self, Fused, Fusion};
use crate::index::{self, Index};
use crate::keyword::{self, KeywordIndex};
use crate::paper::{DocId, Paper, PaperId, Score};
use crate::text::date::Period;
use crate::vector;
use std::collections::HashSet;
use std::path::Path;

/// Errors of answering a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown paper id: {0}")]
    PaperNotFound(PaperId),
    #[error("unknown paper ids: {}", .0.iter().map(|i| i.0.as_str()).collect::<Vec<_>>().join(", "))]
    PapersNotFound(Vec<PaperId>),
    /// The request itself is wrong: the caller can fix it.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Index(#[from] index::Error),
    #[error(transparent)]
    Embed(#[from] embed::Error),
    #[error(transparent)]
    Keyword(#[from] keyword::Error),
}

/// A mistake in a request, with a stable machine-readable [`Invalid::code`] each: the
/// library decides what is valid, the HTTP and command-line layers only report it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    #[error("the query is empty")]
    EmptyQuery,
    #[error("{name} has {chars} characters; the limit is {max}")]
    TooLong {
        name: &'static str,
        chars: usize,
        max: usize,
    },
    #[error("k must be in 1..={max}, got {k}")]
    K { k: usize, max: usize },
    #[error("offset must be at most {max}, got {offset}")]
    Offset { offset: usize, max: usize },
    #[error("with explain, k must be at most {max}, got {k}")]
    ExplainK { k: usize, max: usize },
    #[error("'{name}' must be YYYY-MM-DD, YYYY-MM or YYYY (a real date), got '{value}'")]
    Date { name: &'static str, value: String },
    #[error("'from' ({from}) is after 'to' ({to})")]
    DateOrder { from: String, to: String },
    #[error("unknown mode '{0}': expected semantic, keyword or hybrid")]
    Mode(String),
    #[error("unknown sort '{0}': expected relevance, date or newest")]
    Sort(String),
    #[error("{0}")]
    Fusion(String),
    #[error("title boost must be a finite number >= 0, got {0}")]
    TitleBoost(f32),
    #[error("{ids} example ids; the limit is {max}")]
    TooManyIds { ids: usize, max: usize },
    #[error("recommend needs at least one positive id or a text")]
    NothingToRecommend,
    #[error("positives and negatives cancel out; nothing to recommend from")]
    Cancelling,
    #[error("query vector has {got} dimensions, the index {want}")]
    Dimensions { got: usize, want: usize },
}

impl Invalid {
    /// One code per mistake, for APIs (`{"error": {"code": ...}}`).
    pub fn code(&self) -> &'static str {
        match self {
            Invalid::EmptyQuery => "empty_query",
            Invalid::TooLong { .. } => "query_too_long",
            Invalid::K { .. } => "invalid_k",
            Invalid::Offset { .. } => "invalid_offset",
            Invalid::ExplainK { .. } => "explain_k_too_large",
            Invalid::Date { .. } => "invalid_date",
            Invalid::DateOrder { .. } => "invalid_date_range",
            Invalid::Mode(_) => "invalid_mode",
            Invalid::Sort(_) => "invalid_sort",
            Invalid::Fusion(_) => "invalid_fusion",
            Invalid::TitleBoost(_) => "invalid_title_boost",
            Invalid::TooManyIds { .. } => "too_many_ids",
            Invalid::NothingToRecommend | Invalid::Cancelling => "nothing_to_recommend",
            Invalid::Dimensions { .. } => "invalid_vector",
        }
    }
}

/// How much one request may ask for. [`Limits::default`] are the HTTP service's (README,
/// "Limits"); [`Limits::command_line`] lifts those that only protect a shared server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest query (or recommend text), in characters. Default 2,000.
    pub max_query_chars: usize,
    /// Largest `k`. Default 100.
    pub max_k: usize,
    /// Largest `offset`. Default 1,000.
    pub max_offset: usize,
    /// Largest `k` with explanations (each explained hit costs a forward pass over up to
    /// [`explain::MAX_SENTENCES`] abstract sentences). Default 20.
    pub max_explain_k: usize,
    /// Most positive + negative ids of one recommendation. Default 100.
    pub max_recommend_ids: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_query_chars: 2_000,
            max_k: 100,
            max_offset: 1_000,
            max_explain_k: 20,
            max_recommend_ids: 100,
        }
    }
}

impl Limits {
    /// For one user at a terminal: pages up to 10,000 results, long queries allowed.
    pub fn command_line() -> Limits {
        Limits {
            max_query_chars: 100_000,
            max_k: 10_000,
            max_offset: 1_000_000,
            max_explain_k: 1_000,
            max_recommend_ids: 10_000,
        }
    }

    /// Checks a query text's length (not blank, at most [`Limits::max_query_chars`]).
    ///
    /// # Errors
    /// [`Invalid::EmptyQuery`], [`Invalid::TooLong`].
    pub fn check_text(&self, name: &'static str, text: &str) -> Result<(), Invalid> {
        if text.trim().is_empty() {
            return Err(Invalid::EmptyQuery);
        }
        let chars = text.chars().count();
        if chars > self.max_query_chars {
            return Err(Invalid::TooLong {
                name,
                chars,
                max: self.max_query_chars,
            });
        }
        Ok(())
    }
}

/// Which retrieval answers a text query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Nearest embeddings: finds paraphrases, can miss exact terms.
    Semantic,
    /// BM25 over words: finds exact terms, misses paraphrase.
    Keyword,
    /// Both, fused. The default.
    #[default]
    Hybrid,
}

impl std::str::FromStr for Mode {
    type Err = Invalid;

    /// `semantic`, `keyword` or `hybrid`.
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "semantic" => Ok(Mode::Semantic),
            "keyword" => Ok(Mode::Keyword),
            "hybrid" => Ok(Mode::Hybrid),
            _ => Err(Invalid::Mode(s.to_string())),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Semantic => "semantic",
            Mode::Keyword => "keyword",
            Mode::Hybrid => "hybrid",
        })
    }
}

/// The order of a text query's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Best match first. The default.
    #[default]
    Relevance,
    /// The [`NEWEST_POOL`] most relevant results, newest first (undated ones last, ties
    /// by relevance): "what is recent about this", not "the newest papers" (in semantic
    /// mode every paper matches a little).
    Newest,
}

/// How many of the most relevant results [`Sort::Newest`] orders by date; the results
/// beyond it are not shown in that order (the total says so).
pub const NEWEST_POOL: usize = 100;

impl std::str::FromStr for Sort {
    type Err = Invalid;

    /// `relevance`, or `date` / `newest` (the same: newest first).
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "relevance" => Ok(Sort::Relevance),
            "date" | "newest" => Ok(Sort::Newest),
            _ => Err(Invalid::Sort(s.to_string())),
        }
    }
}

impl std::fmt::Display for Sort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sort::Relevance => "relevance",
            Sort::Newest => "newest",
        })
    }
}

pub use crate::filter::Filter;

/// What a request may ask for is the engine's to say (each mistake has its [`Invalid`]
/// code); what a filter matches is [`crate::filter`]'s.
impl Filter {
    /// Checks that the date bounds are real days, months or years and that `from` does not
    /// start after `to` ends: a month or year bound covers all of it, so
    /// `from=2024-06&to=2024` is June to December 2024.
    ///
    /// # Errors
    /// [`Invalid::Date`] naming the bad bound, [`Invalid::DateOrder`].
    pub fn validate(&self) -> Result<(), Invalid> {
        let period = |name, v: &Option<String>| -> Result<Option<Period>, Invalid> {
            v.as_deref()
                .map(|d| {
                    Period::parse(d).ok_or_else(|| Invalid::Date {
                        name,
                        value: d.to_string(),
                    })
                })
                .transpose()
        };
        let (from, to) = (period("from", &self.from)?, period("to", &self.to)?);
        if let (Some(f), Some(t)) = (from, to) {
            if f.first_day() > t.last_day() {
                return Err(Invalid::DateOrder {
                    from: self.from.clone().unwrap_or_default(),
                    to: self.to.clone().unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

/// What to return.
#[derive(Debug, Clone)]
pub struct SearchParams {
    /// Number of results. Default 10.
    pub k: usize,
    /// Results to skip (pagination). Default 0.
    pub offset: usize,
    pub filter: Filter,
    /// Semantic, keyword or hybrid. Default [`Mode::Hybrid`]. Text queries only: `similar`
    /// and `recommend` compare embeddings.
    pub mode: Mode,
    /// How hybrid mode fuses its two lists. Default [`Fusion::default`].
    pub fusion: Fusion,
    /// Weight of title terms relative to abstract terms in keyword scoring. Default
    /// [`keyword::DEFAULT_TITLE_BOOST`].
    pub title_boost: Score,
    /// Attach an [`Explanation`] to each hit. Default false: for a text query it costs an
    /// embedding pass over the hits' abstract sentences (at most
    /// [`explain::MAX_SENTENCES`] per hit).
    pub explain: bool,
    /// Order of a text query's results. Default [`Sort::Relevance`].
    pub sort: Sort,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            k: 10,
            offset: 0,
            filter: Filter::default(),
            mode: Mode::default(),
            fusion: Fusion::default(),
            title_boost: keyword::DEFAULT_TITLE_BOOST,
            explain: false,
            sort: Sort::default(),
        }
    }
}

impl SearchParams {
    /// Whether a text query needs its embedding: every mode but keyword does, and so do
    /// explanations (the closest sentence is found by embedding).
    pub fn needs_embedding(&self) -> bool {
        self.mode != Mode::Keyword || self.explain
    }

    /// Checks every parameter against `limits`: the one place that decides what a valid
    /// page, filter and scoring setting is.
    ///
    /// # Errors
    /// The first [`Invalid`] parameter.
    pub fn validate(&self, limits: &Limits) -> Result<(), Invalid> {
        if !(1..=limits.max_k).contains(&self.k) {
            return Err(Invalid::K {
                k: self.k,
                max: limits.max_k,
            });
        }
        if self.offset > limits.max_offset {
            return Err(Invalid::Offset {
                offset: self.offset,
                max: limits.max_offset,
            });
        }
        if self.explain && self.k > limits.max_explain_k {
            return Err(Invalid::ExplainK {
                k: self.k,
                max: limits.max_explain_k,
            });
        }
        if !(self.title_boost.is_finite() && self.title_boost >= 0.0) {
            return Err(Invalid::TitleBoost(self.title_boost));
        }
        self.filter.validate()
    }
}

/// One result.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub doc: DocId,
    pub paper: &'a Paper,
    /// Results are ordered by it, best first. Semantic mode, `similar` and `recommend`:
    /// cosine similarity; keyword mode: BM25; hybrid: the fused score (see
    /// [`crate::fusion`]).
    pub score: Score,
    /// Why this paper, when [`SearchParams::explain`] was set.
    pub explanation: Option<Explanation>,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Results<'a> {
    pub hits: Vec<Hit<'a>>,
    /// Papers the query was ranked over: those passing the filter, minus excluded ones (in
    /// keyword mode, those of them that contain a query term).
    pub total: usize,
}

/// Candidates taken from each list before hybrid fusion (`offset + k` when more): deep
/// enough that a paper ranked low by one retriever and high by the other is seen.
pub const HYBRID_CANDIDATES: usize = 100;

/// Distinctive shared terms listed by an explained `similar` hit.
const SHARED_TERMS: usize = 8;

/// "Papers like these, unlike those": the Rocchio query
/// `q = text + POSITIVE_WEIGHT·mean(positives) − NEGATIVE_WEIGHT·mean(negatives)`,
/// normalised (the free text term only when given).
#[derive(Debug, Clone, Default)]
pub struct Recommend {
    pub positive: Vec<PaperId>,
    pub negative: Vec<PaperId>,
    /// An embedded free-text query to add, if any.
    pub text: Option<Vector>,
}

impl Recommend {
    /// The request's own checks, the same for every store: at most
    /// [`Limits::max_recommend_ids`] ids, and something to recommend from.
    ///
    /// # Errors
    /// [`Invalid::TooManyIds`], [`Invalid::NothingToRecommend`].
    pub fn validate(&self, limits: &Limits) -> Result<(), Invalid> {
        let ids = self.positive.len() + self.negative.len();
        if ids > limits.max_recommend_ids {
            return Err(Invalid::TooManyIds {
                ids,
                max: limits.max_recommend_ids,
            });
        }
        if self.positive.is_empty() && self.text.is_none() {
            return Err(Invalid::NothingToRecommend);
        }
        Ok(())
    }
}

const POSITIVE_WEIGHT: f32 = 1.0;
/// Smaller than the positive weight, as in Rocchio's classic setting: negatives push away
/// from what the user dislikes without overturning what they asked for.
const NEGATIVE_WEIGHT: f32 = 0.5;

/// The query vector of a [`Recommend`]: `text + POSITIVE_WEIGHT·mean(positives) −
/// NEGATIVE_WEIGHT·mean(negatives)`, normalised; one function for every store.
///
/// # Errors
/// [`Invalid::Cancelling`] when the terms cancel out (nothing left to search by).
pub fn rocchio(
    dim: usize,
    text: Option<&[f32]>,
    positives: &[&[f32]],
    negatives: &[&[f32]],
) -> Result<Vec<f32>, Invalid> {
    let mut q = vec![0f32; dim];
    if let Some(t) = text {
        q.iter_mut().zip(t).for_each(|(a, b)| *a += b);
    }
    for (set, weight) in [(positives, POSITIVE_WEIGHT), (negatives, -NEGATIVE_WEIGHT)] {
        let w = weight / set.len().max(1) as f32;
        for v in set {
            q.iter_mut().zip(*v).for_each(|(a, b)| *a += w * b);
        }
    }
    if vector::normalize(&mut q) < 1e-6 {
        return Err(Invalid::Cancelling);
    }
    Ok(q)
}

/// An index and the rules of querying it. The model is not part of it: entry points that
/// embed take an [`Encoder`] (the command line's loaded model, or the server's model
/// service), so paper-to-paper queries (`similar`) never need one and the server decides
/// where forward passes run.
pub struct Engine {
    /// Records, vectors, graph and keyword index, opened together.
    index: Index,
    limits: Limits,
}

impl Engine {
    /// Opens the index at `index_dir`; requests are checked against `limits`.
    ///
    /// # Errors
    /// Any [`index::Error`] of opening the index (its keyword part included).
    pub fn open(index_dir: &Path, limits: Limits) -> Result<Engine, Error> {
        Ok(Engine {
            index: Index::open(index_dir)?,
            limits,
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The engine over the index's newest commit, with the same limits; `Ok(None)` when
    /// this one already holds it (see [`Index::reopen`]).
    ///
    /// # Errors
    /// The newest commit does not open.
    pub fn reopen(&self) -> Result<Option<Engine>, Error> {
        Ok(self.index.reopen()?.map(|index| Engine {
            index,
            limits: self.limits,
        }))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Refuses a query model whose weights differ from the ones the index was built with:
    /// vectors of different models are not comparable.
    ///
    /// # Errors
    /// [`index::Error::ModelMismatch`].
    pub fn check_model(&self, model: &ModelInfo) -> Result<(), Error> {
        Ok(self.index.check_model(model)?)
    }

    /// The keyword index.
    pub fn keyword(&self) -> &KeywordIndex {
        self.index.keyword()
    }

    /// Checks a text query and its parameters against the engine's limits.
    ///
    /// # Errors
    /// The first [`Invalid`] part.
    pub fn validate(&self, query: &str, params: &SearchParams) -> Result<(), Invalid> {
        self.limits.check_text("q", query)?;
        params.validate(&self.limits)
    }

    /// Papers for `query`, by meaning, by words or both ([`SearchParams::mode`]);
    /// `encoder` embeds the query (unless keyword mode) and explanation sentences.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a blank or over-long query or bad parameters; a model that
    /// does not match the index; embedding errors; a keyword or hybrid search on an index
    /// without a keyword part.
    pub fn search(
        &self,
        query: &str,
        params: &SearchParams,
        encoder: &dyn Encoder,
    ) -> Result<Results<'_>, Error> {
        self.validate(query, params)?;
        let v = if params.needs_embedding() {
            self.check_model(encoder.info())?;
            Some(encoder.embed_one(query)?)
        } else {
            None
        };
        self.search_embedded(query, v.as_deref(), params, encoder)
    }

    /// [`Engine::search`] with the query's embedding already computed (the HTTP service
    /// embeds it on the model service; evaluation embeds all queries in one batch). `v`
    /// may be `None` when [`SearchParams::needs_embedding`] is false; `encoder` is used
    /// only for explanations.
    ///
    /// # Errors
    /// As [`Engine::search`]; [`Invalid::Dimensions`] for a vector of the wrong dimension.
    pub fn search_embedded(
        &self,
        query: &str,
        v: Option<&[f32]>,
        params: &SearchParams,
        encoder: &dyn Encoder,
    ) -> Result<Results<'_>, Error> {
        self.validate(query, params)?;
        if let Some(v) = v {
            self.check_dim(v)?;
        }
        let vector = || {
            v.ok_or_else(|| Error::Embed(embed::Error::Forward("no query embedding given".into())))
        };
        let need = match params.sort {
            Sort::Relevance => params.offset + params.k,
            Sort::Newest => NEWEST_POOL,
        };
        let (mut ranked, mut total) = match params.mode {
            Mode::Semantic => {
                let scope = self.index.scope(&params.filter, &[]);
                let found = self.index.nearest(vector()?, need, &scope);
                (ranked_as(found, true), scope.total())
            }
            Mode::Keyword => {
                let scope = self.index.scope(&params.filter, &[]);
                let found = self
                    .keyword()
                    .search(query, need, params.title_boost, scope.mask())?;
                (ranked_as(found.hits, false), found.total)
            }
            Mode::Hybrid => self.hybrid(query, vector()?, params)?,
        };
        if params.sort == Sort::Newest {
            ranked.truncate(NEWEST_POOL);
            total = total.min(NEWEST_POOL);
            // Stable: equal dates keep their relevance order. Dates are YYYY-MM-DD, so
            // they order as strings; `None` sorts last in reverse.
            ranked.sort_by(|a, b| {
                let date = |f: &Fused| self.index.paper(f.doc).date.as_deref();
                date(b).cmp(&date(a))
            });
        }
        let mut results = self.page(ranked, total, params);
        if params.explain {
            self.check_model(encoder.info())?;
            self.explain_hits(query, vector()?, &mut results.hits, params, encoder)?;
        }
        Ok(results)
    }

    /// Hybrid ranking: the top [`HYBRID_CANDIDATES`] (or `offset + k`) of each list, fused.
    fn hybrid(
        &self,
        query: &str,
        v: &[f32],
        params: &SearchParams,
    ) -> Result<(Vec<Fused>, usize), Error> {
        let depth = (params.offset + params.k).max(HYBRID_CANDIDATES);
        // One scope for both lists: the filter is evaluated once per query.
        let scope = self.index.scope(&params.filter, &[]);
        let mut semantic = self.index.nearest(v, depth, &scope);
        let keyword = self
            .keyword()
            .search(query, depth, params.title_boost, scope.mask())?
            .hits;
        // Keyword candidates the semantic list missed get their exact cosine, so fusion sees
        // both scores for every candidate rather than a 0 for an exact-term match that the
        // embedding ranked just below the cut.
        let seen: HashSet<DocId> = semantic.iter().map(|h| h.0).collect();
        semantic.extend(
            keyword
                .iter()
                .filter(|(d, _)| !seen.contains(d))
                .map(|&(d, _)| (d, vector::dot(v, self.index.vector(d)))),
        );
        index::sort_hits(&mut semantic);
        Ok((
            fusion::fuse(&semantic, &keyword, params.fusion),
            scope.total(),
        ))
    }

    /// Fills in each hit's explanation: the query terms it contains with their BM25 points
    /// (when the index has a keyword part), its abstract sentence closest to the query and
    /// its rank in each list.
    fn explain_hits(
        &self,
        query: &str,
        v: &[f32],
        hits: &mut [Hit<'_>],
        params: &SearchParams,
        encoder: &dyn Encoder,
    ) -> Result<(), Error> {
        let abstracts: Vec<&str> = hits.iter().map(|h| h.paper.abstract_.as_str()).collect();
        let sentences = explain::closest_sentences(encoder, v, &abstracts)?;
        for (hit, sentence) in hits.iter_mut().zip(sentences) {
            let terms = self
                .index
                .keyword()
                .explain(query, hit.doc, params.title_boost)?;
            let e = hit.explanation.get_or_insert_with(Explanation::default);
            e.terms = terms;
            e.sentence = sentence;
        }
        Ok(())
    }

    /// Papers closest to the paper `id`, the paper itself excluded.
    ///
    /// With [`SearchParams::explain`], each hit lists the title and abstract terms the two
    /// papers share, most distinctive (rarest in the collection) first.
    ///
    /// # Errors
    /// [`Error::PaperNotFound`]; [`Error::Invalid`] for bad parameters; with `explain`,
    /// an index without a keyword part.
    pub fn similar(&self, id: &PaperId, params: &SearchParams) -> Result<Results<'_>, Error> {
        params.validate(&self.limits)?;
        let doc = self.doc(id)?;
        let mut results = self.rank(self.index.vector(doc), params, &[doc]);
        if params.explain {
            let kw = self.keyword();
            let paper = self.index.paper(doc);
            for h in &mut results.hits {
                let e = h.explanation.get_or_insert_with(Explanation::default);
                e.shared_terms = kw.shared_terms(paper, h.paper, SHARED_TERMS)?;
            }
        }
        Ok(results)
    }

    /// Papers like `rec.positive` and unlike `rec.negative` (see [`Recommend`]); the example
    /// papers themselves are never returned. [`SearchParams::mode`] and `explain` do not
    /// apply.
    ///
    /// # Errors
    /// [`Error::PapersNotFound`] naming every unknown id; [`Invalid::NothingToRecommend`] when there
    /// is nothing to recommend from (no positives and no text).
    pub fn recommend(&self, rec: &Recommend, params: &SearchParams) -> Result<Results<'_>, Error> {
        params.validate(&self.limits)?;
        rec.validate(&self.limits)?;
        let unknown: Vec<PaperId> = rec
            .positive
            .iter()
            .chain(&rec.negative)
            .filter(|id| self.index.doc_id(id).is_none())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(Error::PapersNotFound(unknown));
        }
        let docs = |ids: &[PaperId]| -> Vec<DocId> {
            ids.iter().filter_map(|id| self.index.doc_id(id)).collect()
        };
        let (pos, neg) = (docs(&rec.positive), docs(&rec.negative));
        if let Some(t) = &rec.text {
            self.check_dim(t)?;
        }
        let vectors = |docs: &[DocId]| -> Vec<&[f32]> {
            docs.iter().map(|&d| self.index.vector(d)).collect()
        };
        let q = rocchio(
            self.index.manifest().dim,
            rec.text.as_deref(),
            &vectors(&pos),
            &vectors(&neg),
        )?;
        let exclude: Vec<DocId> = pos.into_iter().chain(neg).collect();
        Ok(self.rank(&q, params, &exclude))
    }

    /// The record of paper `id`.
    ///
    /// # Errors
    /// [`Error::PaperNotFound`].
    pub fn paper(&self, id: &PaperId) -> Result<&Paper, Error> {
        Ok(self.index.paper(self.doc(id)?))
    }

    fn doc(&self, id: &PaperId) -> Result<DocId, Error> {
        self.index
            .doc_id(id)
            .ok_or_else(|| Error::PaperNotFound(id.clone()))
    }

    fn check_dim(&self, v: &[f32]) -> Result<(), Error> {
        let want = self.index.manifest().dim;
        if v.len() != want {
            return Err(Invalid::Dimensions { got: v.len(), want }.into());
        }
        Ok(())
    }

    /// The semantic ranking: the requested page of the papers nearest to `v` that pass the
    /// filter and are not excluded.
    fn rank(&self, v: &[f32], params: &SearchParams, exclude: &[DocId]) -> Results<'_> {
        let scope = self.index.scope(&params.filter, exclude);
        let found = self.index.nearest(v, params.offset + params.k, &scope);
        self.page(ranked_as(found, true), scope.total(), params)
    }

    /// The requested page of a ranking, each hit carrying its rank in the list(s) it came
    /// from when explanations are asked for.
    fn page(&self, ranked: Vec<Fused>, total: usize, params: &SearchParams) -> Results<'_> {
        let hits = ranked
            .into_iter()
            .skip(params.offset)
            .take(params.k)
            .map(|f| Hit {
                doc: f.doc,
                paper: self.index.paper(f.doc),
                score: f.score,
                explanation: params.explain.then(|| Explanation {
                    semantic_rank: f.semantic_rank,
                    keyword_rank: f.keyword_rank,
                    ..Explanation::default()
                }),
            })
            .collect();
        Results { hits, total }
    }
}

/// A single list as [`Fused`] entries, with its rank recorded on its side.
fn ranked_as(hits: Vec<(DocId, Score)>, semantic: bool) -> Vec<Fused> {
    hits.into_iter()
        .enumerate()
        .map(|(i, (doc, score))| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(from: Option<&str>, to: Option<&str>) -> Filter {
        Filter {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn rejects_bad_dates() {
        let bad = |from: &str| dates(Some(from), None);
        assert!(bad("2025-3-1").validate().is_err());
        assert!(bad("yesterday").validate().is_err());
        assert!(bad("2025-13").validate().is_err());
        assert!(bad("2025-03-32").validate().is_err());
        assert!(bad("2025-03").validate().is_ok());
        assert!(dates(Some("2025"), Some("2024")).validate().is_err());
    }

    /// Issue 16 #12: days that do not exist were accepted.
    #[test]
    fn rejects_days_the_month_lacks() {
        for bad in ["2025-02-31", "2025-02-29", "2025-04-31", "1900-02-29"] {
            assert_eq!(
                dates(None, Some(bad)).validate(),
                Err(Invalid::Date {
                    name: "to",
                    value: bad.into()
                })
            );
        }
        assert_eq!(dates(None, Some("2024-02-29")).validate(), Ok(()));
        assert_eq!(dates(None, Some("2000-02-29")).validate(), Ok(()));
    }

    /// Issue 16 #12: a year or month bound covers all of it, so `to=2024` reaches December.
    #[test]
    fn a_range_may_start_inside_the_year_or_month_it_ends() {
        let check = |f: &str, t: &str| dates(Some(f), Some(t)).validate();
        assert_eq!(check("2024-06", "2024"), Ok(()));
        assert_eq!(check("2024-06-15", "2024"), Ok(()));
        assert_eq!(check("2024-06-15", "2024-06"), Ok(()));
        assert_eq!(check("2024", "2024-01"), Ok(()));
        assert_eq!(
            check("2024-07", "2024-06"),
            Err(Invalid::DateOrder {
                from: "2024-07".into(),
                to: "2024-06".into()
            })
        );
        assert!(check("2024-06-02", "2024-06-01").is_err());
        assert!(check("2025-01", "2024").is_err());
        // The range is what validation let through: June to December 2024.
        let june_on = dates(Some("2024-06"), Some("2024"));
        let paper = |d: &str| Paper {
            id: "x".into(),
            title: String::new(),
            abstract_: String::new(),
            authors: vec![],
            date: Some(d.into()),
            categories: vec![],
            url: None,
            extra: Default::default(),
        };
        assert!(june_on.matches(&paper("2024-06-01")));
        assert!(june_on.matches(&paper("2024-12-31")));
        assert!(!june_on.matches(&paper("2024-05-31")));
        assert!(!june_on.matches(&paper("2025-01-01")));
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod engine_tests;
