//! Sentence embeddings: text → unit-length vector, exactly as sentence-transformers
//! computes it for a BERT-family model.
//!
//! The pipeline is: tokenize with the model's `tokenizer.json` (truncated to the model's
//! `max_seq_length`, 256 for all-MiniLM-L6-v2, *not* the 128 that file embeds; no fixed
//! padding) → BERT forward → pooling over real tokens (mean or CLS, from the model's
//! `1_Pooling/config.json`) → L2 normalisation. Because every vector has unit length, the
//! dot product of two embeddings is their cosine similarity, which the index relies on.
//!
//! Three backends compute the same function:
//!
//! * **onednn** (default where `libdnnl.so.2`, oneDNN 2.x, is installed): paperscope's
//!   own BERT forward pass (`fast`) with every matrix multiply through oneDNN, opened at
//!   run time. Precision **bf16** by default on CPUs with AMX tile units (BF16 weights
//!   and matmul inputs, F32 accumulation, residual stream, LayerNorm and softmax), else
//!   **f32**.
//! * **portable**: the same forward pass in F32 with the pure-Rust `gemm` crate; needs
//!   no system library.
//! * **candle**: candle-transformers' `BertModel`, the reference; batches padded to their
//!   longest text.
//!
//! All of them match sentence-transformers to cosine ≥ 0.9999 on the golden texts (a test
//! runs each). [`EmbedOptions::from_env`] reads `PAPERSCOPE_BACKEND` and
//! `PAPERSCOPE_PRECISION`. Texts are sorted by token count before batching either way.
//! Output order always matches input order.

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
    #[error("bad embedding option: {0}")]
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
    /// oneDNN when installed, else portable.
    Auto,
    /// Own forward pass, oneDNN matmuls.
    OneDnn,
    /// Own forward pass, pure-Rust matmuls, F32.
    Portable,
    /// candle-transformers' `BertModel`, F32.
    Candle,
}

/// Numeric precision of the matrix multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    /// BF16 weights and matmul inputs, F32 accumulation (oneDNN only).
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// How to run the model: backend and precision (`None`: chosen for this CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedOptions {
    pub backend: BackendKind,
    pub precision: Option<Precision>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            backend: BackendKind::Auto,
            precision: None,
        }
    }
}

impl EmbedOptions {
    /// What these options run on this machine, without loading a model, e.g. `onednn
    /// bf16 (oneDNN 2.6.3 (libdnnl.so.2)), avx512 element-wise kernels`.
    ///
    /// # Errors
    /// Options that cannot be met here (as [`Embedder::load_with`]).
    pub fn describe(&self) -> Result<String, Error> {
        let kernels = match self.backend {
            BackendKind::Candle => return Ok("candle: candle-transformers BertModel, f32".into()),
            BackendKind::Auto => None,
            BackendKind::OneDnn => Some(fast::Kernels::OneDnn),
            BackendKind::Portable => Some(fast::Kernels::Portable),
        };
        fast::describe(kernels, self.precision).map_err(|e| Error::Backend(e.to_string()))
    }

    /// `PAPERSCOPE_BACKEND` (`auto`, `onednn`, `portable`, `candle`; default auto) and
    /// `PAPERSCOPE_PRECISION` (`auto`, `f32`, `bf16`; default auto).
    ///
    /// # Errors
    /// [`Error::Backend`] for any other value.
    pub fn from_env() -> Result<EmbedOptions, Error> {
        let var = |name| std::env::var(name).unwrap_or_default().to_ascii_lowercase();
        let backend = match var("PAPERSCOPE_BACKEND").as_str() {
            "" | "auto" | "fast" => BackendKind::Auto,
            "onednn" => BackendKind::OneDnn,
            "portable" => BackendKind::Portable,
            "candle" => BackendKind::Candle,
            other => {
                return Err(Error::Backend(format!(
                    "PAPERSCOPE_BACKEND={other} (expected auto, onednn, portable or candle)"
                )))
            }
        };
        let precision = match var("PAPERSCOPE_PRECISION").as_str() {
            "" | "auto" => None,
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            other => {
                return Err(Error::Backend(format!(
                    "PAPERSCOPE_PRECISION={other} (expected auto, f32 or bf16)"
                )))
            }
        };
        Ok(EmbedOptions { backend, precision })
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

/// Texts tokenized at a time (in parallel) by [`Embedder::embed_with_progress`].
const TOKENIZE_WINDOW: usize = 4096;

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
        Embedder::load_with(dir, EmbedOptions::from_env()?)
    }

    /// Loads the model in `dir` to run with `opts`.
    ///
    /// # Errors
    /// As [`Embedder::load`]; also when the options cannot be met here (oneDNN asked
    /// for but not installed, BF16 without oneDNN or with the candle backend).
    pub fn load_with(dir: &Path, opts: EmbedOptions) -> Result<Embedder, Error> {
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
        let backend = match opts.backend {
            BackendKind::Candle if opts.precision == Some(Precision::Bf16) => {
                return Err(Error::Backend("the candle backend runs in f32 only".into()))
            }
            BackendKind::Candle => Backend::Candle(candle::CandleBert::load(&model)?),
            other => {
                let kernels = match other {
                    BackendKind::OneDnn => Some(fast::Kernels::OneDnn),
                    BackendKind::Portable => Some(fast::Kernels::Portable),
                    _ => None,
                };
                Backend::Fast(
                    fast::FastBert::load(&model.path, kernels, opts.precision)
                        .map_err(|e| Error::model(&model, e))?,
                )
            }
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

    /// Which forward pass runs, with its kernel path, e.g. `onednn bf16
    /// (brg:avx512_core_amx_bf16, oneDNN 2.6.3 (libdnnl.so.2)), packed (no padding), ...`.
    pub fn backend(&self) -> String {
        match &self.backend {
            Backend::Fast(f) => f.kernel_path(),
            Backend::Candle(_) => {
                "candle: candle-transformers BertModel, f32, padded batches".into()
            }
        }
    }

    /// The precision of the model's matrix multiplies.
    pub fn precision(&self) -> Precision {
        match &self.backend {
            Backend::Fast(f) => f.precision(),
            Backend::Candle(_) => Precision::F32,
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

    /// Runs a few short texts through the model so that a server's first queries do not
    /// pay one-time costs (the oneDNN engine creates its matrix-multiply kernels on first
    /// use of each row count, about a millisecond each): texts of 16, 32, ... 128 tokens,
    /// the sizes queries come in alone or batched. Costs ~0.1 s.
    ///
    /// # Errors
    /// As [`Embedder::embed`].
    pub fn warm_up(&self) -> Result<(), Error> {
        for words in (14..=126).step_by(16) {
            self.embed_one(&"paper ".repeat(words))?;
        }
        Ok(())
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
        // Token ids only: a tokenizer `Encoding` also keeps strings, offsets and masks,
        // ~20 KB per abstract, too much to hold for a whole collection at once.
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        for window in texts.chunks(TOKENIZE_WINDOW) {
            let encodings = self
                .tokenizer
                .encode_batch(window.to_vec(), true)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            ids.extend(encodings.into_iter().map(|e| e.get_ids().to_vec()));
        }
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out: Vec<Vector> = vec![Vec::new(); texts.len()];
        let (mut done, mut tokens) = (0, 0);
        for chunk in order.chunks(self.backend.batch_size()) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
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

    /// Tokens `text` has before truncation, `[CLS]`/`[SEP]` included: what is compared
    /// with `info().max_tokens` to refuse rather than cut a long text.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails.
    pub fn token_count(&self, text: &str) -> Result<usize, Error> {
        let tokenizer_error = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
        let enc = self.tokenizer.encode(text, true).map_err(tokenizer_error)?;
        if enc.get_overflowing().is_empty() {
            return Ok(enc.len());
        }
        // Truncated. The overflowing pieces do not add up to the rest (the post-processor
        // truncates again), so count with a copy of the tokenizer that does not truncate:
        // it costs ~10 ms, paid only for texts over the limit.
        let mut whole = self.tokenizer.clone();
        whole.with_truncation(None).map_err(tokenizer_error)?;
        Ok(whole.encode(text, true).map_err(tokenizer_error)?.len())
    }
}

/// Wraps the tokenizers crate's boxed error so it can be a `source`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TokError(String);
