//! Timing of the topic pipeline's heavy steps at full-collection size, without a
//! full-collection index (embedding 118k abstracts takes hours on this CPU).
//!
//! Vectors: the real vectors of an existing index, repeated with small Gaussian noise
//! (then re-normalised) up to N rows. Texts: the first N real titles + abstracts of the
//! arXiv file. Steps timed: auto-k choice on the silhouette sample, k-means on all N rows
//! (the `LARGE` schedule), c-TF-IDF over N abstracts. Vectors and texts are unrelated
//! here, so only the timings (and memory: run under `/usr/bin/time -v`) mean anything.
//!
//! ```text
//! cargo run --release --example topics_scale -- IDX_DIR ../shared/data/arxiv_papers/papers.jsonl.gz 118024 40
//! ```

use ndarray::Array2;
use paperscope::topics::{cluster, terms};
use rand::{Rng, SeedableRng};
use std::io::BufRead;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (idx, arxiv) = (&args[1], &args[2]);
    let n: usize = args.get(3).map_or(Ok(118_024), |s| s.parse())?;
    let k: usize = args.get(4).map_or(Ok(40), |s| s.parse())?;

    let index = paperscope::index::Index::open(std::path::Path::new(idx))?;
    let dim = index.manifest().dim;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut data = Array2::<f32>::zeros((n, dim));
    for (i, mut row) in data.rows_mut().into_iter().enumerate() {
        let src = index.vector((i % index.len()) as u32);
        let mut norm = 0f32;
        for (x, &s) in row.iter_mut().zip(src) {
            // Box-Muller-free noise: a sum of uniforms is close enough to Gaussian here.
            let e: f32 = (0..4).map(|_| rng.gen_range(-1.0f32..1.0)).sum::<f32>() * 0.02;
            *x = s + e;
            norm += *x * *x;
        }
        row /= norm.sqrt();
    }
    eprintln!("{n} × {dim} vectors from {} real ones", index.len());

    let t = Instant::now();
    let auto = cluster::auto(data.view(), 7, 50)?;
    eprintln!(
        "auto k (silhouette on a {}-row sample, then k-means on all rows): k = {}, {:.1} s; silhouettes {:?}",
        cluster::SILHOUETTE_SAMPLE,
        auto.k(),
        t.elapsed().as_secs_f64(),
        auto.silhouettes
    );
    let t = Instant::now();
    let c = cluster::kmeans(data.view(), k, 7)?;
    eprintln!(
        "k-means k = {k} on {n} rows: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let file = std::fs::File::open(arxiv)?;
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let mut texts = Vec::with_capacity(n);
    for line in reader.lines().take(n) {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        texts.push(format!(
            "{}. {}",
            v["title"].as_str().unwrap_or(""),
            v["abstract"].as_str().unwrap_or("")
        ));
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let assign: Vec<usize> = (0..refs.len()).map(|i| c.assignment[i]).collect();
    let t = Instant::now();
    let found = terms::ctfidf(&refs, &assign, k, &terms::Excluded::default());
    eprintln!(
        "c-TF-IDF over {} abstracts, {k} topics: {:.1} s",
        refs.len(),
        t.elapsed().as_secs_f64()
    );
    eprintln!("topic 0 terms: {:?}", &found[0][..found[0].len().min(5)]);
    Ok(())
}
