//! Measures the topic map of an index: time of `topics::layout::map`, and trustworthiness,
//! topic agreement and own-centre rate of the t-SNE map against the earlier PCA-of-centroids
//! map (see `src/topics/layout.rs`).
//!
//! ```text
//! cargo run --release --example topic_map -- INDEX_DIR [K|auto] [SEED]
//! ```

use paperscope::cancel::Cancel;
use paperscope::embed::{EmbedOptions, Embedder};
use paperscope::search::{Engine, Limits};
use paperscope::topics::{self, layout, KChoice, TopicParams};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let index = args
        .next()
        .expect("usage: topic_map INDEX_DIR [K|auto] [SEED]");
    let k: KChoice = args.next().as_deref().unwrap_or("auto").parse()?;
    let seed: u64 = args.next().map_or(Ok(7), |s| s.parse())?;
    let engine = Engine::open(std::path::Path::new(&index), Limits::default())?;
    let model_dir = std::env::var("PAPERSCOPE_MODEL").unwrap_or("models/all-MiniLM-L6-v2".into());
    let model = Embedder::load(std::path::Path::new(&model_dir), &EmbedOptions::default())?;
    let params = TopicParams {
        k,
        seed,
        limits: topics::Limits::batch(),
        ..TopicParams::default()
    };
    let t = Instant::now();
    let report = topics::run(&engine, &params, &model, &Cancel::never())?;
    println!(
        "topics: k = {} in {:.2} s",
        report.topics.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let map = layout::map(&report, engine.index())?;
    println!(
        "map: {} points in {:.3} s",
        map.points.len(),
        t.elapsed().as_secs_f64()
    );
    let docs: Vec<_> = map.points.iter().map(|p| p.doc).collect();
    let topic: Vec<usize> = map.points.iter().map(|p| p.topic).collect();
    let data = topics::matrix(engine.index(), &docs);
    let xy: Vec<(f32, f32)> = map.points.iter().map(|p| (p.x, p.y)).collect();
    let kt = report.topics.len();
    let q = layout::quality(data.view(), &xy, &topic, &map.centres, 10);
    let base = layout::pca_of_centroids(data.view(), &topic, kt)?;
    let qb = layout::quality(
        data.view(),
        &base,
        &topic,
        &layout::centres_of(&base, &topic, kt),
        10,
    );
    println!("t-SNE map:            {q:?}");
    println!("PCA of centroids map: {qb:?}");
    Ok(())
}
