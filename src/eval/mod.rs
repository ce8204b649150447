//! Measurements of quality, shared by the `paperscope eval` commands and the tests.
//!
//! - [`recall`]: recall@10 of the HNSW layer against exact search.
//! - [`clustering`]: V-measure / NMI / ARI of the topics clustering against labels.
//! - [`retrieval`]: nDCG@10, MRR@10 and recall@100 on a BEIR benchmark, per search mode.

pub mod clustering;
pub mod recall;
pub mod retrieval;

pub use recall::{recall_at_10, self_check, RecallReport, SelfReport};
