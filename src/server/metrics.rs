//! Prometheus metrics (`GET /metrics`): requests and latency per route and status,
//! requests in flight, embedding time and queue depth, index size.
//!
//! Two exposition formats, chosen by the client's `Accept`: OpenMetrics 1.0 (what
//! prometheus-client writes, ending in `# EOF`) for clients that ask for it, as Prometheus
//! does; otherwise the classic text format 0.0.4, which `curl … | promtool check metrics`
//! and older scrapers parse. The formats differ, for what we export, only in three
//! places, which [`to_classic_text`] rewrites: a counter's `HELP`/`TYPE` name carries the
//! `_total` suffix its samples have, `unknown` is `untyped`, and there is no `# EOF`.

use crate::embed::service::ModelClient;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};
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
    model: Arc<OnceLock<ModelClient>>,
    papers: Gauge,
    index_generation: Gauge,
}

/// The model service's counters, read at each scrape (the service keeps them exact; a
/// gauge kept here could drift from them).
#[derive(Debug)]
struct ModelCollector(Arc<OnceLock<ModelClient>>);

impl Collector for ModelCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(model) = self.0.get() else {
            return Ok(());
        };
        let s = model.stats();
        let gauges = [
            (
                "embed_queue_jobs",
                "Embedding jobs queued or running",
                s.jobs,
            ),
            ("embed_queue_texts", "Texts of those jobs", s.texts),
            (
                "embed_queue_tokens",
                "Estimated tokens of those jobs (the queue's bound counts these)",
                s.tokens,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v as i64);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let counters = [
            (
                "embed_jobs_refused",
                "Jobs refused because the queue was full",
                s.refused,
            ),
            (
                "embed_jobs_skipped",
                "Jobs dropped unrun because their request was abandoned",
                s.skipped,
            ),
            ("embed_batches", "Forward batches run", s.batches),
            ("embed_texts", "Texts embedded", s.embedded),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}

impl Metrics {
    pub fn new(index_papers: usize, generation: u64) -> Metrics {
        let mut registry = Registry::with_prefix("paperscope");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let in_flight = Gauge::default();
        let embed_seconds = latency_histogram();
        let model = Arc::new(OnceLock::new());
        let papers: Gauge = Gauge::default();
        papers.set(index_papers as i64);
        let index_generation: Gauge = Gauge::default();
        index_generation.set(generation as i64);
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
            "Time of one forward batch on the model service's thread",
            embed_seconds.clone(),
        );
        registry.register_collector(Box::new(ModelCollector(model.clone())));
        registry.register("index_papers", "Papers in the served index", papers.clone());
        registry.register(
            "index_generation",
            "Commit of the index being served",
            index_generation.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            embed_seconds,
            model,
            papers,
            index_generation,
        }
    }

    /// Records the index now served.
    pub fn served(&self, papers: usize, generation: u64) {
        self.papers.set(papers as i64);
        self.index_generation.set(generation as i64);
    }

    /// Reports the model service's queue and counters from now on.
    pub fn watch_model(&self, client: ModelClient) {
        let _ = self.model.set(client);
    }

    /// The metrics in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail. This is a bug.");
        match format {
            Format::OpenMetrics => out,
            Format::Classic => to_classic_text(&out),
        }
    }
}

/// An exposition format of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus' classic text format, version 0.0.4.
    Classic,
}

impl Format {
    /// OpenMetrics if the `Accept` header names it (Prometheus lists it first), else the
    /// classic format (curl's `*/*`, no header, `text/plain`).
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            true => Format::OpenMetrics,
            false => Format::Classic,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Rewrites prometheus-client's OpenMetrics text as classic text (see the module docs).
/// Only what [`Metrics`] registers is covered: counters, gauges and histograms without
/// exemplars, units or `_created` samples.
fn to_classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            _ if line == "# EOF" || line.starts_with("# UNIT ") => continue,
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                let tail = match tail {
                    "unknown" if prefix == "# TYPE " => "untyped",
                    other => other,
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples_and_has_no_eof() {
        let m = Metrics::new(7, 3);
        let om = m.encode(Format::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            om.contains("# TYPE paperscope_http_requests counter"),
            "{om}"
        );
        let classic = m.encode(Format::Classic);
        assert!(!classic.contains("# EOF"), "{classic}");
        assert!(
            classic.contains("# TYPE paperscope_http_requests_total counter"),
            "{classic}"
        );
        assert!(
            classic.contains("# HELP paperscope_http_requests_total "),
            "{classic}"
        );
        assert!(
            classic.contains("# TYPE paperscope_index_papers gauge\npaperscope_index_papers 7\n"),
            "{classic}"
        );
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Classic);
        assert_eq!(Format::from_accept(None), Format::Classic);
    }
}
