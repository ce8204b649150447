//! The keyword side of retrieval: a tantivy (BM25) index over the same papers as the
//! vectors, so exact terms (gene names, acronyms, a rare word such as "emergent") are
//! found even where a small embedding model blurs them.
//!
//! **Where it lives.** In a `keyword-GENERATION/` subdirectory of an index directory, one
//! per commit: [`write`] makes the new one from the previous one (hard links, then the
//! commit's deletions and additions) before the manifest that names it is published, so
//! a reader never sees the vectors of one commit with the keyword index of another.
//! Deleted papers are deleted here too (tantivy's own deletes), so its live documents
//! are exactly the index's live papers.
//!
//! **What is indexed.** Four text fields, each with the analyzer that suits it:
//!
//! | field | analyzer | why |
//! |---|---|---|
//! | `title` | words, lower case, ASCII folding, English stop words ([`text::SEARCH_STOP_WORDS`]) removed, English (Snowball) stemming | weighted separately at query time ([`DEFAULT_TITLE_BOOST`]) |
//! | `abstract` | the same | |
//! | `authors` | words, lower case, ASCII folding; no stemming | names are not English words ("Wong" must not become "wong" of "wongs") |
//! | `categories` | whitespace, lower case | `cs.LG` stays one token |
//!
//! and one fast field, `doc`, the paper's [`DocId`] (row in the index), because tantivy's
//! own document addresses are per segment and not ours.
//!
//! **Queries** are free text, never tantivy query syntax: a claim such as
//! `"IL-6: a (new) marker"` must not fail to parse. The text is run through each field's
//! analyzer and becomes one OR of term queries, `title` terms multiplied by the title
//! boost. A paper's score is the sum of its matched terms' BM25 scores, so it splits
//! exactly into per-term contributions, which is what [`KeywordIndex::explain`] reports.
//!
//! **Filters** arrive as the [`DocMask`] of the query's scope (see
//! [`crate::index::Index::scope`]), the same one the vector side reads.

use crate::filter::DocMask;
use crate::paper::{DocId, Paper, Score};
use crate::text;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, TokenStream, WhitespaceTokenizer,
};
use tantivy::{DocAddress, Searcher, SegmentReader, TantivyDocument, Term};

/// Default multiplier of title-term scores (abstract terms count 1), chosen on SciFact
/// train (README, "Hybrid search"). Below 1 on purpose: there, weighting titles *up* lost
/// nDCG@10 in keyword and hybrid mode alike (keyword 0.699 at 0.25, 0.695 at 0.5, 0.675
/// at 1, 0.630 at 2; hybrid 0.7335 at 0.25, 0.7340 at 0.5, 0.722 at 1). BM25 already
/// favours a title match per occurrence, since the title field is short; an extra boost
/// let title words that merely share a topic outrank abstracts that address the claim.
pub const DEFAULT_TITLE_BOOST: Score = 0.5;

const EN: &str = "paperscope_en";
const NAME: &str = "paperscope_name";
const CATEGORY: &str = "paperscope_category";

/// Errors of building, opening or querying the keyword index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("keyword index {path}: {source}")]
    Tantivy {
        path: PathBuf,
        source: tantivy::TantivyError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} has no keyword index (built by an older paperscope); rebuild it with `paperscope index`, or search with --mode semantic")]
    Missing { path: PathBuf },
    #[error("corrupt keyword index {path}: {what}")]
    Corrupt { path: PathBuf, what: String },
}

/// What the manifest records about the keyword index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeywordInfo {
    /// Subdirectory of the index directory.
    pub dir: String,
    /// The tantivy version that wrote it (its files are tantivy's format).
    pub tantivy: String,
    /// Analyzer of `title` and `abstract`, in words.
    pub analyzer: String,
}

/// The fields of the schema.
#[derive(Clone, Copy)]
struct Fields {
    title: Field,
    abstract_: Field,
    authors: Field,
    categories: Field,
    doc: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let fields = Fields {
        title: b.add_text_field("title", text(EN)),
        abstract_: b.add_text_field("abstract", text(EN)),
        authors: b.add_text_field("authors", text(NAME)),
        categories: b.add_text_field("categories", text(CATEGORY)),
        doc: b.add_u64_field("doc", FAST | INDEXED),
    };
    (b.build(), fields)
}

/// The analyzer of titles and abstracts (and of query text against them).
fn english() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            text::SEARCH_STOP_WORDS.iter().map(|w| w.to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

fn names() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

fn categories() -> TextAnalyzer {
    TextAnalyzer::builder(WhitespaceTokenizer::default())
        .filter(LowerCaser)
        .build()
}

fn register(index: &tantivy::Index) {
    index.tokenizers().register(EN, english());
    index.tokenizers().register(NAME, names());
    index.tokenizers().register(CATEGORY, categories());
}

/// One analysed word: its index term and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The term as indexed (lower case, stemmed).
    pub term: String,
    /// The word as written.
    pub word: String,
}

/// Runs the title/abstract analyzer over `text`: stop words dropped, stems kept, with the
/// original words.
pub fn analyze(text: &str) -> Vec<Token> {
    run(&mut english(), text)
}

fn run(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(t) = stream.next() {
        out.push(Token {
            term: t.text.clone(),
            word: text
                .get(t.offset_from..t.offset_to)
                .unwrap_or(&t.text)
                .to_string(),
        });
    }
    out
}

/// Writes the keyword index of a new commit into `index_dir/name`: the index of
/// `previous` (a sibling directory) with the papers of `removed` deleted and those of
/// `added` added, or a new one when there is no previous.
///
/// The previous index is not touched: its files are hard-linked into the new directory
/// (tantivy never modifies a file it has written; it replaces `meta.json` by a rename),
/// so a reader of the previous commit keeps a whole index, and the new one costs only
/// what it adds. One indexing thread: the machine's cores are the embedder's, and one
/// thread gives few segments. 100 MB of buffer holds ~100k abstracts before a flush.
///
/// # Errors
/// [`Error::Tantivy`] or [`Error::Io`] on any write failure.
pub fn write<'a>(
    index_dir: &Path,
    name: &str,
    previous: Option<&str>,
    removed: &[DocId],
    added: impl Iterator<Item = (DocId, &'a Paper)>,
) -> Result<KeywordInfo, Error> {
    let path = index_dir.join(name);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&path).map_err(io)?;
    let tv = |source| Error::Tantivy {
        path: path.clone(),
        source,
    };
    let (schema, f) = schema();
    let index = match previous {
        Some(prev) => {
            for e in std::fs::read_dir(index_dir.join(prev)).map_err(io)? {
                let e = e.map_err(io)?;
                let fname = e.file_name();
                if e.file_type().map_err(io)?.is_file()
                    && !fname.to_string_lossy().ends_with(".lock")
                {
                    std::fs::hard_link(e.path(), path.join(&fname)).map_err(io)?;
                }
            }
            tantivy::Index::open_in_dir(&path).map_err(tv)?
        }
        None => tantivy::Index::create_in_dir(&path, schema).map_err(tv)?,
    };
    register(&index);
    let mut writer = index
        .writer_with_num_threads::<TantivyDocument>(1, 100_000_000)
        .map_err(tv)?;
    for &d in removed {
        writer.delete_term(Term::from_field_u64(f.doc, d as u64));
    }
    for (doc, p) in added {
        let mut d = TantivyDocument::default();
        d.add_text(f.title, &p.title);
        d.add_text(f.abstract_, &p.abstract_);
        for a in &p.authors {
            d.add_text(f.authors, a);
        }
        for c in &p.categories {
            d.add_text(f.categories, c);
        }
        d.add_u64(f.doc, doc as u64);
        writer.add_document(d).map_err(tv)?;
    }
    writer.commit().map_err(tv)?;
    writer.wait_merging_threads().map_err(tv)?;
    // The writer's lock file is not part of the index.
    let _ = std::fs::remove_file(path.join(".tantivy-writer.lock"));
    Ok(KeywordInfo {
        dir: name.into(),
        tantivy: tantivy::version_string().to_string(),
        analyzer: "words, lower case, ASCII folding, English stop words, English stemmer".into(),
    })
}

/// An opened keyword index, searched through one fixed tantivy searcher (the index never
/// changes after its build).
pub struct KeywordIndex {
    path: PathBuf,
    searcher: Searcher,
    fields: Fields,
    /// For each tantivy segment (by ordinal), its documents' [`DocId`]s.
    doc_ids: Arc<Vec<Vec<DocId>>>,
    /// For each live [`DocId`], its tantivy address.
    addresses: Vec<Option<DocAddress>>,
}

/// Share of one query term in a paper's keyword score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermScore {
    /// The word as the query wrote it.
    pub term: String,
    /// The indexed form (stem) that matched.
    pub stem: String,
    /// BM25 points this term gave the paper (title part boosted), summing to its keyword score.
    pub score: Score,
    /// Fields the term occurs in: `title`, `abstract`, `authors`, `categories`.
    pub fields: Vec<&'static str>,
}

/// A term two papers share, weighted by how rare it is in the collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedTerm {
    /// The word as the first paper writes it.
    pub term: String,
    pub stem: String,
    /// Inverse document frequency, `ln(1 + (N - df + 0.5) / (df + 0.5))` (BM25's).
    pub idf: Score,
    /// Papers in the collection that contain it.
    pub papers: u64,
}

impl KeywordIndex {
    /// Opens the keyword index in `path`, which must hold exactly the papers of `live`.
    ///
    /// # Errors
    /// [`Error::Missing`] when the directory has no keyword index; [`Error::Corrupt`]
    /// when it disagrees with `live`.
    pub fn open(path: &Path, live: &DocMask) -> Result<KeywordIndex, Error> {
        let path = path.to_path_buf();
        if !path.join("meta.json").is_file() {
            return Err(Error::Missing { path });
        }
        let tv = |source| Error::Tantivy {
            path: path.clone(),
            source,
        };
        let dir = tantivy::directory::MmapDirectory::open(&path)
            .map_err(|e| tv(tantivy::TantivyError::OpenDirectoryError(e)))?;
        let index = tantivy::Index::open(ReadOnly(dir)).map_err(tv)?;
        register(&index);
        let (_, fields) = schema();
        let reader: tantivy::IndexReader = index
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .try_into()
            .map_err(tv)?;
        let searcher = reader.searcher();
        let corrupt = |what: String| Error::Corrupt {
            path: path.clone(),
            what,
        };
        let mut doc_ids = Vec::new();
        let mut addresses = vec![None; live.len()];
        let mut found = 0;
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            let column = seg.fast_fields().u64("doc").map_err(tv)?;
            let alive = seg.alive_bitset();
            let mut ids = Vec::with_capacity(seg.max_doc() as usize);
            for d in 0..seg.max_doc() {
                if alive.is_some_and(|a| !a.is_alive(d)) {
                    // Deleted: never collected; its slot is never read.
                    ids.push(DocId::MAX);
                    continue;
                }
                let id = column
                    .first(d)
                    .filter(|&id| live.contains(id as DocId))
                    .ok_or_else(|| {
                        corrupt(format!("a document of segment {ord} is not a live paper"))
                    })?;
                if addresses[id as usize]
                    .replace(DocAddress::new(ord as u32, d))
                    .is_some()
                {
                    return Err(corrupt(format!("paper {id} is indexed twice")));
                }
                found += 1;
                ids.push(id as DocId);
            }
            doc_ids.push(ids);
        }
        if found != live.count() {
            return Err(corrupt(format!(
                "{found} papers indexed, the manifest has {}",
                live.count()
            )));
        }
        Ok(KeywordIndex {
            path,
            searcher,
            fields,
            doc_ids: Arc::new(doc_ids),
            addresses,
        })
    }

    /// The (field, term, boost) clauses of a free-text query, deduplicated.
    fn clauses(&self, query: &str, title_boost: Score) -> Vec<(Field, Term, Score)> {
        let f = self.fields;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut add = |field: Field, term: &str, boost: Score| {
            if seen.insert((field, term.to_string())) {
                out.push((field, Term::from_field_text(field, term), boost));
            }
        };
        for t in analyze(query) {
            add(f.title, &t.term, title_boost);
            add(f.abstract_, &t.term, 1.0);
        }
        for t in run(&mut names(), query) {
            add(f.authors, &t.term, 1.0);
        }
        for t in run(&mut categories(), query) {
            add(f.categories, &t.term, 1.0);
        }
        out
    }

    fn query(clauses: &[(Field, Term, Score)]) -> BooleanQuery {
        BooleanQuery::new(
            clauses
                .iter()
                .map(|(_, term, boost)| {
                    let q: Box<dyn Query> =
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs));
                    let q: Box<dyn Query> = if *boost == 1.0 {
                        q
                    } else {
                        Box::new(BoostQuery::new(q, *boost))
                    };
                    (Occur::Should, q)
                })
                .collect(),
        )
    }

    /// The `k` best papers for `query` by BM25, best first (ties by DocId), and how many
    /// papers matched. `mask`, when given, holds the papers that may match; others are
    /// skipped. A query with no indexable word (only stop words or punctuation) finds
    /// nothing.
    ///
    /// # Errors
    /// [`Error::Tantivy`] on a read failure.
    pub fn search(
        &self,
        query: &str,
        k: usize,
        title_boost: Score,
        mask: Option<&DocMask>,
    ) -> Result<KeywordHits, Error> {
        let clauses = self.clauses(query, title_boost);
        if clauses.is_empty() {
            return Ok(KeywordHits::default());
        }
        let collector = TopK {
            k,
            doc_ids: Arc::clone(&self.doc_ids),
            // tantivy's segment collectors must own what they hold ('static); the copy is
            // 15 KB for 118,000 papers.
            mask: mask.cloned().map(Arc::new),
        };
        let (mut hits, total) = self
            .searcher
            .search(&Self::query(&clauses), &collector)
            .map_err(|source| Error::Tantivy {
                path: self.path.clone(),
                source,
            })?;
        // Best first, ties by DocId, as `Entry` orders them.
        hits.sort_by_key(|&(d, s)| std::cmp::Reverse(Entry(s, d)));
        hits.truncate(k);
        Ok(KeywordHits { hits, total })
    }

    /// How each query term contributed to `doc`'s keyword score, largest first. Terms the
    /// paper lacks are left out; the scores sum to what [`KeywordIndex::search`] gave it.
    ///
    /// # Errors
    /// [`Error::Tantivy`] on a read failure.
    pub fn explain(
        &self,
        query: &str,
        doc: DocId,
        title_boost: Score,
    ) -> Result<Vec<TermScore>, Error> {
        let Some(&Some(addr)) = self.addresses.get(doc as usize) else {
            return Ok(Vec::new());
        };
        let f = self.fields;
        let field_name = |field: Field| match field {
            x if x == f.title => "title",
            x if x == f.abstract_ => "abstract",
            x if x == f.authors => "authors",
            _ => "categories",
        };
        // Query words by their indexed form, to report the word the user typed.
        let mut words: HashMap<String, String> = HashMap::new();
        for t in analyze(query)
            .into_iter()
            .chain(run(&mut names(), query))
            .chain(run(&mut categories(), query))
        {
            words.entry(t.term).or_insert(t.word);
        }
        let mut by_term: Vec<TermScore> = Vec::new();
        for (field, term, boost) in self.clauses(query, title_boost) {
            let q = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
            // `explain` fails for a document the term does not match: no contribution.
            let Ok(e) = q.explain(&self.searcher, addr) else {
                continue;
            };
            let score = e.value() * boost;
            if score <= 0.0 {
                continue;
            }
            let stem = term.value().as_str().unwrap_or_default().to_string();
            let name = field_name(field);
            match by_term.iter_mut().find(|t| t.stem == stem) {
                Some(t) => {
                    t.score += score;
                    t.fields.push(name);
                }
                None => by_term.push(TermScore {
                    term: words.get(&stem).cloned().unwrap_or_else(|| stem.clone()),
                    stem,
                    score,
                    fields: vec![name],
                }),
            }
        }
        by_term.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.stem.cmp(&b.stem))
        });
        Ok(by_term)
    }

    /// The title/abstract terms papers `a` and `b` share, rarest in the collection first,
    /// at most `n`. Rare shared terms are what make two papers "about the same thing"
    /// beyond their common vocabulary.
    ///
    /// # Errors
    /// [`Error::Tantivy`] on a read failure.
    pub fn shared_terms(&self, a: &Paper, b: &Paper, n: usize) -> Result<Vec<SharedTerm>, Error> {
        let terms_of = |p: &Paper| -> HashMap<String, String> {
            let mut m = HashMap::new();
            for t in analyze(&p.title).into_iter().chain(analyze(&p.abstract_)) {
                m.entry(t.term).or_insert(t.word);
            }
            m
        };
        let (ta, tb) = (terms_of(a), terms_of(b));
        let total = self.searcher.num_docs() as f64;
        let mut shared = Vec::new();
        for (stem, word) in ta {
            if !tb.contains_key(&stem) {
                continue;
            }
            let term_in = |field| Term::from_field_text(field, &stem);
            let df_of = |field| {
                self.searcher
                    .doc_freq(&term_in(field))
                    .map_err(|source| Error::Tantivy {
                        path: self.path.clone(),
                        source,
                    })
            };
            // Papers containing the term in either field; the larger count is a lower
            // bound that is exact for the usual case (abstract ⊇ title words).
            let df = df_of(self.fields.abstract_)?
                .max(df_of(self.fields.title)?)
                .max(1);
            let idf = (1.0 + (total - df as f64 + 0.5) / (df as f64 + 0.5)).ln() as Score;
            shared.push(SharedTerm {
                term: word,
                stem,
                idf,
                papers: df,
            });
        }
        shared.sort_by(|x, y| y.idf.total_cmp(&x.idf).then_with(|| x.stem.cmp(&y.stem)));
        shared.truncate(n);
        Ok(shared)
    }
}

/// The result of [`KeywordIndex::search`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeywordHits {
    /// The best papers, best first.
    pub hits: Vec<(DocId, Score)>,
    /// Papers that matched at least one query term (and passed the filter).
    pub total: usize,
}

/// Collects the `k` best (DocId, score) pairs and counts all matches, skipping papers
/// outside `mask`. (tantivy's `TopDocs` cannot filter on our own DocIds.)
struct TopK {
    k: usize,
    doc_ids: Arc<Vec<Vec<DocId>>>,
    mask: Option<Arc<DocMask>>,
}

struct SegmentTopK {
    k: usize,
    doc_ids: Arc<Vec<Vec<DocId>>>,
    segment: usize,
    mask: Option<Arc<DocMask>>,
    /// Min-heap on score of the best `k` so far.
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Entry>>,
    /// Accepted matches seen.
    count: usize,
}

#[derive(PartialEq)]
struct Entry(Score, DocId);
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Better = higher score, then lower DocId.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

impl Collector for TopK {
    type Fruit = (Vec<(DocId, Score)>, usize);
    type Child = SegmentTopK;

    fn for_segment(&self, ord: u32, _: &SegmentReader) -> tantivy::Result<SegmentTopK> {
        Ok(SegmentTopK {
            k: self.k,
            doc_ids: Arc::clone(&self.doc_ids),
            segment: ord as usize,
            mask: self.mask.clone(),
            heap: Default::default(),
            count: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(
        &self,
        fruits: Vec<(Vec<(DocId, Score)>, usize)>,
    ) -> tantivy::Result<(Vec<(DocId, Score)>, usize)> {
        let total = fruits.iter().map(|f| f.1).sum();
        Ok((fruits.into_iter().flat_map(|f| f.0).collect(), total))
    }
}

impl SegmentCollector for SegmentTopK {
    type Fruit = (Vec<(DocId, Score)>, usize);

    fn collect(&mut self, doc: tantivy::DocId, score: Score) {
        let Some(&id) = self
            .doc_ids
            .get(self.segment)
            .and_then(|s| s.get(doc as usize))
        else {
            return;
        };
        if self.mask.as_ref().is_some_and(|m| !m.contains(id)) {
            return;
        }
        self.count += 1;
        let e = std::cmp::Reverse(Entry(score, id));
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(e);
        } else if self.heap.peek().is_some_and(|worst| e < *worst) {
            self.heap.pop();
            self.heap.push(e);
        }
    }

    fn harvest(self) -> (Vec<(DocId, Score)>, usize) {
        let hits = self
            .heap
            .into_iter()
            .map(|std::cmp::Reverse(Entry(s, d))| (d, s))
            .collect();
        (hits, self.count)
    }
}

/// tantivy's directory over `keyword/`, for reading only: taking a lock succeeds without
/// touching the disk and every write is refused.
///
/// Why: a reader of an index that never changes needs no lock, and tantivy's default
/// (creating `.tantivy-meta.lock`) made an index on a read-only disk, or one the serving
/// user may not write, impossible to open, though nothing here writes.
#[derive(Clone, Debug)]
struct ReadOnly(tantivy::directory::MmapDirectory);

fn read_only_error(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "{}: paperscope opens keyword indexes read-only",
            path.display()
        ),
    )
}

impl tantivy::Directory for ReadOnly {
    fn get_file_handle(
        &self,
        path: &Path,
    ) -> Result<Arc<dyn tantivy::directory::FileHandle>, tantivy::directory::error::OpenReadError>
    {
        self.0.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), tantivy::directory::error::DeleteError> {
        Err(tantivy::directory::error::DeleteError::IoError {
            io_error: Arc::new(read_only_error(path)),
            filepath: path.to_path_buf(),
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, tantivy::directory::error::OpenReadError> {
        self.0.exists(path)
    }

    fn open_write(
        &self,
        path: &Path,
    ) -> Result<tantivy::directory::WritePtr, tantivy::directory::error::OpenWriteError> {
        Err(tantivy::directory::error::OpenWriteError::IoError {
            io_error: Arc::new(read_only_error(path)),
            filepath: path.to_path_buf(),
        })
    }

    fn atomic_read(
        &self,
        path: &Path,
    ) -> Result<Vec<u8>, tantivy::directory::error::OpenReadError> {
        self.0.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, _data: &[u8]) -> std::io::Result<()> {
        Err(read_only_error(path))
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn acquire_lock(
        &self,
        _lock: &tantivy::directory::Lock,
    ) -> Result<tantivy::directory::DirectoryLock, tantivy::directory::error::LockError> {
        Ok(tantivy::directory::DirectoryLock::from(Box::new(())))
    }

    fn watch(
        &self,
        _callback: tantivy::directory::WatchCallback,
    ) -> tantivy::Result<tantivy::directory::WatchHandle> {
        Ok(tantivy::directory::WatchHandle::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(id: &str, title: &str, abstract_: &str) -> Paper {
        Paper {
            id: id.into(),
            title: title.into(),
            abstract_: abstract_.into(),
            authors: vec!["Ada Lovelace".into()],
            date: None,
            categories: vec!["cs.LG".into()],
            url: None,
            extra: Default::default(),
        }
    }

    /// The stop words are spelled out in `text` (beside topics' list) but must stay
    /// tantivy's English list, which existing keyword indexes were built with.
    #[test]
    fn stop_words_are_tantivys_english_list() {
        let builtin = || {
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .filter(AsciiFoldingFilter)
                .filter(StopWordFilter::new(Language::English).unwrap())
                .filter(Stemmer::new(Language::English))
                .build()
        };
        // Every common English word either list might hold.
        let sample = [text::SEARCH_STOP_WORDS, text::TOPIC_STOP_WORDS]
            .concat()
            .join(" ");
        let terms = |mut a: TextAnalyzer| -> Vec<String> {
            run(&mut a, &sample).into_iter().map(|t| t.term).collect()
        };
        assert_eq!(terms(english()), terms(builtin()));
        assert!(terms(english()).len() > 200);
    }

    #[test]
    fn stems_and_drops_stop_words() {
        let t = analyze("The Running behaviours of models");
        let terms: Vec<&str> = t.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(terms, ["run", "behaviour", "model"]);
        assert_eq!(t[0].word, "Running");
    }

    #[test]
    fn finds_exact_terms_boosts_titles_and_explains() {
        let dir = tempfile::tempdir().unwrap();
        let papers = [
            paper(
                "a",
                "Protein folding",
                "We study folding with the BRCA1 gene.",
            ),
            paper("b", "Gene expression", "Expression of genes in yeast."),
            paper("c", "Folding of proteins", "Another folding paper."),
        ];
        let docs = papers.iter().enumerate().map(|(i, p)| (i as DocId, p));
        write(dir.path(), "kw", None, &[], docs).unwrap();
        let idx = KeywordIndex::open(&dir.path().join("kw"), &DocMask::all(3)).unwrap();
        let found = idx.search("brca1", 10, 1.5, None).unwrap();
        assert_eq!(found.hits, [(0, found.hits[0].1)]);
        assert_eq!(found.total, 1);
        // Filtering, authors and categories as fields.
        let mut only_c = DocMask::all(3);
        only_c.remove(0);
        only_c.remove(1);
        let found = idx.search("folding", 10, 1.5, Some(&only_c)).unwrap();
        assert_eq!(found.hits.iter().map(|h| h.0).collect::<Vec<_>>(), [2]);
        assert_eq!(found.total, 1);
        // A page smaller than the matches still counts them all.
        let found = idx.search("folding", 1, 1.5, None).unwrap();
        assert_eq!((found.hits.len(), found.total), (1, 2));
        assert_eq!(idx.search("lovelace", 10, 1.5, None).unwrap().total, 3);
        assert_eq!(idx.search("cs.lg", 10, 1.5, None).unwrap().total, 3);
        // Contributions sum to the score.
        let found = idx.search("gene folding", 10, 1.5, None).unwrap();
        for (doc, score) in found.hits {
            let terms = idx.explain("gene folding", doc, 1.5).unwrap();
            let sum: Score = terms.iter().map(|t| t.score).sum();
            assert!((sum - score).abs() < 1e-4, "{sum} vs {score}");
        }
        let terms = idx.explain("BRCA1 genes", 0, 1.5).unwrap();
        assert_eq!(terms[0].term, "BRCA1");
        assert_eq!(terms[0].fields, ["abstract"]);
        assert_eq!(
            idx.search("the of and", 10, 1.5, None).unwrap(),
            KeywordHits::default()
        );
        let shared = idx.shared_terms(&papers[0], &papers[2], 5).unwrap();
        assert!(shared.iter().any(|s| s.stem == "fold"), "{shared:?}");
    }

    #[test]
    fn missing_index_says_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let err = KeywordIndex::open(dir.path(), &DocMask::all(0))
            .err()
            .unwrap();
        assert!(err.to_string().contains("rebuild"), "{err}");
    }

    /// A commit's keyword index is the previous one with deletions and additions; the
    /// previous one still opens, unchanged.
    #[test]
    fn commits_leave_the_previous_index_whole() {
        let dir = tempfile::tempdir().unwrap();
        let a = paper("a", "Protein folding", "Folding proteins.");
        let b = paper("b", "Gene expression", "Genes in yeast.");
        let b2 = paper("b", "Gene silencing", "Silencing genes in mice.");
        write(dir.path(), "k1", None, &[], [(0, &a), (1, &b)].into_iter()).unwrap();
        // b replaced: row 1 deleted, the new record added as row 2.
        write(dir.path(), "k2", Some("k1"), &[1], [(2, &b2)].into_iter()).unwrap();
        let old = KeywordIndex::open(&dir.path().join("k1"), &DocMask::all(2)).unwrap();
        assert_eq!(old.search("yeast", 10, 1.0, None).unwrap().total, 1);
        let mut live = DocMask::all(3);
        live.remove(1);
        let new = KeywordIndex::open(&dir.path().join("k2"), &live).unwrap();
        assert_eq!(new.search("yeast", 10, 1.0, None).unwrap().total, 0);
        let found = new.search("silencing", 10, 1.0, None).unwrap();
        assert_eq!(found.hits.iter().map(|h| h.0).collect::<Vec<_>>(), [2]);
        // A live set that disagrees with the index is refused.
        assert!(KeywordIndex::open(&dir.path().join("k2"), &DocMask::all(3)).is_err());
    }
}
