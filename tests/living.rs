//! A living collection, end to end with the real binary and model: `add`, `remove` and
//! `compact` commits, a writer killed at each point of a commit, the writer lock, and a
//! live `serve` following every commit without an error window.

mod common;

use common::{arxiv_slice, json, ok, seed_file};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs the binary with extra environment (the failpoint).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .args(args)
        .envs(env.iter().copied())
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// An index of the seed papers in a fresh directory.
fn seed_index(dir: &Path) -> PathBuf {
    let idx = dir.join("idx");
    ok(&["index", "--out", s(&idx), s(&seed_file())]);
    idx
}

/// Records `from..to` of the shared arXiv collection as a JSONL file.
fn arxiv_records(dir: &Path, from: usize, to: usize) -> PathBuf {
    let all = arxiv_slice(dir, to);
    let text = std::fs::read_to_string(&all).unwrap();
    let path = dir.join(format!("arxiv-{from}-{to}.jsonl"));
    let lines: Vec<&str> = text.lines().skip(from).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn manifest(idx: &Path) -> serde_json::Value {
    json(&std::fs::read_to_string(idx.join("manifest.json")).unwrap())
}

/// `paperscope check` passes and the index holds `papers` at `generation`.
fn assert_whole(idx: &Path, generation: u64, papers: u64) {
    let out = ok(&["check", "--index", s(idx)]);
    assert!(out.contains("ok:"), "{out}");
    let m = manifest(idx);
    assert_eq!(
        (m["generation"].as_u64(), m["count"].as_u64()),
        (Some(generation), Some(papers)),
        "{m}"
    );
}

/// Only what the manifest names is left in the index directory.
fn assert_no_leftovers(idx: &Path) {
    let m = manifest(idx);
    let mut wanted: Vec<String> = m["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    wanted.push(m["keyword"]["dir"].as_str().unwrap().to_string());
    wanted.extend(["manifest.json".to_string(), "write.lock".to_string()]);
    for e in std::fs::read_dir(idx).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            wanted.contains(&name),
            "leftover {name} in {}",
            idx.display()
        );
    }
}

#[test]
fn a_writer_killed_at_any_point_leaves_the_last_commit_whole() {
    let dir = tempfile::tempdir().unwrap();
    let base = seed_index(dir.path());
    let more = arxiv_records(dir.path(), 0, 40);
    for point in ["embed", "graph", "keyword", "manifest"] {
        let idx = dir.path().join(format!("idx-{point}"));
        assert!(Command::new("cp")
            .args(["-r", s(&base), s(&idx)])
            .status()
            .unwrap()
            .success());
        let out = run_env(
            &["add", "--index", s(&idx), s(&more)],
            &[("PAPERSCOPE_FAILPOINT", point)],
        );
        assert_eq!(out.status.signal(), Some(9), "{point}: {out:?}");
        // The last commit is whole and opens; searching it works.
        assert_whole(&idx, 1, 25);
        let found = json(&ok(&[
            "search",
            "--index",
            s(&idx),
            "--json",
            "emergent abilities",
        ]));
        assert_eq!(found["results"].as_array().unwrap().len(), 10, "{point}");
        // The next writer cleans up and commits.
        let report = json(&ok(&["add", "--index", s(&idx), "--json", s(&more)]));
        assert_eq!(
            (report["added"].as_u64(), report["generation"].as_u64()),
            (Some(40), Some(2)),
            "{point}"
        );
        assert_whole(&idx, 2, 65);
        assert_no_leftovers(&idx);
    }
    // A full disk: a clear error, and the last commit intact.
    let idx = dir.path().join("idx-full");
    assert!(Command::new("cp")
        .args(["-r", s(&base), s(&idx)])
        .status()
        .unwrap()
        .success());
    let out = run_env(
        &["add", "--index", s(&idx), s(&more)],
        &[("PAPERSCOPE_FAILPOINT", "keyword:enospc")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_whole(&idx, 1, 25);
    ok(&["add", "--index", s(&idx), s(&more)]);
    assert_no_leftovers(&idx);
}

#[test]
fn a_second_writer_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let idx = seed_index(dir.path());
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(idx.join("write.lock"))
        .unwrap();
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let out = run_env(&["remove", "--index", s(&idx), "seed-001"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("another paperscope") && err.contains("try again"),
        "{err}"
    );
    drop(lock);
    ok(&["remove", "--index", s(&idx), "seed-001"]);
    assert_whole(&idx, 2, 24);
}

#[test]
fn records_replace_and_delete_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let idx = seed_index(dir.path());
    let seed = std::fs::read_to_string(seed_file()).unwrap();
    let mut first: serde_json::Value = json(seed.lines().next().unwrap());
    let id = first["id"].as_str().unwrap().to_string();
    // One file: a record, a correction of it (last wins), a deletion of another.
    let feed = dir.path().join("feed.jsonl");
    let mut f = std::fs::File::create(&feed).unwrap();
    first["title"] = "An interim title about zebrafish".into();
    writeln!(f, "{first}").unwrap();
    first["title"] = "Quasicrystal zebrafish corrected title".into();
    writeln!(f, "{first}").unwrap();
    writeln!(f, r#"{{"id": "seed-002", "deleted": true}}"#).unwrap();
    drop(f);
    let report = json(&ok(&["add", "--index", s(&idx), "--json", s(&feed)]));
    assert_eq!(
        (
            report["replaced"].as_u64(),
            report["removed"].as_u64(),
            report["duplicates"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{report}"
    );
    // The abstract did not change, but the title did: embedded again.
    assert_eq!(report["embedded"].as_u64(), Some(1), "{report}");
    for mode in ["keyword", "semantic", "hybrid"] {
        let found = json(&ok(&[
            "search",
            "--index",
            s(&idx),
            "--json",
            "--mode",
            mode,
            "-k",
            "3",
            "quasicrystal zebrafish corrected",
        ]));
        let top = &found["results"][0];
        assert_eq!(top["id"].as_str(), Some(id.as_str()), "{mode}: {found}");
        assert_eq!(
            top["title"].as_str(),
            Some("Quasicrystal zebrafish corrected title")
        );
        let all = json(&ok(&[
            "search",
            "--index",
            s(&idx),
            "--json",
            "--mode",
            mode,
            "-k",
            "50",
            "emergent",
        ]));
        assert!(
            all["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["id"] != "seed-002"),
            "{mode}"
        );
    }
    let similar = json(&ok(&[
        "similar",
        "--index",
        s(&idx),
        "--json",
        "-k",
        "30",
        &id,
    ]));
    assert!(similar["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"] != "seed-002"));
    assert_eq!(similar["results"].as_array().unwrap().len(), 23);

    // Re-indexing the same files changes nothing; other files are refused; --replace
    // makes the index hold exactly them, reusing every vector it has.
    let fresh = dir.path().join("fresh");
    ok(&["index", "--out", s(&fresh), s(&seed_file())]);
    let again = json(&ok(&[
        "index",
        "--out",
        s(&fresh),
        "--json",
        s(&seed_file()),
    ]));
    assert_eq!(
        (again["committed"].as_bool(), again["embedded"].as_u64()),
        (Some(false), Some(0)),
        "{again}"
    );
    let subset = dir.path().join("subset.jsonl");
    std::fs::write(&subset, seed.lines().take(5).collect::<Vec<_>>().join("\n")).unwrap();
    let out = run_env(&["index", "--out", s(&fresh), s(&subset)], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("paperscope add") && err.contains("--replace"),
        "{err}"
    );
    assert_whole(&fresh, 1, 25);
    let replaced = json(&ok(&[
        "index",
        "--replace",
        "--out",
        s(&fresh),
        "--json",
        s(&subset),
    ]));
    assert_eq!(
        (
            replaced["papers"].as_u64(),
            replaced["removed"].as_u64(),
            replaced["embedded"].as_u64()
        ),
        (Some(5), Some(20), Some(0)),
        "{replaced}"
    );
    let c = json(&ok(&["compact", "--index", s(&fresh), "--json"]));
    assert_eq!(
        (
            c["segments"].as_u64(),
            c["papers"].as_u64(),
            c["embedded"].as_u64()
        ),
        (Some(1), Some(5), Some(0)),
        "{c}"
    );
}

/// The bar: a live server follows every commit (add, correct, remove, a killed add and
/// its rerun), without restarting and without one failed request; nothing is lost and
/// every paper is reachable.
#[test]
fn a_live_server_follows_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let idx = seed_index(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .args([
            "serve",
            "--index",
            s(&idx),
            "--addr",
            "127.0.0.1:0",
            "--follow-ms",
            "100",
        ])
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.split("on ").last().unwrap().trim().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let get = |path: &str| -> (u16, serde_json::Value) {
        let mut res = ureq_get(&format!("{base}{path}"));
        (res.0, std::mem::take(&mut res.1))
    };

    // A client searching the whole time: every answer must be a 200.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new((0usize, Vec::<String>::new(), 0u64)));
    let poller = {
        let (stop, seen, base) = (stop.clone(), seen.clone(), base.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for path in ["/v1/search?q=emergent%20behaviour&k=5", "/health"] {
                    let (status, body) = ureq_get(&format!("{base}{path}"));
                    let mut seen = seen.lock().unwrap();
                    seen.0 += 1;
                    if status != 200 {
                        seen.1.push(format!("{path}: {status} {body}"));
                    }
                    if let Some(g) = body["generation"].as_u64() {
                        if g < seen.2 {
                            let was = seen.2;
                            seen.1
                                .push(format!("generation went back from {was} to {g}"));
                        }
                        seen.2 = g;
                    }
                }
            }
        })
    };
    let wait_for = |generation: u64, papers: u64| {
        let start = Instant::now();
        loop {
            let (_, h) = get("/health");
            if h["generation"].as_u64() == Some(generation) {
                assert_eq!(h["papers"].as_u64(), Some(papers), "{h}");
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "server stuck at {h}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    let arxiv = arxiv_records(dir.path(), 0, 300);
    ok(&["add", "--index", s(&idx), s(&arxiv)]);
    wait_for(2, 325);
    let first: serde_json::Value = json(
        std::fs::read_to_string(&arxiv)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    );
    let id = first["id"].as_str().unwrap().to_string();
    let (status, paper) = get(&format!("/v1/papers/{id}"));
    assert_eq!((status, &paper["title"]), (200, &first["title"]));

    // A corrected record: the server shows the new text, in keyword search too.
    let mut fixed = first.clone();
    fixed["title"] = "Quasicrystal zebrafish: a corrected title".into();
    let fix = dir.path().join("fix.jsonl");
    std::fs::write(&fix, format!("{fixed}\n")).unwrap();
    ok(&["add", "--index", s(&idx), s(&fix)]);
    wait_for(3, 325);
    let (_, paper) = get(&format!("/v1/papers/{id}"));
    assert_eq!(paper["title"], fixed["title"]);
    let (_, found) = get("/v1/search?q=quasicrystal%20zebrafish&mode=keyword&k=3");
    assert_eq!(
        found["results"][0]["id"].as_str(),
        Some(id.as_str()),
        "{found}"
    );

    // A removal.
    ok(&["remove", "--index", s(&idx), "seed-003"]);
    wait_for(4, 324);
    assert_eq!(get("/v1/papers/seed-003").0, 404);

    // A large add killed midway, then run again.
    let later = arxiv_records(dir.path(), 300, 400);
    let out = run_env(
        &["add", "--index", s(&idx), s(&later)],
        &[("PAPERSCOPE_FAILPOINT", "embed")],
    );
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert_whole(&idx, 4, 324);
    ok(&["add", "--index", s(&idx), s(&later)]);
    wait_for(5, 424);

    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let (requests, errors, _) = &*seen.lock().unwrap();
    assert!(*requests > 20, "only {requests} requests");
    assert!(errors.is_empty(), "{errors:?}");
    let _ = child.kill();
    let _ = child.wait();

    // Nothing lost, and every paper reachable.
    let recall = json(&ok(&[
        "eval",
        "recall",
        "--index",
        s(&idx),
        "--json",
        "--queries",
        "424",
    ]));
    assert!(recall["recall@10"].as_f64().unwrap() >= 0.99, "{recall}");
    let all = json(&ok(&[
        "eval",
        "recall",
        "--index",
        s(&idx),
        "--all",
        "--json",
    ]));
    assert_eq!(
        (all["papers"].as_u64(), all["missed"].as_u64()),
        (Some(424), Some(0)),
        "{all}"
    );
}

/// A blocking GET over a plain TCP connection (the test needs no async runtime):
/// status and JSON body.
fn ureq_get(url: &str) -> (u16, serde_json::Value) {
    use std::io::Read;
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    // Chunked bodies: the JSON is the one line that parses.
    let value = body
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, value)
}
