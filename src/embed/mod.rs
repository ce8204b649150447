//! Sentence embeddings: text → unit-length vector, exactly as sentence-transformers
//! computes it for a BERT-family model.
//!
//! The pipeline is: tokenize with the model's `tokenizer.json` (truncated to the model's
//! `max_seq_length`, 256 for all-MiniLM-L6-v2, *not* the 128 that file embeds; no fixed
//! padding) → BERT forward → pooling over real tokens (mean or CLS, from the model's
//! `1_Pooling/config.json`) → L2 normalisation. Because every vector has unit length, the
//! dot product of two embeddings is their cosine similarity, which the index relies on.
//!
//! **Two seams.** [`Encoder`] is what the rest of paperscope embeds with: texts in,
//! vectors out, plus the model's identity. [`Embedder`] implements it for a model
//! directory (tokenizer + a forward pass); [`service::ServiceEncoder`] implements it by
//! running each call on the [`service::ModelService`] thread (the HTTP server's only way to
//! the model); [`fake::FakeEncoder`] implements it without a model, for unit tests of the
//! logic above. Below [`Embedder`], the crate-private `Forward` trait (token ids in, pooled
//! unit vectors out) is implemented once per forward pass:
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
//! runs each the CPU supports). Options are passed explicitly ([`EmbedOptions`]); the
//! command line fills them from flags or their environment variables. Texts are sorted by
//! token count before batching either way; output order always matches input order.

mod candle;
mod config;
pub mod fake;
mod fast;
mod model;
pub mod service;

pub use config::{Activation, BertConfig};
pub use model::{default_model_dir, ModelDir, DEFAULT_MODEL};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
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
    Forward(String),
    /// The options ask for something this machine or build cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The model service's queue is full; retry shortly.
    #[error("the model is busy (embedding queue full); retry in a moment")]
    Busy,
    /// The caller stopped waiting before the job ran.
    #[error(transparent)]
    Cancelled(#[from] crate::cancel::Cancelled),
    /// The model service has shut down.
    #[error("the model service has stopped")]
    Stopped,
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

/// Turns texts into unit vectors: the seam between the model and everything that uses
/// it (index builds, queries, explanations, topics, the model service).
///
/// Implementations are deterministic for a given text (batching aside, which may move a
/// vector by float rounding) and return vectors in input order.
pub trait Encoder: Send + Sync {
    /// The model's identity and shape; indexes record it and refuse other models.
    fn info(&self) -> &ModelInfo;

    /// What computes the vectors, e.g. `onednn bf16 (...), packed (no padding), ...`.
    fn describe(&self) -> String;

    /// The precision of the model's matrix multiplies.
    fn precision(&self) -> Precision;

    /// Embeds `texts`, calling `progress(texts_done, tokens_done)` as batches finish.
    ///
    /// # Errors
    /// Tokenizer or forward-pass failures; for a service-backed encoder also
    /// [`Error::Busy`], [`Error::Cancelled`] and [`Error::Stopped`].
    fn embed_with_progress(
        &self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Vector>, Error>;

    /// Embeds `texts`, in order.
    ///
    /// # Errors
    /// As [`Encoder::embed_with_progress`].
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vector>, Error> {
        self.embed_with_progress(texts, &mut |_, _| {})
    }

    /// Embeds one text.
    ///
    /// # Errors
    /// As [`Encoder::embed_with_progress`].
    fn embed_one(&self, text: &str) -> Result<Vector, Error> {
        self.embed(&[text])?
            .pop()
            .ok_or_else(|| Error::Forward("no vector for one text".into()))
    }

    fn dim(&self) -> usize {
        self.info().dim
    }

    /// Tokens `text` has before truncation, `[CLS]`/`[SEP]` included: what is compared
    /// with `info().max_tokens` to refuse rather than cut a long text (TEI's
    /// `truncate: false`). Tokenizing only, no forward pass.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails.
    fn token_count(&self, text: &str) -> Result<usize, Error>;
}

/// Which forward pass to run (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// oneDNN when installed, else portable.
    #[default]
    Auto,
    /// Own forward pass, oneDNN matmuls.
    OneDnn,
    /// Own forward pass, pure-Rust matmuls, F32.
    Portable,
    /// candle-transformers' `BertModel`, F32.
    Candle,
}

impl FromStr for Backend {
    type Err = Error;

    /// `auto`, `onednn`, `portable` or `candle`.
    fn from_str(s: &str) -> Result<Backend, Error> {
        match s.to_ascii_lowercase().as_str() {
            "" | "auto" | "fast" => Ok(Backend::Auto),
            "onednn" => Ok(Backend::OneDnn),
            "portable" => Ok(Backend::Portable),
            "candle" => Ok(Backend::Candle),
            other => Err(Error::Unsupported(format!(
                "unknown backend '{other}': expected auto, onednn, portable or candle"
            ))),
        }
    }
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

impl FromStr for Precision {
    type Err = Error;

    /// `f32` or `bf16`.
    fn from_str(s: &str) -> Result<Precision, Error> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(Error::Unsupported(format!(
                "unknown precision '{other}': expected f32 or bf16"
            ))),
        }
    }
}

/// How to run the model. `Default` picks the fastest exact-enough engine for this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmbedOptions {
    pub backend: Backend,
    /// `None`: BF16 where oneDNN runs it on AMX tiles, else F32.
    pub precision: Option<Precision>,
    /// Most tokens per packed forward pass of the own engine (`None`: its default, 512);
    /// for measurements.
    pub pack_tokens: Option<usize>,
}

impl EmbedOptions {
    /// What these options run on this machine, without loading a model, e.g. `onednn
    /// bf16 on AMX tiles (oneDNN 2.6.3 (libdnnl.so.2)), avx512 element-wise kernels`.
    ///
    /// # Errors
    /// [`Error::Unsupported`], with the reason, for options this machine cannot run (BF16
    /// where oneDNN has no BF16 kernel for the CPU, oneDNN not installed, ...): tests use
    /// it to skip what the CPU cannot do, saying why.
    pub fn describe(&self) -> Result<String, Error> {
        match self.backend {
            Backend::Candle if self.precision == Some(Precision::Bf16) => Err(Error::Unsupported(
                "the candle backend runs in f32 only".into(),
            )),
            Backend::Candle => Ok("candle: candle-transformers BertModel, f32".into()),
            _ => fast::describe(self),
        }
    }
}

/// A forward pass: token-id sequences (truncated, with `[CLS]`/`[SEP]`) in, one pooled,
/// L2-normalised vector per sequence out, in input order. One implementation per engine.
trait Forward: Send + Sync {
    /// Sequences per call: Candle measured faster with small padded batches; the own
    /// engine packs and parallelises large calls itself.
    fn batch_size(&self) -> usize;
    fn describe(&self) -> String;
    fn precision(&self) -> Precision;
    fn embed(&self, seqs: &[&[u32]], pooling: Pooling) -> Result<Vec<Vector>, Error>;
}

/// Texts tokenized at a time (in parallel) by [`Embedder::embed_with_progress`].
const TOKENIZE_WINDOW: usize = 4096;

/// Most bytes one token can take, WordPiece's longest word plus a separator: 100
/// characters of at most 4 bytes, then one more (a word over 100 characters is a single
/// `[UNK]`, whatever its length).
const MAX_TOKEN_BYTES: usize = 4 * 100 + 4;

/// `text` cut, at a character boundary, to what a model reading at most `max_tokens`
/// tokens can see: `max_tokens × 404` bytes (about 100 KB for 256 tokens).
///
/// Why: the tokenizer processes the whole text before truncating, so one 50 MB abstract
/// cost 4 GB and minutes. The cut changes nothing for any text whose words are under 100
/// characters (each token then spans at most 404 bytes); a longer "word" is one `[UNK]`
/// token the model would barely use.
pub fn clip_text(text: &str, max_tokens: usize) -> &str {
    let max = max_tokens.saturating_mul(MAX_TOKEN_BYTES);
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A model directory loaded to run: tokenizer + forward pass. Cheap to share behind an
/// `Arc`; embedding takes `&self`.
pub struct Embedder {
    tokenizer: Tokenizer,
    forward: Box<dyn Forward>,
    info: ModelInfo,
}

impl Embedder {
    /// Loads the model in `dir` to run with `opts`.
    ///
    /// # Errors
    /// A missing or incomplete directory gives a one-line [`Error::ModelDir`] naming the
    /// path and the command that fixes it; options this machine cannot run give
    /// [`Error::Unsupported`] with the reason.
    pub fn load(dir: &Path, opts: &EmbedOptions) -> Result<Embedder, Error> {
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
        let forward: Box<dyn Forward> = match opts.backend {
            Backend::Candle => {
                opts.describe()?;
                Box::new(candle::CandleBert::load(&model)?)
            }
            _ => fast::load(&model, opts)?,
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
            forward,
            info,
        })
    }

    /// Token ids the model sees for `text` (truncated, `[CLS]`/`[SEP]` included).
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, Error> {
        let enc = self
            .tokenizer
            .encode(clip_text(text, self.info.max_tokens), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Runs a few short texts through the model so that a server's first queries do not
    /// pay one-time costs (the oneDNN engine creates its matrix-multiply kernels on first
    /// use of each row count, about a millisecond each): texts of 16, 32, ... 128 tokens,
    /// the sizes queries come in alone or batched. Costs ~0.1 s.
    ///
    /// # Errors
    /// As [`Encoder::embed`].
    pub fn warm_up(&self) -> Result<(), Error> {
        for words in (14..=126).step_by(16) {
            self.embed_one(&"paper ".repeat(words))?;
        }
        Ok(())
    }
}

impl Encoder for Embedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn describe(&self) -> String {
        self.forward.describe()
    }

    fn precision(&self) -> Precision {
        self.forward.precision()
    }

    fn embed_with_progress(
        &self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Vector>, Error> {
        // Token ids only: a tokenizer `Encoding` also keeps strings, offsets and masks,
        // ~20 KB per abstract, too much to hold for a whole collection at once.
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        for window in texts.chunks(TOKENIZE_WINDOW) {
            let clipped: Vec<&str> = window
                .iter()
                .map(|t| clip_text(t, self.info.max_tokens))
                .collect();
            let encodings = self
                .tokenizer
                .encode_batch(clipped, true)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            ids.extend(encodings.into_iter().map(|e| e.get_ids().to_vec()));
        }
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out: Vec<Vector> = vec![Vec::new(); texts.len()];
        let (mut done, mut tokens) = (0, 0);
        for chunk in order.chunks(self.forward.batch_size()) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let vectors = self.forward.embed(&batch, self.info.pooling)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
            done += chunk.len();
            tokens += batch.iter().map(|s| s.len()).sum::<usize>();
            progress(done, tokens);
        }
        Ok(out)
    }

    fn token_count(&self, text: &str) -> Result<usize, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_short_texts_and_cuts_long_ones_at_a_character() {
        assert_eq!(clip_text("short text", 256), "short text");
        let long = "é".repeat(200_000); // 400,000 bytes
        let cut = clip_text(&long, 256);
        assert!(cut.len() <= 256 * MAX_TOKEN_BYTES && cut.len() > 256 * MAX_TOKEN_BYTES - 2);
        assert!(long.starts_with(cut));
        // 256 words of 100 four-byte characters: nothing the model reads is cut.
        let words = vec!["𝔸".repeat(100); 256].join(" ");
        assert_eq!(
            clip_text(&words, 256).len(),
            words.len().min(256 * MAX_TOKEN_BYTES)
        );
        assert!(clip_text(&words, 256).split(' ').count() >= 255);
    }
}
