//! The real HTTP service over a real index with the real model, on loopback ports.

mod common;

use paperscope::embed::{EmbedOptions, Embedder};
use paperscope::search::{Engine, Limits};
use paperscope::server::{self, AppState, ServerConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

/// The engine over the shared index, loaded once per test binary.
fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Arc::new(Engine::open(common::shared_index(), Limits::default()).unwrap()))
        .clone()
}

/// The real model, loaded once per test binary.
fn encoder() -> Arc<Embedder> {
    static MODEL: OnceLock<Arc<Embedder>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            Arc::new(Embedder::load(&common::model_dir(), &EmbedOptions::default()).unwrap())
        })
        .clone()
}

/// Starts a server on 127.0.0.1:0 in a background thread with its own runtime; returns
/// its base URL. It lives until the test binary exits.
fn start(config: ServerConfig) -> String {
    let app = server::router(AppState::new(engine(), encoder(), &config).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            server::run(listener, app, Default::default(), std::future::pending())
                .await
                .unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn base() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    // A generous time limit: the tests sharing this server are about something else, and
    // on a loaded 2-core machine (this binary's other servers embed hundreds of abstracts
    // at once) a request can wait longer than the default 10 s.
    BASE.get_or_init(|| {
        start(ServerConfig {
            request_timeout: Duration::from_secs(120),
            ..Default::default()
        })
    })
}

/// State for `oneshot` tests (no socket), shared by them.
fn state() -> AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE
        .get_or_init(|| AppState::new(engine(), encoder(), &ServerConfig::default()).unwrap())
        .clone()
}

/// Sends `req` through a router over `state` without a socket; returns the status, the
/// content type and the body as JSON (`Null` if it is not JSON).
async fn oneshot(
    state: AppState,
    req: axum::http::Request<axum::body::Body>,
) -> (StatusCode, String, Value) {
    let resp = server::router(state).oneshot(req).await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn request(method: &str, uri: &str, body: Option<Value>) -> axum::http::Request<axum::body::Body> {
    let builder = axum::http::Request::builder().method(method).uri(uri);
    match body {
        Some(b) => builder
            .header("content-type", "application/json")
            .body(axum::body::Body::from(b.to_string()))
            .unwrap(),
        None => builder.body(axum::body::Body::empty()).unwrap(),
    }
}

async fn get(path: &str) -> (StatusCode, Value) {
    let r = reqwest::get(format!("{}{path}", base())).await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(path: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", base()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {v}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn search_returns_ranked_results_with_metadata() {
    let (s, v) = get("/v1/search?q=emergent+misalignment+after+narrow+finetuning&k=5").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v)[0], "seed-007");
    assert_eq!(v["results"].as_array().unwrap().len(), 5);
    assert_eq!(v["total"], 25 + common::SLICE);
    assert!(v["took_ms"].as_f64().unwrap() > 0.0);
    let first = &v["results"][0];
    assert!(first["title"]
        .as_str()
        .unwrap()
        .starts_with("Emergent Misalignment"));
    assert!(first["snippet"].as_str().unwrap().len() <= 310);
    assert!(
        first["date"].is_string() && first["authors"].is_array() && first["categories"].is_array()
    );
    let scores: Vec<f64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
}

#[tokio::test]
async fn pages_follow_each_other() {
    let (_, all) = get("/v1/search?q=vision+transformers+for+medical+images&k=10").await;
    let (_, second) = get("/v1/search?q=vision+transformers+for+medical+images&k=5&offset=5").await;
    assert_eq!(ids(&second), ids(&all)[5..].to_vec());
    assert_eq!(second["offset"], 5);
}

#[tokio::test]
async fn selective_filters_still_fill_the_page() {
    // Papers of one category and a date window in the index, counted from the records.
    let corpus = paperscope::corpus::read_files(
        &[common::seed_file()],
        &paperscope::corpus::ReadOptions::default(),
    )
    .unwrap();
    let seed_2023 = corpus
        .papers
        .iter()
        .filter(|p| p.date.as_deref().is_some_and(|d| d.starts_with("2023")))
        .count();
    assert!(seed_2023 >= 3);
    let (s, v) = get("/v1/search?q=language+models&k=100&from=2023&to=2023").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], seed_2023);
    assert_eq!(
        ids(&v).len(),
        seed_2023,
        "a full page of every matching paper"
    );

    let (_, v) = get("/v1/search?q=quantum+materials&k=10&category=cond-mat.").await;
    let results = v["results"].as_array().unwrap();
    let total = v["total"].as_u64().unwrap() as usize;
    assert!(total > 0);
    assert_eq!(results.len(), total.min(10));
    for r in results {
        let cats: Vec<&str> = r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(cats.iter().any(|c| c.starts_with("cond-mat.")), "{cats:?}");
    }
}

#[tokio::test]
async fn paper_record_and_similar() {
    let (s, v) = get("/v1/papers/seed-007").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["abstract"].as_str().unwrap().len() > 200);
    assert!(v["extra"]["upvotes"].is_number(), "{v}");

    let (s, v) = get("/v1/papers/seed-007/similar?k=3").await;
    assert_eq!(s, StatusCode::OK);
    let found = ids(&v);
    assert_eq!(found[0], "seed-009");
    assert!(!found.contains(&"seed-007".to_string()));
    assert_eq!(v["total"], 25 + common::SLICE - 1);
}

#[tokio::test]
async fn recommend_excludes_examples_and_honours_negatives() {
    let (s, v) = post(
        "/v1/recommend",
        json!({"positive": ["seed-007", "seed-009"], "k": 10}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let plain = ids(&v);
    assert_eq!(plain.len(), 10);
    assert!(!plain.contains(&"seed-007".into()) && !plain.contains(&"seed-009".into()));

    // Pushing away from the first recommendation moves it down (or out).
    let first = plain[0].clone();
    let (_, v) = post(
        "/v1/recommend",
        json!({"positive": ["seed-007", "seed-009"], "negative": [first], "k": 10}),
    )
    .await;
    let steered = ids(&v);
    assert!(!steered.contains(&first), "{steered:?}");

    let (s, v) = post(
        "/v1/recommend",
        json!({"positive": ["seed-007", "nope-1"], "negative": ["nope-2"]}),
    )
    .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "paper_not_found");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("nope-1") && msg.contains("nope-2"), "{msg}");

    let (s, v) = post(
        "/v1/recommend",
        json!({"text": "kagome metals band structure", "k": 3}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v)[0], "seed-018");
}

#[tokio::test]
async fn embed_speaks_the_tei_shape() {
    let (s, v) = post(
        "/v1/embed",
        json!({"inputs": "graph neural networks for molecules"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].as_array().unwrap().len(), 384);

    let golden =
        std::fs::read_to_string(common::shared().join("golden/minilm_golden.jsonl")).unwrap();
    let rows: Vec<Value> = golden.lines().take(5).map(common::json).collect();
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    let (s, v) = post("/v1/embed", json!({ "inputs": texts })).await;
    assert_eq!(s, StatusCode::OK);
    for (got, want) in v.as_array().unwrap().iter().zip(&rows) {
        let got: Vec<f32> = serde_json::from_value(got.clone()).unwrap();
        let want: Vec<f32> = serde_json::from_value(want["embedding"].clone()).unwrap();
        assert!(common::cosine(&got, &want) >= 0.9999);
    }
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let (s, v) = get("/health").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["papers"], 25 + common::SLICE);
    assert_eq!(v["model"], "all-MiniLM-L6-v2");

    let _ = get("/v1/papers/seed-001/similar?k=2").await;
    let _ = get("/v1/papers/nope").await;
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", base()))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("paperscope_http_requests_total{method=\"GET\",route=\"/v1/papers/{id}/similar\",status=\"200\"}"), "{text}");
    assert!(
        text.contains("route=\"/v1/papers/{id}\",status=\"404\""),
        "{text}"
    );
    assert!(
        text.contains("paperscope_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(&format!("paperscope_index_papers {}", 25 + common::SLICE)),
        "{text}"
    );
    assert!(text.contains("paperscope_http_requests_in_flight"));

    let (s, v) = get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/v1/search",
        "/v1/papers/{id}",
        "/v1/papers/{id}/similar",
        "/v1/recommend",
        "/v1/embed",
        "/v1/topics",
        "/topics",
        "/embed",
        "/health",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(v["paths"][path].is_object(), "{path} missing from OpenAPI");
    }
    let names = |path: &str| -> Vec<String> {
        v["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let search = names("/v1/search");
    for name in [
        "q", "k", "offset", "mode", "explain", "category", "from", "to",
    ] {
        assert!(search.iter().any(|n| n == name), "{name}: {search:?}");
    }
    let similar = names("/v1/papers/{id}/similar");
    for name in ["id", "k", "offset", "explain", "category", "from", "to"] {
        assert!(similar.iter().any(|n| n == name), "{name}: {similar:?}");
    }
    assert!(
        v["components"]["schemas"]["ExplanationItem"].is_object(),
        "{}",
        v["components"]
    );
}

#[tokio::test]
async fn every_mode_pages_and_filters_alike() {
    let q = "/v1/search?q=emergent+misalignment+after+narrow+finetuning";
    let mut tops = Vec::new();
    for mode in ["semantic", "keyword", "hybrid"] {
        let (s, all) = get(&format!("{q}&mode={mode}&k=10")).await;
        assert_eq!(s, StatusCode::OK, "{all}");
        assert_eq!(ids(&all).len(), 10, "{mode}");
        let (_, second) = get(&format!("{q}&mode={mode}&k=5&offset=5")).await;
        assert_eq!(ids(&second), ids(&all)[5..].to_vec(), "{mode}");
        assert_eq!(second["total"], all["total"], "{mode}");
        let scores: Vec<f64> = all["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["score"].as_f64().unwrap())
            .collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{mode}: {scores:?}"
        );
        tops.push(ids(&all)[0].clone());

        // The same category filter in every mode.
        let (s, v) = get(&format!("{q}&mode={mode}&k=10&category=cs.CV")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for r in v["results"].as_array().unwrap() {
            assert!(
                r["categories"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c == "cs.CV"),
                "{mode}: {r}"
            );
        }
    }
    assert_eq!(tops, ["seed-007"; 3]);
    // Semantic and hybrid rank every paper; keyword only those with a query word.
    let (_, kw) = get(&format!("{q}&mode=keyword&k=1")).await;
    let (_, hy) = get(&format!("{q}&k=1")).await;
    assert_eq!(hy["total"], 25 + common::SLICE);
    let kw_total = kw["total"].as_u64().unwrap() as usize;
    assert!(kw_total > 0 && kw_total < 25 + common::SLICE, "{kw}");
}

#[tokio::test]
async fn explain_names_the_shared_terms_and_the_closest_sentence() {
    let (s, v) = get("/v1/search?q=emergent+misalignment&k=2&explain=true").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let first = &v["results"][0];
    assert_eq!(first["id"], "seed-007");
    let e = &first["explanation"];
    let terms: Vec<&str> = e["terms"]
        .as_array()
        .unwrap_or_else(|| panic!("no terms in {e}"))
        .iter()
        .map(|t| t["stem"].as_str().unwrap())
        .collect();
    assert!(terms.contains(&"misalign"), "{e}");
    assert!(e["terms"][0]["score"].as_f64().unwrap() > 0.0, "{e}");
    let sentence = e["sentence"]["text"].as_str().unwrap();
    assert!(
        first["snippet"].as_str().is_some() && !sentence.is_empty(),
        "{e}"
    );
    assert!(
        e["semantic_rank"].is_u64() && e["keyword_rank"].is_u64(),
        "{e}"
    );
    // Without explain=true there is no explanation.
    let (_, plain) = get("/v1/search?q=emergent+misalignment&k=2").await;
    assert!(plain["results"][0].get("explanation").is_none(), "{plain}");
    assert_eq!(ids(&plain), ids(&v));

    let (s, v) = get("/v1/papers/seed-007/similar?k=1&explain=true").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), ["seed-009"]);
    let shared: Vec<&str> = v["results"][0]["explanation"]["shared_terms"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|t| t["stem"].as_str().unwrap())
        .collect();
    assert!(shared.contains(&"misalign"), "{shared:?}");
}

#[tokio::test]
async fn bad_input_gets_json_errors_with_fitting_statuses() {
    let long = "a".repeat(2001);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("/v1/search".into(), StatusCode::BAD_REQUEST, "empty_query"),
        (
            "/v1/search?q=%20%20".into(),
            StatusCode::BAD_REQUEST,
            "empty_query",
        ),
        (
            format!("/v1/search?q={long}"),
            StatusCode::BAD_REQUEST,
            "query_too_long",
        ),
        (
            "/v1/search?q=x&k=0".into(),
            StatusCode::BAD_REQUEST,
            "invalid_k",
        ),
        (
            "/v1/search?q=x&k=101".into(),
            StatusCode::BAD_REQUEST,
            "invalid_k",
        ),
        (
            "/v1/search?q=x&k=ten".into(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/search?q=x&k=-1".into(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/search?q=x&offset=1001".into(),
            StatusCode::BAD_REQUEST,
            "invalid_offset",
        ),
        (
            "/v1/search?q=x&from=2025-13".into(),
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            "/v1/search?q=x&from=2025-02-30x".into(),
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            "/v1/search?q=x&from=2025&to=2024".into(),
            StatusCode::BAD_REQUEST,
            "invalid_date_range",
        ),
        (
            "/v1/search?q=x&mode=fuzzy".into(),
            StatusCode::BAD_REQUEST,
            "invalid_mode",
        ),
        (
            "/v1/search?q=x&mode=".into(),
            StatusCode::BAD_REQUEST,
            "invalid_mode",
        ),
        (
            "/v1/search?q=x&explain=maybe".into(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/search?q=x&explain=true&k=21".into(),
            StatusCode::BAD_REQUEST,
            "explain_k_too_large",
        ),
        (
            "/v1/papers/seed-001/similar?explain=yes".into(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/papers/nope".into(),
            StatusCode::NOT_FOUND,
            "paper_not_found",
        ),
        (
            "/v1/papers/nope/similar".into(),
            StatusCode::NOT_FOUND,
            "paper_not_found",
        ),
        (
            "/v1/papers/seed-001/similar?k=1000".into(),
            StatusCode::BAD_REQUEST,
            "invalid_k",
        ),
        ("/no/such/route".into(), StatusCode::NOT_FOUND, "not_found"),
    ];
    for (path, status, code) in cases {
        let (s, v) = get(&path).await;
        assert_error(s, &v, status, code);
    }

    let client = reqwest::Client::new();
    let send = |body: String, path: &str| {
        client
            .post(format!("{}{path}", base()))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, path, status, code) in [
        (
            "{not json".to_string(),
            "/v1/embed",
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            r#"{"inputs": 5}"#.into(),
            "/v1/embed",
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            r#"{"inputs": []}"#.into(),
            "/v1/embed",
            StatusCode::BAD_REQUEST,
            "invalid_inputs",
        ),
        (
            json!({"inputs": vec!["x"; 65]}).to_string(),
            "/v1/embed",
            StatusCode::BAD_REQUEST,
            "invalid_inputs",
        ),
        (
            json!({"inputs": [long.clone()]}).to_string(),
            "/v1/embed",
            StatusCode::BAD_REQUEST,
            "query_too_long",
        ),
        (
            json!({"inputs": "x".repeat(1 << 20)}).to_string(),
            "/v1/embed",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            r#"{"positive": "seed-001"}"#.into(),
            "/v1/recommend",
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            r#"{"positive": ["seed-001"], "k": 0}"#.into(),
            "/v1/recommend",
            StatusCode::BAD_REQUEST,
            "invalid_k",
        ),
        (
            r#"{"positive": []}"#.into(),
            "/v1/recommend",
            StatusCode::BAD_REQUEST,
            "nothing_to_recommend",
        ),
        (
            r#"{"positive": ["seed-001"], "surprise": 1}"#.into(),
            "/v1/recommend",
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"positive": vec!["seed-001"; 101]}).to_string(),
            "/v1/recommend",
            StatusCode::BAD_REQUEST,
            "too_many_ids",
        ),
    ] {
        let r = send(body, path).await.unwrap();
        let s = r.status();
        let v: Value = r.json().await.unwrap();
        assert_error(s, &v, status, code);
    }

    let r = client
        .delete(format!("{}/v1/search", base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed");

    // After all that, the server still answers.
    assert_eq!(get("/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_requests_all_succeed() {
    let mut tasks = Vec::new();
    for i in 0..48 {
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                get(&format!("/v1/search?q=topic+number+{i}&k=5")).await
            } else {
                get("/v1/papers/seed-005/similar?k=5").await
            }
        }));
    }
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(ids(&v).len(), 5);
    }
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let base = start(ServerConfig {
        // One bulk job (25 long texts: ~6,400 estimated tokens) runs; while it is queued
        // or running, the next ones are over the bound.
        model: server::ServiceConfig {
            capacity_tokens: 1_000,
            ..Default::default()
        },
        // Generous, so that on a loaded machine no request times out instead.
        request_timeout: Duration::from_secs(300),
        ..Default::default()
    });
    let text = std::fs::read_to_string(common::seed_file()).unwrap();
    let inputs: Vec<String> = text
        .lines()
        .take(25)
        .map(|l| l.chars().take(1900).collect())
        .collect();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    // Alternately paperscope's route and TEI's, which says "overloaded" TEI's way.
    for i in 0..12 {
        let req = match i % 2 {
            0 => client
                .post(format!("{base}/v1/embed"))
                .json(&json!({ "inputs": inputs.clone() })),
            _ => client
                .post(format!("{base}/embed"))
                .json(&json!({ "inputs": inputs.clone(), "truncate": true })),
        };
        tasks.push(tokio::spawn(async move { req.send().await.unwrap() }));
    }
    let (mut ok, mut busy, mut tei_busy) = (0, 0, 0);
    for t in tasks {
        let r = t.await.unwrap();
        match r.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.headers()["retry-after"], "1");
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["error"]["code"], "overloaded");
                busy += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["error_type"], "Overloaded", "{v}");
                tei_busy += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        ok >= 1 && busy >= 1 && tei_busy >= 1,
        "ok {ok}, busy {busy}, TEI busy {tei_busy}"
    );
}

#[tokio::test]
async fn requests_over_the_time_limit_get_503() {
    // In its own process: the timed-out embedding goes on running after the answer, and
    // this test binary must not exit while the model is mid-call on one of its threads
    // (oneDNN's exit-time destructors would crash under it).
    // 200 ms: enough to read the request, far too little to embed 64 long texts.
    let (child, base, _stderr) = spawn_server("200");
    let text: String = std::fs::read_to_string(common::seed_file())
        .unwrap()
        .chars()
        .take(1900)
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/embed"))
        .json(&json!({ "inputs": vec![text; 64] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "timeout");
    drop(child);
}

/// A child process, killed when dropped (also when its test fails).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `paperscope serve` on the shared index as a child process with the given
/// `--timeout-ms`; returns it, its base URL and its stderr after the first line.
fn spawn_server(
    timeout_ms: &str,
) -> (Child, String, std::io::BufReader<std::process::ChildStderr>) {
    spawn_server_with(&["--timeout-ms", timeout_ms])
}

fn spawn_server_with(
    flags: &[&str],
) -> (Child, String, std::io::BufReader<std::process::ChildStderr>) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .args([
            "serve",
            "--index",
            common::shared_index().to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .args(flags)
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line.split("on ").last().unwrap().trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (Child(child), url, stderr)
}

#[tokio::test]
async fn cors_is_off_by_default_and_on_for_one_origin() {
    let r = reqwest::Client::new()
        .get(format!("{}/health", base()))
        .header("origin", "http://example.org")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(r.headers().get("x-request-id").is_some());

    let base = start(ServerConfig {
        cors_origin: Some("http://localhost:3000".parse().unwrap()),
        ..Default::default()
    });
    let r = reqwest::Client::new()
        .get(format!("{base}/health"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}

/// The real binary: `serve` on port 0, SIGTERM while a request is in flight, the request
/// still completes and the process exits cleanly.
#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits() {
    let (mut child, url, mut stderr) = spawn_server("300000");
    let text: String = std::fs::read_to_string(common::seed_file())
        .unwrap()
        .chars()
        .take(1900)
        .collect();
    let req = reqwest::Client::new()
        .post(format!("{url}/v1/embed"))
        .json(&json!({ "inputs": vec![text; 64] }))
        .send();
    let in_flight = tokio::spawn(req);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let r = in_flight.await.unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Vec<Vec<f32>>>().await.unwrap().len(), 64);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
}

#[tokio::test]
async fn topics_over_http_json_and_html() {
    let (s, v) = get("/v1/topics?q=emergent&k=4&seed=7").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let topics = v["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 4);
    let with = |id: &str| {
        topics
            .iter()
            .position(|t| t["papers"].as_array().unwrap().iter().any(|p| p == id))
    };
    assert!(with("seed-007").is_some());
    assert_eq!(
        with("seed-007"),
        with("seed-009"),
        "the two misalignment papers split"
    );
    let (_, again) = get("/v1/topics?q=emergent&k=4&seed=7").await;
    assert_eq!(v, again);

    let (s, v) = get("/v1/topics?k=1000").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_topics_request");
    let (s, v) = get("/v1/topics?k=many").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_topics_request");

    let r = reqwest::get(format!("{}/topics?q=emergent&k=4", base()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(
        page.contains("<svg") || page.contains("<canvas"),
        "no map in the page"
    );
    // Its script and style come from this server (the web app's static files), nothing
    // from elsewhere.
    for foreign in ["src=\"http", "src=\"//", "href=\"//", "@import"] {
        assert!(
            !page.contains(foreign),
            "page fetches from elsewhere: {foreign}"
        );
    }
}

/// Every route the router serves is in the OpenAPI document, and every documented route
/// is served: the document is built from the route table itself.
#[tokio::test]
async fn the_openapi_document_is_the_route_table() {
    let doc = serde_json::to_value(server::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    // What the README documents, TEI's route and the two topic routes included.
    let served = [
        ("GET", "/v1/search"),
        ("GET", "/v1/papers/{id}"),
        ("GET", "/v1/papers/{id}/similar"),
        ("POST", "/v1/recommend"),
        ("POST", "/v1/embed"),
        ("POST", "/embed"),
        ("GET", "/v1/topics"),
        ("GET", "/topics"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ];
    for (method, path) in served {
        assert!(
            paths[path][method.to_lowercase()].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let mut documented = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    assert_eq!(documented.len(), served.len(), "{documented:?}");
    // Each documented route answers as a route (not the 404/405 fallbacks). Topics get
    // k=2 to keep the test quick; bodies are empty, so POSTs answer 4xx from the handler.
    for (method, path) in documented {
        let uri =
            path.replace("{id}", "seed-001") + if path.contains("topics") { "?k=2" } else { "" };
        let (status, _, body) = oneshot(state(), request(&method, &uri, None)).await;
        let fallback =
            body["error"]["code"] == "not_found" || status == StatusCode::METHOD_NOT_ALLOWED;
        assert!(!fallback, "{method} {uri}: {status} {body}");
    }
}

#[tokio::test]
async fn tei_embed_honours_or_refuses_every_option() {
    let text = "graph neural networks for molecules";
    let embed = |body: Value| oneshot(state(), request("POST", "/embed", Some(body)));

    // TEI's defaults, spelled out or not, give paperscope's own embedding.
    let (s, _, ours) = embed(json!({ "inputs": text })).await;
    assert_eq!(s, StatusCode::OK, "{ours}");
    let (_, _, v1) = oneshot(
        state(),
        request("POST", "/v1/embed", Some(json!({ "inputs": [text] }))),
    )
    .await;
    assert_eq!(ours, v1);
    let explicit = json!({"inputs": [text], "normalize": true, "truncate": false,
        "truncation_direction": "Right", "prompt_name": null, "dimensions": 384});
    let (s, _, v) = embed(explicit).await;
    assert_eq!((s, &v), (StatusCode::OK, &ours));

    // Over the model's 256 tokens: refused like TEI unless truncation is asked for.
    let long = "the kagome lattice hosts flat bands and van hove singularities ".repeat(40);
    let mut tokenizer =
        tokenizers::Tokenizer::from_file(common::model_dir().join("tokenizer.json")).unwrap();
    tokenizer.with_truncation(None).unwrap();
    let tokens = tokenizer.encode(long.as_str(), true).unwrap().len();
    assert!(tokens > 256, "{tokens}");
    let (s, _, v) = embed(json!({ "inputs": long })).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error_type"], "Validation");
    assert_eq!(
        v["error"],
        format!("Input validation error: `inputs` must have less than 256 tokens. Given: {tokens}")
    );
    // Truncated on the right, it is the first 256 tokens' embedding: as /v1/embed's.
    let (s, _, cut) = embed(json!({ "inputs": [long], "truncate": true })).await;
    assert_eq!(s, StatusCode::OK, "{cut}");
    let (_, _, v1) = oneshot(
        state(),
        request(
            "POST",
            "/v1/embed",
            Some(json!({ "inputs": [long.chars().take(2000).collect::<String>()] })),
        ),
    )
    .await;
    let (a, b): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (
        serde_json::from_value(cut).unwrap(),
        serde_json::from_value(v1).unwrap(),
    );
    assert!(common::cosine(&a[0], &b[0]) > 0.9999);

    // Options paperscope cannot honour are refused with the reason, never ignored.
    for (body, says) in [
        (json!({"inputs": text, "normalize": false}), "unit length"),
        (
            json!({"inputs": text, "truncation_direction": "Left"}),
            "Left",
        ),
        (
            json!({"inputs": text, "prompt_name": "query"}),
            "no prompts",
        ),
        (json!({"inputs": text, "dimensions": 128}), "384"),
        (
            json!({"inputs": text, "truncation_direction": "Middle"}),
            "Middle",
        ),
        (json!({"input": text}), "inputs"),
    ] {
        let (s, _, v) = embed(body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error_type"], "Validation", "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    for body in [
        json!({"inputs": []}),
        json!({"inputs": ""}),
        json!({"inputs": ["a", ""]}),
    ] {
        let (s, _, v) = embed(body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error_type"], "Empty", "{body}: {v}");
    }
    let (s, _, v) = embed(json!({ "inputs": vec!["x"; 65] })).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(
        v["error"],
        "Input validation error: batch size 65 > maximum allowed batch size 64"
    );
    let (s, _, v) = embed(json!({ "inputs": "x".repeat(1 << 20), "truncate": true })).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error_type"], "Validation");
}

/// Heads over our limits get JSON answers; hyper's own (beyond 64 KiB of URI) would not.
#[tokio::test]
async fn over_long_uris_and_headers_get_json_errors() {
    let uri = format!("/v1/search?q={}", "a".repeat(40_000));
    let (s, content_type, v) = oneshot(state(), request("GET", &uri, None)).await;
    assert_eq!(s, StatusCode::URI_TOO_LONG, "{v}");
    assert_eq!(content_type, "application/json");
    assert_eq!(v["error"]["code"], "uri_too_long", "{v}");

    let mut req = request("GET", "/health", None);
    for i in 0..10 {
        let name = axum::http::HeaderName::try_from(format!("x-big-{i}")).unwrap();
        req.headers_mut()
            .insert(name, "b".repeat(8_000).parse().unwrap());
    }
    let (s, _, v) = oneshot(state(), req).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "headers_too_large", "{v}");

    // Through a real socket too (hyper's limits are higher, so ours answer).
    let r = reqwest::get(format!("{}{uri}", base())).await.unwrap();
    assert_eq!(r.status(), StatusCode::URI_TOO_LONG);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "uri_too_long", "{v}");
}

#[tokio::test]
async fn metrics_are_openmetrics_when_asked_and_classic_text_otherwise() {
    let _ = get("/health").await;
    let fetch = |accept: Option<&'static str>| async move {
        let mut req = reqwest::Client::new().get(format!("{}/metrics", base()));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let r = req.send().await.unwrap();
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        (content_type, r.text().await.unwrap())
    };
    // What Prometheus sends.
    let (content_type, om) = fetch(Some("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains("# TYPE paperscope_http_requests counter"),
        "{om}"
    );
    let (content_type, classic) = fetch(None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!classic.contains("# EOF"), "{classic}");
    assert!(
        classic.contains("# TYPE paperscope_http_requests_total counter"),
        "{classic}"
    );

    // promtool (Debian package `prometheus`; .ci/run installs it) lints the classic text,
    // which is what it parses.
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: promtool not installed (apt-get install prometheus)");
        return;
    };
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), classic.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{classic}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The state's shutdown answers what is queued, then stops and joins the embedding thread;
/// embedding requests fail cleanly after it, other routes still answer.
#[tokio::test]
async fn shutdown_joins_the_embedding_thread() {
    let state = AppState::new(engine(), encoder(), &ServerConfig::default()).unwrap();
    let body = || Some(json!({ "inputs": "kagome metals" }));
    let (s, _, v) = oneshot(state.clone(), request("POST", "/v1/embed", body())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    tokio::time::timeout(Duration::from_secs(60), state.clone().shutdown())
        .await
        .expect("the embedding thread did not end");
    let (s, _, v) = oneshot(state.clone(), request("POST", "/v1/embed", body())).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
    let (s, _, v) = oneshot(state.clone(), request("POST", "/embed", body())).await;
    assert_eq!(s, StatusCode::FAILED_DEPENDENCY, "{v}");
    assert_eq!(v["error_type"], "Backend", "{v}");
    let (s, _, _) = oneshot(state.clone(), request("GET", "/health", None)).await;
    assert_eq!(s, StatusCode::OK);
    // A second shutdown has nothing left to do.
    tokio::time::timeout(Duration::from_secs(5), state.shutdown())
        .await
        .unwrap();
}

/// A connection that sends half a request head and then nothing is closed at the idle
/// limit (it stayed open forever before: issue 16 #7).
#[test]
fn a_half_sent_request_is_closed_at_the_idle_limit() {
    use std::io::{Read, Write};
    let (_child, base, _stderr) = spawn_server_with(&["--idle-timeout-ms", "500"]);
    let addr = base.trim_start_matches("http://");
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    // EOF (or a reset): the server closed it; a read timeout would mean it is still open.
    match slow.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "unexpected answer: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "still open: {e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    // A whole request on a fresh connection is still answered.
    let mut ok = std::net::TcpStream::connect(addr).unwrap();
    ok.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    ok.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// SIGTERM with a half-sent request open ends the server within the shutdown grace (it
/// waited forever before: issue 16 #7).
#[test]
fn sigterm_ends_the_server_within_its_grace_with_a_stuck_connection_open() {
    use std::io::Write;
    let (mut child, base, _stderr) =
        spawn_server_with(&["--idle-timeout-ms", "600000", "--shutdown-grace-ms", "1000"]);
    let addr = base.trim_start_matches("http://");
    let mut stuck = std::net::TcpStream::connect(addr).unwrap();
    stuck
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.0.id() as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stuck);
}

/// Issue 16 #5 and #6: heavy requests (query topics, big embeddings) are refused at once
/// while their slot or the queue's bulk half is taken, and plain searches running beside
/// them are never refused (before, 2% heavy requests made half the searches answer 503).
#[tokio::test]
async fn heavy_requests_are_refused_while_plain_searches_go_through() {
    let base = start(ServerConfig {
        request_timeout: Duration::from_secs(120),
        ..Default::default()
    });
    let client = reqwest::Client::new();
    let long: String = std::fs::read_to_string(common::seed_file())
        .unwrap()
        .chars()
        .take(2000)
        .collect();
    let mut heavy = Vec::new();
    for i in 0..6 {
        let req = if i % 2 == 0 {
            client.get(format!("{base}/v1/topics?q=emergent+behaviour+{i}"))
        } else {
            client
                .post(format!("{base}/v1/embed"))
                .json(&json!({ "inputs": vec![long.clone(); 64] }))
        };
        heavy.push(tokio::spawn(
            async move { req.send().await.unwrap().status() },
        ));
    }
    let mut plain = Vec::new();
    for i in 0..24 {
        let url = if i % 3 == 0 {
            format!("{base}/v1/papers/seed-00{}/similar?k=5", 1 + i % 9)
        } else {
            format!("{base}/v1/search?q=emergent+abilities+{i}&k=5")
        };
        let c = client.clone();
        plain.push(tokio::spawn(async move {
            c.get(url).send().await.unwrap().status()
        }));
    }
    for p in plain {
        assert_eq!(
            p.await.unwrap(),
            StatusCode::OK,
            "a plain request was refused"
        );
    }
    let statuses: Vec<StatusCode> = futures_join(heavy).await;
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    // Three topics requests at once: one slot, so at least two were refused at once.
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(refused >= 2, "{statuses:?}");
    // Everything answered: the model queue is empty again.
    let (_, metrics) = get_from(&base, "/metrics").await;
    assert!(
        metrics.contains("paperscope_embed_queue_jobs 0"),
        "{metrics}"
    );
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<StatusCode>>) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn get_from(base: &str, path: &str) -> (StatusCode, String) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    (r.status(), r.text().await.unwrap())
}
