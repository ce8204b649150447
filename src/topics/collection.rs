//! What a topic run reads of a collection: its live papers and their stored vectors.
//!
//! An index directory is one ([`Index`]); papers and vectors streamed from PostgreSQL
//! shards into memory are another ([`InMemory`]). Selection, clustering, labels, growth
//! and the map only need these five questions answered, so every store gets the same
//! topics.

use crate::index::Index;
use crate::paper::{DocId, Paper, PaperId};
use std::collections::HashMap;

/// A collection's papers and vectors by [`DocId`].
pub trait Collection {
    /// Dimension of the vectors.
    fn dim(&self) -> usize;
    /// Live papers.
    fn len(&self) -> usize;
    /// Whether it holds no live paper.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The live papers, in increasing [`DocId`] order.
    fn docs(&self) -> Box<dyn Iterator<Item = DocId> + '_>;
    fn paper(&self, doc: DocId) -> &Paper;
    /// The paper's unit vector.
    fn vector(&self, doc: DocId) -> &[f32];
    fn doc_id(&self, id: &PaperId) -> Option<DocId>;
}

impl Collection for Index {
    fn dim(&self) -> usize {
        self.manifest().dim
    }
    fn len(&self) -> usize {
        Index::len(self)
    }
    fn docs(&self) -> Box<dyn Iterator<Item = DocId> + '_> {
        Box::new(Index::docs(self))
    }
    fn paper(&self, doc: DocId) -> &Paper {
        Index::paper(self, doc)
    }
    fn vector(&self, doc: DocId) -> &[f32] {
        Index::vector(self, doc)
    }
    fn doc_id(&self, id: &PaperId) -> Option<DocId> {
        Index::doc_id(self, id)
    }
}

/// Papers with their vectors, held in memory in the order given (that order is the
/// [`DocId`] order, so give it sorted, e.g. by id, for deterministic topics).
pub struct InMemory {
    papers: Vec<Paper>,
    vectors: Vec<f32>,
    dim: usize,
    by_id: HashMap<PaperId, DocId>,
}

impl InMemory {
    /// # Panics
    /// If a vector's length is not `dim`.
    pub fn new(dim: usize, rows: impl IntoIterator<Item = (Paper, Vec<f32>)>) -> InMemory {
        let mut papers = Vec::new();
        let mut vectors = Vec::new();
        let mut by_id = HashMap::new();
        for (paper, v) in rows {
            assert_eq!(v.len(), dim, "vector of {} has the wrong length", paper.id);
            by_id.insert(paper.id.clone(), papers.len() as DocId);
            vectors.extend_from_slice(&v);
            papers.push(paper);
        }
        InMemory {
            papers,
            vectors,
            dim,
            by_id,
        }
    }
}

impl Collection for InMemory {
    fn dim(&self) -> usize {
        self.dim
    }
    fn len(&self) -> usize {
        self.papers.len()
    }
    fn docs(&self) -> Box<dyn Iterator<Item = DocId> + '_> {
        Box::new(0..self.papers.len() as DocId)
    }
    fn paper(&self, doc: DocId) -> &Paper {
        &self.papers[doc as usize]
    }
    fn vector(&self, doc: DocId) -> &[f32] {
        let i = doc as usize * self.dim;
        &self.vectors[i..i + self.dim]
    }
    fn doc_id(&self, id: &PaperId) -> Option<DocId> {
        self.by_id.get(id).copied()
    }
}
