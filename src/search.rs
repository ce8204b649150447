//! The front door for queries: [`Engine`] answers "papers about this text" and "papers
//! like this paper" over one [`Index`].
//!
//! The CLI and the HTTP service both build a [`SearchParams`], call the engine and
//! format its [`Hit`]s; neither holds search logic of its own.

use crate::embed::{self, Embedder};
use crate::index::{self, Index};
use crate::paper::{DocId, Paper, PaperId, Score};
use std::path::Path;
use std::sync::OnceLock;

/// Errors of answering a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown paper id: {0}")]
    PaperNotFound(PaperId),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error(transparent)]
    Index(#[from] index::Error),
    #[error(transparent)]
    Embed(#[from] embed::Error),
}

/// What to return.
#[derive(Debug, Clone)]
pub struct SearchParams {
    /// Number of results. Default 10.
    pub k: usize,
    /// HNSW candidate list size; `None` uses the index's `ef_search`.
    pub ef: Option<usize>,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams { k: 10, ef: None }
    }
}

/// One result.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub doc: DocId,
    pub paper: &'a Paper,
    /// Cosine similarity to the query, best first.
    pub score: Score,
}

/// An index plus the model that embeds queries for it. The model is loaded on first use,
/// so paper-to-paper queries (`similar`) never pay for it.
pub struct Engine {
    index: Index,
    model_dir: std::path::PathBuf,
    embedder: OnceLock<Embedder>,
}

impl Engine {
    /// Opens the index at `index_dir`; `model_dir` is where query embeddings come from.
    ///
    /// # Errors
    /// Any [`index::Error`] of opening the index.
    pub fn open(index_dir: &Path, model_dir: &Path) -> Result<Engine, Error> {
        Ok(Engine {
            index: Index::open(index_dir)?,
            model_dir: model_dir.to_path_buf(),
            embedder: OnceLock::new(),
        })
    }

    /// An engine over an already-loaded index and model (checked to match).
    ///
    /// # Errors
    /// [`index::Error::ModelMismatch`].
    pub fn with_embedder(index: Index, embedder: Embedder) -> Result<Engine, Error> {
        index.check_model(embedder.info())?;
        let engine = Engine {
            index,
            model_dir: std::path::PathBuf::new(),
            embedder: OnceLock::new(),
        };
        let _ = engine.embedder.set(embedder);
        Ok(engine)
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The query model, loaded (and checked against the index) on first call.
    ///
    /// # Errors
    /// Loading failures, or a model that does not match the index.
    pub fn embedder(&self) -> Result<&Embedder, Error> {
        if let Some(e) = self.embedder.get() {
            return Ok(e);
        }
        let e = Embedder::load(&self.model_dir)?;
        self.index.check_model(e.info())?;
        // A concurrent first call may have won the race; either value is the same model.
        Ok(self.embedder.get_or_init(|| e))
    }

    /// Papers closest in meaning to `query`.
    ///
    /// # Errors
    /// [`Error::InvalidQuery`] for a blank query; model errors.
    pub fn search(&self, query: &str, params: &SearchParams) -> Result<Vec<Hit<'_>>, Error> {
        if query.trim().is_empty() {
            return Err(Error::InvalidQuery("empty query".into()));
        }
        let v = self.embedder()?.embed_one(query)?;
        Ok(self.hits(self.index.search_ann(&v, params.k, params.ef, None)))
    }

    /// Papers closest to the paper `id`, the paper itself excluded.
    ///
    /// # Errors
    /// [`Error::PaperNotFound`].
    pub fn similar(&self, id: &PaperId, params: &SearchParams) -> Result<Vec<Hit<'_>>, Error> {
        let doc = self
            .index
            .doc_id(id)
            .ok_or_else(|| Error::PaperNotFound(id.clone()))?;
        let not_self = move |d: DocId| d != doc;
        let hits =
            self.index
                .search_ann(self.index.vector(doc), params.k, params.ef, Some(&not_self));
        Ok(self.hits(hits))
    }

    /// The record of paper `id`.
    ///
    /// # Errors
    /// [`Error::PaperNotFound`].
    pub fn paper(&self, id: &PaperId) -> Result<&Paper, Error> {
        self.index
            .doc_id(id)
            .map(|d| self.index.paper(d))
            .ok_or_else(|| Error::PaperNotFound(id.clone()))
    }

    fn hits(&self, found: Vec<(DocId, Score)>) -> Vec<Hit<'_>> {
        found
            .into_iter()
            .map(|(doc, score)| Hit {
                doc,
                paper: self.index.paper(doc),
                score,
            })
            .collect()
    }
}
