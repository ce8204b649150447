//! The embedder reproduces sentence-transformers: token ids exactly, vectors at cosine
//! ≥ 0.9999 on every text of ../shared/golden (empty strings, CJK, emoji, texts over 256
//! tokens, ...), whether embedded alone or in a batch, with every backend and precision.
//! F32 paths also stay within max |Δ| ≤ 1e-4 per component; BF16 (8-bit mantissas in the
//! matmul inputs) within 2e-3.
//!
//! Each engine and precision runs where the CPU supports it and is skipped elsewhere with
//! the reason printed (never a silent pass). The AVX2 and portable paths of other CPUs are
//! forced here too, through the real binary's `--cpu` level (a process-wide setting).

mod common;

use paperscope::embed::{Backend, EmbedOptions, Embedder, Encoder, Precision};
use serde::Deserialize;
use std::io::Write;

#[derive(Deserialize)]
struct Golden {
    id: String,
    text: String,
    embedding: Vec<f32>,
    token_ids: Vec<u32>,
}

fn golden() -> Vec<Golden> {
    let text =
        std::fs::read_to_string(common::shared().join("golden/minilm_golden.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn onednn_bf16_matches_sentence_transformers() {
    check(Backend::OneDnn, Some(Precision::Bf16));
}

#[test]
fn onednn_f32_matches_sentence_transformers() {
    check(Backend::OneDnn, Some(Precision::F32));
}

#[test]
fn portable_backend_matches_sentence_transformers() {
    check(Backend::Portable, Some(Precision::F32));
}

#[test]
fn candle_backend_matches_sentence_transformers() {
    check(Backend::Candle, None);
}

/// Says on the terminal (past the test harness's capture, so CI logs show it) that a
/// check did not run here, and why.
fn skip(what: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {what}: {why}");
}

fn check(backend: Backend, precision: Option<Precision>) {
    let opts = EmbedOptions {
        backend,
        precision,
        pack_tokens: None,
    };
    if let Err(why) = opts.describe() {
        skip(
            &format!("golden check of {backend:?} {precision:?}"),
            &why.to_string(),
        );
        return;
    }
    let embedder = Embedder::load(&common::model_dir(), &opts).unwrap();
    let max_delta = match embedder.precision() {
        Precision::F32 => 1e-4,
        Precision::Bf16 => 2e-3,
    };
    let rows = golden();
    assert_eq!(rows.len(), 34);
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let batched = embedder.embed(&texts).unwrap();
    let (mut worst, mut worst_delta) = (1.0f32, 0.0f32);
    for (row, batch_vec) in rows.iter().zip(&batched) {
        assert_eq!(
            embedder.tokenize(&row.text).unwrap(),
            row.token_ids,
            "token ids of {}",
            row.id
        );
        let single = embedder.embed_one(&row.text).unwrap();
        for (how, v) in [("alone", &single), ("batched", batch_vec)] {
            let cos = common::cosine(v, &row.embedding);
            let max_diff = v
                .iter()
                .zip(&row.embedding)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(cos >= 0.9999, "{} ({how}): cosine {cos}", row.id);
            assert!(
                max_diff <= max_delta,
                "{} ({how}): max |Δ| {max_diff}",
                row.id
            );
            assert!((norm - 1.0).abs() < 1e-5, "{} ({how}): norm {norm}", row.id);
            worst = worst.min(cos);
            worst_delta = worst_delta.max(max_diff);
        }
    }
    eprintln!(
        "golden ({}): min cosine {worst:.7}, max |Δ| {worst_delta:.2e} over {} texts",
        embedder.describe(),
        rows.len()
    );
}

/// The golden texts through the real binary at a lowered CPU level: the AVX2 kernels (what
/// an AMD EPYC without AVX-512 runs) and the portable ones, with oneDNN capped the same
/// way, on whatever machine runs the suite.
#[test]
fn forced_lower_cpu_levels_match_sentence_transformers() {
    let rows = golden();
    let input: String = rows
        .iter()
        .map(|r| serde_json::json!({ "text": r.text }).to_string() + "\n")
        .collect();
    for cpu in ["avx2", "generic"] {
        for (backend, precision) in [("onednn", "f32"), ("portable", "f32"), ("onednn", "bf16")] {
            let args = [
                "--cpu",
                cpu,
                "embed",
                "--backend",
                backend,
                "--precision",
                precision,
            ];
            let out = common::paperscope_in(&args, Some(&input));
            let stderr = String::from_utf8_lossy(&out.stderr);
            if backend == "onednn" && stderr.contains("install libdnnl2") {
                skip(&format!("{args:?}"), "oneDNN is not installed");
                continue;
            }
            if precision == "bf16" {
                // No CPU runs BF16 matmuls at these levels: refused with the reason, not
                // with oneDNN's bare status code.
                assert!(
                    !out.status.success(),
                    "{args:?} ran BF16 at CPU level {cpu}"
                );
                assert!(
                    stderr.contains("no BF16 matrix-multiply kernel")
                        && !stderr.contains("status 3"),
                    "{args:?}: {stderr}"
                );
                continue;
            }
            assert!(out.status.success(), "{args:?}: {stderr}");
            let stdout = String::from_utf8(out.stdout).unwrap();
            let lines: Vec<&str> = stdout.lines().collect();
            assert_eq!(lines.len(), rows.len(), "{args:?}");
            let mut worst = 1.0f32;
            for (row, line) in rows.iter().zip(lines) {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let v: Vec<f32> = serde_json::from_value(v["embedding"].clone()).unwrap();
                let cos = common::cosine(&v, &row.embedding);
                assert!(cos >= 0.9999, "{args:?} {}: cosine {cos}", row.id);
                worst = worst.min(cos);
            }
            eprintln!("golden at --cpu {cpu}, {backend} {precision}: min cosine {worst:.7}");
        }
    }
}
