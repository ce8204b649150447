//! Each input format, plain and gzipped, with the bad-input rules of `corpus`.

mod common;

use paperscope::corpus::{read_files, Format, ReadOptions};
use std::io::Write;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn reads_the_bundled_seed_papers() {
    let corpus = read_files(&[common::seed_file()], &ReadOptions::default()).unwrap();
    assert_eq!(corpus.papers.len(), 25);
    assert!(
        corpus.report.problems.is_empty(),
        "{:?}",
        corpus.report.problems
    );
    let p = &corpus.papers[6];
    assert_eq!(p.id.0, "seed-007");
    assert!(p.title.starts_with("Emergent Misalignment"));
    assert!(p.date.as_deref().is_some_and(|d| d.len() == 10));
    // Unknown fields are kept.
    assert!(p.extra.contains_key("upvotes"));
}

#[test]
fn reads_real_arxiv_records_gzipped() {
    let corpus = read_files(
        &[common::arxiv_file()],
        &ReadOptions {
            limit: Some(500),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(corpus.papers.len(), 500);
    assert_eq!(corpus.report.formats[0].1, Format::Paperscope);
    let p = &corpus.papers[0];
    assert_eq!(p.date.as_deref(), Some("2025-03-18")); // listing_date
    assert!(!p.authors.is_empty() && !p.categories.is_empty());
    assert!(p.extra.contains_key("primary_category"));
}

#[test]
fn paperscope_format_bad_lines_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mixed.jsonl",
        concat!(
            r#"{"id": "a", "title": "  Graph   neural\nnetworks ", "abstract": "On molecules.", "authors": ["X  Y"], "published": "2025-01-02", "categories": ["cs.LG"], "venue": "NeurIPS"}"#,
            "\n",
            "\n",
            "{not json\n",
            r#"["an", "array"]"#,
            "\n",
            r#"{"id": "b", "title": "", "abstract": ""}"#,
            "\n",
            r#"{"id": "c", "title": "Title only"}"#,
            "\n",
            r#"{"id": "a", "title": "Duplicate", "abstract": "x"}"#,
            "\n",
            r#"{"id": "d", "title": "Bad date", "abstract": "y", "published": "2025-02-30"}"#,
            "\n",
            r#"{"title": "No id", "abstract": "z"}"#,
            "\n",
            r#"{"id": "e", "title": 5, "abstract": "z"}"#,
            "\n",
        ),
    );
    let corpus = read_files(&[&path], &ReadOptions::default()).unwrap();
    let ids: Vec<&str> = corpus.papers.iter().map(|p| p.id.0.as_str()).collect();
    // The later record of "a" replaces the first, in the first one's place.
    assert_eq!(ids, ["a", "c", "d"]);
    let a = &corpus.papers[0];
    assert_eq!((a.title.as_str(), a.abstract_.as_str()), ("Duplicate", "x"));
    assert_eq!(corpus.papers[1].text(), "Title only");
    assert_eq!(corpus.papers[2].date, None);

    let r = &corpus.report;
    assert_eq!(r.lines, 9);
    assert_eq!(r.skipped, 5);
    assert_eq!(r.duplicates, 1);
    let msgs: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
    let at = |line: usize| {
        let prefix = format!("{}:{line}: ", path.display());
        msgs.iter()
            .find(|m| m.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no problem reported for line {line}: {msgs:?}"))
            .clone()
    };
    assert!(at(3).contains("invalid JSON"));
    assert!(at(4).contains("expected a JSON object"));
    assert!(at(5).contains("no title and no abstract"));
    assert!(at(7).contains("duplicate id a: this record replaces the earlier one"));
    assert!(at(8).contains("invalid date"));
    assert!(at(9).contains("missing field 'id'"));
    assert!(at(10).contains("'title' must be a string"));
}

/// Normalisation and extra fields survive; a deletion record removes what came before
/// it, and a record after the deletion brings the paper back.
#[test]
fn later_records_win_and_deletion_records_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "feed.jsonl",
        concat!(
            r#"{"id": "a", "title": "  Graph   neural\nnetworks ", "abstract": "On molecules.", "authors": ["X  Y"], "venue": "NeurIPS"}"#,
            "\n",
            r#"{"id": "b", "title": "B", "abstract": "b"}"#,
            "\n",
            r#"{"id": "c", "title": "C", "abstract": "c"}"#,
            "\n",
            r#"{"id": "b", "deleted": true}"#,
            "\n",
            r#"{"id": "c", "deleted": true}"#,
            "\n",
            r#"{"id": "c", "title": "C again", "abstract": "c2"}"#,
            "\n",
            r#"{"id": "z", "deleted": true}"#,
            "\n",
            r#"{"deleted": true}"#,
            "\n",
        ),
    );
    let corpus = read_files(&[&path], &ReadOptions::default()).unwrap();
    let ids: Vec<&str> = corpus.papers.iter().map(|p| p.id.0.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    let a = &corpus.papers[0];
    assert_eq!(a.title, "Graph neural networks");
    assert_eq!(a.authors, ["X Y"]);
    assert_eq!(a.extra["venue"], "NeurIPS");
    assert_eq!(corpus.papers[1].title, "C again");
    let deleted: Vec<&str> = corpus.deleted.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(deleted, ["b", "z"]);
    assert_eq!((corpus.report.deletions, corpus.report.skipped), (3, 1));
    assert!(corpus.report.problems[0]
        .to_string()
        .contains("feed.jsonl:8: a deletion record needs an \"id\""));
}

#[test]
fn strict_mode_rejects_the_first_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.jsonl",
        "{\"id\":\"a\",\"title\":\"T\",\"abstract\":\"A\"}\n{oops\n",
    );
    let err = read_files(
        &[&path],
        &ReadOptions {
            strict: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{}:2: invalid JSON", path.display())),
        "{msg}"
    );
}

#[test]
fn reads_arxiv_snapshot_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "snapshot.json",
        concat!(
            r#"{"id": "0704.0001", "submitter": "Pavel Nadolsky", "authors": "C. Bal\\'azs, E. L. Berger, P. M. Nadolsky and C.-P. Yuan", "title": "Calculation of prompt diphoton production cross sections at Tevatron and\n  LHC energies", "comments": "37 pages", "categories": "hep-ph hep-ex", "abstract": "  A fully differential calculation in perturbative quantum chromodynamics is\npresented.\n", "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}], "update_date": "2008-11-13"}"#,
            "\n",
            r#"{"id": "0704.0002", "authors": "A. Author", "title": "Second", "abstract": "Body", "categories": "math.CO", "versions": [], "update_date": "2008-12-13"}"#,
            "\n",
        ),
    );
    let corpus = read_files(&[&path], &ReadOptions::default()).unwrap();
    assert_eq!(corpus.report.formats[0].1, Format::ArxivSnapshot);
    let p = &corpus.papers[0];
    assert_eq!(p.authors.len(), 4);
    assert_eq!(p.authors[3], "C.-P. Yuan");
    assert_eq!(p.categories, ["hep-ph", "hep-ex"]);
    assert_eq!(p.date.as_deref(), Some("2007-04-02"));
    assert_eq!(
        p.title,
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    );
    assert_eq!(
        p.abstract_,
        "A fully differential calculation in perturbative quantum chromodynamics is presented."
    );
    assert_eq!(corpus.papers[1].date.as_deref(), Some("2008-12-13"));
}

#[test]
fn reads_beir_corpus_gzipped_and_plain() {
    let corpus = read_files(
        &[common::shared().join("data/scifact_beir/corpus.jsonl")],
        &ReadOptions {
            limit: Some(100),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(corpus.report.formats[0].1, Format::Beir);
    assert_eq!(corpus.papers.len(), 100);
    assert_eq!(corpus.papers[0].id.0, "4983");
    assert!(corpus.papers[0]
        .abstract_
        .starts_with("Alterations of the architecture"));

    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("corpus.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(b"{\"_id\": 17, \"title\": \"T\", \"text\": \"Body text.\", \"metadata\": {}}\n")
        .unwrap();
    enc.finish().unwrap();
    let corpus = read_files(&[&gz], &ReadOptions::default()).unwrap();
    assert_eq!(corpus.papers[0].id.0, "17");
    assert_eq!(corpus.papers[0].text(), "T. Body text.");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = read_files(&["/nonexistent/papers.jsonl"], &ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/papers.jsonl"));
}

/// Issue 16 #8 and #13: oversized ids and fields, invalid UTF-8 and a damaged .gz are
/// reported per record, and the good records are kept (strict mode stops instead).
#[test]
fn oversized_records_bad_bytes_and_a_truncated_gz_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let long_abstract = "word ".repeat(40_000); // 200,000 bytes
    let mut text = String::new();
    text += r#"{"id":"ok-1","title":"Graph networks","abstract":"For molecules."}"#;
    text += "\n";
    text += &serde_json::json!({"id": "x".repeat(2_000), "title": "Long id"}).to_string();
    text += "\n";
    text +=
        &serde_json::json!({"id": "big", "title": "Big", "abstract": long_abstract}).to_string();
    text += "\n";
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"{\"id\":\"bad-utf8\",\"title\":\"caf\xe9\"}\n");
    let plain = dir.path().join("mixed.jsonl");
    std::fs::write(&plain, &bytes).unwrap();

    let corpus = read_files(&[&plain], &ReadOptions::default()).unwrap();
    let ids: Vec<&str> = corpus.papers.iter().map(|p| p.id.0.as_str()).collect();
    assert_eq!(ids, ["ok-1", "big", "bad-utf8"]);
    let reasons: Vec<String> = corpus
        .report
        .problems
        .iter()
        .map(|p| format!("{}:{} {}", p.path.display(), p.line, p.reason))
        .collect();
    let has = |line: usize, what: &str| {
        reasons
            .iter()
            .any(|r| r.contains(&format!("mixed.jsonl:{line} ")) && r.contains(what))
    };
    assert!(has(2, "id of 2000 bytes, longer than 1024"), "{reasons:?}");
    assert!(has(3, "bytes cut to 65536"), "{reasons:?}");
    assert!(has(4, "invalid UTF-8"), "{reasons:?}");
    let big = &corpus.papers[1];
    assert!(big.abstract_.len() <= paperscope::corpus::MAX_FIELD_BYTES);
    assert!(big.title == "Big" && big.abstract_.starts_with("word word"));
    // --strict stops at the first of them.
    let strict = ReadOptions {
        strict: true,
        ..Default::default()
    };
    let err = read_files(&[&plain], &strict).unwrap_err().to_string();
    assert!(
        err.contains(":2:") && err.contains("longer than 1024"),
        "{err}"
    );

    // A .gz cut short: the records before the damage are kept, the loss is reported.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..2_000 {
        writeln!(
            gz,
            r#"{{"id":"p{i}","title":"Paper number {i} on graphs"}}"#
        )
        .unwrap();
    }
    let whole = gz.finish().unwrap();
    let cut = dir.path().join("cut.jsonl.gz");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let corpus = read_files(&[&cut], &ReadOptions::default()).unwrap();
    assert!(
        corpus.papers.len() > 100 && corpus.papers.len() < 2_000,
        "{}",
        corpus.papers.len()
    );
    let last = corpus.report.problems.last().unwrap();
    assert!(
        last.reason.contains("the rest of this file is skipped"),
        "{last:?}"
    );
    assert!(read_files(&[&cut], &strict).is_err());
}
