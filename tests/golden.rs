//! The embedder reproduces sentence-transformers: token ids exactly, vectors at cosine
//! ≥ 0.9999 and max |Δ| ≤ 1e-4, on every text of ../shared/golden (empty strings, CJK,
//! emoji, texts over 256 tokens, ...), whether embedded alone or in a padded batch.

mod common;

use paperscope::embed::Embedder;
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
fn embeddings_match_sentence_transformers() {
    let embedder = Embedder::load(&common::model_dir()).unwrap();
    let rows = golden();
    assert_eq!(rows.len(), 34);
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let batched = embedder.embed(&texts).unwrap();
    let mut worst = 1.0f32;
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
            assert!(max_diff <= 1e-4, "{} ({how}): max |Δ| {max_diff}", row.id);
            assert!((norm - 1.0).abs() < 1e-5, "{} ({how}): norm {norm}", row.id);
            worst = worst.min(cos);
        }
    }
    eprintln!("golden: min cosine {worst:.7} over {} texts", rows.len());
}
