//! `paperscope harvest` against recorded arXiv OAI-PMH and Hugging Face Daily Papers
//! responses (tests/fixtures/harvest, sources in its README) replayed on a loopback
//! server, with the real binary; then the harvested file through `index`, `add` and
//! `search` with the real model.

mod common;
#[path = "common/replay.rs"]
mod replay;

use common::{json, paperscope};
use replay::{Replay, Reply};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn fixture(name: &str) -> Vec<u8> {
    let path = common::repo().join("tests/fixtures/harvest").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn xml(name: &str) -> Reply {
    Reply::new(200, "text/xml", fixture(name))
}

/// Runs `paperscope harvest SOURCE ARGS --base-url URL --delay 0 --backoff 10ms`.
fn harvest(source: &str, url: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "harvest",
        source,
        "--base-url",
        url,
        "--delay",
        "0",
        "--backoff",
        "10ms",
    ];
    all.extend_from_slice(args);
    paperscope(&all)
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "harvest failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(json)
        .collect()
}

fn ids(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn search_ids(idx: &Path, query: &str) -> Vec<String> {
    let out = json(&common::ok(&[
        "search",
        "--index",
        idx.to_str().unwrap(),
        "-k",
        "30",
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
fn arxiv_pages_retry_after_state_and_the_index_take_the_harvest() {
    // Run 1: arXiv's flow-control 503 first, then two pages; run 2 (from the state file):
    // the next day, with one of run 1's papers deleted.
    let server = Replay::start(|n, _| match n {
        0 => Reply::new(503, "text/html", fixture("arxiv-503.html")).header("Retry-After", "1"),
        1 => xml("arxiv-page-1.xml"),
        2 => xml("arxiv-page-2.xml"),
        _ => xml("arxiv-deleted.xml"),
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cs.jsonl");
    let out_s = out.to_str().unwrap();
    let url = server.url("/oai");
    let summary = succeeded(&harvest(
        "arxiv",
        &url,
        &[
            "--set",
            "cs",
            "--from",
            "2015-01-01",
            "--until",
            "2015-01-03",
            "--out",
            out_s,
        ],
    ));
    assert!(
        summary.starts_with("harvested 3 records, 0 deleted, 2 pages, 3 requests, 1 retries"),
        "{summary}"
    );
    let first =
        "/oai?verb=ListRecords&metadataPrefix=arXiv&from=2015-01-01&set=cs&until=2015-01-03";
    assert_eq!(
        server.targets(),
        [
            first,
            first,
            "/oai?verb=ListRecords&resumptionToken=6960524%7C1001"
        ]
    );
    let hits = server.hits();
    let waited = hits[1].at - hits[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 not honoured: {waited:?}"
    );

    let records = lines(&out);
    assert_eq!(ids(&records), ["1412.8544", "hep-th/9504118", "0801.3931"]);
    let ks = &records[0];
    assert_eq!(
        ks["title"],
        "A Kochen-Specker system has at least 22 vectors (extended abstract)"
    );
    assert_eq!(ks["authors"], json!(["Sander Uijlen", "Bas Westerbaan"]));
    assert_eq!(ks["categories"], json!(["cs.DM"]));
    assert_eq!(ks["published"], "2014-12-29");
    assert_eq!(ks["url"], "https://arxiv.org/abs/1412.8544");
    assert_eq!(ks["doi"], "10.4204/EPTCS.172.11");
    assert_eq!(ks["journal-ref"], "EPTCS 172, 2014, pp. 154-164");
    assert_eq!(
        ks["license"],
        "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    );
    let abs = ks["abstract"].as_str().unwrap();
    assert!(
        abs.starts_with("At the heart of the Conway-Kochen Free Will theorem and Kochen"),
        "{abs}"
    );
    assert!(
        abs.ends_with("improve the lower bound to 22.")
            && !abs.contains("  ")
            && !abs.contains('\n')
    );
    // Entities decoded, whitespace collapsed.
    assert!(records[1]["abstract"]
        .as_str()
        .unwrap()
        .contains("the \"strength\" of the bonds"));
    assert_eq!(records[1]["report-no"], "GOET-TP 101/95");
    assert_eq!(
        records[2]["comments"],
        "8 pages, 3 figures, to appear in the proceedings of the international conference \"Chaos in Astronomy\", Athens, Greece (talk contribution)"
    );
    let state = json(&std::fs::read_to_string(tmp.path().join("cs.jsonl.state.json")).unwrap());
    assert_eq!(
        state,
        json!({"source": "arxiv", "set": "cs", "until": "2015-01-03", "latest_datestamp": "2015-01-03"})
    );
    assert_eq!(
        files_in(tmp.path()),
        BTreeSet::from(["cs.jsonl".into(), "cs.jsonl.state.json".into()])
    );

    // The harvest indexes as it is, beside the real seed papers.
    let seed = common::shared().join("data/seed/emergent-papers.jsonl");
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    common::ok(&["index", "--out", idx_s, seed.to_str().unwrap(), out_s]);
    let planck = "discrete mathematics and physics on the Planck scale, cellular networks";
    assert_eq!(search_ids(&idx, planck)[0], "hep-th/9504118");

    // Run 2 continues where run 1 stopped: from its last day, inclusive.
    let summary = succeeded(&harvest("arxiv", &url, &["--set", "cs", "--out", out_s]));
    assert!(
        summary.starts_with("harvested 0 records, 1 deleted, 1 pages, 1 requests, 0 retries"),
        "{summary}"
    );
    assert_eq!(
        server.targets()[3],
        "/oai?verb=ListRecords&metadataPrefix=arXiv&from=2015-01-03&set=cs"
    );
    assert_eq!(
        lines(&out),
        [json!({"id": "hep-th/9504118", "deleted": true})]
    );
    let state = json(&std::fs::read_to_string(tmp.path().join("cs.jsonl.state.json")).unwrap());
    assert_eq!(state["latest_datestamp"], "2015-01-04");

    common::ok(&["add", "--index", idx_s, out_s]);
    let found = search_ids(&idx, planck);
    assert!(!found.contains(&"hep-th/9504118".to_string()), "{found:?}");
    assert_eq!(
        found.len(),
        27,
        "25 seed papers and 2 harvested remain: {found:?}"
    );
    let kochen = search_ids(
        &idx,
        "Kochen-Specker systems: points on the sphere without a 0,1-coloring",
    );
    assert_eq!(kochen[0], "1412.8544");
}

#[test]
fn arxiv_category_filter_keeps_records_with_any_given_category() {
    let server = Replay::start(|_, target| {
        if target.contains("resumptionToken=") {
            xml("arxiv-page-2.xml")
        } else {
            xml("arxiv-page-1.xml")
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("some.jsonl");
    let args = [
        "--set",
        "physics",
        "--category",
        "cs.DM",
        "--category",
        "astro-ph",
        "--from",
        "2015-01-01",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    let report = json(&succeeded(&harvest("arxiv", &server.url("/oai"), &args)));
    assert_eq!(ids(&lines(&out)), ["1412.8544", "0801.3931"]);
    // The summary as JSON: records written, not records seen (hep-th/9504118 dropped).
    assert_eq!(report["records"], 2);
    assert_eq!(report["pages"], 2);
    assert_eq!(report["from"], "2015-01-01");
    assert_eq!(report["out"], out.to_str().unwrap());
    assert_eq!(
        json(&std::fs::read_to_string(tmp.path().join("some.jsonl.state.json")).unwrap())
            ["categories"],
        json!(["cs.DM", "astro-ph"])
    );
}

/// Each kind of failure that may pass: retried, and when it persists, exit 1 with the URL
/// named, nothing written, the previous output and state untouched; when it passes, the
/// harvest completes.
#[test]
fn arxiv_failures_are_retried_then_fail_cleanly() {
    let page = fixture("arxiv-page-1.xml");
    // (case, reply, flags, what the error says of the last attempt)
    let cases: Vec<(&str, Reply, &[&str], &str)> = vec![
        (
            "malformed XML",
            Reply::new(200, "text/xml", page[..1500].to_vec()),
            &[],
            "malformed response: not OAI-PMH XML",
        ),
        (
            "truncated body",
            xml("arxiv-page-1.xml").cut_at(1500),
            &[],
            "reading the response failed",
        ),
        (
            "timeout",
            xml("arxiv-page-1.xml").after(Duration::from_secs(3)),
            &["--timeout", "300ms"],
            "request failed: timeout",
        ),
        (
            "server error",
            Reply::new(500, "text/plain", "Internal Server Error"),
            &[],
            "HTTP status 500",
        ),
    ];
    for (what, bad, extra, last) in cases {
        // Persistent: every attempt fails.
        let failing = bad.clone();
        let server = Replay::start(move |_, _| failing.clone());
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("cs.jsonl");
        let state = tmp.path().join("cs.jsonl.state.json");
        let before = "{\"id\": \"earlier\", \"title\": \"An earlier harvest\"}\n";
        let before_state = r#"{"source": "arxiv", "set": "cs", "until": "2014-12-31"}"#;
        std::fs::write(&out, before).unwrap();
        std::fs::write(&state, before_state).unwrap();
        let mut args = vec![
            "--set",
            "cs",
            "--out",
            out.to_str().unwrap(),
            "--retries",
            "2",
        ];
        args.extend_from_slice(extra);
        let run = harvest("arxiv", &server.url("/oai"), &args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{what}: {stderr}");
        let url = server.url("/oai?verb=ListRecords&metadataPrefix=arXiv&from=2014-12-31&set=cs");
        assert!(
            stderr.contains(&format!("giving up on {url} after 3 attempts")),
            "{what}: {stderr}"
        );
        assert!(stderr.contains(last), "{what}: {stderr}");
        assert!(stderr.contains(last), "{what}: {stderr}");
        assert_eq!(server.hits().len(), 3, "{what}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), before, "{what}");
        assert_eq!(
            std::fs::read_to_string(&state).unwrap(),
            before_state,
            "{what}"
        );
        assert_eq!(
            files_in(tmp.path()).len(),
            2,
            "{what}: {:?}",
            files_in(tmp.path())
        );

        // Passing: the failure once, then the pages.
        let server = Replay::start(move |n, target| match n {
            0 => bad.clone(),
            _ if target.contains("resumptionToken=") => xml("arxiv-page-2.xml"),
            _ => xml("arxiv-page-1.xml"),
        });
        let fresh = tempfile::tempdir().unwrap();
        let out = fresh.path().join("cs.jsonl");
        let mut args = vec![
            "--set",
            "cs",
            "--from",
            "2015-01-01",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let summary = succeeded(&harvest("arxiv", &server.url("/oai"), &args));
        assert!(
            summary.contains("3 records, 0 deleted, 2 pages, 3 requests, 1 retries"),
            "{what}: {summary}"
        );
        assert_eq!(lines(&out).len(), 3, "{what}");
    }
}

#[test]
fn oai_errors_no_records_is_empty_others_fail() {
    let server = Replay::start(|_, _| xml("arxiv-no-records.xml"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("none.jsonl");
    let summary = succeeded(&harvest(
        "arxiv",
        &server.url("/oai"),
        &[
            "--set",
            "cs",
            "--from",
            "2015-01-01",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    assert!(
        summary.starts_with("harvested 0 records, 0 deleted, 1 pages"),
        "{summary}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "");

    let server = Replay::start(|n, _| {
        if n == 0 {
            xml("arxiv-page-1.xml")
        } else {
            xml("arxiv-bad-token.xml")
        }
    });
    let out = tmp.path().join("bad.jsonl");
    let run = harvest(
        "arxiv",
        &server.url("/oai"),
        &[
            "--set",
            "cs",
            "--from",
            "2015-01-01",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("OAI-PMH error badResumptionToken"),
        "{stderr}"
    );
    assert!(
        stderr.contains("resumptionToken=6960524%7C1001"),
        "{stderr}"
    );
    assert_eq!(
        server.hits().len(),
        2,
        "an OAI-PMH error is an answer, not retried"
    );
    assert!(!out.exists());
}

#[test]
fn usage_mistakes_exit_2_before_any_request() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.jsonl");
    let out_s = out.to_str().unwrap();
    // Port 9 (discard) on loopback: nothing is asked of it.
    let url = "http://127.0.0.1:9/oai";
    for (args, said) in [
        (
            vec!["arxiv", "--set", "cs", "--out", out_s],
            "no start date",
        ),
        (
            vec![
                "arxiv",
                "--set",
                "cs",
                "--from",
                "2015-02-30",
                "--out",
                out_s,
            ],
            "2015-02-30",
        ),
        (
            vec![
                "arxiv",
                "--set",
                "cs",
                "--from",
                "2015-02-03",
                "--until",
                "2015-02-01",
                "--out",
                out_s,
            ],
            "before",
        ),
        (
            vec!["hf-daily", "--date", "2026-3-6", "--out", out_s],
            "2026-3-6",
        ),
    ] {
        let run = harvest(args[0], url, &args[1..]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
    // A state file of another source is not continued.
    std::fs::write(
        tmp.path().join("x.jsonl.state.json"),
        r#"{"source": "hf-daily", "until": "2026-03-06"}"#,
    )
    .unwrap();
    let run = harvest("arxiv", url, &["--set", "cs", "--out", out_s]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(files_in(tmp.path()).len(), 1);
}

#[test]
fn hf_daily_two_days_then_continues_from_the_last() {
    let server = Replay::start(|_, target| match target {
        "/api/daily_papers?date=2026-03-06" => {
            Reply::new(200, "application/json", fixture("hf-daily-2026-03-06.json"))
        }
        "/api/daily_papers?date=2026-03-07" => {
            Reply::new(200, "application/json", fixture("hf-daily-2026-03-07.json"))
        }
        _ => Reply::new(404, "application/json", "{\"error\":\"not found\"}"),
    });
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = tmp.path().join("hf.jsonl");
    let out_s = out.to_str().unwrap();
    let summary = succeeded(&harvest(
        "hf-daily",
        &server.url(""),
        &[
            "--date",
            "2026-03-06",
            "--until",
            "2026-03-07",
            "--out",
            out_s,
        ],
    ));
    assert!(
        summary.starts_with("harvested 2 records, 0 deleted, 2 pages, 2 requests, 0 retries"),
        "{summary}"
    );
    assert_eq!(
        server.targets(),
        [
            "/api/daily_papers?date=2026-03-06",
            "/api/daily_papers?date=2026-03-07"
        ]
    );
    let records = lines(&out);
    assert_eq!(ids(&records), ["2602.23229", "2509.04664"]);
    let lmm = &records[0];
    assert_eq!(
        lmm["title"],
        "Large Multimodal Models as General In-Context Classifiers"
    );
    assert_eq!(lmm["authors"][4], "Elisa Ricci");
    assert_eq!(lmm["published"], "2026-02-26");
    assert_eq!(lmm["url"], "https://arxiv.org/abs/2602.23229");
    assert_eq!(lmm["upvotes"], 10);
    assert_eq!(lmm["githubRepo"], "https://github.com/marco-garosi/CIRCLE");
    assert_eq!(lmm["githubStars"], 9);
    assert_eq!(lmm["numComments"], 1);
    assert_eq!(lmm["listing_date"], "2026-03-06");
    assert_eq!(lmm["ai_keywords"][6], "CIRCLE");
    assert!(lmm["abstract"]
        .as_str()
        .unwrap()
        .starts_with("Which multimodal model should we use for classification?"));
    let abs = records[1]["abstract"].as_str().unwrap();
    assert!(
        abs.contains("models sometimes guess when uncertain") && !abs.contains('\n'),
        "{abs}"
    );

    // The harvest reads as paperscope records.
    let corpus = paperscope::corpus::read_files(
        &[&out],
        &paperscope::corpus::ReadOptions {
            strict: true,
            limit: None,
        },
    )
    .unwrap();
    assert_eq!(corpus.papers.len(), 2);
    assert_eq!(corpus.papers[1].date.as_deref(), Some("2025-09-04"));
    assert_eq!(corpus.papers[1].extra["upvotes"], 26);

    // Without --date: from the state's last day (its list may have grown since).
    succeeded(&harvest(
        "hf-daily",
        &server.url(""),
        &["--until", "2026-03-07", "--out", out_s],
    ));
    assert_eq!(
        server.targets().last().unwrap(),
        "/api/daily_papers?date=2026-03-07"
    );
    assert_eq!(server.hits().len(), 3);
    assert_eq!(ids(&lines(&out)), ["2509.04664"]);
}

#[test]
fn hf_daily_malformed_json_is_retried_then_fails_cleanly() {
    let server = Replay::start(|_, _| {
        Reply::new(
            200,
            "application/json",
            "[{\"paper\": {\"id\": \"2602.23229\"",
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hf.jsonl");
    let run = harvest(
        "hf-daily",
        &server.url(""),
        &[
            "--date",
            "2026-03-06",
            "--retries",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/api/daily_papers?date=2026-03-06 after 2 attempts"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid JSON"), "{stderr}");
    assert_eq!(server.hits().len(), 2);
    assert!(files_in(tmp.path()).is_empty());
}
