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

impl Paper {
    /// The paper's arXiv identifier, when its id is one (see [`arxiv_id`]).
    pub fn arxiv_id(&self) -> Option<&str> {
        arxiv_id(&self.id.0)
    }

    /// Where to read the paper: its `url`, else its arXiv abstract page when the id is an
    /// arXiv id (for indexes built before the readers derived it).
    pub fn source_url(&self) -> Option<String> {
        self.url
            .clone()
            .or_else(|| self.arxiv_id().map(arxiv_abs_url))
    }

    /// The PDF, for arXiv papers: `https://arxiv.org/pdf/{id}`.
    pub fn pdf_url(&self) -> Option<String> {
        self.arxiv_id()
            .map(|id| format!("https://arxiv.org/pdf/{id}"))
    }
}

/// `https://arxiv.org/abs/{id}`.
pub fn arxiv_abs_url(id: &str) -> String {
    format!("https://arxiv.org/abs/{id}")
}

/// `id` itself if it is an arXiv identifier, after arXiv's documented schemes:
/// new style `YYMM.NNNN` (April 2007 to 2014) or `YYMM.NNNNN` (2015 on), month 01-12,
/// optionally with a version `vN` (`2503.13531`, `0704.0001v2`); old style
/// `archive[.SC]/YYMMNNN` (`hep-th/9901001`, `math.GT/0309136v1`). An optional `arXiv:`
/// prefix is not accepted: ids are matched as stored. Anything else (`seed-007`, BEIR's
/// numeric ids) is not one, so no link is invented for it.
pub fn arxiv_id(id: &str) -> Option<&str> {
    fn digits(s: &str, n: usize) -> bool {
        s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
    }
    fn month_ok(yymm: &str) -> bool {
        matches!(yymm[2..].parse::<u8>(), Ok(1..=12))
    }
    /// Strips a `vN` version suffix.
    fn unversioned(s: &str) -> Option<&str> {
        match s.rfind('v') {
            Some(i) if digits(&s[i + 1..], s.len() - i - 1) && i + 1 < s.len() => Some(&s[..i]),
            Some(_) => None,
            None => Some(s),
        }
    }
    let bare = unversioned(id)?;
    if let Some((yymm, number)) = bare.split_once('.') {
        if digits(yymm, 4) && month_ok(yymm) && (digits(number, 4) || digits(number, 5)) {
            // The scheme began in April 2007 (0704); five-digit numbers replaced
            // four-digit ones in January 2015 (1501).
            let four = ("0704"..="1412").contains(&yymm) && number.len() == 4;
            let five = yymm >= "1501" && number.len() == 5;
            if four || five {
                return Some(id);
            }
        }
    }
    if let Some((archive, number)) = bare.split_once('/') {
        let (name, subject) = archive.split_once('.').unwrap_or((archive, ""));
        let name_ok = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            && !name.starts_with('-');
        let subject_ok = subject.is_empty()
            || (subject.len() == 2 && subject.bytes().all(|b| b.is_ascii_uppercase()));
        if name_ok && subject_ok && digits(number, 7) && month_ok(&number[..4]) {
            return Some(id);
        }
    }
    None
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
    fn recognises_arxiv_ids() {
        for id in [
            "2503.13531",
            "2503.13531v2",
            "0704.0001",
            "1412.9999v10",
            "1501.00001",
            "hep-th/9901001",
            "hep-th/9901001v3",
            "math.GT/0309136",
            "cond-mat/0102536",
        ] {
            assert_eq!(arxiv_id(id), Some(id), "{id}");
        }
        for id in [
            "seed-007",
            "4983",
            "2503.1353",
            "2513.13531",
            "2503.13531v",
            "2503.13531v2x",
            "1412.00001",
            "1501.0001",
            "0612.0001",
            "hep-th/990100",
            "HEP-TH/9901001",
            "hep-th/9913001",
            "/9901001",
            "math.gt/0309136",
            "arXiv:2503.13531",
            "",
            "v2",
        ] {
            assert_eq!(arxiv_id(id), None, "{id}");
        }
    }

    #[test]
    fn derives_links_only_for_arxiv_ids() {
        let paper = |id: &str, url: Option<&str>| Paper {
            id: id.into(),
            title: "t".into(),
            abstract_: String::new(),
            authors: vec![],
            date: None,
            categories: vec![],
            url: url.map(str::to_string),
            extra: Default::default(),
        };
        let p = paper("2503.13531v2", None);
        assert_eq!(
            p.source_url().unwrap(),
            "https://arxiv.org/abs/2503.13531v2"
        );
        assert_eq!(p.pdf_url().unwrap(), "https://arxiv.org/pdf/2503.13531v2");
        let given = paper("2503.13531", Some("https://example.org/x"));
        assert_eq!(given.source_url().unwrap(), "https://example.org/x");
        assert_eq!(paper("seed-007", None).source_url(), None);
        assert_eq!(paper("seed-007", None).pdf_url(), None);
    }

    #[test]
    fn collapses_whitespace() {
        assert_eq!(normalize_whitespace("  a \n\t b\u{a0}c  "), "a b c");
        assert_eq!(normalize_whitespace(" \n "), "");
    }
}
