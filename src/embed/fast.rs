//! Fast CPU forward pass for BERT-family sentence encoders (e.g. all-MiniLM-L6-v2).
//!
//! Why not Candle's `BertModel`: for embedding short documents on a few CPU
//! cores, most of Candle's time goes to padding, allocation churn and
//! un-fused element-wise ops. This module owns the whole forward pass:
//!
//! * **No padding.** A batch of sequences of different lengths is packed into
//!   one `[total_tokens, hidden]` matrix. The dense layers (fused QKV,
//!   attention output, both feed-forward matmuls) do not care where one
//!   sequence ends, so they run as a few large matmuls over the whole pack;
//!   only attention is done per (sequence, head), in parallel with rayon.
//! * **Fusion.** Q, K and V are one `[hidden, 3 * hidden]` matmul with the bias
//!   pre-loaded into the output; the residual connections are fused into the
//!   matmuls (`C += A * B`), bias + LayerNorm and bias + GELU are one pass
//!   each; attention reads Q/K/V heads in place through strided views.
//! * **No per-layer allocation.** All activations of a pack live in a handful
//!   of buffers allocated once per pack.
//! * **Run-time ISA dispatch.** Element-wise kernels are compiled for
//!   AVX2 + FMA and for a portable baseline and chosen at load time (see
//!   [`kernels`]), so no `-C target-cpu` flag is needed.
//!
//! Weights are converted to f32 once at load time and stored pre-transposed
//! (`[in, out]`, row-major) as the matmul wants them.

mod kernels;
mod matmul;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};

use super::Pooling;
use kernels::{Act, Isa};
use matmul::{Backend, View};

/// Largest number of tokens packed into one forward pass. Bounds memory
/// (activations ~ 4 * tokens * (3 * hidden + intermediate) bytes) and keeps
/// the working set near the L3 cache; large enough that the matmuls are
/// efficient.
const MAX_PACK_TOKENS: usize = 2048;

/// Whether `load` tries OpenBLAS (opened at run time) before the pure-Rust
/// `gemm` crate. Measured on a 2-core Zen 3: OpenBLAS 0.3.21 single-threaded
/// per pack gives ~13-15% more tokens per CPU-second end to end (its sgemm
/// ~17% faster on the model's shapes). Overridable with
/// `PAPERSCOPE_GEMM=gemm|openblas`.
const DEFAULT_BACKEND_IS_BLAS: bool = true;

/// Errors from [`FastBert::load`].
#[derive(Debug, thiserror::Error)]
pub enum FastBertError {
    /// A required file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// config.json is not valid JSON or lacks a required field.
    #[error("bad config.json: {0}")]
    BadConfig(String),
    /// The configuration asks for something this engine does not implement.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// model.safetensors could not be parsed.
    #[error("bad safetensors file: {0}")]
    Safetensors(String),
    /// A tensor the architecture needs is absent.
    #[error("missing tensor {0}")]
    MissingTensor(String),
    /// A tensor has the wrong shape or an unsupported dtype.
    #[error("tensor {name}: {msg}")]
    BadTensor {
        /// Tensor name as found in the file.
        name: String,
        /// What is wrong.
        msg: String,
    },
}

/// Hyper-parameters read from config.json.
#[derive(Clone, Debug)]
struct Config {
    hidden: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    eps: f32,
    act: Act,
    max_positions: usize,
}

impl Config {
    fn from_json(text: &str) -> Result<Config, FastBertError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| FastBertError::BadConfig(e.to_string()))?;
        let get_usize = |key: &str| -> Result<usize, FastBertError> {
            v.get(key)
                .and_then(|x| x.as_u64())
                .map(|x| x as usize)
                .filter(|&x| x > 0)
                .ok_or_else(|| FastBertError::BadConfig(format!("missing or invalid `{key}`")))
        };
        let hidden = get_usize("hidden_size")?;
        let heads = get_usize("num_attention_heads")?;
        if hidden % heads != 0 {
            return Err(FastBertError::BadConfig(format!(
                "hidden_size {hidden} not divisible by num_attention_heads {heads}"
            )));
        }
        let act = match v
            .get("hidden_act")
            .and_then(|x| x.as_str())
            .unwrap_or("gelu")
        {
            "gelu" => Act::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Act::GeluTanh,
            "relu" => Act::Relu,
            other => return Err(FastBertError::Unsupported(format!("hidden_act `{other}`"))),
        };
        match v.get("position_embedding_type").and_then(|x| x.as_str()) {
            None | Some("absolute") => {}
            Some(other) => {
                return Err(FastBertError::Unsupported(format!(
                    "position_embedding_type `{other}`"
                )))
            }
        }
        if v.get("is_decoder").and_then(|x| x.as_bool()) == Some(true) {
            return Err(FastBertError::Unsupported("decoder models".into()));
        }
        Ok(Config {
            hidden,
            layers: get_usize("num_hidden_layers")?,
            heads,
            intermediate: get_usize("intermediate_size")?,
            eps: v
                .get("layer_norm_eps")
                .and_then(|x| x.as_f64())
                .unwrap_or(1e-12) as f32,
            act,
            max_positions: get_usize("max_position_embeddings")?,
        })
    }
}

/// One encoder layer's weights; matrices are `[in, out]` row-major.
struct Layer {
    w_qkv: Vec<f32>,
    b_qkv: Vec<f32>,
    w_o: Vec<f32>,
    b_o: Vec<f32>,
    ln1_g: Vec<f32>,
    ln1_b: Vec<f32>,
    w_1: Vec<f32>,
    b_1: Vec<f32>,
    w_2: Vec<f32>,
    b_2: Vec<f32>,
    ln2_g: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// A loaded BERT encoder. Immutable after loading, so `embed` may be called
/// from several threads (each call allocates its own activation buffers).
pub struct FastBert {
    cfg: Config,
    word: Vec<f32>,
    pos: Vec<f32>,
    /// Row 0 of token_type_embeddings: all token_type_ids are 0.
    type0: Vec<f32>,
    emb_ln_g: Vec<f32>,
    emb_ln_b: Vec<f32>,
    vocab: usize,
    layers: Vec<Layer>,
    isa: Isa,
    backend: Backend,
    /// Tokens per packed forward pass.
    pack_tokens: usize,
}

/// Reads tensors by name, accepting names with or without the `bert.` prefix
/// and old-style LayerNorm `gamma`/`beta`, converting F32/F16/BF16 to f32.
struct TensorSource<'a> {
    st: SafeTensors<'a>,
}

impl TensorSource<'_> {
    fn find(&self, name: &str) -> Option<(String, safetensors::tensor::TensorView<'_>)> {
        let mut cands = vec![name.to_string(), format!("bert.{name}")];
        if let Some(stem) = name.strip_suffix("LayerNorm.weight") {
            cands.push(format!("{stem}LayerNorm.gamma"));
            cands.push(format!("bert.{stem}LayerNorm.gamma"));
        }
        if let Some(stem) = name.strip_suffix("LayerNorm.bias") {
            cands.push(format!("{stem}LayerNorm.beta"));
            cands.push(format!("bert.{stem}LayerNorm.beta"));
        }
        cands
            .into_iter()
            .find_map(|n| self.st.tensor(&n).ok().map(|t| (n, t)))
    }

    /// Loads `name` and checks its shape.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, FastBertError> {
        let (found, t) = self
            .find(name)
            .ok_or_else(|| FastBertError::MissingTensor(name.to_string()))?;
        if t.shape() != shape {
            return Err(FastBertError::BadTensor {
                name: found,
                msg: format!("shape {:?}, expected {:?}", t.shape(), shape),
            });
        }
        let bytes = t.data();
        let out: Vec<f32> = match t.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            other => {
                return Err(FastBertError::BadTensor {
                    name: found,
                    msg: format!("unsupported dtype {other:?}"),
                })
            }
        };
        Ok(out)
    }

    /// Loads a PyTorch `Linear` weight `[out, in]` and returns it as `[in, out]`.
    fn linear_t(
        &self,
        name: &str,
        out_dim: usize,
        in_dim: usize,
    ) -> Result<Vec<f32>, FastBertError> {
        let w = self.get(name, &[out_dim, in_dim])?;
        let mut t = vec![0.0f32; w.len()];
        for o in 0..out_dim {
            for i in 0..in_dim {
                t[i * out_dim + o] = w[o * in_dim + i];
            }
        }
        Ok(t)
    }
}

/// IEEE half to single precision (handles subnormals, inf and NaN).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man * 2^-24.
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Raw pointer that may be shared with rayon tasks writing disjoint regions.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only for disjoint writes coordinated by the caller.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Method access makes closures capture the whole (Send) wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

thread_local! {
    /// Per-thread attention score scratch (`len x len`), reused across calls.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl FastBert {
    /// Loads config.json + model.safetensors from a BERT-family model dir.
    ///
    /// The matmul back-end is OpenBLAS if its shared library can be opened at
    /// run time (`libopenblas.so.0`), else the pure-Rust `gemm` crate;
    /// [`FastBert::kernel_path`] says which runs. `PAPERSCOPE_GEMM=gemm` or
    /// `=openblas` forces the choice.
    /// `PAPERSCOPE_PACK` overrides the tokens per packed pass (default 2048).
    pub fn load(model_dir: &Path) -> Result<FastBert, FastBertError> {
        let read = |name: &str| {
            let path = model_dir.join(name);
            std::fs::read(&path).map_err(|source| FastBertError::Io { path, source })
        };
        let cfg_text = String::from_utf8(read("config.json")?)
            .map_err(|e| FastBertError::BadConfig(e.to_string()))?;
        let cfg = Config::from_json(&cfg_text)?;
        let bytes = read("model.safetensors")?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| FastBertError::Safetensors(e.to_string()))?;
        let src = TensorSource { st };

        let h = cfg.hidden;
        let word_name = "embeddings.word_embeddings.weight";
        let vocab = src
            .find(word_name)
            .map(|(_, t)| t.shape().first().copied().unwrap_or(0))
            .ok_or_else(|| FastBertError::MissingTensor(word_name.into()))?;
        let word = src.get(word_name, &[vocab, h])?;
        let pos = src.get(
            "embeddings.position_embeddings.weight",
            &[cfg.max_positions, h],
        )?;
        let type_name = "embeddings.token_type_embeddings.weight";
        let type0 = match src.find(type_name) {
            Some((_, t)) => {
                let n = t.shape().first().copied().unwrap_or(0);
                let all = src.get(type_name, &[n, h])?;
                all[..h].to_vec()
            }
            // Some BERT variants have no token types: treat as zero.
            None => vec![0.0; h],
        };
        let emb_ln_g = src.get("embeddings.LayerNorm.weight", &[h])?;
        let emb_ln_b = src.get("embeddings.LayerNorm.bias", &[h])?;

        let mut layers = Vec::with_capacity(cfg.layers);
        let i = cfg.intermediate;
        for l in 0..cfg.layers {
            let p = format!("encoder.layer.{l}.");
            let q = src.linear_t(&format!("{p}attention.self.query.weight"), h, h)?;
            let k = src.linear_t(&format!("{p}attention.self.key.weight"), h, h)?;
            let v = src.linear_t(&format!("{p}attention.self.value.weight"), h, h)?;
            // Fuse Q, K, V column-wise into [h, 3h].
            let mut w_qkv = vec![0.0f32; h * 3 * h];
            for r in 0..h {
                let dst = &mut w_qkv[r * 3 * h..(r + 1) * 3 * h];
                dst[..h].copy_from_slice(&q[r * h..(r + 1) * h]);
                dst[h..2 * h].copy_from_slice(&k[r * h..(r + 1) * h]);
                dst[2 * h..].copy_from_slice(&v[r * h..(r + 1) * h]);
            }
            let mut b_qkv = src.get(&format!("{p}attention.self.query.bias"), &[h])?;
            b_qkv.extend(src.get(&format!("{p}attention.self.key.bias"), &[h])?);
            b_qkv.extend(src.get(&format!("{p}attention.self.value.bias"), &[h])?);
            layers.push(Layer {
                w_qkv,
                b_qkv,
                w_o: src.linear_t(&format!("{p}attention.output.dense.weight"), h, h)?,
                b_o: src.get(&format!("{p}attention.output.dense.bias"), &[h])?,
                ln1_g: src.get(&format!("{p}attention.output.LayerNorm.weight"), &[h])?,
                ln1_b: src.get(&format!("{p}attention.output.LayerNorm.bias"), &[h])?,
                w_1: src.linear_t(&format!("{p}intermediate.dense.weight"), i, h)?,
                b_1: src.get(&format!("{p}intermediate.dense.bias"), &[i])?,
                w_2: src.linear_t(&format!("{p}output.dense.weight"), h, i)?,
                b_2: src.get(&format!("{p}output.dense.bias"), &[h])?,
                ln2_g: src.get(&format!("{p}output.LayerNorm.weight"), &[h])?,
                ln2_b: src.get(&format!("{p}output.LayerNorm.bias"), &[h])?,
            });
        }
        let open_blas = || {
            matmul::Cblas::shared()
                .map(Backend::Cblas)
                .unwrap_or(Backend::GemmCrate)
        };
        let backend = match std::env::var("PAPERSCOPE_GEMM").as_deref() {
            Ok("openblas") => open_blas(),
            Ok("gemm") => Backend::GemmCrate,
            _ => DEFAULT_BACKEND_IS_BLAS
                .then(open_blas)
                .unwrap_or(Backend::GemmCrate),
        };
        let pack_tokens = std::env::var("PAPERSCOPE_PACK")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&v: &usize| v > 0)
            .unwrap_or(MAX_PACK_TOKENS);
        Ok(FastBert {
            cfg,
            word,
            pos,
            type0,
            emb_ln_g,
            emb_ln_b,
            vocab,
            layers,
            isa: Isa::detect(),
            backend,
            pack_tokens,
        })
    }

    /// Human-readable description of the kernel path that runs.
    pub fn kernel_path(&self) -> String {
        format!(
            "f32 packed (no padding), {} matmuls, {} element-wise kernels, {} threads",
            self.backend.name(),
            self.isa.name(),
            rayon::current_num_threads()
        )
    }

    /// Embeds a batch of token-id sequences (each already truncated, with
    /// [CLS]/[SEP]; lengths may differ; no padding). Returns one
    /// L2-normalised vector per sequence, pooled by `pooling`, in input order.
    ///
    /// Sequences are sorted by length and packed into groups of up to
    /// `MAX_PACK_TOKENS` tokens. Ids outside the vocabulary are mapped to
    /// id 0, tokens beyond `max_position_embeddings` are dropped, and an
    /// empty sequence gives a zero vector (none of these occur with a proper
    /// tokenizer).
    pub fn embed(&self, seqs: &[&[u32]], pooling: Pooling) -> Vec<Vec<f32>> {
        let h = self.cfg.hidden;
        let mut out = vec![Vec::new(); seqs.len()];
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
        let clip = |s: &[u32]| s.len().min(self.cfg.max_positions);
        // Cut the length-sorted sequences into packs of up to `pack_tokens` tokens.
        let mut packs: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < order.len()
                && (end == start || tokens + clip(seqs[order[end]]) <= self.pack_tokens)
            {
                tokens += clip(seqs[order[end]]);
                end += 1;
            }
            packs.push(&order[start..end]);
            start = end;
        }
        let run = |pack: &[usize], threads: usize| {
            let group: Vec<&[u32]> = pack.iter().map(|&i| &seqs[i][..clip(seqs[i])]).collect();
            self.forward_pack(&group, pooling, threads)
        };
        let threads = rayon::current_num_threads();
        // Enough packs to keep every thread busy: run whole packs in parallel,
        // each single-threaded (no fork-join per matmul, no idle waits, robust
        // when other processes share the cores). Otherwise (a few short
        // texts, e.g. a query) parallelise inside each pack instead.
        let results: Vec<Vec<Vec<f32>>> = if packs.len() >= 2 * threads && threads > 1 {
            packs.par_iter().map(|p| run(p, 1)).collect()
        } else {
            packs.iter().map(|p| run(p, threads)).collect()
        };
        for (pack, vecs) in packs.iter().zip(results) {
            for (&i, v) in pack.iter().zip(vecs) {
                out[i] = v;
            }
        }
        for v in out.iter_mut() {
            if v.is_empty() {
                *v = vec![0.0; h];
            }
        }
        out
    }

    /// Runs the encoder on one pack of sequences and pools each.
    /// `threads` > 1 parallelises the matmuls and attention of this pack.
    fn forward_pack(&self, seqs: &[&[u32]], pooling: Pooling, threads: usize) -> Vec<Vec<f32>> {
        let cfg = &self.cfg;
        let (h, inter, isa) = (cfg.hidden, cfg.intermediate, self.isa);
        let offsets: Vec<usize> = seqs
            .iter()
            .scan(0, |acc, s| {
                let o = *acc;
                *acc += s.len();
                Some(o)
            })
            .collect();
        let t = seqs.iter().map(|s| s.len()).sum::<usize>();
        if t == 0 {
            return vec![vec![0.0; h]; seqs.len()];
        }
        // Embeddings: word + position + type 0, then LayerNorm.
        let mut x = vec![0.0f32; t * h];
        for (s, &off) in seqs.iter().zip(&offsets) {
            for (p, &id) in s.iter().enumerate() {
                let id = if (id as usize) < self.vocab {
                    id as usize
                } else {
                    0
                };
                let row = &mut x[(off + p) * h..(off + p + 1) * h];
                row.copy_from_slice(&self.word[id * h..(id + 1) * h]);
                kernels::add(isa, row, &self.pos[p * h..(p + 1) * h]);
                kernels::add(isa, row, &self.type0);
            }
        }
        kernels::layer_norm(isa, &mut x, None, &self.emb_ln_g, &self.emb_ln_b, cfg.eps);

        let mut qkv = vec![0.0f32; t * 3 * h];
        let mut ctx = vec![0.0f32; t * h];
        let mut ff = vec![0.0f32; t * inter];
        let full = |ptr: *const f32, rs: usize| View { ptr, rs, cs: 1 };

        for layer in &self.layers {
            // qkv = x * Wqkv + b (bias pre-loaded, product accumulated).
            for row in qkv.chunks_exact_mut(3 * h) {
                row.copy_from_slice(&layer.b_qkv);
            }
            // SAFETY: buffers sized t x {h, 3h}; no aliasing.
            unsafe {
                self.backend.sgemm(
                    t,
                    3 * h,
                    h,
                    full(x.as_ptr(), h),
                    full(layer.w_qkv.as_ptr(), 3 * h),
                    qkv.as_mut_ptr(),
                    3 * h,
                    true,
                    threads,
                );
            }
            self.attention(seqs, &offsets, &qkv, &mut ctx, threads);
            // x += ctx * Wo; x = LN(x + bo).
            // SAFETY: as above.
            unsafe {
                self.backend.sgemm(
                    t,
                    h,
                    h,
                    full(ctx.as_ptr(), h),
                    full(layer.w_o.as_ptr(), h),
                    x.as_mut_ptr(),
                    h,
                    true,
                    threads,
                );
            }
            kernels::layer_norm(
                isa,
                &mut x,
                Some(&layer.b_o),
                &layer.ln1_g,
                &layer.ln1_b,
                cfg.eps,
            );
            // ff = act(x * W1 + b1).
            // SAFETY: as above.
            unsafe {
                self.backend.sgemm(
                    t,
                    inter,
                    h,
                    full(x.as_ptr(), h),
                    full(layer.w_1.as_ptr(), inter),
                    ff.as_mut_ptr(),
                    inter,
                    false,
                    threads,
                );
            }
            kernels::bias_act(isa, &mut ff, &layer.b_1, cfg.act);
            // x += ff * W2; x = LN(x + b2).
            // SAFETY: as above.
            unsafe {
                self.backend.sgemm(
                    t,
                    h,
                    inter,
                    full(ff.as_ptr(), inter),
                    full(layer.w_2.as_ptr(), h),
                    x.as_mut_ptr(),
                    h,
                    true,
                    threads,
                );
            }
            kernels::layer_norm(
                isa,
                &mut x,
                Some(&layer.b_2),
                &layer.ln2_g,
                &layer.ln2_b,
                cfg.eps,
            );
        }

        seqs.iter()
            .zip(&offsets)
            .map(|(s, &off)| {
                let mut v = vec![0.0f32; h];
                match pooling {
                    Pooling::Mean => {
                        for p in 0..s.len() {
                            kernels::add(isa, &mut v, &x[(off + p) * h..(off + p + 1) * h]);
                        }
                        let inv = 1.0 / s.len().max(1) as f32;
                        v.iter_mut().for_each(|e| *e *= inv);
                    }
                    Pooling::Cls => {
                        if !s.is_empty() {
                            v.copy_from_slice(&x[off * h..(off + 1) * h]);
                        }
                    }
                }
                // As torch.nn.functional.normalize: x / max(||x||, 1e-12).
                let norm = v.iter().map(|e| e * e).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|e| *e /= norm);
                v
            })
            .collect()
    }

    /// Multi-head self-attention for every (sequence, head) pair in parallel.
    /// Reads Q/K/V in place from `qkv` (`[t, 3h]`) and writes each head's
    /// context into its column block of `ctx` (`[t, h]`).
    fn attention(
        &self,
        seqs: &[&[u32]],
        offsets: &[usize],
        qkv: &[f32],
        ctx: &mut [f32],
        threads: usize,
    ) {
        let (h, nh, isa) = (self.cfg.hidden, self.cfg.heads, self.isa);
        let dh = h / nh;
        let scale = 1.0 / (dh as f32).sqrt();
        let ctx_ptr = SendPtr(ctx.as_mut_ptr());
        let qkv_ptr = qkv.as_ptr() as usize;
        let jobs: Vec<(usize, usize)> = (0..seqs.len())
            .flat_map(|s| (0..nh).map(move |hd| (s, hd)))
            .collect();
        let job = |(s, hd): (usize, usize)| {
            let len = seqs[s].len();
            let off = offsets[s];
            let base = qkv_ptr as *const f32;
            SCORES.with(|cell| {
                let mut scores = cell.borrow_mut();
                if scores.len() < len * len {
                    scores.resize(len * len, 0.0);
                }
                let sc = &mut scores[..len * len];
                // SAFETY: Q/K/V views stay inside `qkv` (rows off..off+len, columns of
                // this head); the ctx block (rows of s, columns of hd) is written by
                // this job only.
                unsafe {
                    let q = View {
                        ptr: base.add(off * 3 * h + hd * dh),
                        rs: 3 * h,
                        cs: 1,
                    };
                    // K^T as a [dh, len] view: element (k, n) = K[n, k].
                    let kt = View {
                        ptr: base.add(off * 3 * h + h + hd * dh),
                        rs: 1,
                        cs: 3 * h,
                    };
                    let v = View {
                        ptr: base.add(off * 3 * h + 2 * h + hd * dh),
                        rs: 3 * h,
                        cs: 1,
                    };
                    self.backend
                        .sgemm(len, len, dh, q, kt, sc.as_mut_ptr(), len, false, 1);
                    kernels::softmax_rows(isa, sc, len, scale);
                    self.backend.sgemm(
                        len,
                        dh,
                        len,
                        View {
                            ptr: sc.as_ptr(),
                            rs: len,
                            cs: 1,
                        },
                        v,
                        ctx_ptr.get().add(off * h + hd * dh),
                        h,
                        false,
                        1,
                    );
                }
            });
        };
        if threads > 1 {
            jobs.into_par_iter().for_each(job);
        } else {
            jobs.into_iter().for_each(job);
        }
    }
}
