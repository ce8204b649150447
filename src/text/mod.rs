//! Text analysis shared by keyword search ([`crate::keyword`]) and topic description
//! ([`crate::topics`]), and calendar dates ([`date`]).
//!
//! - **Stemming**: [`Stemmer`] is Snowball English as `rust-stemmers` 1.2 has it. The
//!   keyword index stems with tantivy's filter (`frostem`, Snowball's current rules),
//!   which keeps a few more words apart: `emergent`/`emergence`, `organic`/`organ`,
//!   `international`/`intern` (37 of the 25,004 distinct words of 3,000 arXiv abstracts
//!   differ). The two need not agree, since topics never look stems up in the keyword
//!   index, and neither can change quietly: topics' keyword selection relies on the
//!   coarser stems (`emergent` finds `emergence`), and the keyword index's stems are on
//!   disk.
//! - **Stop words**: two lists on purpose. [`SEARCH_STOP_WORDS`] (Lucene's short English
//!   list) is dropped from keyword queries and the BM25 index, where a longer list would
//!   make phrases such as "first order" or "system" unsearchable.
//!   [`TOPIC_STOP_WORDS`] (scikit-learn's list plus academic boilerplate) keeps words
//!   like "propose" and "results" out of topic labels, where they say nothing.
//! - **Words**: [`words`] and [`tokens`] split titles and abstracts as topics count them
//!   (lower case, inner hyphens kept). The keyword index splits with tantivy's own
//!   tokenizer, which is part of its on-disk format.

pub mod date;

use std::borrow::Cow;

/// The English stemmer: `running` → `run`, `emergence` → `emerg`.
pub struct Stemmer(rust_stemmers::Stemmer);

impl Stemmer {
    pub fn english() -> Stemmer {
        Stemmer(rust_stemmers::Stemmer::create(
            rust_stemmers::Algorithm::English,
        ))
    }

    /// The stem of a lower-case word.
    pub fn stem<'a>(&self, word: &'a str) -> Cow<'a, str> {
        self.0.stem(word)
    }
}

/// Lowercased words of `text`: runs of alphanumerics with inner hyphens (or apostrophes,
/// which are dropped), at least two characters with one letter. A `None` between words
/// marks a break (punctuation) that bigrams must not span.
pub fn tokens(text: &str) -> impl Iterator<Item = Option<String>> + '_ {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<Option<String>>| {
        let w = cur.trim_matches('-').to_string();
        cur.clear();
        if w.chars().count() >= 2 && w.chars().any(char::is_alphabetic) {
            out.push(Some(w));
        }
    };
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            cur.extend(ch.to_lowercase());
        } else if ch == '-' && !cur.is_empty() {
            cur.push('-');
        } else if ch == '\'' || ch == '’' {
            // "model's" → "models" is wrong but "model s" is worse; keep the word whole.
        } else {
            flush(&mut cur, &mut out);
            if !ch.is_whitespace() {
                out.push(None);
            }
        }
    }
    flush(&mut cur, &mut out);
    out.into_iter()
}

/// The plain words of `text` (no breaks), lowercased.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    tokens(text).flatten()
}

/// Lucene's English stop words (tantivy's `Language::English` list): dropped from the
/// keyword index and from keyword queries.
pub const SEARCH_STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// Whether a lower-case word is too common to describe a topic.
pub fn is_topic_stop_word(w: &str) -> bool {
    TOPIC_STOP_WORDS.binary_search(&w).is_ok()
}

/// scikit-learn's `ENGLISH_STOP_WORDS` plus academic boilerplate ("paper", "propose",
/// "approach", "results", ...), sorted for binary search: never topic terms.
pub const TOPIC_STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "across",
    "after",
    "afterwards",
    "again",
    "against",
    "all",
    "almost",
    "alone",
    "along",
    "already",
    "also",
    "although",
    "always",
    "am",
    "among",
    "amongst",
    "amoungst",
    "amount",
    "an",
    "and",
    "another",
    "any",
    "anyhow",
    "anyone",
    "anything",
    "anyway",
    "anywhere",
    "approach",
    "approaches",
    "are",
    "around",
    "as",
    "at",
    "back",
    "based",
    "be",
    "became",
    "because",
    "become",
    "becomes",
    "becoming",
    "been",
    "before",
    "beforehand",
    "behind",
    "being",
    "below",
    "beside",
    "besides",
    "between",
    "beyond",
    "bill",
    "both",
    "bottom",
    "but",
    "by",
    "call",
    "can",
    "cannot",
    "cant",
    "co",
    "con",
    "could",
    "couldnt",
    "cry",
    "de",
    "demonstrate",
    "describe",
    "detail",
    "do",
    "does",
    "done",
    "down",
    "due",
    "during",
    "each",
    "eg",
    "eight",
    "either",
    "eleven",
    "else",
    "elsewhere",
    "empty",
    "enough",
    "et",
    "etc",
    "even",
    "ever",
    "every",
    "everyone",
    "everything",
    "everywhere",
    "except",
    "few",
    "fifteen",
    "fifty",
    "fill",
    "find",
    "fire",
    "first",
    "five",
    "for",
    "former",
    "formerly",
    "forty",
    "found",
    "four",
    "from",
    "front",
    "full",
    "further",
    "get",
    "give",
    "go",
    "had",
    "has",
    "hasnt",
    "have",
    "he",
    "hence",
    "her",
    "here",
    "hereafter",
    "hereby",
    "herein",
    "hereupon",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "however",
    "hundred",
    "ie",
    "if",
    "in",
    "inc",
    "indeed",
    "interest",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "keep",
    "last",
    "latter",
    "latterly",
    "least",
    "less",
    "ltd",
    "made",
    "many",
    "may",
    "me",
    "meanwhile",
    "method",
    "methods",
    "might",
    "mill",
    "mine",
    "more",
    "moreover",
    "most",
    "mostly",
    "move",
    "much",
    "must",
    "my",
    "myself",
    "name",
    "namely",
    "neither",
    "never",
    "nevertheless",
    "new",
    "next",
    "nine",
    "no",
    "nobody",
    "none",
    "noone",
    "nor",
    "not",
    "nothing",
    "novel",
    "now",
    "nowhere",
    "of",
    "off",
    "often",
    "on",
    "once",
    "one",
    "only",
    "onto",
    "or",
    "other",
    "others",
    "otherwise",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "paper",
    "part",
    "per",
    "perhaps",
    "please",
    "propose",
    "proposed",
    "put",
    "rather",
    "re",
    "result",
    "results",
    "same",
    "see",
    "seem",
    "seemed",
    "seeming",
    "seems",
    "serious",
    "several",
    "she",
    "should",
    "show",
    "shows",
    "side",
    "since",
    "sincere",
    "six",
    "sixty",
    "so",
    "some",
    "somehow",
    "someone",
    "something",
    "sometime",
    "sometimes",
    "somewhere",
    "still",
    "study",
    "such",
    "system",
    "take",
    "ten",
    "than",
    "that",
    "the",
    "their",
    "them",
    "themselves",
    "then",
    "thence",
    "there",
    "thereafter",
    "thereby",
    "therefore",
    "therein",
    "thereupon",
    "these",
    "they",
    "thick",
    "thin",
    "third",
    "this",
    "those",
    "though",
    "three",
    "through",
    "throughout",
    "thru",
    "thus",
    "to",
    "together",
    "too",
    "top",
    "toward",
    "towards",
    "twelve",
    "twenty",
    "two",
    "un",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "use",
    "used",
    "using",
    "very",
    "via",
    "was",
    "we",
    "well",
    "were",
    "what",
    "whatever",
    "when",
    "whence",
    "whenever",
    "where",
    "whereafter",
    "whereas",
    "whereby",
    "wherein",
    "whereupon",
    "wherever",
    "whether",
    "which",
    "while",
    "whither",
    "who",
    "whoever",
    "whole",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "within",
    "without",
    "work",
    "would",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_stop_words_are_sorted() {
        assert!(TOPIC_STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tokens_keep_hyphens_and_mark_breaks() {
        let t: Vec<Option<String>> = tokens("Self-supervised NeRF, in 3D.").collect();
        assert_eq!(
            t,
            vec![
                Some("self-supervised".into()),
                Some("nerf".into()),
                None,
                Some("in".into()),
                Some("3d".into()),
                None
            ]
        );
    }

    /// Topics' keyword selection promises that `emergent` finds `emergence` and
    /// `emerging` (see `topics::select`); Snowball's current rules would not.
    #[test]
    fn stems_are_coarse_enough_for_topic_selection() {
        let s = Stemmer::english();
        for w in ["emergence", "emerging", "emerge", "emerged"] {
            assert_eq!(s.stem(w), s.stem("emergent"), "{w}");
        }
        assert_eq!(s.stem("running"), "run");
    }
}
