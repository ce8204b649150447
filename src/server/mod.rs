//! The HTTP service (axum): semantic, keyword and hybrid search, papers like this,
//! recommendations, embeddings (also at text-embeddings-inference's `/embed`) and topics,
//! plus health, metrics and the OpenAPI document.
//!
//! Shape (after mini-redis and axum's examples): [`AppState::new`] does what has side
//! effects (loads and warms up the model, starts the embedding thread); [`router`] only
//! builds the routes over that state, so tests drive it with `oneshot` and no socket;
//! [`run`] serves them on a bound listener until a shutdown future resolves, letting
//! in-flight requests finish; [`AppState::shutdown`] then stops and joins the embedding
//! thread. The route table is also the OpenAPI document (`utoipa-axum`): a route cannot be
//! served without being documented. Handlers are thin (see `routes`); errors become JSON in
//! one place (`error`). Every forward pass runs on the library's model service (one thread,
//! a queue bounded by estimated tokens, queries before bulk work, abandoned jobs skipped);
//! the engine's work (graph walks, scans, clustering) runs on blocking threads under a
//! bound ([`work`]), never on the async executor, and stops when its request is abandoned.
//! The server is read-only: no request writes to disk. It follows the index's commits
//! (see [`follow_commits`]): each request takes the engine of the newest commit opened
//! ([`AppState::engine`]) and keeps it to the end, so that a commit swapped in meanwhile
//! changes nothing under a request in flight.
//!
//! The web app (`pages`, `views`, templates in `templates/`, assets in `static/`) serves
//! server-rendered pages at `/`, `/papers/{id}`, `/for-you`, `/topics` and `/export`
//! over the same engine calls.

mod connections;
mod error;
mod feeds;
mod follow;
mod metrics;
mod pages;
pub mod pg;
mod protocol;
mod routes;
mod types;
mod views;
mod work;

pub use crate::embed::service::ServiceConfig;
pub use connections::Connections;
pub use error::ApiError;
pub use follow::follow_commits;

use crate::embed::service::ModelService;
use crate::embed::{Embedder, Encoder};
use crate::search::Engine;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::Router;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Request limits. Each is enforced with a 4xx JSON error (see README, "Limits"). What a
/// query may ask for (`k`, `offset`, query length, ...) is the library's
/// [`crate::search::Limits`]; these are the HTTP layer's own.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body. Default 1 MiB (413 beyond).
    pub max_body_bytes: usize,
    /// Most texts per `/v1/embed` or `/embed` call. Default 64.
    pub max_embed_inputs: usize,
    /// Longest path and query, in bytes (414 beyond). Default 32 KiB: room for a
    /// 2,000-character query percent-encoded, below hyper's own bare 414 at 64 KiB.
    pub max_uri_bytes: usize,
    /// Largest request headers together, in bytes (431 beyond). Default 64 KiB, below
    /// hyper's own bare 431 at ~400 KiB.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_embed_inputs: 64,
            max_uri_bytes: 32 << 10,
            max_header_bytes: 64 << 10,
        }
    }
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub limits: Limits,
    /// The model service: tokens that may wait (beyond, 503 + Retry-After) and the
    /// largest batch.
    pub model: ServiceConfig,
    /// Per-request time limit; beyond, 503. Default 10 s.
    pub request_timeout: Duration,
    /// Allow this one origin cross-origin access (CORS). Default: none (CORS off).
    pub cors_origin: Option<HeaderValue>,
    /// Compute the whole collection's topics in the background at start and after each
    /// commit, so that the topics page is ready before it is asked for. Default: on.
    pub warm_topics: bool,
    /// Saved searches published as Atom feeds at `/feeds/NAME.atom`. Default: none.
    pub feeds: Vec<crate::feed::SavedSearch>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            model: ServiceConfig::default(),
            request_timeout: Duration::from_secs(10),
            cors_origin: None,
            warm_topics: true,
            feeds: Vec::new(),
        }
    }
}

/// What every handler sees, and what the service's layers are built from.
#[derive(Clone)]
pub struct AppState {
    /// The engine of the newest commit opened; swapped whole by [`follow_commits`].
    engine: Arc<arc_swap::ArcSwap<Engine>>,
    /// The model's identity, which every commit must share.
    model_info: crate::embed::ModelInfo,
    /// Topics and maps computed, by commit (see [`routes::warm_topics`]).
    topics: Arc<crate::topics::Cache>,
    /// Whether whole-collection topics are being computed in the background.
    warming: Arc<std::sync::atomic::AtomicBool>,
    /// Whether to compute them at start and after each commit.
    warm: bool,
    model: Arc<ModelService>,
    work: work::Work,
    metrics: Arc<metrics::Metrics>,
    limits: Limits,
    /// Per-request time limit, applied by the metrics middleware.
    request_timeout: Duration,
    /// The one origin allowed cross-origin access, if any.
    cors_origin: Option<HeaderValue>,
    /// Saved searches published as Atom feeds.
    feeds: Arc<Vec<crate::feed::SavedSearch>>,
}

impl AppState {
    /// Checks the model against the index, warms it up and starts the model service, so
    /// that a mismatched model fails here, before anything listens. Pair with
    /// [`AppState::shutdown`].
    ///
    /// # Errors
    /// A model other than the index's.
    pub fn new(
        engine: Arc<Engine>,
        encoder: Arc<Embedder>,
        config: &ServerConfig,
    ) -> Result<AppState, crate::search::Error> {
        engine.check_model(encoder.info())?;
        let encoder_info = encoder.info().clone();
        // Warmed up here, before anything listens, rather than on the model thread: the
        // first queries do not pay for it.
        if let Err(e) = encoder.warm_up() {
            tracing::warn!("embedding warm-up failed: {e}");
        }
        let metrics = Arc::new(metrics::Metrics::new(
            engine.index().len(),
            engine.index().generation(),
        ));
        let observed = metrics.clone();
        let model = ModelService::start(encoder, config.model, move |batch| {
            observed.embed_seconds.observe(batch.elapsed.as_secs_f64())
        });
        let model = Arc::new(model);
        metrics.watch_model(model.client());
        let state = AppState {
            engine: Arc::new(arc_swap::ArcSwap::new(engine)),
            model_info: encoder_info,
            topics: Arc::new(crate::topics::Cache::default()),
            warming: Arc::default(),
            warm: config.warm_topics,
            model,
            work: work::Work::new(),
            metrics,
            limits: config.limits,
            request_timeout: config.request_timeout,
            cors_origin: config.cors_origin.clone(),
            feeds: Arc::new(config.feeds.clone()),
        };
        state.warm_topics();
        Ok(state)
    }

    /// The engine over the index's current commit. A request takes it once and uses it
    /// throughout, so that everything it answers comes from one commit.
    pub(crate) fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Starts computing the whole collection's topics in the background (the topics page
    /// then loads at once), unless the state was made without; [`follow_commits`] does it
    /// again for each new commit.
    pub fn warm_topics(&self) {
        routes::warm_topics(self);
    }

    /// Answers what is still queued for the model, lets the running batch finish, stops
    /// the model thread and joins it, so that no forward pass is running when the process
    /// exits (oneDNN's exit-time destructors crash under one). Call after [`run`]
    /// returns; embedding requests fail afterwards (503). Idempotent.
    pub async fn shutdown(self) {
        let model = self.model.clone();
        // Joining waits for the running batch: a blocking wait, off the executor.
        let _ = tokio::task::spawn_blocking(move || model.shutdown()).await;
    }
}

#[derive(OpenApi)]
#[openapi(info(
    title = "paperscope",
    description = "Semantic search over research papers."
))]
struct ApiDoc;

/// Every route, with its documentation: the one route table that [`router`] serves and
/// [`openapi`] describes.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::search))
        .routes(routes!(routes::paper))
        .routes(routes!(routes::similar))
        .routes(routes!(routes::recommend))
        .routes(routes!(routes::embed))
        .routes(routes!(routes::tei_embed))
        .routes(routes!(routes::topics))
        .routes(routes!(pages::topics))
        .routes(routes!(routes::health))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::openapi))
}

/// The OpenAPI document of every route [`router`] serves (built once).
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| api().into_openapi())
}

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

/// The service over `state`: routes, JSON fallbacks, limits, metrics, request ids,
/// tracing and (if configured) CORS. No side effects: everything it needs was prepared by
/// [`AppState::new`].
pub fn router(state: AppState) -> Router {
    let tracked = metrics::Tracked {
        metrics: state.metrics.clone(),
        timeout: state.request_timeout,
    };
    let limits = state.limits;
    let cors_origin = state.cors_origin.clone();
    let x_request_id = HeaderName::from_static("x-request-id");
    let (routes, _) = api().split_for_parts();
    let routes = routes.merge(pages::routes()).merge(feeds::routes());
    // Layers run outside in: request ids, tracing, JSON bodies for empty error answers,
    // metrics and the time limit, the head limits, then the route.
    let mut app = routes
        .fallback(pages::not_found)
        // After the routes: it applies to the routes registered before it.
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(limits, protocol::check_head))
        .layer(axum::middleware::from_fn_with_state(tracked, metrics::track))
        .layer(axum::middleware::map_response(error::json_bodies))
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
    if let Some(origin) = cors_origin {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([axum::http::header::CONTENT_TYPE]),
        );
    }
    app
}

/// Serves `app` on `listener` until `shutdown` resolves, with `connections`' cap and idle
/// limit; requests in flight then finish, for at most `connections.shutdown_grace`.
///
/// # Errors
/// I/O errors of the listener.
pub async fn run(
    listener: TcpListener,
    app: Router,
    connections: Connections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let signalled = Arc::new(tokio::sync::Notify::new());
    let notify = signalled.clone();
    let shutdown = async move {
        shutdown.await;
        notify.notify_one();
    };
    let listener = connections::Limited::new(listener, &connections);
    let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    let deadline = async {
        signalled.notified().await;
        tokio::time::sleep(connections.shutdown_grace).await;
    };
    tokio::select! {
        served = serve.into_future() => served,
        () = deadline => {
            tracing::warn!(
                "requests still open {} s after the shutdown signal; stopping anyway",
                connections.shutdown_grace.as_secs()
            );
            Ok(())
        }
    }
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
