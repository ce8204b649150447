//! HNSW recall and query rate of a paperscope index on external query vectors, the Rust
//! side of `benches/compare/ann.py` (which runs hnswlib on the same vectors and queries).
//!
//! Reads `--queries FILE` (little-endian f32, `dim` per row, unit length), computes the
//! exact top-10 of each by scanning the index's vectors, then for each `--ef` value runs
//! every query through the index's HNSW graph on all threads (rayon), repeatedly for at
//! least a second, and prints one JSON
//! line `{"ef", "recall@10", "qps", "queries", "threads"}`. The graph build time is the
//! manifest's `graph_seconds`, printed first as `{"graph_seconds", "papers", "m",
//! "ef_construction"}`.
//!
//! ```text
//! cargo run --release --example ann_bench -- --index idx-20k --queries q.f32 --ef 16,32,64,128
//! ```

use anyhow::Context;
use paperscope::index::{Index, VectorSearch};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

const K: usize = 10;

fn main() -> anyhow::Result<()> {
    let (mut index_dir, mut queries_path, mut efs) = (None, None, vec![16, 32, 64, 128, 256]);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--index" => index_dir = Some(PathBuf::from(value()?)),
            "--queries" => queries_path = Some(PathBuf::from(value()?)),
            "--ef" => {
                efs = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let index = Index::open(&index_dir.context("--index DIR is required")?)?;
    let dim = index.manifest().dim;
    let bytes = std::fs::read(queries_path.context("--queries FILE is required")?)?;
    let queries: Vec<Vec<f32>> = bytes
        .chunks_exact(4 * dim)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect();
    let m = index.manifest();
    println!(
        "{}",
        serde_json::json!({"graph_seconds": m.graph_seconds, "papers": m.count,
            "m": m.hnsw.m, "ef_construction": m.hnsw.ef_construction})
    );
    let truth: Vec<HashSet<u32>> = queries
        .iter()
        .map(|q| {
            index
                .flat()
                .search(q, K, None)
                .iter()
                .map(|h| h.0)
                .collect()
        })
        .collect();
    for ef in efs {
        let hnsw = index.hnsw().with_ef(ef);
        // Warm-up pass, then the timed one.
        let _ = queries.par_iter().map(|q| hnsw.search(q, K, None)).count();
        // Timed passes over all queries until a second has gone by (short runs are noisy).
        let (t0, mut passes) = (Instant::now(), 0);
        let mut found = Vec::new();
        while passes == 0 || t0.elapsed().as_secs_f64() < 1.0 {
            found = queries
                .par_iter()
                .map(|q| hnsw.search(q, K, None))
                .collect();
            passes += 1;
        }
        let secs = t0.elapsed().as_secs_f64() / passes as f64;
        let hits: usize = found
            .iter()
            .zip(&truth)
            .map(|(f, t)| f.iter().filter(|h| t.contains(&h.0)).count())
            .sum();
        println!(
            "{}",
            serde_json::json!({"ef": ef, "recall@10": hits as f64 / (K * queries.len()) as f64,
                "qps": queries.len() as f64 / secs, "queries": queries.len(),
                "threads": rayon::current_num_threads()})
        );
    }
    Ok(())
}
