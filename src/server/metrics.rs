//! Prometheus metrics (`GET /metrics`, text exposition format): requests and latency per
//! route and status, requests in flight, embedding time and queue depth, index size.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::ApiError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    pub embed_seconds: Histogram,
    pub embed_queue: Gauge,
}

impl Metrics {
    pub fn new(index_papers: usize) -> Metrics {
        let mut registry = Registry::with_prefix("paperscope");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let in_flight = Gauge::default();
        let embed_seconds = latency_histogram();
        let embed_queue = Gauge::default();
        let papers: Gauge = Gauge::default();
        papers.set(index_papers as i64);
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            latency.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being served",
            in_flight.clone(),
        );
        registry.register(
            "embed_batch_duration_seconds",
            "Time of one embedding batch on the embedding thread",
            embed_seconds.clone(),
        );
        registry.register(
            "embed_queue_jobs",
            "Embedding jobs queued or running",
            embed_queue.clone(),
        );
        registry.register("index_papers", "Papers in the served index", papers);
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            embed_seconds,
            embed_queue,
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail. This is a bug.");
        out
    }
}

/// Shared by the middleware: metrics and the per-request time limit.
#[derive(Clone)]
pub struct Tracked {
    pub metrics: Arc<Metrics>,
    pub timeout: Duration,
}

/// Middleware: counts, times and bounds every request.
pub async fn track(State(t): State<Tracked>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let _in_flight = InFlight::enter(&t.metrics.in_flight);
    let start = Instant::now();
    let resp = match tokio::time::timeout(t.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout(t.timeout.as_millis() as u64).into_response(),
    };
    let labels = RouteLabels {
        method,
        route,
        status: resp.status().as_u16(),
    };
    t.metrics.requests.get_or_create(&labels).inc();
    t.metrics
        .latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// Counts a request in flight until dropped, also when the client goes away mid-request.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn enter(g: &'a Gauge) -> Self {
        g.inc();
        InFlight(g)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
