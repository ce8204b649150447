//! Property tests in place of coverage-guided fuzzing (`cargo fuzz` needs a nightly
//! toolchain, which this project's machines do not have): arbitrary input to the corpus
//! readers, to the HTTP API's query strings and JSON bodies, and damaged files under index
//! opening. The property is the same everywhere: a clear error or a result, never a panic,
//! a crash or a 5xx.
//!
//! `PROPTEST_CASES` sets the cases per property (default 64: seconds, for every CI run); a
//! long run is `PROPTEST_CASES=5000 cargo test --release --test fuzz`.

mod common;

use paperscope::corpus::{read_files, ReadOptions};
use paperscope::embed::{EmbedOptions, Embedder};
use paperscope::index::Index;
use paperscope::search::{Engine, Limits};
use paperscope::server::{self, AppState, ServerConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// A JSON value of any shape, small.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A line the readers may meet: raw bytes, or a record of any of the three formats with
/// fields of any type.
fn corpus_line() -> impl Strategy<Value = Vec<u8>> {
    let keys = prop::sample::select(vec![
        "id",
        "_id",
        "title",
        "abstract",
        "text",
        "authors",
        "categories",
        "published",
        "listing_date",
        "url",
        "versions",
        "update_date",
        "deleted",
    ]);
    let record = prop::collection::btree_map(keys, json_value(), 0..8).prop_map(|m| {
        let obj: serde_json::Map<String, serde_json::Value> =
            m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        serde_json::Value::Object(obj).to_string().into_bytes()
    });
    prop_oneof![
        3 => record,
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn corpus_readers_report_or_read_any_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = runner();
    runner
        .run(
            &(prop::collection::vec(corpus_line(), 0..12), any::<bool>()),
            |(lines, gz)| {
                let mut bytes = Vec::new();
                for l in &lines {
                    bytes.extend_from_slice(l);
                    bytes.push(b'\n');
                }
                let path = dir.path().join(if gz { "in.jsonl.gz" } else { "in.jsonl" });
                if gz {
                    use std::io::Write;
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                    e.write_all(&bytes).unwrap();
                    let mut z = e.finish().unwrap();
                    // Sometimes cut short, as a damaged download would be.
                    if lines.len() % 3 == 0 && z.len() > 20 {
                        z.truncate(z.len() - 7);
                    }
                    std::fs::write(&path, z).unwrap();
                } else {
                    std::fs::write(&path, &bytes).unwrap();
                }
                for strict in [false, true] {
                    let opts = ReadOptions {
                        strict,
                        ..Default::default()
                    };
                    if let Ok(c) = read_files(&[&path], &opts) {
                        for p in &c.papers {
                            prop_assert!(!p.id.0.is_empty());
                            prop_assert!(p.id.0.len() <= paperscope::corpus::MAX_ID_BYTES);
                            prop_assert!(!(p.title.is_empty() && p.abstract_.is_empty()));
                        }
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

/// The seed papers' index, built once per run.
fn seed_index() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let idx = tmp.path().join("idx");
        common::ok(&[
            "index",
            "--out",
            idx.to_str().unwrap(),
            common::seed_file().to_str().unwrap(),
        ]);
        (tmp, idx)
    })
    .1
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if !p.to_string_lossy().ends_with(".lock") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn damaged_index_files_give_errors_never_panics() {
    let good = seed_index();
    let names = files(good);
    let scratch = tempfile::tempdir().unwrap();
    let mut runner = runner();
    let damage = (
        0..names.len(),
        0.0f64..1.0,
        1u8..=255,
        prop_oneof![Just("flip"), Just("truncate"), Just("append")],
    );
    runner
        .run(&damage, |(file, at, xor, how)| {
            let copy = scratch.path().join("idx");
            let _ = std::fs::remove_dir_all(&copy);
            for f in &names {
                let to = copy.join(f.strip_prefix(good).unwrap());
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(f, &to).unwrap();
            }
            let target = copy.join(names[file].strip_prefix(good).unwrap());
            let mut bytes = std::fs::read(&target).unwrap();
            let pos = (((bytes.len() as f64) * at) as usize).min(bytes.len().saturating_sub(1));
            match how {
                "flip" if !bytes.is_empty() => bytes[pos] ^= xor,
                "truncate" => bytes.truncate(pos),
                _ => bytes.push(xor),
            }
            std::fs::write(&target, &bytes).unwrap();
            // A panic anywhere in here fails the property.
            let opened = Index::open(&copy);
            if names[file].ends_with("manifest.json") {
                // A changed manifest may still be a valid one (a digit of build_seconds).
                return Ok(());
            }
            prop_assert!(
                opened.is_err(),
                "{} {how} at {pos} was not noticed",
                target.display()
            );
            Ok(())
        })
        .unwrap();
}

async fn status_of(state: &AppState, req: axum::http::Request<axum::body::Body>) -> u16 {
    let resp = server::router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    if status >= 400 {
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("error bodies are JSON");
        assert!(v["error"].is_object() || v["error_type"].is_string(), "{v}");
    }
    status
}

#[test]
fn any_query_string_or_body_gets_an_answer_not_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = Arc::new(Engine::open(seed_index(), Limits::default()).unwrap());
    let model = Arc::new(Embedder::load(&common::model_dir(), &EmbedOptions::default()).unwrap());
    let state = AppState::new(engine, model, &ServerConfig::default()).unwrap();
    let param = prop::sample::select(vec![
        "q", "k", "offset", "mode", "explain", "category", "from", "to", "seed", "sort",
    ]);
    let query = prop::collection::vec((param, "[ -~]{0,12}"), 0..6);
    let route = prop::sample::select(vec![
        "/v1/search",
        "/v1/papers/seed-007/similar",
        "/v1/papers/seed-007",
        "/v1/topics",
    ]);
    let mut runner = runner();
    runner
        .run(&(route, query), |(route, params)| {
            let qs: String = params
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            let uri = format!("{route}?{qs}");
            let req = axum::http::Request::get(&uri)
                .body(axum::body::Body::empty())
                .unwrap();
            let status = rt.block_on(status_of(&state, req));
            // 503 is an honest answer (topics busy, a time limit); 500 is a bug.
            prop_assert!(status != 500 && status < 600, "{uri}: {status}");
            Ok(())
        })
        .unwrap();
    let bodies = prop::sample::select(vec!["/v1/recommend", "/v1/embed", "/embed"]);
    runner
        .run(&(bodies, json_value()), |(route, body)| {
            let req = axum::http::Request::post(route)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let status = rt.block_on(status_of(&state, req));
            prop_assert!(status != 500 && status < 600, "{route} {body}: {status}");
            Ok(())
        })
        .unwrap();
    rt.block_on(state.shutdown());
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
