//! The HTTP service (axum): semantic, keyword and hybrid search, papers like this,
//! recommendations, embeddings and topics, plus health, metrics and the OpenAPI document.
//!
//! Shape (after mini-redis and axum's examples): [`router`] builds the routes over an
//! [`AppState`]; [`run`] serves them on a bound listener until a shutdown future resolves,
//! letting in-flight requests finish. Handlers are thin (see `routes`); errors become JSON
//! in one place (`error`); query embedding runs on its own thread behind a bounded queue
//! (`worker`). The server is read-only: no request writes to disk.

mod error;
mod metrics;
mod routes;
mod types;
mod worker;

pub use error::ApiError;

use crate::search::Engine;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

/// Request limits. Each is enforced with a 4xx JSON error (see README, "Limits").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest query (or recommend text, or embed input), in characters. Default 2,000.
    pub max_query_chars: usize,
    /// Largest `k`. Default 100.
    pub max_k: usize,
    /// Largest `offset`. Default 1,000.
    pub max_offset: usize,
    /// Largest request body. Default 1 MiB (413 beyond).
    pub max_body_bytes: usize,
    /// Most texts per `/v1/embed` call. Default 64.
    pub max_embed_inputs: usize,
    /// Most positive + negative ids per `/v1/recommend` call. Default 100.
    pub max_recommend_ids: usize,
    /// Largest `k` of a search with `explain=true` (each explained hit costs a forward
    /// pass over up to 12 abstract sentences). Default 20.
    pub max_explain_k: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_query_chars: 2_000,
            max_k: 100,
            max_offset: 1_000,
            max_body_bytes: 1 << 20,
            max_embed_inputs: 64,
            max_recommend_ids: 100,
            max_explain_k: 20,
        }
    }
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub limits: Limits,
    /// Embedding jobs that may wait; beyond, 503 + Retry-After. Default 64.
    pub queue_capacity: usize,
    /// Per-request time limit; beyond, 503. Default 10 s.
    pub request_timeout: Duration,
    /// Allow this one origin cross-origin access (CORS). Default: none (CORS off).
    pub cors_origin: Option<HeaderValue>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            queue_capacity: 64,
            request_timeout: Duration::from_secs(10),
            cors_origin: None,
        }
    }
}

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    engine: Arc<Engine>,
    encoder: Arc<crate::embed::Embedder>,
    queue: worker::EmbedQueue,
    metrics: Arc<metrics::Metrics>,
    limits: Limits,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "paperscope",
        description = "Semantic search over research papers."
    ),
    paths(
        routes::search,
        routes::paper,
        routes::similar,
        routes::recommend,
        routes::embed,
        routes::health,
        routes::metrics
    )
)]
pub struct ApiDoc;

/// Request ids: a process-wide counter, short and ordered, echoed in `x-request-id`.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        HeaderValue::from_str(&format!("req-{n}"))
            .ok()
            .map(RequestId::new)
    }
}

/// Builds the service over a loaded engine (its model loaded first, so a missing or
/// mismatched model fails here, before anything listens).
///
/// # Errors
/// The engine's model failing to load.
pub fn router(
    engine: Arc<Engine>,
    encoder: Arc<crate::embed::Embedder>,
    config: &ServerConfig,
) -> Result<Router, crate::search::Error> {
    // Warmed up here, before anything listens, rather than on the embedding thread: the
    // first queries do not pay for it, and no oneDNN call can still be running on
    // another thread when a short-lived process (a test) exits, which crashed in
    // libdnnl's exit-time destructors.
    engine.check_model(crate::embed::Encoder::info(&*encoder))?;
    if let Err(e) = encoder.warm_up() {
        tracing::warn!("embedding warm-up failed: {e}");
    }
    let metrics = Arc::new(metrics::Metrics::new(engine.index().len()));
    let queue = worker::EmbedQueue::start(encoder.clone(), config.queue_capacity, metrics.clone());
    let state = AppState {
        engine,
        encoder,
        queue,
        metrics: metrics.clone(),
        limits: config.limits,
    };
    let tracked = metrics::Tracked {
        metrics,
        timeout: config.request_timeout,
    };
    let x_request_id = HeaderName::from_static("x-request-id");
    let mut app = Router::new()
        .route("/v1/search", get(routes::search))
        .route("/v1/papers/{id}", get(routes::paper))
        .route("/v1/papers/{id}/similar", get(routes::similar))
        .route("/v1/recommend", post(routes::recommend))
        .route("/v1/embed", post(routes::embed))
        .route("/v1/topics", get(routes::topics))
        .route("/topics", get(routes::topics_page))
        .route("/health", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(config.limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(tracked, metrics::track))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(x_request_id, Counter::default()));
    if let Some(origin) = &config.cors_origin {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(origin.clone())
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([axum::http::header::CONTENT_TYPE]),
        );
    }
    Ok(app)
}

/// Serves `app` on `listener` until `shutdown` resolves; requests in flight then finish.
///
/// # Errors
/// I/O errors of the listener.
pub async fn run(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
