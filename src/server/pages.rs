//! The web app: server-rendered pages over the same engine calls as the JSON API, plus
//! their two static files and citation export.
//!
//! Every page works without JavaScript; `static/app.js` only adds likes (kept in the
//! browser's localStorage: the server stays read-only), the for-you list (which calls
//! `/v1/recommend`) and a copy button. Pages carry a strict [`CSP`]: scripts and styles
//! only from this server's files, no inline script or style (colours on the topic map are
//! SVG presentation attributes, which CSP does not govern), nothing fetched from elsewhere.
//!
//! Handlers stay thin: they turn the query string into [`SearchParams`] (or topic
//! parameters), call the engine on a query slot and hand the results to a view-model in
//! [`super::views`]. Errors become an HTML page with the status of `error`'s table.

use super::error::ApiError;
use super::routes::{run_search, run_topics};
use super::types::TopicsQuery;
use super::views::{self, *};
use super::AppState;
use crate::export;
use crate::paper::PaperId;
use crate::search::{self, Filter, Invalid, Mode, SearchParams, Sort};
use askama::Template;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::time::Instant;

/// The pages' Content-Security-Policy: everything from this server only, scripts and
/// styles from its files (no inline code), no plugins, no framing, forms post here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");

/// Results per page.
const PAGE_SIZE: usize = 10;
/// Similar papers on a paper page.
const SIMILAR: usize = 10;

/// The pages' routes (not in the OpenAPI document, except `/topics`, which was there
/// before the pages existed and is listed by `super::api`).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(search_page))
        .route("/papers/{*id}", get(paper_page))
        .route("/for-you", get(for_you))
        .route("/export", get(export_list))
        .route(
            "/static/app.css",
            get(|| asset(CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/static/app.js",
            get(|| asset(JS, "text/javascript; charset=utf-8")),
        )
}

/// A rendered page, sent with the security headers.
pub struct Page(StatusCode, String);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut resp = (self.0, axum::response::Html(self.1)).into_response();
        secure(resp.headers_mut());
        resp
    }
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

fn render(status: StatusCode, t: &impl Template) -> Result<Page, PageError> {
    t.render()
        .map(|html| Page(status, html))
        .map_err(|e| PageError(ApiError::Internal(format!("template: {e}"))))
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response();
    secure(resp.headers_mut());
    resp
}

/// A failure of a page: the status and message of the [`ApiError`] it wraps, as HTML.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if let ApiError::Internal(detail) = &self.0 {
            tracing::error!(%detail, "internal error");
        }
        let page = ErrorPage {
            papers: 0,
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.0.to_string(),
        };
        match page.render() {
            Ok(html) => Page(status, html).into_response(),
            Err(_) => (status, self.0.to_string()).into_response(),
        }
    }
}

/// `Query` whose rejections are error pages.
#[derive(FromRequestParts)]
#[from_request(via(Query), rejection(PageError))]
pub struct PageQuery<T>(T);

/// `Path` whose rejections are error pages.
#[derive(FromRequestParts)]
#[from_request(via(Path), rejection(PageError))]
pub struct PagePath<T>(T);

/// The search form as [`SearchParams`] for `k` results from `offset`.
fn params_of(form: &SearchForm, k: usize, offset: usize) -> Result<SearchParams, Invalid> {
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(SearchParams {
        k,
        offset,
        mode: match form.mode.trim() {
            "" => Mode::default(),
            m => m.parse()?,
        },
        sort: match form.sort.trim() {
            "" => Sort::default(),
            s => s.parse()?,
        },
        filter: Filter {
            category: some(&form.category),
            from: some(&form.from),
            to: some(&form.to),
        },
        explain: matches!(form.explain.as_str(), "1" | "true"),
        ..SearchParams::default()
    })
}

/// The 1-based page number of the form; a bad one is a mistake the page explains.
fn page_of(form: &SearchForm) -> Result<usize, String> {
    match form.page.trim() {
        "" => Ok(1),
        p => p
            .parse::<usize>()
            .ok()
            .filter(|&p| p >= 1)
            .ok_or_else(|| format!("page must be a whole number from 1, got '{p}'")),
    }
}

/// `/`: the search page; with `q`, its results.
async fn search_page(
    State(s): State<AppState>,
    PageQuery(form): PageQuery<SearchForm>,
) -> Result<Page, PageError> {
    let start = Instant::now();
    let engine = s.engine();
    let mut view = SearchPage::new(engine.index().len(), form.clone());
    if form.q.trim().is_empty() {
        // No query: the form (an honest note if filters were set without one).
        let filtered = [&form.category, &form.from, &form.to]
            .iter()
            .any(|f| !f.trim().is_empty());
        if filtered {
            view.error =
                Some("Type a query: filters narrow a search, they do not make one.".into());
        }
        return render(StatusCode::OK, &view);
    }
    let params = page_of(&form).and_then(|page| {
        params_of(&form, PAGE_SIZE, (page - 1) * PAGE_SIZE).map_err(|e| e.to_string())
    });
    let params = match params {
        Ok(p) => p,
        Err(message) => {
            view.error = Some(message);
            return render(StatusCode::BAD_REQUEST, &view);
        }
    };
    let max_offset = engine.limits().max_offset;
    let form2 = form.clone();
    let results = run_search(&s, engine, form.q.clone(), params, move |r, p| {
        let page = p.offset / p.k + 1;
        // The last page whose offset the engine accepts.
        let reachable = (max_offset / p.k + 1).min(r.total.div_ceil(p.k)).max(1);
        let href = |n: usize| format!("/?{}", form2.query_string(Some(n), false));
        let hits = r
            .hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let rank = p.offset + i + 1;
                let why = format!("/?{}#r-{rank}", form2.query_string(Some(page), true));
                HitView::new(rank, h, Some(p.mode), (!p.explain).then_some(why))
            })
            .collect::<Vec<_>>();
        let summary = views::summary(
            r.total,
            p.offset,
            hits.len(),
            p.sort,
            start.elapsed().as_secs_f64() * 1e3,
        );
        let empty_hint = match (p.mode, p.filter.is_empty()) {
            (_, false) => "No paper passes the filters with this query. Widen the category or dates.",
            (Mode::Keyword, true) => "No paper contains these words. Try hybrid or semantic mode, which also find papers by meaning.",
            _ => "Nothing matched.",
        };
        ResultsView {
            summary,
            empty_hint: empty_hint.into(),
            page,
            pages: reachable.max(page),
            prev: (page > 1).then(|| href(page - 1)),
            next: (page < reachable && r.hits.len() == p.k).then(|| href(page + 1)),
            exports: export_links(&form2.query_string(None, false)),
            hits,
        }
    })
    .await;
    match results {
        Ok(r) => view.results = Some(r),
        // The request's own mistakes are shown on the form; failures are error pages.
        Err(ApiError::BadRequest { message, .. }) => {
            view.error = Some(message);
            return render(StatusCode::BAD_REQUEST, &view);
        }
        Err(e) => return Err(e.into()),
    }
    render(StatusCode::OK, &view)
}

/// `/papers/{id}`: the record, its similar papers (with shared terms) and its citation.
async fn paper_page(
    State(s): State<AppState>,
    PagePath(id): PagePath<String>,
) -> Result<Page, PageError> {
    let engine = s.engine();
    let page = s
        .work
        .query(move || {
            let id = PaperId(id);
            let paper = engine.paper(&id)?;
            let params = SearchParams {
                k: SIMILAR,
                // With the shared terms, from the keyword index.
                explain: true,
                ..SearchParams::default()
            };
            let similar = engine.similar(&id, &params)?;
            Ok::<_, ApiError>(PaperPage::new(engine.index().len(), paper, &similar.hits))
        })
        .await??;
    render(StatusCode::OK, &page)
}

/// `/for-you`.
async fn for_you(State(s): State<AppState>) -> Result<Page, PageError> {
    let papers = s.engine().index().len();
    render(StatusCode::OK, &ForYouPage { papers })
}

/// The topics page: a map with a legend, each topic's papers, links to search within a
/// topic and to export it.
#[utoipa::path(get, path = "/topics", params(TopicsQuery),
    responses((status = 200, body = String, content_type = "text/html"), (status = 400, body = String, content_type = "text/html")))]
pub async fn topics(
    State(s): State<AppState>,
    PageQuery(form): PageQuery<TopicsForm>,
) -> Result<Page, PageError> {
    let engine = s.engine();
    let (computed, _abandon) = run_topics(&s, engine.clone(), topics_query(&form)?).await?;
    let page = s
        .work
        .query(move || {
            Ok::<_, ApiError>(TopicsPage::new(
                form,
                &computed.report,
                &computed.map,
                engine.index(),
            ))
        })
        .await??;
    render(StatusCode::OK, &page)
}

fn topics_query(form: &TopicsForm) -> Result<TopicsQuery, ApiError> {
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(TopicsQuery {
        q: some(&form.q),
        k: some(&form.k),
        seed: match form.seed.trim() {
            "" => None,
            n => Some(n.parse().map_err(|_| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("seed must be a whole number, got '{n}'"),
                )
            })?),
        },
        sort: some(&form.sort),
        from: some(&form.from),
        to: some(&form.to),
        category: None,
    })
}

/// `/export`'s query: a search's own parameters, a topic's (`topic` with the topics
/// page's `q`, `k`, `seed`) or a list of `ids`; and the `format`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ExportQuery {
    format: String,
    ids: String,
    topic: Option<usize>,
    k: String,
    seed: String,
    #[serde(flatten)]
    search: SearchForm,
}

/// Ids one export may list.
const MAX_EXPORT_IDS: usize = 1_000;

/// `/export?...&format=bibtex|csv|ris`: the papers of a result list (its first
/// `max_k` results), of a topic, or of a list of ids, as a download.
async fn export_list(
    State(s): State<AppState>,
    PageQuery(q): PageQuery<ExportQuery>,
) -> Result<Response, PageError> {
    let format: export::Format = q.format.parse().map_err(|e: export::UnknownFormat| {
        ApiError::bad_request("invalid_format", e.to_string())
    })?;
    let engine = s.engine();
    let text = if !q.ids.trim().is_empty() {
        let ids: Vec<PaperId> = q
            .ids
            .split(',')
            .map(|i| PaperId(i.trim().to_string()))
            .filter(|i| !i.0.is_empty())
            .collect();
        if ids.len() > MAX_EXPORT_IDS {
            return Err(ApiError::bad_request(
                "too_many_ids",
                format!("{} ids; the limit is {MAX_EXPORT_IDS}", ids.len()),
            )
            .into());
        }
        let papers = ids
            .iter()
            .map(|id| engine.paper(id))
            .collect::<Result<Vec<_>, search::Error>>()?;
        export::to_string(papers, format)
    } else if let Some(topic) = q.topic {
        let form = TopicsForm {
            q: q.search.q.clone(),
            k: q.k.clone(),
            seed: q.seed.clone(),
            sort: String::new(),
            from: q.search.from.clone(),
            to: q.search.to.clone(),
        };
        let (computed, _abandon) = run_topics(&s, engine.clone(), topics_query(&form)?).await?;
        let report = &computed.report;
        let t = report
            .topics
            .iter()
            .find(|t| t.id == topic)
            .ok_or_else(|| ApiError::NotFound {
                code: "topic_not_found",
                message: format!(
                    "no topic {topic}: this clustering made {}",
                    report.topics.len()
                ),
            })?;
        let papers = t
            .papers
            .iter()
            .filter_map(|id| engine.paper(id).ok())
            .collect::<Vec<_>>();
        export::to_string(papers, format)
    } else if !q.search.q.trim().is_empty() {
        let params = params_of(&q.search, engine.limits().max_k, 0)?;
        let params = SearchParams {
            explain: false,
            ..params
        };
        run_search(&s, engine, q.search.q.clone(), params, move |r, _| {
            export::to_string(r.hits.iter().map(|h| h.paper), format)
        })
        .await?
    } else {
        return Err(ApiError::bad_request(
            "nothing_to_export",
            "say what to export: q (a search), topic (with the topics page's q, k, seed) or ids",
        )
        .into());
    };
    let disposition = format!("attachment; filename=\"paperscope.{}\"", format.extension());
    let mut resp = (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response();
    secure(resp.headers_mut());
    Ok(resp)
}

/// An unknown route: an HTML page for browsers (they ask for `text/html`), JSON for
/// everyone else.
pub(super) async fn not_found(headers: HeaderMap) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let e = super::routes::not_found().await;
    match html {
        true => PageError(ApiError::NotFound {
            code: "not_found",
            message: "There is no page here.".into(),
        })
        .into_response(),
        false => e.into_response(),
    }
}
