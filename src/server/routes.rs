//! Handlers: extract, validate limits, turn the request into `SearchParams`, call the
//! engine, map back. No search logic lives here.

use super::error::{ApiError, ErrorBody, TeiError, TeiErrorBody};
use super::types::*;
use super::{AppState, Limits};
use crate::paper::PaperId;
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

impl Limits {
    fn params(
        &self,
        k: Option<usize>,
        offset: Option<usize>,
        filter: FilterQuery,
    ) -> Result<SearchParams, ApiError> {
        let k = k.unwrap_or(10);
        if !(1..=self.max_k).contains(&k) {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("k must be in 1..={}, got {k}", self.max_k),
            ));
        }
        let offset = offset.unwrap_or(0);
        if offset > self.max_offset {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("offset must be at most {}, got {offset}", self.max_offset),
            ));
        }
        let filter = Filter {
            category: filter.category.filter(|c| !c.is_empty()),
            from: filter.from.filter(|c| !c.is_empty()),
            to: filter.to.filter(|c| !c.is_empty()),
        };
        filter.validate()?;
        Ok(SearchParams {
            k,
            offset,
            filter,
            ..Default::default()
        })
    }

    /// Explanations cost a forward pass over the hits' sentences: fewer hits with them.
    fn explain(&self, params: &SearchParams) -> Result<(), ApiError> {
        if params.explain && params.k > self.max_explain_k {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!(
                    "with explain=true, k must be at most {}, got {}",
                    self.max_explain_k, params.k
                ),
            ));
        }
        Ok(())
    }

    fn text(&self, name: &str, text: &str) -> Result<(), ApiError> {
        let n = text.chars().count();
        if n > self.max_query_chars {
            return Err(ApiError::bad_request(
                "query_too_long",
                format!(
                    "{name} has {n} characters; the limit is {}",
                    self.max_query_chars
                ),
            ));
        }
        Ok(())
    }
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

/// Search by meaning (`semantic`), by words (`keyword`, BM25) or both (`hybrid`, the
/// default), optionally explaining each result.
#[utoipa::path(get, path = "/v1/search", params(SearchQuery, FilterQuery),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn search(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let start = Instant::now();
    let text = q.q.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "q is required and must not be blank",
        ));
    }
    s.limits.text("q", &text)?;
    let params = SearchParams {
        mode: q
            .mode
            .as_deref()
            .map(str::parse::<Mode>)
            .transpose()?
            .unwrap_or_default(),
        explain: q.explain.unwrap_or(false),
        ..s.limits.params(q.k, q.offset, q.filter)?
    };
    s.limits.explain(&params)?;
    let v = match params.needs_embedding() {
        true => s.queue.embed(vec![text.clone()]).await?.pop(),
        false => None,
    };
    if !params.explain {
        let results = s.engine.search_embedded(&text, v.as_deref(), &params)?;
        return Ok(axum::Json(page(results, &params, start)));
    }
    // Explaining embeds the hits' sentences: a forward pass, off the async executor.
    let engine = s.engine.clone();
    let response = tokio::task::spawn_blocking(move || {
        let results = engine.search_embedded(&text, v.as_deref(), &params)?;
        Ok::<_, ApiError>(page(results, &params, start))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(axum::Json(response))
}

/// A paper's record.
#[utoipa::path(get, path = "/v1/papers/{id}", params(("id" = String, Path, description = "paper id")),
    responses((status = 200, body = PaperRecord), (status = 404, body = ErrorBody)))]
pub async fn paper(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<PaperRecord>, ApiError> {
    Ok(axum::Json(PaperRecord::from(s.engine.paper(&PaperId(id))?)))
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
        ..s.limits.params(q.k, q.offset, q.filter)?
    };
    let results = s.engine.similar(&PaperId(id), &params)?;
    Ok(axum::Json(page(results, &params, start)))
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
    let ids = r.positive.len() + r.negative.len();
    if ids > s.limits.max_recommend_ids {
        return Err(ApiError::bad_request(
            "too_many_ids",
            format!(
                "{ids} example ids; the limit is {}",
                s.limits.max_recommend_ids
            ),
        ));
    }
    let filter = FilterQuery {
        category: r.category,
        from: r.from,
        to: r.to,
    };
    let params = s.limits.params(r.k, r.offset, filter)?;
    let text = match r.text.filter(|t| !t.trim().is_empty()) {
        Some(t) => {
            s.limits.text("text", &t)?;
            s.queue.embed(vec![t]).await?.pop()
        }
        None => None,
    };
    let rec = Recommend {
        positive: r.positive.into_iter().map(PaperId).collect(),
        negative: r.negative.into_iter().map(PaperId).collect(),
        text,
    };
    let results = s.engine.recommend(&rec, &params)?;
    Ok(axum::Json(page(results, &params, start)))
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
    for t in &texts {
        s.limits.text("an input", t)?;
    }
    Ok(axum::Json(s.queue.embed(texts).await?))
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
    let embedder = s.engine.embedder()?;
    r.check_options(embedder.dim())?;
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
        let engine = s.engine.clone();
        let max = embedder.info().max_tokens;
        let texts = texts.clone();
        tokio::task::spawn_blocking(move || {
            let embedder = engine.embedder()?;
            for t in &texts {
                let n = embedder
                    .token_count(t)
                    .map_err(|e| TeiError::Tokenizer(e.to_string()))?;
                if n > max {
                    return Err(TeiError::TooLarge(format!(
                        "`inputs` must have less than {max} tokens. Given: {n}"
                    )));
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| TeiError::Backend(e.to_string()))??;
    }
    Ok(axum::Json(s.queue.embed(texts).await?))
}

impl TopicsQuery {
    fn params(self, limits: &Limits) -> Result<topics::TopicParams, ApiError> {
        let query = self.q.filter(|q| !q.trim().is_empty());
        if let Some(q) = &query {
            limits.text("q", q)?;
        }
        Ok(topics::TopicParams {
            query,
            k: self.k.as_deref().unwrap_or("auto").parse()?,
            seed: self.seed.unwrap_or(0),
            sort: self.sort.as_deref().unwrap_or("size").parse()?,
            limits: topics::Limits::default(),
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
    let params = q.params(&s.limits)?;
    let engine = s.engine.clone();
    // Clustering is CPU work of up to seconds: off the async executor.
    let report = tokio::task::spawn_blocking(move || topics::run(&engine, &params))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(axum::Json(report))
}

/// The topics as one self-contained HTML page (a map of the papers coloured by topic).
#[utoipa::path(get, path = "/topics", params(TopicsQuery),
    responses((status = 200, body = String, content_type = "text/html"), (status = 400, body = ErrorBody)))]
pub async fn topics_page(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<TopicsQuery>,
) -> Result<axum::response::Html<String>, ApiError> {
    let params = q.params(&s.limits)?;
    let engine = s.engine.clone();
    let page = tokio::task::spawn_blocking(move || {
        let report = topics::run(&engine, &params)?;
        topics::html::render(&report, engine.index())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(axum::response::Html(page))
}

/// Liveness and a summary of the served index.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)))]
pub async fn health(State(s): State<AppState>) -> axum::Json<Health> {
    let m = s.engine.index().manifest();
    axum::Json(Health {
        status: "ok",
        papers: m.count,
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
