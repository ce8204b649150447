//! The real `paperscope` binary on real papers with the real model.

mod common;

use common::{json, ok, paperscope, paperscope_in, shared_index};
use std::path::Path;

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn search_finds_the_emergent_misalignment_papers() {
    let idx = shared_index().to_str().unwrap();
    let out = json(&ok(&[
        "search",
        "--index",
        idx,
        "-k",
        "5",
        "--json",
        "emergent misalignment after narrow finetuning",
    ]));
    let found = ids(&out);
    assert_eq!(found.len(), 5);
    // The paper that named the effect leads among 425 papers. (Its follow-up, seed-009,
    // ranks lower for this short query with the dense model alone: a long abstract
    // about domains dilutes it. A query about its own question finds both, below.)
    assert_eq!(found[0], "seed-007", "{found:?}");
    let scores: Vec<f64> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "not best first: {scores:?}"
    );
    assert!(scores[0] > 0.3 && scores[0] <= 1.0, "{scores:?}");

    let found = ids(&json(&ok(&[
        "search",
        "--index",
        idx,
        "-k",
        "3",
        "--json",
        "which domains of finetuning data make models misaligned",
    ])));
    assert!(found[..2].contains(&"seed-009".to_string()), "{found:?}");
    assert!(found[..2].contains(&"seed-007".to_string()), "{found:?}");
}

#[test]
fn similar_pairs_the_two_misalignment_papers_and_excludes_itself() {
    let idx = shared_index().to_str().unwrap();
    for (query, partner) in [("seed-007", "seed-009"), ("seed-009", "seed-007")] {
        let found = ids(&json(&ok(&[
            "similar", "--index", idx, "-k", "3", "--json", query,
        ])));
        assert!(
            !found.contains(&query.to_string()),
            "{query} in its own results"
        );
        assert_eq!(found[0], partner, "{query}: {found:?}");
    }
}

#[test]
fn human_output_has_rank_score_id_date_title() {
    let idx = shared_index().to_str().unwrap();
    let text = ok(&["similar", "--index", idx, "-k", "2", "seed-007"]);
    let first = text.lines().next().unwrap();
    assert!(first.trim_start().starts_with("1  0."), "{text}");
    assert!(
        first.contains("seed-009") && first.contains("Emergent Misalignment"),
        "{text}"
    );
}

#[test]
fn unknown_paper_id_is_a_clear_error() {
    let idx = shared_index().to_str().unwrap();
    let out = paperscope(&["similar", "--index", idx, "no-such-paper"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown paper id: no-such-paper"), "{err}");
}

#[test]
fn recall_of_hnsw_against_exact_search() {
    let idx = shared_index().to_str().unwrap();
    let out = json(&ok(&[
        "eval",
        "recall",
        "--index",
        idx,
        "--queries",
        "200",
        "--json",
    ]));
    let recall = out["recall@10"].as_f64().unwrap();
    assert!(recall >= 0.99, "recall@10 {recall}");
    assert_eq!(out["queries"], 200);
    let text = ok(&["eval", "recall", "--index", idx, "--queries", "50"]);
    assert!(text.starts_with("recall@10: "), "{text}");
}

#[test]
fn embed_reads_plain_and_json_lines_in_order() {
    let golden =
        std::fs::read_to_string(common::shared().join("golden/minilm_golden.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = golden.lines().map(json).collect();
    // A multi-line text goes through as a JSON line; a plain line as itself.
    let multi = rows
        .iter()
        .find(|r| r["text"].as_str().unwrap().contains('\n'))
        .unwrap();
    let plain = rows
        .iter()
        .find(|r| r["id"] == "query_short")
        .unwrap_or(&rows[0]);
    let input = format!(
        "{}\n{}\n",
        plain["text"].as_str().unwrap(),
        serde_json::json!({ "text": multi["text"] })
    );
    let out = paperscope_in(&["embed"], Some(&input));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(json)
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, want) in lines.iter().zip([plain, multi]) {
        let got: Vec<f32> = serde_json::from_value(line["embedding"].clone()).unwrap();
        let want: Vec<f32> = serde_json::from_value(want["embedding"].clone()).unwrap();
        assert_eq!(got.len(), 384);
        assert!(common::cosine(&got, &want) >= 0.9999);
    }
}

#[test]
fn missing_model_is_a_one_line_error_with_the_fix() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .args(["embed", "--model", "/nonexistent/model"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/model") && err.contains("scripts/fetch-model.sh"),
        "{err}"
    );
}

fn manifest(idx: &Path) -> serde_json::Value {
    json(&std::fs::read_to_string(idx.join("manifest.json")).unwrap())
}

#[test]
fn a_failed_rebuild_leaves_the_old_index() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    let seed = common::seed_file();
    ok(&["index", "--out", idx_s, seed.to_str().unwrap()]);
    let before = manifest(&idx);
    assert_eq!(before["count"], 25);
    assert_eq!(before["dim"], 384);
    assert_eq!(before["format_version"], 2);
    assert_eq!(before["generation"], 1);
    assert_eq!(before["model"]["name"], "all-MiniLM-L6-v2");
    assert_eq!(
        before["model"]["weights_sha256"],
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    );

    // A strict rebuild over a file with a bad line fails...
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\":\"x\",\"title\":\"T\",\"abstract\":\"A\"}\nnot json\n",
    )
    .unwrap();
    let out = paperscope(&["index", "--strict", "--out", idx_s, bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.jsonl:2:"));
    // ...and a rebuild killed mid-embedding (SIGKILL) leaves no trace either.
    let slice = common::arxiv_slice(tmp.path(), 2000);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .args([
            "index",
            "--replace",
            "--out",
            idx_s,
            slice.to_str().unwrap(),
        ])
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(manifest(&idx), before);
    let found = ids(&json(&ok(&[
        "similar", "--index", idx_s, "-k", "1", "--json", "seed-007",
    ])));
    assert_eq!(found, ["seed-009"]);

    // The next successful build replaces it and clears the dead builder's leftovers.
    let small = common::arxiv_slice(tmp.path(), 30);
    ok(&[
        "index",
        "--replace",
        "--out",
        idx_s,
        small.to_str().unwrap(),
    ]);
    assert_eq!(manifest(&idx)["count"], 30);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let m = manifest(&idx);
    let kept: Vec<String> = std::fs::read_dir(&idx)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg-") || n.starts_with("keyword-"))
        .collect();
    let named = m["segments"].as_array().unwrap().len() + 1;
    assert_eq!(kept.len(), named, "{kept:?}");
}

#[test]
fn index_reports_bad_lines_and_refuses_to_clobber_other_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.jsonl");
    std::fs::write(
        &file,
        "{\"id\":\"a\",\"title\":\"Graph networks\",\"abstract\":\"For molecules.\"}\n{broken\n{\"id\":\"a\",\"title\":\"dup\"}\n",
    )
    .unwrap();
    // Indexes the test file into `out`.
    let index_into = |out: &Path| {
        paperscope(&[
            "index",
            "--out",
            out.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
    };
    let idx = tmp.path().join("idx");
    let out = index_into(&idx);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("p.jsonl:2: invalid JSON"), "{err}");
    // The later record of an id replaces the earlier one.
    assert!(
        err.contains("p.jsonl:3: duplicate id a: this record replaces"),
        "{err}"
    );
    assert!(
        err.contains("1 papers in 1 segment(s): 1 added")
            && err.contains("(1 skipped lines, 1 duplicate ids)"),
        "{err}"
    );

    let precious = tmp.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "do not delete").unwrap();
    let out = index_into(&precious);
    assert_eq!(out.status.code(), Some(1));
    assert!(precious.join("thesis.tex").is_file());

    // A file that merely is called manifest.json does not make a directory an index
    // (it was wiped: issue 16 #1) ...
    let fake = tmp.path().join("fake");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(fake.join("manifest.json"), "{}").unwrap();
    std::fs::write(fake.join("precious.txt"), "x").unwrap();
    let out = index_into(&fake);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a paperscope index"));
    assert!(fake.join("precious.txt").is_file());
    // ... and a real index with someone's file in it is not replaced either.
    std::fs::write(idx.join("notes.md"), "mine").unwrap();
    let out = index_into(&idx);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.md, which is not part of an index"),
        "{err}"
    );
    assert!(idx.join("notes.md").is_file());
    std::fs::remove_file(idx.join("notes.md")).unwrap();
    ok(&[
        "index",
        "--out",
        idx.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
}

#[test]
fn an_index_refuses_a_different_model() {
    let tmp = tempfile::tempdir().unwrap();
    // Another "model": same architecture and tokenizer, weights changed in one byte.
    let model = common::model_dir();
    let other = tmp.path().join("other-model");
    std::fs::create_dir(&other).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(model.join(f), other.join(f)).unwrap();
    }
    let mut weights = std::fs::read(model.join("model.safetensors")).unwrap();
    let last = weights.len() - 1;
    weights[last] ^= 1;
    std::fs::write(other.join("model.safetensors"), weights).unwrap();

    let idx = shared_index().to_str().unwrap();
    let out = paperscope(&[
        "search",
        "--index",
        idx,
        "--model",
        other.to_str().unwrap(),
        "anything",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("index was built with model all-MiniLM-L6-v2"),
        "{err}"
    );
}

#[test]
fn duplicate_texts_do_not_break_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("dups.jsonl");
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!(
            "{{\"id\":\"d{i}\",\"title\":\"Identical title\",\"abstract\":\"Exactly the same abstract about protein folding.\"}}\n"
        ));
    }
    text.push_str(
        "{\"id\":\"other\",\"title\":\"Kagome metals\",\"abstract\":\"Band structure.\"}\n",
    );
    std::fs::write(&file, text).unwrap();
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    ok(&["index", "--out", idx_s, file.to_str().unwrap()]);
    let found = ids(&json(&ok(&[
        "similar", "--index", idx_s, "-k", "5", "--json", "d3",
    ])));
    assert_eq!(found.len(), 5);
    assert!(
        found.iter().all(|id| id.starts_with('d') && id != "d3"),
        "{found:?}"
    );
    let out = json(&ok(&[
        "search",
        "--index",
        idx_s,
        "-k",
        "1",
        "--json",
        "Identical title. Exactly the same abstract about protein folding.",
    ]));
    assert!(out["results"][0]["score"].as_f64().unwrap() > 0.999);
}

/// Runs the real binary with extra environment variables; returns its output.
fn paperscope_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .args(args)
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let idx = shared_index().to_str().unwrap();
    for (args, says) in [
        (
            vec!["search", "--index", idx, "--no-such-flag", "q"],
            "--no-such-flag",
        ),
        (
            vec!["search", "--index", idx, "--from", "2025-13", "q"],
            "2025-13",
        ),
        (
            vec!["eval", "recall", "--index", idx, "--queries", "0"],
            "--queries must be at least 1",
        ),
        (
            vec!["serve", "--index", idx, "--cors-origin", "bad\norigin"],
            "--cors-origin",
        ),
    ] {
        let out = paperscope(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A failure while running: 1, and the OS's words once, not once per error layer.
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let out = paperscope(&[
        "index",
        "--out",
        idx.to_str().unwrap(),
        "/nonexistent/papers.jsonl",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent/papers.jsonl"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn a_closed_stdout_ends_quietly_with_success() {
    use std::io::{BufRead, BufReader, Write};
    // More lines than one embedding chunk (256), so output continues after the reader left.
    let input: String = (0..600).map(|i| format!("text number {i}\n")).collect();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .arg("embed")
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    // `| head -1`: read one line, then close the pipe.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("{\"embedding\":["), "{first}");
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn logs_into_a_pipe_have_no_colour_escapes() {
    let idx = shared_index().to_str().unwrap();
    let args = ["topics", "--index", idx, "--k", "2"];
    for env in [
        vec![("PAPERSCOPE_LOG", "info")],
        vec![("PAPERSCOPE_LOG", "info"), ("NO_COLOR", "1")],
    ] {
        let out = paperscope_env(&args, &env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("INFO"), "no log line: {err}");
        assert!(!err.contains('\x1b'), "escape codes in {err:?}");
    }
}

#[test]
fn index_json_summarises_the_build_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let out = json(&ok(&[
        "index",
        "--json",
        "--out",
        idx.to_str().unwrap(),
        common::seed_file().to_str().unwrap(),
    ]));
    assert_eq!(out["papers"], 25, "{out}");
    assert_eq!(out["skipped"], 0, "{out}");
    assert_eq!(out["duplicates"], 0, "{out}");
    assert_eq!(out["out"], idx.to_str().unwrap(), "{out}");
    let (tokens, seconds) = (
        out["tokens"].as_f64().unwrap(),
        out["seconds"].as_f64().unwrap(),
    );
    assert!(tokens > 25.0 * 50.0 && seconds > 0.0, "{out}");
    let embed_seconds = out["embed_seconds"].as_f64().unwrap();
    assert!(embed_seconds > 0.0 && embed_seconds <= seconds, "{out}");
    let rate = out["tokens_per_second"].as_f64().unwrap();
    assert!((rate - tokens / embed_seconds).abs() < 1e-6 * rate, "{out}");
    assert_eq!(
        (out["added"].as_u64(), out["embedded"].as_u64()),
        (Some(25), Some(25)),
        "{out}"
    );
    assert_eq!(manifest(&idx)["tokens"].as_f64().unwrap(), tokens);

    // The manifest records every build option: reading, graph and engine.
    ok(&[
        "--cpu",
        "avx2",
        "index",
        "--limit",
        "7",
        "--strict",
        "--m",
        "12",
        "--backend",
        "portable",
        "--out",
        idx.to_str().unwrap(),
        common::seed_file().to_str().unwrap(),
    ]);
    let m = manifest(&idx);
    assert_eq!(m["count"], 7, "{m}");
    assert_eq!(m["read"]["limit"], 7, "{m}");
    assert_eq!(m["read"]["strict"], true, "{m}");
    assert_eq!(m["hnsw"]["m"], 12, "{m}");
    assert_eq!(m["cpu"], "avx2", "{m}");
    let engine = m["embedder"].as_str().unwrap();
    assert!(
        engine.starts_with("portable f32") && engine.contains("avx2"),
        "{m}"
    );
}

#[test]
fn ids_longer_than_a_format_width_print() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("long-id.jsonl");
    // The longest id the corpus readers accept prints whole; a longer one (70,000 bytes
    // once crashed the text output) is skipped at indexing, with the reason.
    let long_id = "x".repeat(paperscope::corpus::MAX_ID_BYTES);
    let records = [
        serde_json::json!({"id": long_id, "title": "Kagome metals", "abstract": "Flat bands in kagome lattices."}),
        serde_json::json!({"id": "short", "title": "Kagome superconductors", "abstract": "Flat bands and superconductivity."}),
        serde_json::json!({"id": "y".repeat(70_000), "title": "Kagome magnets", "abstract": "Flat bands again."}),
    ];
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let idx = tmp.path().join("idx");
    let built = paperscope(&[
        "index",
        "--out",
        idx.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{err}");
    assert!(
        err.contains("long-id.jsonl:3: id of 70000 bytes, longer than 1024"),
        "{err}"
    );
    let idx = idx.to_str().unwrap();
    let out = ok(&["search", "--index", idx, "--mode", "semantic", "kagome"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains(&long_id) && out.contains("short"),
        "{}",
        &out[..200]
    );
    let out = ok(&["similar", "--index", idx, "short"]);
    assert!(out.contains(&long_id), "{}", &out[..200]);
}

/// Issue 16 #4 and #9: damaged index files are refused with an error naming the file and
/// the fix, before anything parses them — never a crash, never served as results.
#[test]
fn damaged_index_files_are_named_not_crashed_on_or_served() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    index_seed(&good);
    let out = ok(&["check", "--index", good.to_str().unwrap()]);
    assert!(
        out.contains(": ok: 25 papers,") && out.contains("match their checksums"),
        "{out}"
    );
    let copy = |name: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for e in walk(&good) {
            let to = dir.join(e.strip_prefix(&good).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&e, &to).unwrap();
        }
        dir
    };
    let refused = |dir: &Path, file: &str, what: &str| {
        for args in [
            vec!["similar", "--index", dir.to_str().unwrap(), "seed-007"],
            vec!["check", "--index", dir.to_str().unwrap()],
        ] {
            let out = paperscope(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(file) && err.contains(what), "{args:?}: {err}");
            assert!(err.contains("rebuild"), "{err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    };
    // 16 flipped bytes in the graph (hnsw_rs aborted on a 6.7e15-byte allocation).
    let d = copy("flipped-graph");
    let g = d.join("seg-000001/graph.bin");
    let mut bytes = std::fs::read(&g).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 16].iter_mut().for_each(|b| *b ^= 0xff);
    std::fs::write(&g, bytes).unwrap();
    refused(&d, "graph.bin", "checksum");
    // A truncated copy of the vectors.
    let d = copy("truncated-data");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(d.join("seg-000001/vectors.f32"))
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
    refused(&d, "vectors.f32", "the manifest says");
    // Two records swapped: every file still parses.
    let d = copy("swapped-records");
    let p = d.join("seg-000001/papers.jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(3, 4);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    refused(&d, "papers.jsonl", "checksum");
    // A NaN row whose checksum was updated too (a bug, not bit rot): still refused.
    let d = copy("nan-row");
    let v = d.join("seg-000001/vectors.f32");
    let mut bytes = std::fs::read(&v).unwrap();
    let row = 384 * 4 * 3;
    bytes[row..row + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&v, &bytes).unwrap();
    let mpath = d.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["files"]["seg-000001/vectors.f32"]["xxh3"] =
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)).into();
    std::fs::write(&mpath, m.to_string()).unwrap();
    refused(&d, "vectors.f32", "vector 3 has squared norm NaN");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Issue 16 #10: reading an index writes nothing to it (tantivy's reader used to create
/// a lock file, so an index on a read-only disk could not be opened at all).
#[test]
fn searching_an_index_writes_nothing_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    index_seed(&idx);
    // The build's own lock files go, as on a copy of an index made without them.
    for f in walk(&idx) {
        if f.to_string_lossy().ends_with(".lock") {
            std::fs::remove_file(f).unwrap();
        }
    }
    let listing = |dir: &Path| {
        let mut v: Vec<(std::path::PathBuf, u64)> = walk(dir)
            .into_iter()
            .map(|p| {
                let len = std::fs::metadata(&p).unwrap().len();
                (p, len)
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&idx);
    let i = idx.to_str().unwrap();
    for mode in ["keyword", "hybrid", "semantic"] {
        ok(&["search", "--index", i, "--mode", mode, "kagome"]);
    }
    ok(&["similar", "--index", i, "--explain", "seed-007"]);
    ok(&["check", "--index", i]);
    assert_eq!(listing(&idx), before);

    // And an index nobody may write to opens and answers: immutable directories (chattr
    // +i holds even for root, which ignores permission bits).
    let dirs = [
        idx.join("keyword-000001"),
        idx.join("seg-000001"),
        idx.clone(),
    ];
    let immutable = |flag: &str, dir: &Path| {
        std::process::Command::new("chattr")
            .args([flag, dir.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !dirs.iter().all(|d| immutable("+i", d)) {
        dirs.iter().for_each(|d| {
            immutable("-i", d);
        });
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: read-only index check: chattr +i is not available here"
        );
        return;
    }
    let out = paperscope(&["search", "--index", i, "--mode", "hybrid", "kagome"]);
    dirs.iter().for_each(|d| {
        immutable("-i", d);
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 16 #13: `embed` answers the lines before a bad one, then fails naming it; an
/// index whose keyword part has gone says so instead of suggesting semantic mode.
#[test]
fn embed_answers_lines_before_a_bad_one_and_a_missing_keyword_part_is_named() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paperscope"))
        .arg("embed")
        .env("PAPERSCOPE_MODEL", common::model_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"graph networks\nkagome metals\ncaf\xe9\nlast line\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stdin line 3"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");

    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    index_seed(&idx);
    std::fs::remove_dir_all(idx.join("keyword-000001")).unwrap();
    let out = paperscope(&[
        "search",
        "--index",
        idx.to_str().unwrap(),
        "--mode",
        "semantic",
        "x",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("keyword-000001/") && err.contains("missing") && err.contains("rebuild"),
        "{err}"
    );
    assert!(!err.contains("--mode semantic"), "{err}");
    // The rebuild it advises works, reusing nothing of the damaged index.
    let rebuilt = json(&ok(&[
        "index",
        "--json",
        "--out",
        idx.to_str().unwrap(),
        common::seed_file().to_str().unwrap(),
    ]));
    assert_eq!(
        (rebuilt["papers"].as_u64(), rebuilt["embedded"].as_u64()),
        (Some(25), Some(25))
    );
    ok(&["check", "--index", idx.to_str().unwrap()]);
}

/// Indexes the 25 bundled seed papers into `out`.
fn index_seed(out: &Path) {
    ok(&[
        "index",
        "--out",
        out.to_str().unwrap(),
        common::seed_file().to_str().unwrap(),
    ]);
}
