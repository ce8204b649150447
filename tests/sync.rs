//! `paperscope sync` and `serve --feed` end to end: recorded arXiv OAI-PMH and Hugging
//! Face Daily Papers answers (tests/fixtures/harvest) replayed on loopback, the real
//! binary with the real model, three syncs in a row, then the saved searches as Atom feeds
//! checked by a real feed parser (Python's feedparser).

mod common;
#[path = "common/replay.rs"]
#[allow(dead_code)] // the harvest tests use all of it; these, part
mod replay;

use common::{json, ok, paperscope, repo, seed_file};
use replay::{Replay, Reply};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/harvest").join(name)).unwrap()
}

/// arXiv: the first sync's request (from the feed's `from`) gets two pages, the next
/// ones a deletion; Daily Papers: one recorded day each.
fn replay() -> Replay {
    Replay::start(|_, target| {
        let xml = |name| Reply::new(200, "text/xml", fixture(name));
        let day = |name| Reply::new(200, "application/json", fixture(name));
        if target.starts_with("/oai") {
            if target.contains("resumptionToken=") {
                xml("arxiv-page-2.xml")
            } else if target.contains("from=2026-03-05") {
                xml("arxiv-page-1.xml")
            } else {
                xml("arxiv-deleted.xml")
            }
        } else if target == "/api/daily_papers?date=2026-03-06" {
            day("hf-daily-2026-03-06.json")
        } else if target == "/api/daily_papers?date=2026-03-07" {
            day("hf-daily-2026-03-07.json")
        } else {
            Reply::new(404, "application/json", "{\"error\":\"not found\"}")
        }
    })
}

fn feed_file(dir: &Path, server: &Replay) -> std::path::PathBuf {
    let path = dir.join("feed.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[digest]
title = "Test watch"

[topics]
k = "4"

[[source]]
kind = "arxiv"
set = "physics"
from = "2026-03-05"
base_url = "{oai}"
delay = "0s"

[[source]]
kind = "hf-daily"
from = "2026-03-06"
base_url = "{hf}"
delay = "0s"

[[search]]
name = "hallucination"
query = "why language models hallucinate"
mode = "semantic"

[[search]]
name = "planck"
query = "Planck-scale discrete physics"
"#,
            oai = server.url("/oai"),
            hf = server.url(""),
        ),
    )
    .unwrap();
    path
}

fn sync(idx: &Path, feed: &Path, until: &str) -> Value {
    json(&ok(&[
        "sync",
        "--index",
        idx.to_str().unwrap(),
        "--feed",
        feed.to_str().unwrap(),
        "--until",
        until,
        "--json",
    ]))
}

fn new_hits(d: &Value, search: &str) -> Vec<String> {
    d["searches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == search)
        .unwrap()["new"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Topic id → label of the digest's topic history file (the last run).
fn topic_ids(idx: &Path) -> BTreeMap<u64, String> {
    let dir = idx.join("topics");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let h: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    h["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().unwrap(),
                t["label"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn search_ids(idx: &Path, query: &str) -> Vec<String> {
    let out = json(&ok(&[
        "search",
        "--index",
        idx.to_str().unwrap(),
        "-k",
        "40",
        "--json",
        query,
    ]));
    out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sync_twice_reports_only_what_is_new_and_feeds_validate() {
    let server = replay();
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    ok(&[
        "index",
        "--out",
        idx.to_str().unwrap(),
        seed_file().to_str().unwrap(),
    ]);
    let feed = feed_file(tmp.path(), &server);

    // Sync 1: arXiv (two pages) and one day of Daily Papers.
    let one = sync(&idx, &feed, "2026-03-06");
    assert_eq!(one["sync"], 1);
    assert_eq!(one["added"], 4, "{one}");
    assert_eq!(one["removed"], 0);
    assert!(one["since"].is_null());
    let arxiv_targets: Vec<String> = server
        .targets()
        .into_iter()
        .filter(|t| t.starts_with("/oai"))
        .collect();
    assert_eq!(arxiv_targets.len(), 2, "{arxiv_targets:?}");
    assert!(
        arxiv_targets[0].contains("from=2026-03-05")
            && arxiv_targets[0].contains("until=2026-03-06"),
        "{arxiv_targets:?}"
    );
    assert_eq!(new_hits(&one, "planck"), ["hep-th/9504118"]);
    assert!(
        search_ids(&idx, "Planck scale discrete mathematics").contains(&"hep-th/9504118".into())
    );
    let md = tmp.path().join("digests/latest.md");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("# Test watch — "), "{text}");
    assert!(
        text.contains("Discrete Mathematics and Physics on the Planck"),
        "{text}"
    );
    let ids_one = topic_ids(&idx);

    // Sync 2: continues from the last day; brings one new paper and one deletion.
    let before = server.targets().len();
    let two = sync(&idx, &feed, "2026-03-07");
    let targets = server.targets()[before..].to_vec();
    assert!(
        targets
            .iter()
            .any(|t| t.starts_with("/oai") && t.contains("from=2026-03-06")),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"/api/daily_papers?date=2026-03-07".to_string()),
        "{targets:?}"
    );
    assert_eq!(two["sync"], 2);
    assert_eq!(two["since"], one["at"]);
    assert_eq!(two["added"], 1, "{two}");
    assert_eq!(two["removed"], 1, "{two}");
    assert_eq!(new_hits(&two, "hallucination"), ["2509.04664"]);
    assert!(new_hits(&two, "planck").is_empty(), "{two}");
    let with_new = two["topics"]["with_new"].as_array().unwrap();
    let listed: Vec<&str> = with_new
        .iter()
        .flat_map(|t| t["new"].as_array().unwrap())
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["2509.04664"], "{with_new:?}");
    assert!(
        !search_ids(&idx, "Planck scale discrete mathematics").contains(&"hep-th/9504118".into())
    );
    // Topics continue: every topic of the first run that is still there keeps its id.
    let ids_two = topic_ids(&idx);
    let kept = ids_one
        .iter()
        .filter(|(id, _)| ids_two.contains_key(id))
        .count();
    assert!(kept >= 3, "{ids_one:?} → {ids_two:?}");
    assert!(two["topics"]["previous_at"].is_string());

    // Sync 3, nothing new: an empty digest, the same topic ids.
    let three = sync(&idx, &feed, "2026-03-07");
    assert_eq!(
        (&three["added"], &three["replaced"], &three["removed"]),
        (&0.into(), &0.into(), &0.into()),
        "{three}"
    );
    for s in three["searches"].as_array().unwrap() {
        assert!(s["new"].as_array().unwrap().is_empty(), "{s}");
    }
    assert!(three["topics"]["new"].as_array().unwrap().is_empty());
    assert!(three["topics"]["with_new"].as_array().unwrap().is_empty());
    assert_eq!(topic_ids(&idx), ids_two);
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("**0 new, 0 updated, 0 removed**"), "{text}");
    let html = std::fs::read_to_string(tmp.path().join("digests/latest.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("<script"));
    let digests = std::fs::read_dir(tmp.path().join("digests"))
        .unwrap()
        .count();
    assert_eq!(
        digests,
        3 * 3 + 2,
        "three syncs × md/html/json + latest.md/html"
    );

    atom_feeds_validate(&idx, &feed, &ids_two);
}

/// `serve --feed` publishes each saved search; Python's feedparser reads it without
/// complaint and sees the papers.
fn atom_feeds_validate(idx: &Path, feed: &Path, topic_ids: &BTreeMap<u64, String>) {
    let server = Served::start(idx, &["--feed", feed.to_str().unwrap()]);
    // The server numbers the same selection's topics as the last sync did.
    let (status, topics) = server.get("/v1/topics?k=4");
    assert_eq!(status, 200, "{topics}");
    let served: BTreeMap<u64, String> = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().unwrap(),
                t["label"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(&served, topic_ids);
    let (status, list) = server.get("/feeds");
    assert_eq!(status, 200);
    assert_eq!(list["feeds"].as_array().unwrap().len(), 2, "{list}");
    let (status, xml) = server.get_text("/feeds/hallucination.atom");
    assert_eq!(status, 200);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("https://arxiv.org/abs/2509.04664"), "{xml}");
    let (status, body) = server.get("/feeds/nope.atom");
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "feed_not_found");
    let parsed = feedparser(&xml);
    let Some(parsed) = parsed else { return };
    assert_eq!(parsed["bozo"], false, "{parsed}");
    assert_eq!(parsed["title"], "paperscope: hallucination");
    let titles: Vec<&str> = parsed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"Why Language Models Hallucinate"),
        "{titles:?}"
    );
}

/// A running `paperscope serve` on a free loopback port, stopped when dropped.
struct Served {
    child: std::process::Child,
    base: String,
}

impl Served {
    fn start(idx: &Path, flags: &[&str]) -> Served {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_paperscope"))
            .args(["serve", "--index", idx.to_str().unwrap()])
            .args(["--addr", "127.0.0.1:0", "--no-warm-topics"])
            .args(flags)
            .env("PAPERSCOPE_MODEL", common::model_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let base = line.split("on ").last().unwrap().trim().to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{line}");
        std::thread::spawn(move || for _ in stderr.lines() {});
        Served { child, base }
    }

    fn get_text(&self, path: &str) -> (u16, String) {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let mut r = agent.get(format!("{}{path}", self.base)).call().unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap())
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.get_text(path);
        (status, json(&text))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The feed as Python's feedparser sees it, or `None` (with the reason printed) where
/// feedparser is not installed (`.ci/run` installs it).
fn feedparser(xml: &str) -> Option<Value> {
    let script = r#"
import json, sys
try:
    import feedparser
except ImportError:
    print("SKIP"); sys.exit(0)
d = feedparser.parse(sys.stdin.read())
print(json.dumps({"bozo": bool(d.bozo), "error": str(d.get("bozo_exception", "")),
                  "title": d.feed.get("title"), "version": d.version,
                  "entries": [{"title": e.get("title"), "id": e.get("id"), "link": e.get("link")} for e in d.entries]}))
"#;
    let mut child = match Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED the Atom validation: python3 not found ({e})");
            return None;
        }
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    if text.trim() == "SKIP" {
        eprintln!("SKIPPED the Atom validation: Python's feedparser is not installed (pip install feedparser)");
        return None;
    }
    let v = json(&text);
    assert_eq!(v["version"], "atom10", "{v}");
    Some(v)
}

#[test]
fn a_bad_feed_file_is_a_usage_error_before_anything_is_fetched() {
    let server = replay();
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("feed.toml");
    std::fs::write(
        &feed,
        format!(
            "[[source]]\nkind = \"arxiv\"\nset = \"cs\"\nbase_url = \"{}\"\n\n[[search]]\nname = \"two words\"\nquery = \"x\"\n",
            server.url("/oai")
        ),
    )
    .unwrap();
    let idx = tmp.path().join("idx");
    let out = paperscope(&[
        "sync",
        "--index",
        idx.to_str().unwrap(),
        "--feed",
        feed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("feed.toml") && err.contains("a name is letters"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(server.targets().is_empty(), "{:?}", server.targets());
    assert!(!idx.exists());
}
