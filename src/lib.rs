//! paperscope: semantic search over a private collection of research papers, offline.
//!
//! # Layout
//! Data flows one way, left to right:
//!
//! ```text
//! corpus ──► embed ──► index ──► search / eval ──► cli (and the HTTP server)
//! ```
//!
//! - [`paper`]: the shared vocabulary (`Paper`, `PaperId`, `DocId`, `Score`), no I/O.
//! - [`corpus`]: reading JSON Lines collections (paperscope, arXiv snapshot, BEIR) and
//!   reference libraries (BibTeX, CSL-JSON, RIS), with per-line error reports.
//! - [`embed`]: sentence embeddings with a BERT-family model run by Candle, matching
//!   sentence-transformers.
//! - [`text`]: text analysis shared by keyword search and topics (words, stemming, stop
//!   words) and calendar dates (corpus dates, filter bounds).
//! - [`filter`]: which papers a query may return, as data (`Filter`, `DocMask`).
//! - [`keyword`]: the tantivy (BM25) index over the same papers, for exact terms.
//! - [`index`]: the index store: manifest, records, vectors, HNSW graph and keyword index,
//!   built atomically and opened together; vector search (HNSW, exact) behind one trait.
//! - [`fusion`]: fusing the semantic and keyword rankings (pure functions).
//! - [`explain`]: "why this result" (shared terms, closest abstract sentence).
//! - [`search`]: the query front door, [`search::Engine`] (semantic, keyword, hybrid).
//! - [`topics`]: finding the papers of a topic and grouping them (k-means, c-TF-IDF labels,
//!   growth, topic ids kept across runs, an HTML map).
//! - [`vector`]: dot products, BF16 rounding and the process's SIMD level (shared by
//!   `embed` and `index`).
//! - [`eval`]: quality measurements (HNSW recall, clustering V-measure, retrieval
//!   nDCG/MRR/recall on BEIR data).
//! - [`export`]: citation export of paper lists (BibTeX, CSV, RIS) for the CLI and the
//!   web pages.
//! - [`harvest`]: fetching new papers from arXiv (OAI-PMH) and Hugging Face Daily Papers
//!   into paperscope JSON Lines, resumably and all or nothing.
//! - [`feed`]: following a field: the feed file, the daily `sync` (harvest, one commit, a
//!   "what's new" digest) and saved searches as Atom feeds.
//! - [`persist`]: small files replaced whole (histories, sync state, digests).
//! - [`cli`]: the `paperscope` command line; thin.
//!
//! Errors: each module owns a `thiserror` enum naming causes with their context; the CLI
//! adds the last hop with `anyhow`.

pub mod cancel;
pub mod cli;
pub mod corpus;
pub mod embed;
pub mod eval;
pub mod explain;
pub mod export;
pub mod feed;
pub mod filter;
pub mod fusion;
pub mod harvest;
pub mod index;
pub mod keyword;
pub mod paper;
pub mod persist;
pub mod search;
pub mod server;
pub mod store;
pub mod text;
pub mod topics;
pub mod vector;
