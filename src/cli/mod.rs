//! The `paperscope` command line: one function per subcommand, each parsing nothing (that
//! is [`args`]) and deciding nothing about search (that is [`crate::search`]); they load,
//! call the library once and print.

pub mod args;
mod feed;
mod harvest;
mod output;
mod pg;
mod topics;

use crate::corpus::{self, ReadOptions};
use crate::embed::{default_model_dir, Embedder, Encoder};
use crate::eval::{self, retrieval};
use crate::index::{self, BuildOptions, HnswParams, Index};
use crate::paper::PaperId;
use crate::search::{Engine, Filter, Limits, Mode, SearchParams};
use crate::server;
use crate::store::postgres_urls;
use anyhow::{Context, Result};
use args::{Cli, Command, EvalCommand, ModelArg};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

/// A command line that parsed but asks for something unusable: exit status 2, like the
/// usage errors clap reports while parsing (runtime failures exit with 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Whether `e` is the command line's fault rather than a failure while running: a
/// [`UsageError`], or a flag value the library refused (a date, a mode, a topic count).
pub fn is_usage_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<crate::search::Invalid>()
            || matches!(
                c.downcast_ref::<crate::search::Error>(),
                Some(crate::search::Error::Invalid(_))
            )
            || c.downcast_ref::<crate::topics::Error>()
                .is_some_and(|t| t.is_invalid_request())
    })
}

/// Runs the parsed command line.
///
/// # Errors
/// Whatever the command failed with, with context for the user.
pub fn run(cli: Cli) -> Result<()> {
    directory_only(&cli.command)?;
    match cli.command {
        Command::Index(a) => index(a),
        Command::Add(a) => add(a),
        Command::Remove(a) => remove(a),
        Command::Compact(a) => compact(a),
        Command::Search(a) => search(a),
        Command::Similar(a) => similar(a),
        Command::Embed(a) => embed(a),
        Command::Serve(a) => serve(a),
        Command::Topics(a) => topics::topics(a),
        Command::Eval(EvalCommand::Recall(a)) => recall(a),
        Command::Eval(EvalCommand::Clustering(a)) => topics::eval_clustering(a),
        Command::Eval(EvalCommand::Retrieval(a)) => retrieval(a),
        Command::Check(a) => check(a),
        Command::Harvest(c) => harvest::harvest(c),
        Command::Sync(a) => feed::sync(a),
    }
}

/// Refuses `postgres://` URLs given to a command that works on an index directory only,
/// before anything could print the URL (and its password) as a path.
fn directory_only(command: &Command) -> Result<()> {
    let (name, index) = match command {
        Command::Compact(a) => ("compact", &a.index),
        Command::Check(a) => ("check", &a.index),
        Command::Eval(EvalCommand::Recall(a)) => ("eval recall", &a.index),
        Command::Sync(a) => ("sync", &a.index),
        _ => return Ok(()),
    };
    match postgres_urls(index) {
        Some(_) => Err(UsageError(format!(
            "`{name}` works on an index directory, not on PostgreSQL shards (README, \"Scaling out\", says what runs where)"
        ))
        .into()),
        None => Ok(()),
    }
}

fn model_dir(arg: &ModelArg) -> PathBuf {
    arg.model.clone().unwrap_or_else(default_model_dir)
}

/// Loads the model the flags name, to run as they ask.
fn load_model(arg: &ModelArg) -> Result<Embedder> {
    Ok(Embedder::load(&model_dir(arg), &arg.options())?)
}

fn index(a: args::IndexArgs) -> Result<()> {
    if let Some(urls) = postgres_urls(&a.out) {
        return pg::index(&urls, a);
    }
    if a.from_index.is_some() {
        return Err(UsageError("--from-index needs a postgres:// --out".into()).into());
    }
    let start = Instant::now();
    let embedder = load_model(&a.model)?;
    let opts = ReadOptions {
        strict: a.strict,
        limit: a.limit,
    };
    let corpus = read_reporting(&a.files, &opts)?;
    let opts = BuildOptions {
        hnsw: HnswParams {
            m: a.m as usize,
            ef_construction: a.ef_construction,
            ef_search: a.ef_search,
        },
        sources: sources(&a.files),
        read: index::ReadRecord {
            limit: a.limit,
            strict: a.strict,
        },
        replace: a.replace,
    };
    let bar = embedding_bar(corpus.papers.len());
    let report = index::build(&a.out, corpus.papers, &embedder, &opts, |p| {
        show_progress(&bar, p)
    })
    .with_context(|| format!("building index {}", a.out.display()))?;
    bar.finish_and_clear();
    let summary = output::IndexSummary::new(&corpus.report, &report, start.elapsed(), &a.out);
    print_summary(&summary, a.json)
}

/// `add`: the files' records as one commit (new ids added, changed records replaced,
/// deletion records applied).
fn add(a: args::AddArgs) -> Result<()> {
    if let Some(urls) = postgres_urls(&a.index) {
        return pg::add(&urls, a);
    }
    let start = Instant::now();
    let embedder = load_model(&a.model)?;
    let opts = ReadOptions {
        strict: a.strict,
        limit: None,
    };
    let corpus = read_reporting(&a.files, &opts)?;
    let changes = index::Changes {
        upserts: corpus.papers,
        removals: corpus.deleted,
        sources: sources(&a.files),
    };
    let bar = embedding_bar(changes.upserts.len());
    let merge = if a.no_merge {
        index::Merge::Never
    } else {
        index::Merge::Auto
    };
    let report = index::commit(&a.index, changes, &embedder, merge, |p| {
        show_progress(&bar, p)
    })
    .with_context(|| format!("adding to index {}", a.index.display()))?;
    bar.finish_and_clear();
    let summary = output::IndexSummary::new(&corpus.report, &report, start.elapsed(), &a.index);
    print_summary(&summary, a.json)
}

/// `remove`: deletes papers by id, as one commit.
fn remove(a: args::RemoveArgs) -> Result<()> {
    let start = Instant::now();
    let mut ids: Vec<PaperId> = a
        .ids
        .iter()
        .map(|i| PaperId(i.trim().to_string()))
        .collect();
    if let Some(f) = &a.ids_from {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        ids.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| PaperId(l.to_string())),
        );
    }
    if ids.is_empty() {
        return Err(UsageError("no ids given: pass IDs or --ids-from FILE".into()).into());
    }
    if let Some(urls) = postgres_urls(&a.index) {
        return pg::remove(&urls, ids, a.json);
    }
    let embedder = load_model(&a.model)?;
    let changes = index::Changes {
        removals: ids,
        ..Default::default()
    };
    let report = index::commit(&a.index, changes, &embedder, index::Merge::Auto, |_| {})
        .with_context(|| format!("removing from index {}", a.index.display()))?;
    for id in &report.not_found {
        eprintln!("warning: {id} is not in the index");
    }
    print_commit(&report, start, &a.index, a.json)
}

/// `compact`: merges every segment into one.
fn compact(a: args::CompactArgs) -> Result<()> {
    let start = Instant::now();
    let embedder = load_model(&a.model)?;
    let report = index::commit(
        &a.index,
        index::Changes::default(),
        &embedder,
        index::Merge::All,
        |_| {},
    )
    .with_context(|| format!("compacting index {}", a.index.display()))?;
    print_commit(&report, start, &a.index, a.json)
}

/// Prints the summary of a commit that read no paper files (`remove`, `compact`).
fn print_commit(
    report: &index::CommitReport,
    start: Instant,
    dir: &std::path::Path,
    json: bool,
) -> Result<()> {
    let read = corpus::ReadReport::default();
    print_summary(
        &output::IndexSummary::new(&read, report, start.elapsed(), dir),
        json,
    )
}

/// Reads paper files, reporting each problem and each file's format on stderr.
fn read_reporting(files: &[PathBuf], opts: &ReadOptions) -> Result<corpus::Corpus> {
    let corpus = corpus::read_files(files, opts)?;
    for p in &corpus.report.problems {
        eprintln!("warning: {p}");
    }
    for (path, format) in &corpus.report.formats {
        eprintln!("{}: {format} format", path.display());
    }
    Ok(corpus)
}

fn sources(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|p| p.display().to_string()).collect()
}

fn embedding_bar(papers: usize) -> ProgressBar {
    ProgressBar::new(papers as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} embedding [{bar:30}] {pos}/{len} papers  {per_sec}  ETA {eta}  {msg}",
        )
        .expect("static template. This is a bug.")
        .progress_chars("=> "),
    )
}

fn show_progress(bar: &ProgressBar, p: index::Progress) {
    match p {
        index::Progress::Embedding {
            done,
            total,
            tokens,
        } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(format!("{tokens} tokens"));
        }
        index::Progress::Graph => bar.set_message("building and repairing the HNSW graph"),
        index::Progress::Writing => bar.set_message("writing"),
    }
}

fn print_summary(summary: &output::IndexSummary, json: bool) -> Result<()> {
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, summary)?;
        writeln!(out)?;
    } else {
        eprintln!("{summary}");
    }
    Ok(())
}

/// Opens an index for one user at a terminal ([`Limits::command_line`]).
fn open_engine(index: &std::path::Path) -> Result<Engine> {
    Engine::open(index, Limits::command_line())
        .with_context(|| format!("opening index {}", index.display()))
}

fn search(a: args::SearchArgs) -> Result<()> {
    if let Some(urls) = postgres_urls(&a.index) {
        return pg::search(&urls, a);
    }
    let engine = open_engine(&a.index)?;
    let encoder = load_model(&a.model)?;
    let params = search_params(&a);
    let results = engine.search(&a.query.join(" "), &params, &encoder)?;
    print_hits(&results.hits, a.json, a.format)
}

fn similar(a: args::SimilarArgs) -> Result<()> {
    if let Some(urls) = postgres_urls(&a.index) {
        return pg::similar(&urls, a);
    }
    let engine = open_engine(&a.index)?;
    let params = SearchParams {
        k: a.k,
        explain: a.explain,
        ..page_params(a.page)
    };
    let results = engine.similar(&PaperId(a.paper_id), &params)?;
    print_hits(&results.hits, a.json, a.format)
}

/// The page and filter flags as [`SearchParams`] (the engine validates the dates).
/// `search`'s flags as [`SearchParams`], for either store.
fn search_params(a: &args::SearchArgs) -> SearchParams {
    let defaults = page_params(a.page.clone());
    SearchParams {
        k: a.k,
        mode: a.mode,
        explain: a.explain,
        fusion: a.fusion.unwrap_or(defaults.fusion),
        sort: a.sort,
        ..defaults
    }
}

fn page_params(p: args::PageArgs) -> SearchParams {
    SearchParams {
        offset: p.offset,
        filter: Filter {
            category: p.category,
            from: p.from,
            to: p.to,
        },
        ..Default::default()
    }
}

fn print_hits(
    hits: &[crate::search::Hit<'_>],
    json: bool,
    format: Option<crate::export::Format>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(format) = format {
        crate::export::write(&mut out, hits.iter().map(|h| h.paper), format)?;
    } else if json {
        output::hits_json(&mut out, hits)?;
    } else {
        output::hits_text(&mut out, hits)?;
    }
    Ok(())
}

/// Lines per embedding call: large enough to batch well, small enough to stream.
const EMBED_CHUNK: usize = 256;

fn embed(a: args::EmbedArgs) -> Result<()> {
    let embedder = load_model(&a.model)?;
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut chunk: Vec<String> = Vec::with_capacity(EMBED_CHUNK);
    let flush = |chunk: &mut Vec<String>, out: &mut BufWriter<_>| -> Result<()> {
        let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for v in embedder.embed(&texts)? {
            serde_json::to_writer(&mut *out, &serde_json::json!({ "embedding": v }))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        chunk.clear();
        Ok(())
    };
    for (i, line) in stdin.lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            // The lines before a bad one (invalid UTF-8, a read error) are answered
            // first: every output line still stands for its input line.
            Err(e) => {
                flush(&mut chunk, &mut out)?;
                return Err(anyhow::Error::new(e).context(format!("reading stdin line {}", i + 1)));
            }
        };
        chunk.push(input_text(line));
        if chunk.len() == EMBED_CHUNK {
            flush(&mut chunk, &mut out)?;
        }
    }
    flush(&mut chunk, &mut out)
}

/// A line that is a JSON object with a string `text` stands for that text (so texts may
/// contain newlines); any other line is the text itself.
fn input_text(line: String) -> String {
    if line.trim_start().starts_with('{') {
        if let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str(&line) {
            if let Some(serde_json::Value::String(text)) = obj.remove("text") {
                return text;
            }
        }
    }
    line
}

fn serve(a: args::ServeArgs) -> Result<()> {
    if let Some(urls) = postgres_urls(&a.index) {
        return pg::serve(&urls, a);
    }
    let engine = std::sync::Arc::new(
        Engine::open(&a.index, Limits::default())
            .with_context(|| format!("opening index {}", a.index.display()))?,
    );
    let encoder = std::sync::Arc::new(load_model(&a.model)?);
    let cors_origin =
        match a.cors_origin {
            Some(o) => Some(o.parse().map_err(|_| {
                UsageError(format!("--cors-origin {o:?} is not a valid header value"))
            })?),
            None => None,
        };
    let config = server::ServerConfig {
        model: server::ServiceConfig {
            capacity_tokens: a.queue_tokens,
            ..Default::default()
        },
        request_timeout: std::time::Duration::from_millis(a.timeout_ms),
        cors_origin,
        warm_topics: !a.no_warm_topics,
        feeds: match &a.feed {
            Some(path) => {
                crate::feed::FeedFile::read(path)
                    .map_err(|e| UsageError(e.to_string()))?
                    .searches
            }
            None => Vec::new(),
        },
        ..Default::default()
    };
    let state = server::AppState::new(engine.clone(), encoder, &config)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let served = async {
            let listener = tokio::net::TcpListener::bind(a.addr)
                .await
                .with_context(|| format!("binding {}", a.addr))?;
            let addr = listener.local_addr()?;
            eprintln!(
                "paperscope: serving {} papers from {} on http://{addr}",
                engine.index().len(),
                a.index.display()
            );
            let following = (a.follow_ms > 0).then(|| {
                tokio::spawn(server::follow_commits(
                    state.clone(),
                    std::time::Duration::from_millis(a.follow_ms),
                ))
            });
            let connections = server::Connections {
                max: a.max_connections,
                idle_timeout: std::time::Duration::from_millis(a.idle_timeout_ms),
                shutdown_grace: std::time::Duration::from_millis(a.shutdown_grace_ms),
            };
            server::run(
                listener,
                server::router(state.clone()),
                connections,
                server::shutdown_signal(),
            )
            .await?;
            if let Some(f) = following {
                f.abort();
            }
            anyhow::Ok(())
        }
        .await;
        // Also when binding failed: the embedding thread ends before the process does.
        state.shutdown().await;
        served?;
        eprintln!("paperscope: stopped");
        Ok(())
    })
}

/// Opening an index verifies it (see `index::integrity`); this says so, with what was
/// checked.
fn check(a: args::CheckArgs) -> Result<()> {
    let start = Instant::now();
    let index =
        Index::open(&a.index).with_context(|| format!("checking index {}", a.index.display()))?;
    let m = index.manifest();
    let bytes: u64 = m.files.values().map(|f| f.bytes).sum();
    let mut out = std::io::stdout().lock();
    if m.files.is_empty() {
        writeln!(
            out,
            "{}: {} papers; built before checksums were recorded: sizes and vectors checked only",
            a.index.display(),
            index.len()
        )?;
    } else {
        writeln!(
            out,
            "{}: ok: {} papers, {} files ({:.1} MB) match their checksums, vectors finite and unit length ({:.2} s)",
            a.index.display(),
            index.len(),
            m.files.len(),
            bytes as f64 / 1e6,
            start.elapsed().as_secs_f64()
        )?;
    }
    Ok(())
}

fn recall(a: args::RecallArgs) -> Result<()> {
    if a.queries == 0 {
        return Err(UsageError("--queries must be at least 1".into()).into());
    }
    let index =
        Index::open(&a.index).with_context(|| format!("opening index {}", a.index.display()))?;
    if a.all {
        let report = eval::self_check(&index, a.ef);
        let mut out = std::io::stdout().lock();
        if a.json {
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{} of {} papers not found at rank 1 by their own vector (ef_search {}, {:.1} s)",
                report.missed, report.papers, report.ef_search, report.seconds
            )?;
            for id in &report.missed_ids {
                writeln!(out, "  {id}")?;
            }
        }
        return Ok(());
    }
    let report = eval::recall_at_10(&index, a.queries, a.ef, a.seed);
    if report.queries == 0 {
        anyhow::bail!(
            "index {} has no papers to measure recall with",
            a.index.display()
        );
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "recall@10: {:.3}", report.recall_at_10)?;
        writeln!(
            out,
            "({} queries over {} papers, ef_search {}, worst query {:.1}, HNSW {:.3} ms/query, exact {:.3} ms/query)",
            report.queries, report.papers, report.ef_search, report.min_recall, report.ann_ms, report.exact_ms
        )?;
    }
    Ok(())
}

fn retrieval(a: args::RetrievalArgs) -> Result<()> {
    if let Some(urls) = a.index.as_deref().and_then(postgres_urls) {
        let defaults = SearchParams::default();
        let params = SearchParams {
            mode: a.mode,
            fusion: a.fusion.unwrap_or(defaults.fusion),
            title_boost: a.title_boost.unwrap_or(defaults.title_boost),
            ..defaults
        };
        return pg::retrieval(&urls, a, params);
    }
    let corpus_path = a
        .corpus
        .canonicalize()
        .with_context(|| format!("corpus {}", a.corpus.display()))?;
    let queries = retrieval::read_queries(&a.queries)?;
    let qrels = retrieval::read_qrels(&a.qrels)?;
    let index_dir = match &a.index {
        Some(d) => d.clone(),
        None => default_eval_index(&corpus_path)?,
    };
    let source = corpus_path.display().to_string();
    // Reused when it indexes this very file.
    let existing = Index::open(&index_dir).ok();
    let reusable = existing
        .as_ref()
        .is_some_and(|idx| idx.manifest().sources == [source.clone()]);
    // An index the user named that holds another collection is theirs: never replace it.
    if let (Some(idx), Some(_)) = (&existing, &a.index) {
        if idx.manifest().sources != [source.clone()] {
            anyhow::bail!(
                "index {} holds another collection ({}), not {}; pass another --index, or remove it to rebuild it from this corpus",
                index_dir.display(),
                idx.manifest().sources.join(", "),
                source
            );
        }
    }
    if reusable {
        eprintln!("reusing index {}", index_dir.display());
    } else {
        eprintln!(
            "building index {} of {}",
            index_dir.display(),
            corpus_path.display()
        );
        index(args::IndexArgs {
            out: index_dir.clone(),
            replace: true,
            model: a.model.clone(),
            limit: None,
            strict: false,
            m: HnswParams::default().m as u16,
            ef_construction: HnswParams::default().ef_construction,
            ef_search: HnswParams::default().ef_search,
            files: vec![corpus_path.clone()],
            from_index: None,
            json: false,
        })?;
    }
    let engine = open_engine(&index_dir)?;
    let encoder = load_model(&a.model)?;
    let defaults = SearchParams::default();
    let params = SearchParams {
        mode: a.mode,
        fusion: a.fusion.unwrap_or(defaults.fusion),
        title_boost: a.title_boost.unwrap_or(defaults.title_boost),
        ..defaults
    };
    let start = Instant::now();
    let report = retrieval::evaluate(&engine, &queries, &qrels, &a.qrels, &params, &encoder)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(out, "nDCG@10:    {:.4}", report.ndcg_at_10)?;
        writeln!(out, "MRR@10:     {:.4}", report.mrr_at_10)?;
        writeln!(out, "recall@100: {:.4}", report.recall_at_100)?;
        // The settings that shaped this mode's ranking.
        let settings = match params.mode {
            Mode::Semantic => String::new(),
            Mode::Keyword => format!(", title boost {}", params.title_boost),
            Mode::Hybrid => format!(
                ", fusion {}, title boost {}",
                params.fusion, params.title_boost
            ),
        };
        writeln!(
            out,
            "({} queries, mode {}{settings}, {} papers, {:.1} s)",
            report.queries,
            params.mode,
            engine.index().len(),
            start.elapsed().as_secs_f64()
        )?;
    }
    Ok(())
}

/// `$TMPDIR/paperscope-eval-<corpus file name>-<hash of its path, size and mtime>`, so a
/// changed corpus gets a fresh index and an unchanged one is embedded once.
fn default_eval_index(corpus: &std::path::Path) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let meta = std::fs::metadata(corpus).with_context(|| format!("corpus {}", corpus.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let mut h = Sha256::new();
    h.update(corpus.as_os_str().as_encoded_bytes());
    h.update(meta.len().to_le_bytes());
    h.update(mtime.to_le_bytes());
    let hex: String = h
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = corpus
        .file_stem()
        .map_or("corpus".into(), |s| s.to_string_lossy().into_owned());
    Ok(std::env::temp_dir().join(format!("paperscope-eval-{name}-{hex}")))
}

#[cfg(test)]
mod tests {
    use super::input_text;

    #[test]
    fn json_lines_with_text_stand_for_their_text() {
        assert_eq!(input_text(r#"{"text":"a\nb"}"#.into()), "a\nb");
        assert_eq!(input_text(r#"{"other":1}"#.into()), r#"{"other":1}"#);
        assert_eq!(input_text("{not json".into()), "{not json");
        assert_eq!(input_text("plain".into()), "plain");
    }
}
