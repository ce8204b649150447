//! Search latency for k = 10 on a real 20,000-paper index: HNSW (the default path) and the
//! exact scan it replaces, with query vectors taken from the index (no model time).
//!
//! Needs an index at $PAPERSCOPE_BENCH_INDEX (default `idx-20k`), made with
//! `paperscope index --out idx-20k --limit 20000 ../shared/data/arxiv_papers/papers.jsonl.gz`.

use criterion::{criterion_group, criterion_main, Criterion};
use paperscope::index::{Index, VectorSearch};
use std::path::PathBuf;

fn search(c: &mut Criterion) {
    let path = std::env::var_os("PAPERSCOPE_BENCH_INDEX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("idx-20k"));
    let index = match Index::open(&path) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("skipping search bench: {e}");
            return;
        }
    };
    let n = index.len() as u32;
    let queries: Vec<Vec<f32>> = (0..200u32)
        .map(|i| index.vector((i * 7919) % n).to_vec())
        .collect();
    let mut group = c.benchmark_group(format!("search_{}_papers", index.len()));
    let (hnsw, flat) = (index.hnsw(), index.flat());
    let mut i = 0;
    group.bench_function("hnsw_k10", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            hnsw.search(&queries[i], 10, None)
        })
    });
    group.sample_size(20);
    group.bench_function("exact_k10", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            flat.search(&queries[i], 10, None)
        })
    });
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
