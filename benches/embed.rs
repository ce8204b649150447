//! Embedding throughput on 256 real arXiv abstracts (title + abstract, 256-token
//! truncation), reported as texts/s and tokens/s.
//!
//! `cargo bench --bench embed` (needs the model: scripts/fetch-model.sh, and ../shared).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use paperscope::corpus::{read_files, ReadOptions};
use paperscope::embed::{default_model_dir, EmbedOptions, Embedder, Encoder};
use std::path::PathBuf;

const N: usize = 256;

fn abstracts() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/arxiv_clustering/clustering.jsonl");
    let corpus = read_files(
        &[path],
        &ReadOptions {
            limit: Some(N),
            ..Default::default()
        },
    )
    .expect("../shared/data/arxiv_clustering/clustering.jsonl");
    corpus.papers.iter().map(|p| p.text()).collect()
}

fn embed(c: &mut Criterion) {
    let embedder = Embedder::load(&default_model_dir(), &EmbedOptions::default())
        .expect("model: run scripts/fetch-model.sh");
    let texts = abstracts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| embedder.tokenize(t).unwrap().len())
        .sum();
    let mut group = c.benchmark_group("embed");
    group.sample_size(10);
    group.throughput(Throughput::Elements(tokens as u64));
    group.bench_function(format!("{N}_abstracts_tokens"), |b| {
        b.iter(|| embedder.embed(&refs).unwrap())
    });
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(format!("{N}_abstracts_texts"), |b| {
        b.iter(|| embedder.embed(&refs).unwrap())
    });
    group.finish();
}

criterion_group!(benches, embed);
criterion_main!(benches);
