//! Shared test helpers: paths to the real model and data, running the real binary, and a
//! once-per-test-binary index over the seed papers plus a slice of real arXiv records.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Applies `PAPERSCOPE_CPU` (native, avx512, avx2, generic) to this test process as the
/// binary applies it to its own, so that `PAPERSCOPE_CPU=avx2 cargo test` runs the
/// in-process tests on the AVX2 paths too (the binary reads the variable itself).
pub fn apply_cpu_level() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(level) = std::env::var("PAPERSCOPE_CPU") {
            let cap = level
                .parse()
                .expect("PAPERSCOPE_CPU: native, avx512, avx2 or generic");
            paperscope::vector::set_cpu_cap(cap).unwrap();
        }
    });
}

/// The real default model (fetched by scripts/fetch-model.sh; .ci/run does it first).
pub fn model_dir() -> PathBuf {
    apply_cpu_level();
    let dir = repo().join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "model missing at {}: run scripts/fetch-model.sh",
        dir.display()
    );
    dir
}

/// `../shared` beside the repository (CI has it).
pub fn shared() -> PathBuf {
    apply_cpu_level();
    let dir = repo().join("../shared");
    assert!(dir.is_dir(), "../shared not found beside the repository");
    dir
}

pub fn seed_file() -> PathBuf {
    repo().join("data/emergent-papers.jsonl")
}

pub fn arxiv_file() -> PathBuf {
    shared().join("data/arxiv_papers/papers.jsonl.gz")
}

/// The first `n` records of the shared arXiv collection, written as plain JSONL.
pub fn arxiv_slice(dir: &Path, n: usize) -> PathBuf {
    let file = std::fs::File::open(arxiv_file()).unwrap();
    let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let path = dir.join(format!("arxiv-{n}.jsonl"));
    let mut out = std::fs::File::create(&path).unwrap();
    for line in reader.lines().take(n) {
        writeln!(out, "{}", line.unwrap()).unwrap();
    }
    path
}

/// Runs the real `paperscope` binary with the default model.
pub fn paperscope(args: &[&str]) -> Output {
    paperscope_in(args, None)
}

pub fn paperscope_in(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paperscope"));
    cmd.args(args)
        .env("PAPERSCOPE_MODEL", model_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn paperscope");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// Runs `paperscope` and insists it succeeds; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = paperscope(args);
    assert!(
        out.status.success(),
        "paperscope {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Number of arXiv records in the shared test index.
pub const SLICE: usize = 400;

/// An index over the 25 seed papers plus the first [`SLICE`] arXiv records, built once per
/// test binary with the real CLI.
pub fn shared_index() -> &'static Path {
    static INDEX: OnceLock<PathBuf> = OnceLock::new();
    INDEX.get_or_init(|| {
        // Under cargo's per-target scratch dir, one per test binary, rebuilt every run.
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("shared-index-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let slice = arxiv_slice(&dir, SLICE);
        let idx = dir.join("idx");
        ok(&[
            "index",
            "--out",
            idx.to_str().unwrap(),
            seed_file().to_str().unwrap(),
            slice.to_str().unwrap(),
        ]);
        idx
    })
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
