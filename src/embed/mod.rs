//! Sentence embeddings: text → unit-length vector, exactly as sentence-transformers
//! computes it for a BERT-family model.
//!
//! The pipeline is: tokenize with the model's `tokenizer.json` (truncated to the model's
//! `max_seq_length`, 256 for all-MiniLM-L6-v2, *not* the 128 that file embeds; no fixed
//! padding) → BERT forward → pooling over real tokens (mean or CLS, from the model's
//! `1_Pooling/config.json`) → L2 normalisation. Because every vector has unit length, the
//! dot product of two embeddings is their cosine similarity, which the index relies on.
//!
//! Two backends compute the same function:
//!
//! * **fast** (default): paperscope's own BERT forward pass (`fast`): no padding (a
//!   batch is packed into one token matrix), fused bias/residual/LayerNorm/GELU, no
//!   per-layer allocation, packs run in parallel on every core, matrix multiplies through
//!   OpenBLAS when `libopenblas.so.0` is installed (opened at run time) else the pure-Rust
//!   `gemm` crate, AVX2+FMA element-wise kernels chosen at run time.
//! * **candle**: candle-transformers' `BertModel`, the reference; batches padded to their
//!   longest text.
//!
//! `PAPERSCOPE_BACKEND=candle|fast` picks one; both match sentence-transformers to cosine
//! ≥ 0.9999 on the golden texts (a test runs both). Texts are sorted by token count
//! before batching either way. Output order always matches input order.

mod candle;
mod fast;
mod model;

pub use model::{default_model_dir, ModelDir, DEFAULT_MODEL};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// An embedding: `dim` floats of unit L2 norm.
pub type Vector = Vec<f32>;

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Average over real (non-padding) tokens, `[CLS]` and `[SEP]` included.
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
}

/// Errors of loading a model or embedding with it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model directory {path}: {what}; fetch the default model with `scripts/fetch-model.sh` or pass --model DIR / PAPERSCOPE_MODEL (a directory with config.json, tokenizer.json, model.safetensors)")]
    ModelDir { path: PathBuf, what: String },
    #[error("cannot load model from {path}: {source}")]
    Model {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model forward pass failed: {0}")]
    Forward(#[from] candle_core::Error),
    #[error("unknown backend '{0}' in PAPERSCOPE_BACKEND (expected fast or candle)")]
    Backend(String),
}

impl Error {
    fn model(dir: &ModelDir, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Model {
            path: dir.path.clone(),
            source: Box::new(e),
        }
    }
}

/// Facts about the loaded model that indexes record and check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub weights_sha256: String,
    pub dim: usize,
    pub pooling: Pooling,
    pub max_tokens: usize,
}

/// Which forward pass to run (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Fast,
    Candle,
}

impl BackendKind {
    /// `PAPERSCOPE_BACKEND` (`fast` or `candle`), default fast.
    ///
    /// # Errors
    /// [`Error::Backend`] for any other value.
    pub fn from_env() -> Result<BackendKind, Error> {
        match std::env::var("PAPERSCOPE_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("fast") => Ok(BackendKind::Fast),
            Ok("candle") => Ok(BackendKind::Candle),
            Ok(other) => Err(Error::Backend(other.to_string())),
        }
    }
}

/// The forward-pass implementation in use.
enum Backend {
    Fast(fast::FastBert),
    Candle(candle::CandleBert),
}

impl Backend {
    /// Texts per call. Candle: small batches measured faster (less padding and memory
    /// traffic per matmul). Fast: large calls, since it packs and parallelises itself;
    /// bounded so progress is reported regularly.
    fn batch_size(&self) -> usize {
        match self {
            Backend::Fast(_) => 256,
            Backend::Candle(_) => 16,
        }
    }

    fn embed(&self, seqs: &[&[u32]], pooling: Pooling) -> Result<Vec<Vector>, Error> {
        match self {
            Backend::Fast(f) => Ok(f.embed(seqs, pooling)),
            Backend::Candle(c) => c.embed(seqs, pooling),
        }
    }
}

/// A loaded embedding model. Cheap to share behind an `Arc`; `embed` takes `&self`.
pub struct Embedder {
    tokenizer: Tokenizer,
    backend: Backend,
    info: ModelInfo,
}

impl Embedder {
    /// Loads the model in `dir`.
    ///
    /// # Errors
    /// A missing or incomplete directory gives a one-line [`Error::ModelDir`] naming the
    /// path and the command that fixes it.
    pub fn load(dir: &Path) -> Result<Embedder, Error> {
        Embedder::load_backend(dir, BackendKind::from_env()?)
    }

    /// Loads the model in `dir` with a given backend.
    ///
    /// # Errors
    /// As [`Embedder::load`].
    pub fn load_backend(dir: &Path, kind: BackendKind) -> Result<Embedder, Error> {
        let model = ModelDir::open(dir)?;
        let mut tokenizer = Tokenizer::from_file(model.tokenizer_path())
            .map_err(|e| Error::model(&model, TokError(e.to_string())))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: model.max_tokens,
                ..Default::default()
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None::<PaddingParams>);
        let backend = match kind {
            BackendKind::Fast => Backend::Fast(
                fast::FastBert::load(&model.path).map_err(|e| Error::model(&model, e))?,
            ),
            BackendKind::Candle => Backend::Candle(candle::CandleBert::load(&model)?),
        };
        let info = ModelInfo {
            name: model.name.clone(),
            weights_sha256: model.weights_sha256()?,
            dim: model.config.hidden_size,
            pooling: model.pooling,
            max_tokens: model.max_tokens,
        };
        Ok(Embedder {
            tokenizer,
            backend,
            info,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn dim(&self) -> usize {
        self.info.dim
    }

    /// Which forward pass runs, with its kernel path, e.g.
    /// `fast: f32 packed (no padding), cblas (libopenblas.so.0) matmuls, avx2+fma ...`.
    pub fn backend(&self) -> String {
        match &self.backend {
            Backend::Fast(f) => format!("fast: {}", f.kernel_path()),
            Backend::Candle(_) => {
                "candle: candle-transformers BertModel, f32, padded batches".into()
            }
        }
    }

    /// Token ids the model sees for `text` (truncated, `[CLS]`/`[SEP]` included).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, Error> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Embeds `texts`, returning vectors in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vector>, Error> {
        self.embed_with_progress(texts, |_, _| {})
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Result<Vector, Error> {
        let ids = self.tokenize(text)?;
        Ok(self
            .backend
            .embed(&[&ids], self.info.pooling)?
            .pop()
            .expect("one input gives one output. This is a bug."))
    }

    /// Like [`Embedder::embed`], calling `progress(texts_done, tokens_done)` after each batch.
    pub fn embed_with_progress(
        &self,
        texts: &[&str],
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<Vector>, Error> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out: Vec<Vector> = vec![Vec::new(); texts.len()];
        let (mut done, mut tokens) = (0, 0);
        for chunk in order.chunks(self.backend.batch_size()) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i]).collect();
            let vectors = self.backend.embed(&batch, self.info.pooling)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
            done += chunk.len();
            tokens += batch.iter().map(|s| s.len()).sum::<usize>();
            progress(done, tokens);
        }
        Ok(out)
    }
}

/// Wraps the tokenizers crate's boxed error so it can be a `source`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TokError(String);

/// Dot product of two equal-length vectors; for unit vectors, their cosine similarity.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise without reassociating.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}
