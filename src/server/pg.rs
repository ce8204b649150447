//! The HTTP service over PostgreSQL shards ([`crate::store::pg`]): the read API
//! (`/v1/search`, `/v1/papers/{id}`, `/v1/papers/{id}/similar`, `/v1/recommend`,
//! `/v1/topics`, `/health`) with the same
//! parameters and JSON as over an index directory, from a stateless process (any number
//! of them can run behind a load balancer; each embeds its own queries).
//!
//! A shard that does not answer makes the request fail with 503 `shard_unavailable`
//! naming it (`host:port/db`), and the service keeps serving: its connections to that
//! shard are reopened by a later request. With `allow_partial=true` the answer comes from
//! the shards that respond and lists the others in `missing_shards`.

use super::error::ApiError;
use super::routes::{page_params, search_params, ApiJson, ApiPath, ApiQuery};
use super::types::{
    FilterQuery, PageQuery, PaperRecord, RecommendRequest, ResultItem, SearchQuery, SearchResponse,
    TopicsQuery,
};
use super::work::Work;
use crate::cancel::Cancel;
use crate::embed::service::{ModelService, Priority};
use crate::paper::PaperId;
use crate::search::{Hit, Recommend, SearchParams};
use crate::store::pg::{Page, PgStore, ShardFailure};
use crate::topics::{self, TopicsReport};
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// What the handlers share: the store (its connections) and the model service.
#[derive(Clone)]
pub struct PgState {
    pub store: Arc<PgStore>,
    pub model: Arc<ModelService>,
    work: Work,
}

impl PgState {
    pub fn new(store: Arc<PgStore>, model: Arc<ModelService>) -> PgState {
        PgState {
            store,
            model,
            work: Work::new(),
        }
    }
}

/// `allow_partial`, on every route that fans out to the shards.
#[derive(Debug, Default, Deserialize)]
pub struct Partial {
    /// Answer from the shards that respond (default false: fail naming the others).
    pub allow_partial: Option<bool>,
}

/// A page, and the shards it lacks (only with `allow_partial=true`).
#[derive(Serialize)]
pub struct PgSearchResponse {
    #[serde(flatten)]
    pub page: SearchResponse,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_shards: Vec<ShardFailure>,
}

/// The read routes over `state`, with the JSON fallbacks of the directory service.
pub fn router(state: PgState) -> Router {
    Router::new()
        .route("/v1/search", get(search))
        .route("/v1/papers/{id}", get(paper))
        .route("/v1/papers/{id}/similar", get(similar))
        .route("/v1/recommend", post(recommend))
        .route("/v1/topics", get(topics))
        .route("/health", get(health))
        .fallback(super::routes::not_found)
        .with_state(state)
        .layer(axum::middleware::map_response(super::error::json_bodies))
}

fn response(page: Page, params: &SearchParams, start: Instant) -> PgSearchResponse {
    let results = page
        .hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            ResultItem::from(&Hit {
                doc: i as u32,
                paper: &h.paper,
                score: h.score,
                explanation: None,
            })
        })
        .collect();
    PgSearchResponse {
        page: SearchResponse {
            results,
            total: page.total,
            offset: params.offset,
            k: params.k,
            took_ms: start.elapsed().as_secs_f64() * 1000.0,
        },
        missing_shards: page.missing,
    }
}

async fn search(
    State(s): State<PgState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
    ApiQuery(p): ApiQuery<Partial>,
) -> Result<axum::Json<PgSearchResponse>, ApiError> {
    let start = Instant::now();
    let (text, params) = search_params(q)?;
    s.store.limits().check_text("q", &text)?;
    params.validate(s.store.limits())?;
    let v = if params.needs_embedding() {
        let cancel = Cancel::new();
        let _abandon = cancel.on_drop();
        s.model
            .client()
            .embed(vec![text.clone()], Priority::Interactive, &cancel)
            .await?
            .pop()
    } else {
        None
    };
    let page = s
        .store
        .search(
            &text,
            v.as_deref(),
            &params,
            p.allow_partial.unwrap_or(false),
        )
        .await?;
    Ok(axum::Json(response(page, &params, start)))
}

async fn paper(
    State(s): State<PgState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<PaperRecord>, ApiError> {
    let paper = s.store.paper(&PaperId(id)).await?;
    Ok(axum::Json(PaperRecord::from(&paper)))
}

async fn similar(
    State(s): State<PgState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
    ApiQuery(p): ApiQuery<Partial>,
) -> Result<axum::Json<PgSearchResponse>, ApiError> {
    let start = Instant::now();
    let params = SearchParams {
        explain: q.explain.unwrap_or(false),
        ..page_params(q.k, q.offset, q.filter)
    };
    let page = s
        .store
        .similar(&PaperId(id), &params, p.allow_partial.unwrap_or(false))
        .await?;
    Ok(axum::Json(response(page, &params, start)))
}

/// Papers like the positives and unlike the negatives, as over an index directory.
async fn recommend(
    State(s): State<PgState>,
    ApiQuery(p): ApiQuery<Partial>,
    ApiJson(r): ApiJson<RecommendRequest>,
) -> Result<axum::Json<PgSearchResponse>, ApiError> {
    let start = Instant::now();
    let filter = FilterQuery {
        category: r.category,
        from: r.from,
        to: r.to,
    };
    let params = page_params(r.k, r.offset, filter);
    let text = match r.text.filter(|t| !t.trim().is_empty()) {
        Some(t) => {
            s.store.limits().check_text("text", &t)?;
            let cancel = Cancel::new();
            let _abandon = cancel.on_drop();
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
    let page = s
        .store
        .recommend(&rec, &params, p.allow_partial.unwrap_or(false))
        .await?;
    Ok(axum::Json(response(page, &params, start)))
}

/// Topics of the whole store or of a query's papers: every shard's papers and vectors
/// streamed into this process, then the same run as over an index directory (no
/// partial answers: a topic map without a shard's papers would mislead). Computed per
/// request in the one heavy-work slot (a second request meanwhile gets 503 +
/// `Retry-After`, as over a directory), and stopped when the client goes away.
async fn topics(
    State(s): State<PgState>,
    ApiQuery(q): ApiQuery<TopicsQuery>,
) -> Result<axum::Json<TopicsReport>, ApiError> {
    let params = q.params(s.store.limits())?;
    params.validate()?;
    let cancel = Cancel::new();
    let _abandon = cancel.on_drop();
    let query_vector = match params.query.as_deref() {
        Some(text) => s
            .model
            .client()
            .embed(vec![text.to_string()], Priority::Interactive, &cancel)
            .await?
            .pop(),
        None => None,
    };
    let dim = s.model.client().info().dim;
    let store = s.store.clone();
    let runtime = tokio::runtime::Handle::current();
    let report = s
        .work
        .heavy(move || {
            // Streamed inside the slot, so that only one collection is in memory at once.
            let collection = runtime.block_on(store.collection(dim))?;
            cancel.check().map_err(topics::Error::from)?;
            Ok::<_, ApiError>(topics::run_on(
                &collection,
                &params,
                query_vector.as_deref(),
                &cancel,
            )?)
        })
        .await??;
    Ok(axum::Json(report))
}

/// Liveness and the papers of every shard; 503 naming a shard that does not answer.
async fn health(State(s): State<PgState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let papers = s.store.count().await?;
    Ok(axum::Json(serde_json::json!({
        "status": "ok",
        "papers": papers,
        "shards": s.store.shards().to_string(),
        "model": s.model.client().info().name,
        "version": env!("CARGO_PKG_VERSION"),
    })))
}
