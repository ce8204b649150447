//! The shared vocabulary: what a paper is, and the one text that represents it.
//!
//! No I/O lives here. Readers in [`crate::corpus`] produce [`Paper`]s in this normalised
//! shape whatever the input format, so everything downstream (embedding, index, search,
//! output) sees one schema.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A paper's identifier as given by its source (an arXiv id such as `2503.13531`, a BEIR
/// `_id`, or `seed-007`). Unique within an index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaperId(pub String);

impl fmt::Display for PaperId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PaperId {
    fn from(s: &str) -> Self {
        PaperId(s.to_string())
    }
}

/// Row number of a paper inside one index: the position of its record, its vector and its
/// HNSW node. Dense, `0..count`.
pub type DocId = u32;

/// Similarity between a query and a paper: cosine of their (unit-length) embeddings, so in
/// `-1.0..=1.0`, higher is closer.
pub type Score = f32;

/// One paper record, normalised.
///
/// Invariants established by the corpus readers: `id` is non-empty; `title` and `abstract_`
/// have their whitespace collapsed to single spaces; at least one of them is non-empty;
/// `date`, when present, is a valid `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paper {
    pub id: PaperId,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// Publication (or listing) date, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// arXiv-style categories, primary first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Fields of the input record that paperscope does not interpret, kept as they were.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Paper {
    /// The text that is embedded for this paper: title and abstract joined as
    /// `"{title}. {abstract}"`, or with a single space when the title already ends in
    /// sentence punctuation (`.`, `?`, `!`), so the model sees one well-formed passage.
    /// With either part missing, the other alone. Used for indexing and for every
    /// evaluation, so query-time and index-time texts never drift apart.
    pub fn text(&self) -> String {
        join_title_abstract(&self.title, &self.abstract_)
    }
}

/// See [`Paper::text`]; exposed for texts that are not (yet) `Paper`s, e.g. evaluation data.
pub fn join_title_abstract(title: &str, abstract_: &str) -> String {
    match (title.is_empty(), abstract_.is_empty()) {
        (false, false) if title.ends_with(['.', '?', '!']) => format!("{title} {abstract_}"),
        (false, false) => format!("{title}. {abstract_}"),
        (false, true) => title.to_string(),
        (true, _) => abstract_.to_string(),
    }
}

/// Collapses every run of Unicode whitespace to one ASCII space and trims the ends.
pub fn normalize_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_title_and_abstract() {
        assert_eq!(join_title_abstract("A title", "Body."), "A title. Body.");
        assert_eq!(join_title_abstract("Why?", "Body."), "Why? Body.");
        assert_eq!(join_title_abstract("Only title", ""), "Only title");
        assert_eq!(join_title_abstract("", "Only body"), "Only body");
    }

    #[test]
    fn collapses_whitespace() {
        assert_eq!(normalize_whitespace("  a \n\t b\u{a0}c  "), "a b c");
        assert_eq!(normalize_whitespace(" \n "), "");
    }
}
