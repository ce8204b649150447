//! Handlers: extract, validate limits, turn the request into `SearchParams`, call the
//! engine, map back. No search logic lives here.

use super::error::{ApiError, ErrorBody, TeiError, TeiErrorBody};
use super::types::*;
use super::AppState;
use crate::cancel::{Cancel, CancelOnDrop};
use crate::embed::service::Priority;
use crate::embed::Encoder;
use crate::paper::PaperId;
use crate::search;
use crate::search::{Filter, Mode, Recommend, Results, SearchParams};
use crate::topics;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use std::time::Instant;

/// `Query` whose rejections are JSON [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path` whose rejections are JSON [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Json` whose rejections (syntax, types, size) are JSON [`ApiError`]s.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Json` whose rejections are [`TeiError`]s, for TEI's route.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(TeiError))]
pub struct TeiJson<T>(pub T);

/// The page and filter of a request as [`SearchParams`] (empty filter values mean none);
/// the engine validates them.
pub(super) fn page_params(
    k: Option<usize>,
    offset: Option<usize>,
    filter: FilterQuery,
) -> SearchParams {
    let d = SearchParams::default();
    SearchParams {
        k: k.unwrap_or(d.k),
        offset: offset.unwrap_or(d.offset),
        filter: Filter {
            category: filter.category.filter(|c| !c.is_empty()),
            from: filter.from.filter(|c| !c.is_empty()),
            to: filter.to.filter(|c| !c.is_empty()),
        },
        ..d
    }
}

/// Each embedding input within the query length limit (an input may be empty).
fn check_inputs(limits: &search::Limits, texts: &[String]) -> Result<(), search::Invalid> {
    for t in texts {
        let chars = t.chars().count();
        if chars > limits.max_query_chars {
            return Err(search::Invalid::TooLong {
                name: "an input",
                chars,
                max: limits.max_query_chars,
            });
        }
    }
    Ok(())
}

fn page(results: Results<'_>, params: &SearchParams, start: Instant) -> SearchResponse {
    SearchResponse {
        results: results.hits.iter().map(ResultItem::from).collect(),
        total: results.total,
        offset: params.offset,
        k: params.k,
        took_ms: start.elapsed().as_secs_f64() * 1000.0,
    }
}

/// The query text and parameters of a `/v1/search` request, for either store (the
/// store validates them).
pub(super) fn search_params(q: SearchQuery) -> Result<(String, SearchParams), ApiError> {
    let params = SearchParams {
        mode: q
            .mode
            .as_deref()
            .map(str::parse::<Mode>)
            .transpose()?
            .unwrap_or_default(),
        sort: q
            .sort
            .as_deref()
            .map(str::parse::<search::Sort>)
            .transpose()?
            .unwrap_or_default(),
        explain: q.explain.unwrap_or(false),
        ..page_params(q.k, q.offset, q.filter)
    };
    Ok((q.q.unwrap_or_default(), params))
}

/// Search by meaning (`semantic`), by words (`keyword`, BM25) or both (`hybrid`, the
/// default), optionally explaining each result.
#[utoipa::path(get, path = "/v1/search", params(SearchQuery, FilterQuery),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn search(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let start = Instant::now();
    let (text, params) = search_params(q)?;
    let engine = s.engine();
    let response = run_search(&s, engine, text, params, move |results, params| {
        page(results, params, start)
    })
    .await?;
    Ok(axum::Json(response))
}

/// A text query on `engine` as every front end of the service runs it: checked before any
/// work is queued, the query embedded on the model service (explanations' sentences as
/// bulk jobs), the search on a query slot, where `map` turns its results into the answer.
/// Dropping the future (time limit, disconnect) cancels what it started.
///
/// # Errors
/// The engine's and the model service's, as [`ApiError`]s.
pub(super) async fn run_search<T: Send + 'static>(
    s: &AppState,
    engine: std::sync::Arc<search::Engine>,
    text: String,
    params: SearchParams,
    map: impl FnOnce(Results<'_>, &SearchParams) -> T + Send + 'static,
) -> Result<T, ApiError> {
    engine.validate(&text, &params)?;
    let cancel = Cancel::new();
    let _abandon = cancel.on_drop();
    let model = s.model.client();
    let v = match params.needs_embedding() {
        true => model
            .embed(vec![text.clone()], Priority::Interactive, &cancel)
            .await?
            .pop(),
        false => None,
    };
    let encoder = model.encoder(Priority::Bulk, cancel);
    s.work
        .query(move || {
            let results = engine.search_embedded(&text, v.as_deref(), &params, &encoder)?;
            Ok::<_, ApiError>(map(results, &params))
        })
        .await?
}

/// A paper's record.
#[utoipa::path(get, path = "/v1/papers/{id}", params(("id" = String, Path, description = "paper id")),
    responses((status = 200, body = PaperRecord), (status = 404, body = ErrorBody)))]
pub async fn paper(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<PaperRecord>, ApiError> {
    Ok(axum::Json(PaperRecord::from(
        s.engine().paper(&PaperId(id))?,
    )))
}

/// Papers like this one (the paper itself excluded).
#[utoipa::path(get, path = "/v1/papers/{id}/similar", params(("id" = String, Path, description = "paper id"), PageQuery, FilterQuery),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn similar(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let start = Instant::now();
    let params = SearchParams {
        explain: q.explain.unwrap_or(false),
        ..page_params(q.k, q.offset, q.filter)
    };
    // An unfiltered walk of the graph takes tens to hundreds of microseconds: cheaper
    // to run here than to hand to a blocking thread (measured: the hand-off cost a fifth
    // of /similar's throughput). A filter (which may scan) or explanations go off the
    // executor.
    let short = params.filter.is_empty() && !params.explain;
    let engine = s.engine();
    let work = move || {
        let results = engine.similar(&PaperId(id), &params)?;
        Ok::<_, ApiError>(page(results, &params, start))
    };
    let response = match short {
        true => work()?,
        false => s.work.query(work).await??,
    };
    Ok(axum::Json(response))
}

/// Papers like the positives and unlike the negatives (Rocchio: mean of positives minus
/// half the mean of negatives, plus the text's embedding if given); examples are never
/// returned.
#[utoipa::path(post, path = "/v1/recommend", request_body = RecommendRequest,
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn recommend(
    State(s): State<AppState>,
    ApiJson(r): ApiJson<RecommendRequest>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let start = Instant::now();
    let filter = FilterQuery {
        category: r.category,
        from: r.from,
        to: r.to,
    };
    let params = page_params(r.k, r.offset, filter);
    let cancel = Cancel::new();
    let _abandon = cancel.on_drop();
    let text = match r.text.filter(|t| !t.trim().is_empty()) {
        Some(t) => {
            s.engine().limits().check_text("text", &t)?;
            s.model
                .client()
                .embed(vec![t], Priority::Interactive, &cancel)
                .await?
                .pop()
        }
        None => None,
    };
    let rec = Recommend {
        positive: r.positive.into_iter().map(PaperId).collect(),
        negative: r.negative.into_iter().map(PaperId).collect(),
        text,
    };
    let engine = s.engine();
    let response = s
        .work
        .query(move || {
            let results = engine.recommend(&rec, &params)?;
            Ok::<_, ApiError>(page(results, &params, start))
        })
        .await??;
    Ok(axum::Json(response))
}

/// Embeddings of one or more texts, as text-embeddings-inference returns them.
#[utoipa::path(post, path = "/v1/embed", request_body = EmbedRequest,
    responses((status = 200, body = Vec<Vec<f32>>), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn embed(
    State(s): State<AppState>,
    ApiJson(r): ApiJson<EmbedRequest>,
) -> Result<axum::Json<Vec<Vec<f32>>>, ApiError> {
    let texts = match r.inputs {
        Inputs::One(t) => vec![t],
        Inputs::Many(ts) => ts,
    };
    if texts.is_empty() || texts.len() > s.limits.max_embed_inputs {
        return Err(ApiError::bad_request(
            "invalid_inputs",
            format!(
                "inputs must hold 1..={} texts, got {}",
                s.limits.max_embed_inputs,
                texts.len()
            ),
        ));
    }
    check_inputs(s.engine().limits(), &texts)?;
    let cancel = Cancel::new();
    let _abandon = cancel.on_drop();
    let vectors = s
        .model
        .client()
        .embed(texts, Priority::Bulk, &cancel)
        .await?;
    Ok(axum::Json(vectors))
}

/// Embeddings as text-embeddings-inference's `/embed` computes them: same request, same
/// response, same error shape. Every option is honoured or refused (422), never ignored:
/// vectors are always unit length, truncation (when asked for) keeps the start, and this
/// model has no prompts and one dimension.
#[utoipa::path(post, path = "/embed", request_body = TeiEmbedRequest,
    responses((status = 200, body = Vec<Vec<f32>>), (status = 400, body = TeiErrorBody), (status = 413, body = TeiErrorBody),
        (status = 422, body = TeiErrorBody), (status = 424, body = TeiErrorBody), (status = 429, body = TeiErrorBody)))]
pub async fn tei_embed(
    State(s): State<AppState>,
    TeiJson(r): TeiJson<TeiEmbedRequest>,
) -> Result<axum::Json<Vec<Vec<f32>>>, TeiError> {
    let model = s.model.client();
    r.check_options(model.info().dim)?;
    let texts = match r.inputs {
        Inputs::One(t) => vec![t],
        Inputs::Many(ts) => ts,
    };
    if texts.is_empty() || texts.iter().any(String::is_empty) {
        return Err(TeiError::Empty);
    }
    if texts.len() > s.limits.max_embed_inputs {
        return Err(TeiError::TooLarge(format!(
            "batch size {} > maximum allowed batch size {}",
            texts.len(),
            s.limits.max_embed_inputs
        )));
    }
    if !r.truncate.unwrap_or(false) {
        // Counting tokens is tokenizing, CPU work bounded by the body limit: off the
        // async executor. The first input over the limit ends it (counting one exactly
        // costs more than the others).
        let max = model.info().max_tokens;
        let (texts, encoder) = (texts.clone(), model.encoder(Priority::Bulk, Cancel::new()));
        s.work
            .query(move || {
                for t in &texts {
                    let n = encoder.token_count(t)?;
                    if n > max {
                        return Err(TeiError::TooLarge(format!(
                            "`inputs` must have less than {max} tokens. Given: {n}"
                        )));
                    }
                }
                Ok(())
            })
            .await??;
    }
    let cancel = Cancel::new();
    let _abandon = cancel.on_drop();
    Ok(axum::Json(
        model.embed(texts, Priority::Bulk, &cancel).await?,
    ))
}

impl TopicsQuery {
    pub(super) fn params(self, limits: &search::Limits) -> Result<topics::TopicParams, ApiError> {
        let query = self.q.filter(|q| !q.trim().is_empty());
        if let Some(q) = &query {
            limits.check_text("q", q)?;
        }
        // The whole collection's topics are computed once per commit and cached (see
        // `warm_topics`), one computation at a time on the heavy slot: the per-request
        // bound on selected papers applies to query topics only.
        let limits = match query {
            Some(_) => topics::Limits::default(),
            None => topics::Limits {
                max_selection: usize::MAX,
                ..topics::Limits::default()
            },
        };
        Ok(topics::TopicParams {
            query,
            k: self.k.as_deref().unwrap_or("auto").parse()?,
            seed: self.seed.unwrap_or(0),
            sort: self.sort.as_deref().unwrap_or("size").parse()?,
            limits,
            window: crate::filter::Filter {
                category: self.category.clone(),
                from: self.from.clone(),
                to: self.to.clone(),
            },
            prefer_k: None,
        })
    }
}

/// Topics of the collection, or of the papers about `q`: labelled k-means clusters (see
/// README, Topics). At most 20,000 selected papers and k ≤ 100 (400 beyond).
#[utoipa::path(get, path = "/v1/topics", params(TopicsQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn topics(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<TopicsQuery>,
) -> Result<axum::Json<topics::TopicsReport>, ApiError> {
    let (computed, _abandon) = run_topics(&s, s.engine(), q).await?;
    Ok(axum::Json(computed.report.clone()))
}

/// Topics of `engine` and their map: from the server's cache when this commit's result
/// is there, else computed on the heavy-work slot (and cached), with the query (if any)
/// embedded by the model service; the guard returned cancels the clustering if the
/// request is dropped before the answer is sent.
pub(super) async fn run_topics(
    s: &AppState,
    engine: std::sync::Arc<search::Engine>,
    q: TopicsQuery,
) -> Result<(std::sync::Arc<topics::Computed>, CancelOnDrop), ApiError> {
    let params = q.params(engine.limits())?;
    params.validate()?;
    let cancel = Cancel::new();
    let abandon = cancel.on_drop();
    let generation = engine.index().generation();
    if let Some(done) = s.topics.peek(generation, &params) {
        return Ok((done, abandon));
    }
    let encoder = s
        .model
        .client()
        .encoder(Priority::Interactive, cancel.clone());
    let cache = s.topics.clone();
    let done = s
        .work
        .heavy(move || cache.get_or_run(generation, &engine, &params, &encoder, &cancel))
        .await??;
    Ok((done, abandon))
}

/// The whole-collection topics of the served commit, computed in the background so that
/// the topics page is ready before anyone asks (minutes on 118,000 papers). One at a
/// time; when the commit changed meanwhile, the new one is computed next.
pub(super) fn warm_topics(s: &AppState) {
    use std::sync::atomic::Ordering;
    if !s.warm || s.warming.swap(true, Ordering::AcqRel) {
        return;
    }
    let s = s.clone();
    std::thread::spawn(move || loop {
        let engine = s.engine();
        let generation = engine.index().generation();
        let result = TopicsQuery::default()
            .params(engine.limits())
            .map_err(|e| e.to_string())
            .and_then(|params| {
                let encoder = s.model.client().encoder(Priority::Bulk, Cancel::new());
                s.topics
                    .get_or_run(generation, &engine, &params, &encoder, &Cancel::new())
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            tracing::warn!("whole-collection topics of generation {generation}: {e}");
        }
        s.warming.store(false, Ordering::Release);
        if s.engine().index().generation() == generation || s.warming.swap(true, Ordering::AcqRel) {
            return;
        }
    });
}

/// Liveness and a summary of the served index.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)))]
pub async fn health(State(s): State<AppState>) -> axum::Json<Health> {
    let engine = s.engine();
    let m = engine.index().manifest();
    axum::Json(Health {
        status: "ok",
        papers: engine.index().len(),
        generation: m.generation,
        segments: m.segments.len(),
        committed_at: m.committed_at.clone(),
        model: m.model.name.clone(),
        built_at: m.built_at.clone(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Prometheus metrics: OpenMetrics 1.0 if `Accept` asks for it (Prometheus does), else
/// the classic text format 0.0.4 (curl, promtool).
#[utoipa::path(get, path = "/metrics", responses((status = 200, content(
    (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
    (String = "text/plain; version=0.0.4; charset=utf-8")))))]
pub async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = super::metrics::Format::from_accept(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        s.metrics.encode(format),
    )
}

/// This API's OpenAPI document: every route served here, this one included.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    axum::Json(super::openapi())
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "not_found",
        message: "no such route; see /openapi.json".into(),
    }
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
