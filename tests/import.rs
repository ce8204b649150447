//! Importing reference libraries (BibTeX, CSL-JSON, RIS) with the real binary and the real
//! model: `index` and `add` read them like JSON Lines, the titles come out as plain text,
//! ids follow the one rule (arXiv id, else DOI, else the library's key), and a broken
//! entry is reported at its line while the rest is imported.
//!
//! The fixtures under `tests/fixtures/import/` are real exports (see its README.md) plus
//! one file per format with the hard cases.

mod common;

use common::{json, ok, paperscope, shared};
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/import").join(name)
}

const ALL: [&str; 6] = [
    "zotero-better-bibtex.bib",
    "nasty.bib",
    "zotero-csl.json",
    "nasty-csl.json",
    "records.ris",
    "nasty.ris",
];

/// `(id, title)` of every paper, via a search that returns them all.
fn all_papers(idx: &Path) -> Vec<(String, String)> {
    let out = json(&ok(&[
        "search",
        "--index",
        s(idx),
        "--mode",
        "semantic",
        "-k",
        "100",
        "--json",
        "paper",
    ]));
    out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The id of the best semantic hit for `query`.
fn top(idx: &Path, query: &str) -> String {
    let out = json(&ok(&[
        "search",
        "--index",
        s(idx),
        "--mode",
        "semantic",
        "-k",
        "1",
        "--json",
        query,
    ]));
    out["results"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn a_library_in_three_formats_is_indexed_searched_and_its_broken_entries_reported() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("idx");
    let files: Vec<PathBuf> = ALL.iter().map(|f| fixture(f)).collect();
    let mut args = vec!["index", "--json", "--out", s(&idx)];
    args.extend(files.iter().map(|f| s(f)));
    let out = paperscope(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = json(&String::from_utf8(out.stdout).unwrap());

    // Each broken entry is named with its file and the line where it starts; the rest is in.
    for expected in [
        "nasty.bib:30: malformed BibTeX entry broken2021",
        "nasty-csl.json:17: CSL-JSON item 2: invalid JSON at line 20",
        "nasty.ris:16: text outside a RIS record",
        "nasty.ris:18: RIS record without its 'ER  - ' line",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    for (file, format) in [
        ("nasty.bib", "bibtex"),
        ("zotero-csl.json", "csl-json"),
        ("records.ris", "ris"),
    ] {
        assert!(
            stderr.contains(&format!("{file}: {format} format")),
            "{stderr}"
        );
    }
    assert_eq!(summary["skipped"], 4, "{summary}");
    assert_eq!(summary["papers"], 19, "{summary}");

    let papers = all_papers(&idx);
    assert_eq!(papers.len(), 19);
    // Titles are text: no LaTeX, braces or CSL markup left.
    for (id, title) in &papers {
        assert!(
            !title.contains(['{', '}', '\\', '$', '<', '~']),
            "{id}: {title:?}"
        );
    }
    let title_of = |id: &str| {
        papers
            .iter()
            .find(|(i, _)| i == id)
            .unwrap_or_else(|| panic!("{id} not indexed: {papers:?}"))
            .1
            .clone()
    };
    // Accents, ß, `--`, `~`, math, case-protecting braces and @string venues resolved.
    assert_eq!(
        title_of("gross2024strasse"),
        "Über Straßen und Brücken: α-entmax Attention für Verkehrsprognosen – a Case Study"
    );
    assert_eq!(
        title_of("2511.02091"),
        "Natural Building Blocks for Structured World Models: Theory, Evidence, and Scaling"
    );
    assert_eq!(
        title_of("2003.06060"),
        "Your GAN is Secretly an Energy-based Model and You Should use Discriminator Driven Latent Sampling"
    );
    assert!(title_of("10.1007/s13127-011-0069-8")
        .contains("Mitochondrial DNA2 sequences suggest unexpected phylogenetic position of Corso-Sardinian grass snakes (Natrix cetti) and do not support their species status"));
    assert_eq!(title_of("2101.00001"), "A sparse attention");

    // Ids: arXiv (eprint, arXiv DOI, arxiv.org URL, Zotero's `number`), else DOI
    // (lower-cased), else the citation key / CSL id / RIS ID; never the broken entries.
    let ids: Vec<&str> = papers.iter().map(|(i, _)| i.as_str()).collect();
    for id in [
        "2206.07697",
        "0905.1060",
        "1509.01626",
        "2306.13455",
        "1803.00653",
        "10.1038/nature14539",
        "10.5194/cp-8-1-2012",
        "BaltesStaudinger2000Am.Psychol.",
        "rossBayesianApproachLearning",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert!(!ids.iter().any(|i| i.contains("broken")), "{ids:?}");

    // Search by meaning finds papers of each format.
    assert_eq!(
        top(&idx, "editing a 3D scene by describing the change in words"),
        "2306.13455"
    );
    assert_eq!(
        top(
            &idx,
            "composing hidden Markov models and switching linear dynamical systems into world models"
        ),
        "2511.02091"
    );
    assert_eq!(
        top(&idx, "a memory of places that lets a robot find its way"),
        "1803.00653"
    );

    // Authors read as "Given Family", accents resolved, organisations whole; abstracts clean.
    let csv = ok(&[
        "search",
        "--index",
        s(&idx),
        "-k",
        "100",
        "--format",
        "csv",
        "paper",
    ]);
    for expected in [
        "Dávid Péter Kovács",
        "Bernhard Schölkopf",
        "Jörg Groß; OpenAI Research",
        "J. D. van der Waals; The LIGO Scientific Collaboration",
        "N. Götzen",
        "introduce Pinductor (POMDP-inductor)",
        "2010-03-01",
        "2023-06-29",
    ] {
        assert!(csv.contains(expected), "missing {expected:?} in:\n{csv}");
    }
}

#[test]
fn strict_mode_stops_at_the_first_broken_entry() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("idx");
    let bib = fixture("nasty.bib");
    let out = paperscope(&["index", "--strict", "--out", s(&idx), s(&bib)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nasty.bib:30: malformed BibTeX entry broken2021"),
        "{stderr}"
    );
    assert!(!idx.join("manifest.json").exists());
}

#[test]
fn add_imports_a_bib_into_an_index_and_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("idx");
    let seed = shared().join("data/seed/emergent-papers.jsonl");
    ok(&["index", "--out", s(&idx), s(&seed)]);
    let bib = fixture("zotero-better-bibtex.bib");

    let first = json(&ok(&["add", "--json", "--index", s(&idx), s(&bib)]));
    assert_eq!(
        (&first["added"], &first["committed"], &first["papers"]),
        (&6.into(), &true.into(), &31.into()),
        "{first}"
    );
    assert_eq!(
        top(
            &idx,
            "classifying text from its characters with convolutional networks"
        ),
        "1509.01626"
    );
    // The seed papers are still found.
    assert_eq!(
        top(&idx, "emergent misalignment after narrow finetuning"),
        "seed-007"
    );

    let again = json(&ok(&["add", "--json", "--index", s(&idx), s(&bib)]));
    assert_eq!(
        (&again["added"], &again["unchanged"], &again["committed"]),
        (&0.into(), &6.into(), &false.into()),
        "{again}"
    );
    let check = ok(&["check", "--index", s(&idx)]);
    assert!(check.contains("ok:"), "{check}");
}

/// Arbitrary text built from the pieces these formats are made of, and cuts of the real
/// fixtures: every reader gives a result or a clear error, never a panic, and whatever it
/// keeps satisfies the `Paper` invariants.
#[test]
fn arbitrary_library_files_never_panic_the_readers() {
    use paperscope::corpus::{read_files, ReadOptions};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let pieces = prop::sample::select(vec![
        "@",
        "@article{",
        "@string{x = \"y\"}",
        "@comment{",
        "@preamble{\"",
        "title = ",
        "author = {",
        " and ",
        "{",
        "}",
        "\"",
        ",",
        "=",
        "\\",
        "\\'",
        "\\\"{o}",
        "\\ss",
        "\\textbf{",
        "$",
        "$\\alpha",
        "^{",
        "_",
        "~",
        "--",
        "month = jan",
        "year = 2021",
        "eprint = {2101.00001v2}",
        "archiveprefix = {arXiv}",
        "doi = {10.48550/arXiv.x}",
        "\n",
        " ",
        "TY  - JOUR",
        "TI  - ",
        "AU  - A, B",
        "PY  - 2023/13/45",
        "ER  - ",
        "DO  - ",
        "UR  - https://arxiv.org/abs/",
        "[",
        "]",
        "{\"id\": ",
        "\"title\": ",
        "\"issued\": {\"date-parts\": [[",
        "\"author\": [{\"literal\": ",
        "null",
        "1e999",
        "\u{feff}",
        "é",
        "\u{0}",
        "\r\n",
    ]);
    let fixtures: Vec<Vec<u8>> = ALL
        .iter()
        .map(|f| std::fs::read(fixture(f)).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(
                prop::collection::vec(pieces, 0..40),
                0..fixtures.len(),
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
            ),
            |(pieces, which, cut_at, insert_at)| {
                // A real export cut short, with random pieces spliced in.
                let real = &fixtures[which];
                let mut bytes = real[..cut_at.index(real.len() + 1)].to_vec();
                let at = insert_at.index(bytes.len() + 1);
                bytes.splice(at..at, pieces.concat().into_bytes());
                for name in ["in.bib", "in.ris", "in.json", "in.txt"] {
                    let path = dir.path().join(name);
                    std::fs::write(&path, &bytes).unwrap();
                    for strict in [false, true] {
                        let opts = ReadOptions {
                            strict,
                            ..Default::default()
                        };
                        if let Ok(c) = read_files(&[&path], &opts) {
                            for p in &c.papers {
                                prop_assert!(!p.id.0.is_empty());
                                prop_assert!(!(p.title.is_empty() && p.abstract_.is_empty()));
                                if let Some(d) = &p.date {
                                    prop_assert_eq!(d.len(), 10);
                                }
                            }
                        }
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}
