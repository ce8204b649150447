//! The front door for queries: [`Engine`] answers "papers about this text", "papers like
//! this paper" and "papers like these, unlike those" over one [`Index`].
//!
//! The CLI and the HTTP service both build a [`SearchParams`], call the engine and format
//! its [`Results`]; neither holds search logic of its own.
//!
//! **Filters keep full pages.** With a category or date filter, HNSW search runs with the
//! filter applied inside the graph walk; when the filter is selective the walk can run out
//! of matching candidates before it has `offset + k` of them. Then (and whenever fewer than
//! [`EXACT_SCAN_BELOW`] papers match at all) the engine scans the matching papers exactly,
//! so a filtered query returns a full page whenever enough papers match.
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
    #[error("index was built with model {index_model} (weights sha256 {index_sha:.12}…) but the query model is {model} ({model_sha:.12}…); pass --model with the index's model, or rebuild the index with this one")]
    ModelMismatch {
        index_model: String,
        index_sha: String,
        model: String,
        model_sha: String,
    },
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

/// Restricts results to papers with a category and/or a date range. Empty fields match
/// everything; a paper without a date never matches a date bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// An arXiv category (`cs.CL`), matched exactly against any of the paper's categories,
    /// or an archive prefix ending in `.` or `*` (`cs.`, `cond-mat*`).
    pub category: Option<String>,
    /// Earliest date, inclusive, `YYYY-MM-DD` (or `YYYY-MM`, `YYYY`).
    pub from: Option<String>,
    /// Latest date, inclusive, same forms.
    pub to: Option<String>,
}

impl Filter {
    /// Checks the date bounds' syntax and order.
    ///
    /// # Errors
    /// [`Invalid::Date`] naming the bad bound, [`Invalid::DateOrder`].
    pub fn validate(&self) -> Result<(), Invalid> {
        for (name, v) in [("from", &self.from), ("to", &self.to)] {
            if let Some(d) = v {
                if !valid_date_prefix(d) {
                    return Err(Invalid::Date {
                        name,
                        value: d.clone(),
                    });
                }
            }
        }
        if let (Some(f), Some(t)) = (&self.from, &self.to) {
            if f > t {
                return Err(Invalid::DateOrder {
                    from: f.clone(),
                    to: t.clone(),
                });
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.category.is_none() && self.from.is_none() && self.to.is_none()
    }

    pub fn matches(&self, p: &Paper) -> bool {
        if let Some(c) = &self.category {
            let ok = match c.strip_suffix('*') {
                Some(prefix) => p.categories.iter().any(|pc| pc.starts_with(prefix)),
                None if c.ends_with('.') => {
                    p.categories.iter().any(|pc| pc.starts_with(c.as_str()))
                }
                None => p.categories.iter().any(|pc| pc == c),
            };
            if !ok {
                return false;
            }
        }
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some(date) = p.date.as_deref() else {
            return false;
        };
        // A bound of YYYY or YYYY-MM covers the whole year or month: compare prefixes.
        let from_ok = self.from.as_deref().is_none_or(|f| date >= f);
        let to_ok = self
            .to
            .as_deref()
            .is_none_or(|t| &date[..t.len().min(date.len())] <= t);
        from_ok && to_ok
    }
}

fn valid_date_prefix(d: &str) -> bool {
    let b = d.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| d[r].parse().ok())?
    };
    let month_ok = || b[4] == b'-' && num(5..7).is_some_and(|m| (1..=12).contains(&m));
    match b.len() {
        4 => num(0..4).is_some(),
        7 => num(0..4).is_some() && month_ok(),
        10 => {
            num(0..4).is_some()
                && month_ok()
                && b[7] == b'-'
                && num(8..10).is_some_and(|day| (1..=31).contains(&day))
        }
        _ => false,
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
    /// HNSW candidate list size; `None` uses the index's `ef_search`.
    pub ef: Option<usize>,
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
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            k: 10,
            offset: 0,
            filter: Filter::default(),
            ef: None,
            mode: Mode::default(),
            fusion: Fusion::default(),
            title_boost: keyword::DEFAULT_TITLE_BOOST,
            explain: false,
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

/// Below this many matching papers, a filtered query scans them exactly instead of
/// walking the graph: as fast, and exact.
pub const EXACT_SCAN_BELOW: usize = 2_000;

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

const POSITIVE_WEIGHT: f32 = 1.0;
/// Smaller than the positive weight, as in Rocchio's classic setting: negatives push away
/// from what the user dislikes without overturning what they asked for.
const NEGATIVE_WEIGHT: f32 = 0.5;

/// An index and the rules of querying it. The model is not part of it: entry points that
/// embed take an [`Encoder`] (the command line's loaded model, or the server's model
/// service), so paper-to-paper queries (`similar`) never need one and the server decides
/// where forward passes run.
pub struct Engine {
    index: Index,
    /// The BM25 side; `None` for an index built before it existed (semantic only).
    keyword: Option<KeywordIndex>,
    limits: Limits,
}

impl Engine {
    /// Opens the index at `index_dir`; requests are checked against `limits`.
    ///
    /// # Errors
    /// Any [`index::Error`] of opening the index, or [`keyword::Error`] of opening its
    /// keyword part.
    pub fn open(index_dir: &Path, limits: Limits) -> Result<Engine, Error> {
        let index = Index::open(index_dir)?;
        let keyword = match index.manifest().keyword {
            Some(_) => Some(KeywordIndex::open(index.path(), index.len())?),
            None => None,
        };
        Ok(Engine {
            index,
            keyword,
            limits,
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Refuses a query model whose weights differ from the ones the index was built with:
    /// vectors of different models are not comparable.
    ///
    /// # Errors
    /// [`Error::ModelMismatch`].
    pub fn check_model(&self, model: &ModelInfo) -> Result<(), Error> {
        let m = &self.index.manifest().model;
        if m.weights_sha256 != model.weights_sha256
            || m.pooling != model.pooling
            || m.dim != model.dim
        {
            return Err(Error::ModelMismatch {
                index_model: m.name.clone(),
                index_sha: m.weights_sha256.clone(),
                model: model.name.clone(),
                model_sha: model.weights_sha256.clone(),
            });
        }
        Ok(())
    }

    /// The keyword index.
    ///
    /// # Errors
    /// [`keyword::Error::Missing`] for an index built before keyword search existed.
    pub fn keyword(&self) -> Result<&KeywordIndex, Error> {
        self.keyword.as_ref().ok_or_else(|| {
            Error::Keyword(keyword::Error::Missing {
                path: self.index.path().to_path_buf(),
            })
        })
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
        let need = params.offset + params.k;
        let (ranked, total) = match params.mode {
            Mode::Semantic => {
                let (found, total) = self.nearest(vector()?, need, params, &HashSet::new());
                (ranked_as(found, true), total)
            }
            Mode::Keyword => {
                let allowed = self.allowed(&params.filter);
                let found = self
                    .keyword()?
                    .search(query, need, params.title_boost, allowed)?;
                (ranked_as(found.hits, false), found.total)
            }
            Mode::Hybrid => self.hybrid(query, vector()?, params)?,
        };
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
        let (mut semantic, total) = self.nearest(v, depth, params, &HashSet::new());
        let allowed = self.allowed(&params.filter);
        let keyword = self
            .keyword()?
            .search(query, depth, params.title_boost, allowed)?
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
        Ok((fusion::fuse(&semantic, &keyword, params.fusion), total))
    }

    /// One flag per DocId for a non-empty filter (the keyword side filters inside its
    /// collector); `None` when everything passes.
    fn allowed(&self, filter: &Filter) -> Option<std::sync::Arc<Vec<bool>>> {
        (!filter.is_empty()).then(|| {
            std::sync::Arc::new(
                self.index
                    .papers()
                    .iter()
                    .map(|p| filter.matches(p))
                    .collect(),
            )
        })
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
            let terms = match &self.keyword {
                Some(kw) => kw.explain(query, hit.doc, params.title_boost)?,
                None => Vec::new(),
            };
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
        let mut results = self.rank(self.index.vector(doc), params, &HashSet::from([doc]));
        if params.explain {
            let kw = self.keyword()?;
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
        let ids = rec.positive.len() + rec.negative.len();
        if ids > self.limits.max_recommend_ids {
            return Err(Invalid::TooManyIds {
                ids,
                max: self.limits.max_recommend_ids,
            }
            .into());
        }
        if rec.positive.is_empty() && rec.text.is_none() {
            return Err(Invalid::NothingToRecommend.into());
        }
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
        let dim = self.index.manifest().dim;
        let mut q = vec![0f32; dim];
        if let Some(t) = &rec.text {
            self.check_dim(t)?;
            q.iter_mut().zip(t).for_each(|(a, b)| *a += b);
        }
        for (set, weight) in [(&pos, POSITIVE_WEIGHT), (&neg, -NEGATIVE_WEIGHT)] {
            let w = weight / set.len().max(1) as f32;
            for &d in set {
                q.iter_mut()
                    .zip(self.index.vector(d))
                    .for_each(|(a, b)| *a += w * b);
            }
        }
        let norm = vector::dot(&q, &q).sqrt();
        if norm < 1e-6 {
            return Err(Invalid::Cancelling.into());
        }
        q.iter_mut().for_each(|x| *x /= norm);
        let exclude: HashSet<DocId> = pos.into_iter().chain(neg).collect();
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
    fn rank(&self, v: &[f32], params: &SearchParams, exclude: &HashSet<DocId>) -> Results<'_> {
        let (found, total) = self.nearest(v, params.offset + params.k, params, exclude);
        self.page(ranked_as(found, true), total, params)
    }

    /// The ranking core: the top `need` papers by cosine to `v` among those that pass the
    /// filter and are not excluded, and how many such papers there are.
    fn nearest(
        &self,
        v: &[f32],
        need: usize,
        params: &SearchParams,
        exclude: &HashSet<DocId>,
    ) -> (Vec<(DocId, Score)>, usize) {
        let idx = &self.index;
        let filter = &params.filter;
        let accept = |d: DocId| !exclude.contains(&d) && filter.matches(idx.paper(d));
        let (found, total) = if filter.is_empty() {
            let total = idx.len()
                - exclude
                    .iter()
                    .filter(|&&d| (d as usize) < idx.len())
                    .count();
            // Exclusions (the query paper, recommend's examples) are few: search for that
            // many more without a filter and drop them, several times faster than
            // hnsw_rs's filtered walk.
            let mut found = idx.search_ann(v, need + exclude.len(), params.ef, None);
            found.retain(|h| !exclude.contains(&h.0));
            found.truncate(need);
            (found, total)
        } else {
            let total = (0..idx.len() as DocId).filter(|&d| accept(d)).count();
            let found = if total < EXACT_SCAN_BELOW {
                Vec::new()
            } else {
                idx.search_ann(v, need, params.ef, Some(&accept))
            };
            (found, total)
        };
        let found = if found.len() < need.min(total) {
            // The graph walk ran out of accepted candidates (or was skipped): scan exactly.
            idx.search_exact(v, need, Some(&accept))
        } else {
            found
        };
        (found, total)
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

    fn paper(date: Option<&str>, cats: &[&str]) -> Paper {
        Paper {
            id: PaperId("x".into()),
            title: "t".into(),
            abstract_: String::new(),
            authors: vec![],
            date: date.map(str::to_string),
            categories: cats.iter().map(|c| c.to_string()).collect(),
            url: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn filters_by_category_and_date_prefixes() {
        let p = paper(Some("2025-03-18"), &["cs.CL", "cs.AI"]);
        let f = |c: Option<&str>, from: Option<&str>, to: Option<&str>| Filter {
            category: c.map(str::to_string),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
        };
        assert!(f(Some("cs.AI"), None, None).matches(&p));
        assert!(!f(Some("cs.CV"), None, None).matches(&p));
        assert!(f(Some("cs."), None, None).matches(&p));
        assert!(f(Some("cs*"), None, None).matches(&p));
        assert!(!f(Some("cs"), None, None).matches(&p));
        assert!(f(None, Some("2025-03"), Some("2025-03")).matches(&p));
        assert!(f(None, Some("2025"), Some("2025")).matches(&p));
        assert!(f(None, Some("2025-03-18"), Some("2025-03-18")).matches(&p));
        assert!(!f(None, Some("2025-03-19"), None).matches(&p));
        assert!(!f(None, None, Some("2025-02")).matches(&p));
        assert!(!f(None, Some("2000"), None).matches(&paper(None, &[])));
    }

    #[test]
    fn rejects_bad_dates() {
        let bad = |from: &str| Filter {
            from: Some(from.into()),
            ..Default::default()
        };
        assert!(bad("2025-3-1").validate().is_err());
        assert!(bad("yesterday").validate().is_err());
        assert!(bad("2025-13").validate().is_err());
        assert!(bad("2025-03-32").validate().is_err());
        assert!(bad("2025-03").validate().is_ok());
        let reversed = Filter {
            from: Some("2025".into()),
            to: Some("2024".into()),
            ..Default::default()
        };
        assert!(reversed.validate().is_err());
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod engine_tests;
