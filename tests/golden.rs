//! The embedder reproduces sentence-transformers: token ids exactly, vectors at cosine
//! ≥ 0.9999 on every text of ../shared/golden (empty strings, CJK, emoji, texts over 256
//! tokens, ...), whether embedded alone or in a batch, with every backend and precision.
//! F32 paths also stay within max |Δ| ≤ 1e-4 per component; BF16 (8-bit mantissas in the
//! matmul inputs) within 2e-3.

mod common;

use paperscope::embed::{BackendKind, EmbedOptions, Embedder, Precision};
use serde::Deserialize;

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
    check(BackendKind::OneDnn, Some(Precision::Bf16));
}

#[test]
fn onednn_f32_matches_sentence_transformers() {
    check(BackendKind::OneDnn, Some(Precision::F32));
}

#[test]
fn portable_backend_matches_sentence_transformers() {
    check(BackendKind::Portable, Some(Precision::F32));
}

#[test]
fn candle_backend_matches_sentence_transformers() {
    check(BackendKind::Candle, None);
}

fn check(backend: BackendKind, precision: Option<Precision>) {
    let opts = EmbedOptions { backend, precision };
    let embedder = Embedder::load_with(&common::model_dir(), opts).unwrap();
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
        embedder.backend(),
        rows.len()
    );
}
