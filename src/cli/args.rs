//! Command-line arguments. Parsing and validation only; [`super::run`] does the work.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Semantic search over research papers, offline.
#[derive(Debug, Parser)]
#[command(name = "paperscope", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed paper records and write an index directory.
    Index(IndexArgs),
    /// Papers closest in meaning to a query text.
    Search(SearchArgs),
    /// Papers like a given paper (the paper itself excluded).
    Similar(SimilarArgs),
    /// Embed lines of stdin; one JSON line {"embedding":[...]} per input line.
    Embed(EmbedArgs),
    /// Serve an index over HTTP (JSON API; see README).
    Serve(ServeArgs),
    /// Measure quality.
    #[command(subcommand)]
    Eval(EvalCommand),
}

/// Where the model comes from.
#[derive(Debug, Args, Clone)]
pub struct ModelArg {
    /// Model directory (config.json, tokenizer.json, model.safetensors). Default:
    /// models/all-MiniLM-L6-v2 of the repository (run scripts/fetch-model.sh).
    #[arg(long, env = "PAPERSCOPE_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Output index directory (replaced atomically if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Index at most N papers (all files together).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Abort on the first malformed or skipped line instead of reporting and skipping it.
    #[arg(long)]
    pub strict: bool,
    /// HNSW links per node (M).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(2..=256))]
    pub m: u16,
    /// HNSW candidate list size while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// HNSW candidate list size while searching (stored in the manifest).
    #[arg(long, default_value_t = 128)]
    pub ef_search: usize,
    /// Paper files: JSON Lines (paperscope, arXiv snapshot or BEIR corpus), plain or .gz.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Index directory.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Number of results.
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub k: u32,
    /// HNSW candidate list size (default: the index's).
    #[arg(long)]
    pub ef: Option<usize>,
    /// Print JSON: {"results":[{"id","title","score"},...]}.
    #[arg(long)]
    pub json: bool,
    /// The query text.
    #[arg(required = true)]
    pub query: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SimilarArgs {
    /// Index directory.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    /// Number of results.
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub k: u32,
    /// HNSW candidate list size (default: the index's).
    #[arg(long)]
    pub ef: Option<usize>,
    /// Print JSON: {"results":[{"id","title","score"},...]}.
    #[arg(long)]
    pub json: bool,
    /// The paper's id, as in the index (e.g. 2503.13531 or seed-007).
    pub paper_id: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Index directory.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArg,
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Allow cross-origin requests from this one origin (CORS is off by default).
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Option<String>,
    /// Embedding jobs allowed to wait before requests get 503 + Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Per-request time limit, milliseconds (503 beyond).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
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
}

#[derive(Debug, Args)]
pub struct RecallArgs {
    /// Index directory.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    /// Number of query papers, drawn at random.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// HNSW candidate list size (default: the index's).
    #[arg(long)]
    pub ef: Option<usize>,
    /// Seed of the query draw.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
