//! In-process embedding throughput, the Rust side of `benches/compare/compare.py`.
//!
//! Loads the model once (default model dir, or `PAPERSCOPE_MODEL`; precision from
//! `PAPERSCOPE_PRECISION`), embeds the texts of a JSON Lines file (`{"text": ...}` per
//! line) once to warm up and then `--runs` times, timing each run end to end
//! (tokenization, forward pass, pooling, normalisation: what sentence-transformers'
//! `encode` is timed on), and prints one JSON line:
//! `{"backend", "texts", "tokens", "runs_s": [...], "cpu_s": [...], "median_s",
//! "tokens_per_s", "texts_per_s"}` (`cpu_s`: CPU time of each run, all threads).
//! With `--out FILE` the embeddings are written as little-endian f32, one row per text.
//!
//! ```text
//! cargo run --release --example embed_throughput -- --texts texts.jsonl --runs 3 --out emb.f32
//! ```

use anyhow::Context;
use paperscope::embed::{default_model_dir, EmbedOptions, Embedder, Encoder};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

// As the `paperscope` binary: mimalloc keeps freed activation buffers for reuse.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// User + system CPU time of this process so far: on a shared machine, tokens per
/// CPU-second says more about the code than wall time does.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let mut texts_path = None;
    let mut out_path = None;
    let mut runs = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--texts" => texts_path = Some(PathBuf::from(value()?)),
            "--out" => out_path = Some(PathBuf::from(value()?)),
            "--runs" => runs = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let texts_path = texts_path.context("--texts FILE is required")?;
    let texts: Vec<String> = std::io::BufReader::new(std::fs::File::open(&texts_path)?)
        .lines()
        .map(|l| -> anyhow::Result<String> {
            let v: serde_json::Value = serde_json::from_str(&l?)?;
            Ok(v["text"]
                .as_str()
                .context("line without a text field")?
                .to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let model = std::env::var_os("PAPERSCOPE_MODEL").map_or_else(default_model_dir, PathBuf::from);
    // The comparison script picks the engine through the same variables the CLI reads.
    let var = |name| std::env::var(name).unwrap_or_default();
    let opts = EmbedOptions {
        backend: var("PAPERSCOPE_BACKEND").parse()?,
        precision: match var("PAPERSCOPE_PRECISION").as_str() {
            "" | "auto" => None,
            p => Some(p.parse()?),
        },
        pack_tokens: var("PAPERSCOPE_PACK").parse().ok(),
    };
    let embedder = Embedder::load(&model, &opts)?;
    let tokens: usize = refs
        .iter()
        .map(|t| embedder.tokenize(t).map(|ids| ids.len()))
        .sum::<Result<usize, _>>()?;

    let mut vectors = embedder.embed(&refs)?; // warm-up (and the vectors written out)
    let mut runs_s = Vec::with_capacity(runs);
    let mut cpu_s = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        vectors = embedder.embed(&refs)?;
        runs_s.push(t0.elapsed().as_secs_f64());
        cpu_s.push(cpu_seconds() - c0);
    }
    let mut sorted = runs_s.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];

    if let Some(p) = out_path {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&p)?);
        for v in &vectors {
            for x in v {
                w.write_all(&x.to_le_bytes())?;
            }
        }
        w.flush()?;
    }
    println!(
        "{}",
        serde_json::json!({
            "backend": embedder.describe(),
            "texts": texts.len(),
            "tokens": tokens,
            "runs_s": runs_s,
            "cpu_s": cpu_s,
            "median_s": median,
            "tokens_per_s": tokens as f64 / median,
            "texts_per_s": texts.len() as f64 / median,
        })
    );
    Ok(())
}
