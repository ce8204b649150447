//! Saved searches as Atom feeds (`serve --feed FEED.toml`): `/feeds` lists them,
//! `/feeds/NAME.atom` is one (see [`crate::feed::atom`]). Each request runs the saved
//! search on the commit being served, like any other search, with the same matching rule
//! as the sync digest ([`crate::feed::matches`]).

use super::error::ApiError;
use super::routes::ApiPath;
use super::views::paper_href;
use super::AppState;
use crate::cancel::Cancel;
use crate::embed::service::Priority;
use crate::feed::{self, atom};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/feeds", get(list))
        .route("/feeds/{file}", get(feed))
}

/// One feed of `/feeds`.
#[derive(Serialize)]
struct Listed {
    name: String,
    query: String,
    url: String,
}

/// `/feeds`: the saved searches published, as JSON.
async fn list(State(s): State<AppState>) -> axum::Json<serde_json::Value> {
    let feeds: Vec<Listed> = s
        .feeds
        .iter()
        .map(|f| Listed {
            name: f.name.clone(),
            query: f.query.clone(),
            url: format!("/feeds/{}.atom", f.name),
        })
        .collect();
    axum::Json(serde_json::json!({ "feeds": feeds }))
}

/// `/feeds/NAME.atom`.
async fn feed(
    State(s): State<AppState>,
    ApiPath(file): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let search = file
        .strip_suffix(".atom")
        .and_then(|name| s.feeds.iter().find(|f| f.name == name))
        .cloned()
        .ok_or_else(|| ApiError::NotFound {
            code: "feed_not_found",
            message: format!(
                "no feed {file:?}: this server publishes {}",
                match s.feeds.is_empty() {
                    true => "none (start it with --feed FEED.toml)".to_string(),
                    false => s
                        .feeds
                        .iter()
                        .map(|f| format!("/feeds/{}.atom", f.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            ),
        })?;
    let params = search.params()?;
    let engine = s.engine();
    engine.validate(&search.query, &params)?;
    let updated = engine.index().manifest().committed_at.clone();
    let base = format!("http://{}", host(&headers));
    let cancel = Cancel::new();
    let _abandon = cancel.on_drop();
    let model = s.model.client();
    let qv = match params.needs_embedding() {
        true => model
            .embed(vec![search.query.clone()], Priority::Interactive, &cancel)
            .await?
            .pop(),
        false => None,
    };
    let encoder = model.encoder(Priority::Bulk, cancel);
    let xml = s
        .work
        .query(move || {
            let papers = feed::matches(&engine, &search, qv.as_deref(), &encoder)?;
            Ok::<_, ApiError>(atom::render(
                &search,
                &papers,
                &base,
                |p| paper_href(&p.id.0),
                &updated,
            ))
        })
        .await??;
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        xml,
    )
        .into_response())
}

/// The `Host` the client asked for, if it is a plain host\[:port\]; links are built on it.
fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost")
        .to_string()
}
