//! Command-line arguments. Parsing and validation only; [`super::run`] does the work.

use crate::fusion::Fusion;
use crate::index::HnswParams;
use crate::search::Mode;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Semantic search over research papers, offline.
#[derive(Debug, Parser)]
#[command(name = "paperscope", version, about, long_about = None)]
pub struct Cli {
    /// Highest instruction set to use (paperscope's kernels and oneDNN's): native,
    /// avx512 (no AMX), avx2 or generic. Lower levels force the slower paths of other CPUs.
    #[arg(
        long,
        global = true,
        env = "PAPERSCOPE_CPU",
        default_value = "native",
        value_name = "LEVEL"
    )]
    pub cpu: crate::vector::CpuCap,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed paper records and write an index directory.
    Index(IndexArgs),
    /// Add papers to an index, replace changed ones, delete those marked
    /// `"deleted": true`; one commit, which a running `serve` follows.
    Add(AddArgs),
    /// Delete papers from an index by id; one commit.
    Remove(RemoveArgs),
    /// Merge an index's segments into one (also done automatically past a threshold).
    Compact(CompactArgs),
    /// Papers closest in meaning to a query text.
    Search(SearchArgs),
    /// Papers like a given paper (the paper itself excluded).
    Similar(SimilarArgs),
    /// Embed lines of stdin; one JSON line {"embedding":[...]} per input line.
    Embed(EmbedArgs),
    /// Serve an index over HTTP (JSON API; see README).
    Serve(ServeArgs),
    /// Group papers into topics: the whole collection, or the papers about a query.
    Topics(TopicsArgs),
    /// Verify an index: every file against the manifest's sizes and checksums, every
    /// vector finite and of unit length, records and graph consistent.
    Check(CheckArgs),
    /// Measure quality.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Fetch new papers from arXiv (OAI-PMH) or Hugging Face Daily Papers into a JSON
    /// Lines file for `add`; resumes where the last run into the same file stopped.
    #[command(subcommand)]
    Harvest(HarvestCommand),
    /// The daily run: harvest what a feed file names since the last sync, add it to the
    /// index (one commit), write a "what's new" digest (saved searches' new hits, new
    /// papers per topic, new and growing topics).
    Sync(SyncArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Index directory.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
}

/// Where the model comes from and how it runs.
#[derive(Debug, Args, Clone)]
pub struct ModelArg {
    /// Model directory (config.json, tokenizer.json, model.safetensors). Default:
    /// models/all-MiniLM-L6-v2 of the repository (run scripts/fetch-model.sh).
    #[arg(long, env = "PAPERSCOPE_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Forward pass: auto (oneDNN when installed, else portable), onednn, portable or
    /// candle (the reference).
    #[arg(
        long,
        env = "PAPERSCOPE_BACKEND",
        default_value = "auto",
        value_name = "ENGINE"
    )]
    pub backend: crate::embed::Backend,
    /// Matrix-multiply precision: f32 or bf16 (oneDNN only). Default: bf16 where oneDNN
    /// runs it on AMX tiles, else f32.
    #[arg(long, env = "PAPERSCOPE_PRECISION", default_value = "auto", value_name = "P", value_parser = parse_precision)]
    pub precision: PrecisionArg,
    /// Most tokens per packed forward pass of the own engine (for measurements).
    #[arg(long, env = "PAPERSCOPE_PACK", hide = true, value_name = "TOKENS")]
    pub pack_tokens: Option<usize>,
}

impl ModelArg {
    /// The embedding options these flags ask for.
    pub fn options(&self) -> crate::embed::EmbedOptions {
        crate::embed::EmbedOptions {
            backend: self.backend,
            precision: self.precision.0,
            pack_tokens: self.pack_tokens,
        }
    }
}

/// `--precision`: `auto` leaves the choice to the library.
#[derive(Debug, Clone, Copy)]
pub struct PrecisionArg(pub Option<crate::embed::Precision>);

fn parse_export(s: &str) -> Result<crate::export::Format, String> {
    s.parse()
        .map_err(|e: crate::export::UnknownFormat| e.to_string())
}

fn parse_search_sort(s: &str) -> Result<crate::search::Sort, String> {
    s.parse().map_err(|e: crate::search::Invalid| e.to_string())
}

fn parse_precision(s: &str) -> Result<PrecisionArg, String> {
    match s {
        "" | "auto" => Ok(PrecisionArg(None)),
        _ => s
            .parse()
            .map(|p| PrecisionArg(Some(p)))
            .map_err(|e: crate::embed::Error| e.to_string()),
    }
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Output index directory. An index of the same files there is brought up to date
    /// (unchanged papers cost nothing); one of other files is refused without --replace.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Make the index at --out hold exactly the papers of these files, even if it was
    /// built from others (its vectors are reused where the text is unchanged).
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub model: ModelArg,
    /// Index at most N papers (all files together).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Abort on the first malformed or skipped line instead of reporting and skipping it.
    #[arg(long)]
    pub strict: bool,
    /// HNSW links per node (M).
    #[arg(long, default_value_t = HnswParams::default().m as u16, value_parser = clap::value_parser!(u16).range(2..=256))]
    pub m: u16,
    /// HNSW candidate list size while building.
    #[arg(long, default_value_t = HnswParams::default().ef_construction)]
    pub ef_construction: usize,
    /// HNSW candidate list size while searching (stored in the manifest; every search of
    /// the index uses it).
    #[arg(long, default_value_t = HnswParams::default().ef_search)]
    pub ef_search: usize,
    /// Print a JSON summary of the build on stdout: {"papers","skipped","duplicates",
    /// "tokens","seconds","papers_per_second","tokens_per_second","out"}.
    #[arg(long)]
    pub json: bool,
    /// With a `postgres://` --out: copy this index directory's records and vectors into
    /// the store instead of reading files (no embedding; README, "Scaling out").
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    pub from_index: Option<PathBuf>,
    /// Paper files: JSON Lines (paperscope, arXiv snapshot or BEIR corpus), plain or .gz,
    /// or reference libraries: BibTeX (.bib), CSL-JSON (.json array, .csljson), RIS (.ris).
    #[arg(required_unless_present = "from_index", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Index directory, or `postgres://` shards (README, "Scaling out").
    #[arg(long, value_name = "DIR|URLS")]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Abort on the first malformed or skipped line instead of reporting and skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Print a JSON summary of the commit on stdout.
    #[arg(long)]
    pub json: bool,
    /// Leave the segments as they are, however many (for measuring queries over many
    /// segments; `compact` merges them later).
    #[arg(long, hide = true)]
    pub no_merge: bool,
    /// Paper files, in any format `index` reads.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Index directory, or `postgres://` shards (README, "Scaling out").
    #[arg(long, value_name = "DIR|URLS")]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Also the ids in FILE, one per line.
    #[arg(long, value_name = "FILE")]
    pub ids_from: Option<PathBuf>,
    /// Print a JSON summary of the commit on stdout.
    #[arg(long)]
    pub json: bool,
    /// Paper ids.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Index directory.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Print a JSON summary of the commit on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Pagination and filters, as the HTTP API has them (checked by the library).
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Results to skip, for the next page.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Only papers of this category (`cs.CL`), or of an archive (`cs.`, `cond-mat*`).
    #[arg(long, value_name = "CATEGORY")]
    pub category: Option<String>,
    /// Only papers dated on or after this day, month or year (YYYY-MM-DD, YYYY-MM, YYYY).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Only papers dated on or before this day, month or year.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Index directory, or `postgres://` shards (README, "Scaling out").
    #[arg(long, value_name = "DIR|URLS")]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Number of results.
    #[arg(short, default_value_t = crate::search::SearchParams::default().k)]
    pub k: usize,
    /// Print JSON: {"results":[{"id","title","score"},...]}.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Print the results as citations instead: bibtex, csv or ris.
    #[arg(long, value_name = "FORMAT", value_parser = parse_export)]
    pub format: Option<crate::export::Format>,
    /// Order: relevance (the default), or date (alias newest: the most relevant results,
    /// newest first; see README).
    #[arg(long, default_value = "relevance", value_parser = parse_search_sort)]
    pub sort: crate::search::Sort,
    /// Retrieval mode: semantic (embeddings), keyword (BM25) or hybrid (both, fused).
    #[arg(long, default_value_t = Mode::default(), value_parser = parse_mode)]
    pub mode: Mode,
    /// Add to each result why it was found: shared terms with their BM25 points, the
    /// abstract sentence closest to the query, its rank in each list.
    #[arg(long)]
    pub explain: bool,
    /// Hybrid fusion: rrf, rrf:K, blend, blend:ALPHA, tmm or tmm:ALPHA. Default: the
    /// library's (README, "Hybrid search").
    #[arg(long, value_name = "SPEC")]
    pub fusion: Option<Fusion>,
    /// With `postgres://` shards: answer from the shards that respond when some do not,
    /// naming the missing ones on stderr (default: fail, naming them).
    #[arg(long)]
    pub allow_partial: bool,
    #[command(flatten)]
    pub page: PageArgs,
    /// The query text.
    #[arg(required = true)]
    pub query: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SimilarArgs {
    /// Index directory, or `postgres://` shards (README, "Scaling out").
    #[arg(long, value_name = "DIR|URLS")]
    pub index: PathBuf,
    /// Number of results.
    #[arg(short, default_value_t = crate::search::SearchParams::default().k)]
    pub k: usize,
    /// Print JSON: {"results":[{"id","title","score"},...]}.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Print the results as citations instead: bibtex, csv or ris.
    #[arg(long, value_name = "FORMAT", value_parser = parse_export)]
    pub format: Option<crate::export::Format>,
    /// Add to each result the terms the two papers share, most distinctive first.
    #[arg(long)]
    pub explain: bool,
    /// With `postgres://` shards: answer from the shards that respond when some do not,
    /// naming the missing ones on stderr (default: fail, naming them).
    #[arg(long)]
    pub allow_partial: bool,
    #[command(flatten)]
    pub page: PageArgs,
    /// The paper's id, as in the index (e.g. 2503.13531 or seed-007).
    pub paper_id: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Index directory, or `postgres://` shards (README, "Scaling out").
    #[arg(long, value_name = "DIR|URLS")]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Allow cross-origin requests from this one origin (CORS is off by default).
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Option<String>,
    /// Estimated tokens the model service may hold queued or running before embedding
    /// requests get 503 + Retry-After (bulk work may use half).
    #[arg(long, default_value_t = crate::embed::service::ServiceConfig::default().capacity_tokens, value_name = "TOKENS")]
    pub queue_tokens: usize,
    /// Per-request time limit, milliseconds (503 beyond).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Most connections open at once; more clients wait to be accepted.
    #[arg(long, default_value_t = crate::server::Connections::default().max)]
    pub max_connections: usize,
    /// Time a connection has to complete its next request (head, body and answer),
    /// milliseconds; slower or idle connections are closed.
    #[arg(long, default_value_t = crate::server::Connections::default().idle_timeout.as_millis() as u64)]
    pub idle_timeout_ms: u64,
    /// Do not compute the whole collection's topics in the background at start and after
    /// each commit (then the first `/topics` request computes them: minutes on 100,000+
    /// papers).
    #[arg(long)]
    pub no_warm_topics: bool,
    /// How often to check the index for a new commit (`add`, `remove`, `compact`, a
    /// rebuild) and serve it, milliseconds; 0 serves the commit opened at start only.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub follow_ms: u64,
    /// Longest wait for requests in flight after Ctrl-C or SIGTERM, milliseconds.
    #[arg(long, default_value_t = crate::server::Connections::default().shutdown_grace.as_millis() as u64)]
    pub shutdown_grace_ms: u64,
    /// A feed file whose saved searches are published as Atom feeds at
    /// /feeds/NAME.atom (see README, "Following a field").
    #[arg(long, value_name = "FEED.toml")]
    pub feed: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Index directory (created by the first sync if absent).
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    /// The feed file: sources to harvest, saved searches, digest settings.
    #[arg(long, value_name = "FEED.toml")]
    pub feed: PathBuf,
    /// Harvest up to this day (YYYY-MM-DD). Default: today (UTC).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    #[command(flatten)]
    pub model: ModelArg,
    /// Print the digest as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArg,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Recall@10 of HNSW against exact search, with the index's own papers as queries.
    Recall(RecallArgs),
    /// V-measure (and NMI, ARI) of the topics clustering against labelled papers.
    Clustering(ClusteringArgs),
    /// nDCG@10, MRR@10 and recall@100 on a BEIR benchmark (builds or reuses its index).
    Retrieval(RetrievalArgs),
}

#[derive(Debug, Args)]
pub struct RetrievalArgs {
    /// BEIR corpus.jsonl.
    #[arg(long, value_name = "FILE")]
    pub corpus: PathBuf,
    /// BEIR queries.jsonl.
    #[arg(long, value_name = "FILE")]
    pub queries: PathBuf,
    /// Judgments: BEIR TSV (with header) or JSON Lines.
    #[arg(long, value_name = "FILE")]
    pub qrels: PathBuf,
    /// Retrieval mode: semantic (embeddings), keyword (BM25) or hybrid (both, fused).
    #[arg(long, default_value_t = Mode::default(), value_parser = parse_mode)]
    pub mode: Mode,
    /// Index directory for the corpus: reused if it holds an index of this corpus, else
    /// built there. Default: a directory in the system temp dir named after the corpus.
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArg,
    /// Hybrid fusion: rrf, rrf:K, blend or blend:ALPHA (semantic weight). Default: the
    /// library's, tmm:0.5 (README, "Hybrid search").
    #[arg(long, value_name = "SPEC")]
    pub fusion: Option<Fusion>,
    /// Weight of title terms in keyword scoring. Default: the library's.
    #[arg(long, value_name = "W")]
    pub title_boost: Option<f32>,
    /// Print JSON: {"ndcg@10","mrr@10","recall@100","queries"}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RecallArgs {
    /// Index directory.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    /// Number of query papers, drawn at random.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// HNSW candidate list size to measure (default: the index's `ef_search`).
    #[arg(long)]
    pub ef: Option<usize>,
    /// Seed of the query draw.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Check every paper instead of a sample: each must find itself at rank 1 through
    /// the graph search; prints those that do not.
    #[arg(long)]
    pub all: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TopicsArgs {
    /// Index directory, or `postgres://` shards (README, "Scaling out").
    #[arg(long, value_name = "DIR|URLS")]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Only the papers about this: a keyword (one or two words: lexical matches of its word
    /// forms plus close semantic neighbours) or a phrase (semantic neighbours). Default: every paper.
    #[arg(long, value_name = "TEXT")]
    pub query: Option<String>,
    /// Number of topics, or "auto" (chosen by silhouette).
    #[arg(long, default_value_t = crate::topics::KChoice::default(), value_parser = parse_k)]
    pub k: crate::topics::KChoice,
    /// Seed of the clustering: same index, arguments and seed give the same output.
    #[arg(long, default_value_t = crate::topics::TopicParams::default().seed)]
    pub seed: u64,
    /// Topic order: size (largest first) or growth (fastest-rising first).
    #[arg(long, default_value_t = crate::topics::SortBy::default(), value_parser = parse_sort)]
    pub sort: crate::topics::SortBy,
    /// Print JSON: {"topics":[...],"selection":{...},"clustering":{...}}.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page (map + topic list) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write CSV paper_id,topic_id to FILE.
    #[arg(long, value_name = "FILE")]
    pub assignments: Option<PathBuf>,
    /// Only papers dated on or after this (YYYY-MM-DD, YYYY-MM or YYYY): the topics of a
    /// period. Growth is then measured up to --to.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Only papers dated on or before this (same forms).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Only papers of this arXiv category (`cs.CL`) or archive (`cs.`).
    #[arg(long, value_name = "CAT")]
    pub category: Option<String>,
    /// Neither use nor update the topic history kept in the index directory (topic ids
    /// are then 0..k by size, and no comparison with the previous run is made).
    #[arg(long)]
    pub no_history: bool,
}

fn parse_k(s: &str) -> Result<crate::topics::KChoice, String> {
    s.parse().map_err(|e: crate::topics::Error| e.to_string())
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse().map_err(|e: crate::search::Invalid| e.to_string())
}

fn parse_sort(s: &str) -> Result<crate::topics::SortBy, String> {
    s.parse().map_err(|e: crate::topics::Error| e.to_string())
}

/// Which text of a labelled paper is embedded.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TextArg {
    /// The title alone (MTEB S2S).
    Title,
    /// title + " " + abstract (MTEB P2P).
    #[value(name = "title+abstract")]
    TitleAbstract,
}

#[derive(Debug, Args)]
pub struct ClusteringArgs {
    /// Labelled papers: JSON Lines with title, abstract, label.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Number of clusters, or "auto" for the choice `paperscope topics --k auto` makes
    /// (default: the number of distinct labels).
    #[arg(long)]
    pub k: Option<crate::topics::KChoice>,
    /// Text to embed.
    #[arg(long, value_enum, default_value = "title+abstract")]
    pub text: TextArg,
    /// Keep only records whose label starts with this (e.g. "cs.").
    #[arg(long, value_name = "PREFIX")]
    pub labels_prefix: Option<String>,
    /// Precomputed embeddings, one {"embedding":[...]} line per line of --data (as
    /// `paperscope embed` writes them for the same texts), instead of embedding here.
    #[arg(long, value_name = "FILE")]
    pub embeddings: Option<PathBuf>,
    /// Seed of the clustering.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON: {"v_measure","nmi","ari","k","n",...}.
    #[arg(long)]
    pub json: bool,
}

/// `harvest`: one subcommand per source.
#[derive(Debug, Subcommand)]
pub enum HarvestCommand {
    /// Records of an arXiv set changed between two days, over OAI-PMH.
    Arxiv(HarvestArxivArgs),
    /// Papers listed on Hugging Face Daily Papers, one request per day.
    HfDaily(HarvestHfDailyArgs),
}

/// Flags both harvesters share.
#[derive(Debug, Args)]
pub struct HarvestCommon {
    /// Output file (JSON Lines), replaced atomically; FILE.state.json beside it remembers
    /// where the harvest stopped.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Service URL (default: the real service).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Least time between requests (e.g. 3s, 500ms).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, value_name = "TIME")]
    pub delay: std::time::Duration,
    /// Retries of a failed request before giving up.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub retries: u32,
    /// Longest time one request may take.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration, value_name = "TIME")]
    pub timeout: std::time::Duration,
    /// First wait before a retry when the server names none, doubled each time (for tests).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, hide = true)]
    pub backoff: std::time::Duration,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HarvestArxivArgs {
    /// OAI-PMH set: cs, math, physics:hep-th, ...
    #[arg(long, value_name = "SET")]
    pub set: String,
    /// Keep records having any of these categories (repeatable): cs.CL, cs.LG, ...
    #[arg(long = "category", value_name = "CAT")]
    pub categories: Vec<String>,
    /// First day (YYYY-MM-DD) of changes; default: where the last run into --out stopped.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD); default: today.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    #[command(flatten)]
    pub common: HarvestCommon,
}

#[derive(Debug, Args)]
pub struct HarvestHfDailyArgs {
    /// First day (YYYY-MM-DD); default: the last day of the previous run into --out.
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// Last day (YYYY-MM-DD), inclusive; default: --date, or today when continuing.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    #[command(flatten)]
    pub common: HarvestCommon,
}
