//! The commands that take an index directory, when given `postgres://` URLs instead
//! ([`crate::store`]): the same flags and output, the work done by
//! [`crate::store::pg::PgStore`]. The command line is synchronous; each command runs its
//! store calls on a small Tokio runtime of its own.

use super::{args, load_model, output, page_params, read_reporting, search_params, UsageError};
use crate::corpus::ReadOptions;
use crate::embed::Encoder;
use crate::eval::retrieval;
use crate::index::Index;
use crate::paper::{Paper, PaperId};
use crate::search::{Hit, Limits, SearchParams};
use crate::store::pg::{Page, PgStore, WriteReport};
use crate::store::ShardSet;
use crate::topics::Collection;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn open(urls: &str, limits: Limits) -> Result<PgStore> {
    let set: ShardSet = urls.parse().map_err(|e| UsageError(format!("{e}")))?;
    Ok(PgStore::new(set, limits))
}

/// What a write to PostgreSQL did: one line on stderr, or one JSON object with `--json`.
#[derive(Debug, Serialize)]
struct WriteSummary {
    /// Live papers in the store afterwards, all shards.
    papers: usize,
    skipped: usize,
    #[serde(flatten)]
    report: WriteReport,
    seconds: f64,
    papers_per_second: f64,
    /// The shards, without credentials.
    out: String,
}

fn print_write(summary: &WriteSummary, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(summary)?);
    } else {
        let r = &summary.report;
        eprintln!(
            "{}: {} papers; {} added, {} replaced, {} unchanged, {} removed, {} embedded in {:.1} s ({:.0} papers/s)",
            summary.out,
            summary.papers,
            r.added,
            r.replaced,
            r.unchanged,
            r.removed,
            r.embedded,
            summary.seconds,
            summary.papers_per_second
        );
    }
    for id in &summary.report.not_found {
        eprintln!("warning: {id} is not in the store");
    }
    Ok(())
}

/// Writes `papers` (embedding those new or changed, or taking vectors from `vectors`)
/// and removes `removals`.
fn write(
    store: &PgStore,
    rt: &tokio::runtime::Runtime,
    papers: Vec<Paper>,
    removals: &[PaperId],
    encoder: &dyn Encoder,
    skipped: usize,
    json: bool,
) -> Result<()> {
    let start = Instant::now();
    let count = papers.len() + removals.len();
    rt.block_on(store.prepare_for(encoder.info()))?;
    let mut pending = rt.block_on(store.plan(papers))?;
    let todo: Vec<usize> = (0..pending.len())
        .filter(|&i| pending[i].vector.is_none())
        .collect();
    let texts: Vec<String> = todo.iter().map(|&i| pending[i].paper.text()).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = encoder.embed(&refs).context("embedding papers")?;
    for (i, v) in todo.iter().zip(vectors) {
        pending[*i].vector = Some(v);
    }
    let mut report = rt.block_on(store.write(pending, removals))?;
    report.embedded = todo.len();
    finish(store, rt, report, start, count, skipped, json)
}

fn finish(
    store: &PgStore,
    rt: &tokio::runtime::Runtime,
    report: WriteReport,
    start: Instant,
    count: usize,
    skipped: usize,
    json: bool,
) -> Result<()> {
    let seconds = start.elapsed().as_secs_f64();
    let summary = WriteSummary {
        papers: rt.block_on(store.count())?,
        skipped,
        report,
        seconds,
        papers_per_second: count as f64 / seconds.max(1e-9),
        out: store.shards().to_string(),
    };
    print_write(&summary, json)
}

/// `index --out URL`: the files' papers, embedded, or an existing index's records and
/// vectors (`--from-index`, the migration from a directory to PostgreSQL).
pub fn index(urls: &str, a: args::IndexArgs) -> Result<()> {
    let store = open(urls, Limits::command_line())?;
    let rt = runtime()?;
    if let Some(dir) = &a.from_index {
        let start = Instant::now();
        let index = Index::open(dir).with_context(|| format!("opening index {}", dir.display()))?;
        rt.block_on(store.prepare_for(&index.manifest().model))?;
        let docs: Vec<_> = index.docs().take(a.limit.unwrap_or(usize::MAX)).collect();
        let mut report = WriteReport::default();
        // In slices, so that memory stays flat for a large index.
        for chunk in docs.chunks(20_000) {
            let papers = chunk.iter().map(|&d| index.paper(d).clone()).collect();
            let mut pending = rt.block_on(store.plan(papers))?;
            // `plan` groups papers by shard: find each one's vector by its id.
            for p in &mut pending {
                let d = index
                    .doc_id(&p.paper.id)
                    .expect("the paper was read from this index. This is a bug.");
                p.vector = Some(index.vector(d).to_vec());
            }
            let r = rt.block_on(store.write(pending, &[]))?;
            report.added += r.added;
            report.replaced += r.replaced;
            report.unchanged += r.unchanged;
        }
        return finish(&store, &rt, report, start, docs.len(), 0, a.json);
    }
    let opts = ReadOptions {
        strict: a.strict,
        limit: a.limit,
    };
    write_files(&store, &rt, &a.files, &opts, &a.model, a.json)
}

/// `add --index URL`: new papers added, changed ones replaced, deletion records applied.
pub fn add(urls: &str, a: args::AddArgs) -> Result<()> {
    let store = open(urls, Limits::command_line())?;
    let rt = runtime()?;
    let opts = ReadOptions {
        strict: a.strict,
        limit: None,
    };
    write_files(&store, &rt, &a.files, &opts, &a.model, a.json)
}

/// `index` and `add` from files: the records read (problems reported), new and changed
/// ones embedded, deletion records applied.
fn write_files(
    store: &PgStore,
    rt: &tokio::runtime::Runtime,
    files: &[std::path::PathBuf],
    opts: &ReadOptions,
    model: &args::ModelArg,
    json: bool,
) -> Result<()> {
    let encoder = load_model(model)?;
    let corpus = read_reporting(files, opts)?;
    write(
        store,
        rt,
        corpus.papers,
        &corpus.deleted,
        &encoder,
        corpus.report.skipped,
        json,
    )
}

/// `remove --index URL`: deletes papers by id.
pub fn remove(urls: &str, ids: Vec<PaperId>, json: bool) -> Result<()> {
    let store = open(urls, Limits::command_line())?;
    let rt = runtime()?;
    let start = Instant::now();
    let report = rt.block_on(store.write(Vec::new(), &ids))?;
    finish(&store, &rt, report, start, ids.len(), 0, json)
}

pub fn search(urls: &str, a: args::SearchArgs) -> Result<()> {
    let store = open(urls, Limits::command_line())?;
    let rt = runtime()?;
    let params = search_params(&a);
    let query = a.query.join(" ");
    let v = if params.needs_embedding() {
        let encoder = load_model(&a.model)?;
        rt.block_on(store.check_model(encoder.info()))?;
        Some(encoder.embed_one(&query)?)
    } else {
        None
    };
    let page = rt.block_on(store.search(&query, v.as_deref(), &params, a.allow_partial))?;
    print_page(&page, a.json, a.format)
}

pub fn similar(urls: &str, a: args::SimilarArgs) -> Result<()> {
    let store = open(urls, Limits::command_line())?;
    let rt = runtime()?;
    let params = SearchParams {
        k: a.k,
        explain: a.explain,
        ..page_params(a.page)
    };
    let page = rt.block_on(store.similar(&PaperId(a.paper_id), &params, a.allow_partial))?;
    print_page(&page, a.json, a.format)
}

/// Prints a page as the local commands do; missing shards (`--allow-partial`) are named
/// on stderr.
fn print_page(page: &Page, json: bool, format: Option<crate::export::Format>) -> Result<()> {
    for m in &page.missing {
        eprintln!(
            "warning: shard {} did not answer ({}); these results lack its papers",
            m.shard, m.reason
        );
    }
    let hits: Vec<Hit<'_>> = page
        .hits
        .iter()
        .enumerate()
        .map(|(i, h)| Hit {
            doc: i as u32,
            paper: &h.paper,
            score: h.score,
            explanation: None,
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if let Some(format) = format {
        crate::export::write(&mut out, hits.iter().map(|h| h.paper), format)?;
    } else if json {
        output::hits_json(&mut out, &hits)?;
    } else {
        output::hits_text(&mut out, &hits)?;
    }
    Ok(())
}

/// `eval retrieval --index URL`: the same measurements over a store that already holds
/// the corpus (build it with `index --out URL`, or `--from-index` an index of it).
pub fn retrieval(urls: &str, a: args::RetrievalArgs, params: SearchParams) -> Result<()> {
    let store = open(urls, Limits::command_line())?;
    let rt = runtime()?;
    let queries = retrieval::read_queries(&a.queries)?;
    let qrels = retrieval::read_qrels(&a.qrels)?;
    let judged: Vec<_> = queries
        .iter()
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    if judged.is_empty() {
        return Err(UsageError(format!("no query of {} is judged", a.qrels.display())).into());
    }
    let encoder = load_model(&a.model)?;
    rt.block_on(store.check_model(encoder.info()))?;
    let papers = rt.block_on(store.count())?;
    anyhow::ensure!(
        papers > 0,
        "the store {} is empty: index the corpus into it first",
        store.shards()
    );
    let texts: Vec<&str> = judged.iter().map(|q| q.text.as_str()).collect();
    let vectors = encoder.embed(&texts)?;
    // Depth 100 (recall@100), one spare for a query that is itself a corpus document.
    let params = SearchParams { k: 101, ..params };
    let start = Instant::now();
    let (mut ndcg, mut mrr, mut recall) = (0.0, 0.0, 0.0);
    for (q, v) in judged.iter().zip(&vectors) {
        let page = match rt.block_on(store.search(&q.text, Some(v), &params, false)) {
            Ok(p) => p,
            Err(crate::store::pg::Error::Search(crate::search::Error::Invalid(_))) => {
                Page::default()
            }
            Err(e) => return Err(e.into()),
        };
        let ranking: Vec<&str> = page
            .hits
            .iter()
            .map(|h| h.paper.id.0.as_str())
            .filter(|id| *id != q.id)
            .collect();
        let rels = &qrels[&q.id];
        ndcg += retrieval::ndcg_at(&ranking, rels, 10);
        mrr += retrieval::mrr_at(&ranking, rels, 10);
        recall += retrieval::recall_at(&ranking, rels, 100);
    }
    let n = judged.len() as f64;
    let mut out = std::io::stdout().lock();
    writeln!(out, "nDCG@10:    {:.4}", ndcg / n)?;
    writeln!(out, "MRR@10:     {:.4}", mrr / n)?;
    writeln!(out, "recall@100: {:.4}", recall / n)?;
    writeln!(
        out,
        "({} queries, mode {}, {} papers in {}, {:.1} s)",
        judged.len(),
        params.mode,
        papers,
        store.shards(),
        start.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// `serve --index URL`: the read API over the shards (README, "Scaling out"). Stateless:
/// run as many as the load needs, each embedding its own queries.
pub fn serve(urls: &str, a: args::ServeArgs) -> Result<()> {
    use crate::embed::service::{ModelService, ServiceConfig};
    use crate::server;
    use std::sync::Arc;
    let store = Arc::new(open(urls, Limits::default())?);
    let encoder = Arc::new(load_model(&a.model)?);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let papers = runtime.block_on(async {
        store.check_model(encoder.info()).await?;
        store.count().await
    })?;
    if let Err(e) = encoder.warm_up() {
        tracing::warn!("embedding warm-up failed: {e}");
    }
    let config = ServiceConfig {
        capacity_tokens: a.queue_tokens,
        ..Default::default()
    };
    let model = Arc::new(ModelService::start(encoder, config, |_| {}));
    let state = server::pg::PgState::new(store.clone(), model.clone());
    runtime.block_on(async {
        let served = async {
            let listener = tokio::net::TcpListener::bind(a.addr)
                .await
                .with_context(|| format!("binding {}", a.addr))?;
            let addr = listener.local_addr()?;
            eprintln!(
                "paperscope: serving {papers} papers from {} on http://{addr}",
                store.shards()
            );
            let connections = server::Connections {
                max: a.max_connections,
                idle_timeout: std::time::Duration::from_millis(a.idle_timeout_ms),
                shutdown_grace: std::time::Duration::from_millis(a.shutdown_grace_ms),
            };
            server::run(
                listener,
                server::pg::router(state),
                connections,
                server::shutdown_signal(),
            )
            .await?;
            anyhow::Ok(())
        }
        .await;
        // The embedding thread ends before the process does (see `AppState::shutdown`).
        let _ = tokio::task::spawn_blocking(move || model.shutdown()).await;
        served?;
        eprintln!("paperscope: stopped");
        Ok(())
    })
}

/// `topics --index URL`: the store's papers and vectors streamed from every shard into
/// memory, then the same run as over an index directory. The ids are not continued
/// across runs (the history lives in an index directory; README, "Scaling out").
pub fn topics(urls: &str, a: args::TopicsArgs) -> Result<()> {
    let start = Instant::now();
    let store = open(urls, Limits::command_line())?;
    let rt = runtime()?;
    let encoder = load_model(&a.model)?;
    rt.block_on(store.check_model(encoder.info()))?;
    let params = super::topics::params(&a);
    params.validate()?;
    let query_vector = match params.query.as_deref() {
        Some(q) => Some(encoder.embed_one(q)?),
        None => None,
    };
    let collection = rt.block_on(store.collection(encoder.info().dim))?;
    tracing::info!(
        "topics: {} papers streamed from {} in {:.1} s",
        collection.len(),
        store.shards(),
        start.elapsed().as_secs_f64()
    );
    let report = crate::topics::run_on(
        &collection,
        &params,
        query_vector.as_deref(),
        &crate::cancel::Cancel::never(),
    )?;
    super::topics::write_report(&a, &report, &collection)?;
    tracing::info!("topics: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
