//! paperscope's own forward pass for BERT-family sentence encoders (e.g.
//! all-MiniLM-L6-v2), several times faster than Candle's generic `BertModel` on a CPU.
//!
//! Why own it: for embedding short documents on a few cores, most of Candle's time goes
//! to padding, allocation churn and un-fused element-wise ops, and Candle's CPU matmuls
//! cannot use the AMX units of recent Intel CPUs. This module owns the whole pass:
//!
//! * **No padding.** A batch of sequences of different lengths is packed into one
//!   `[total_tokens, hidden]` matrix. The dense layers (fused QKV, attention output,
//!   both feed-forward matmuls) do not care where one sequence ends, so they run as a
//!   few large matmuls over the whole pack; only attention works per sequence.
//! * **Fusion.** Q, K and V are one `[hidden, 3 * hidden]` matmul; biases, GELU and the
//!   residual connections are fused into the matmuls or into the LayerNorm pass.
//! * **Two engines** behind one small trait, [`Compute`]: [`onednn`] (oneDNN, opened at
//!   run time: F32, or BF16 on the AMX tile units, see its docs for what is rounded) and
//!   [`portable`] (F32, the pure-Rust `gemm` crate), used where oneDNN is not installed.
//!   The pass itself — embeddings, LayerNorms, pooling — is written once ([`forward`]).
//! * **Run-time dispatch.** Element-wise kernels are compiled for AVX2 + FMA and for a
//!   portable baseline and chosen at load time ([`kernels`]); the engine and precision
//!   are chosen at load time too, so no build flag or `-C target-cpu` is needed.
//!
//! Packs run in parallel, one per core, each single-threaded: no fork-join per matmul,
//! no idle waits, and robust when other processes share the cores.

mod dnnl;
mod kernels;
mod onednn;
mod portable;

use std::path::PathBuf;

use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};

use super::{BertConfig, EmbedOptions, Error, Forward, ModelDir, Pooling, Precision, Vector};
use dnnl::{Dnnl, DnnlError};
use kernels::{Bf16, Elem, Isa};
use onednn::OneDnn;
use portable::Portable;

/// Most tokens packed into one forward pass by default: bounds memory and keeps a pack's
/// activations near the core's L2 cache, while the matmuls stay large enough to be
/// efficient. [`EmbedOptions::pack_tokens`] overrides it (for measurements).
const MAX_PACK_TOKENS: usize = 512;

/// Errors of reading the weights or setting up an engine; become [`Error`]s at the
/// module's edge.
#[derive(Debug, thiserror::Error)]
enum FastBertError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad safetensors file: {0}")]
    Safetensors(String),
    #[error("missing tensor {0}")]
    MissingTensor(String),
    #[error(transparent)]
    Dnnl(#[from] DnnlError),
    #[error("tensor {name}: {msg}")]
    BadTensor { name: String, msg: String },
}

/// One encoder layer's dense weights, `[in, out]` row-major F32, before an engine
/// takes them (and maybe converts them).
pub(crate) struct DenseWeights {
    w_qkv: Vec<f32>,
    b_qkv: Vec<f32>,
    w_o: Vec<f32>,
    w_1: Vec<f32>,
    b_1: Vec<f32>,
    w_2: Vec<f32>,
}

/// One encoder layer's parameters applied outside the engine (bias + LayerNorm).
struct Norms {
    b_o: Vec<f32>,
    ln1_g: Vec<f32>,
    ln1_b: Vec<f32>,
    b_2: Vec<f32>,
    ln2_g: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// Where a sequence sits in a pack: its first row and its length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    offset: usize,
    len: usize,
}

/// The matrix-multiply side of an encoder layer, implemented once per engine. The
/// forward pass hands it activation buffers of [`Compute::rows`] rows (of which the
/// first `t` are the pack's tokens) and does everything else itself.
trait Compute: Send + Sync {
    /// The element type of matmul inputs (`f32` or [`Bf16`]).
    type T: Elem;
    /// Engine, precision and kernels, for [`Forward::describe`].
    fn name(&self) -> String;
    /// The precision of the matrix multiplies.
    fn precision(&self) -> Precision;
    /// Rows to allocate for a pack of `tokens` tokens (engines may pad).
    fn rows(&self, tokens: usize) -> usize;
    /// `qkv[t, 3h] = x·Wqkv + b`.
    fn qkv(&self, layer: usize, t: usize, x: &[Self::T], qkv: &mut [Self::T]);
    /// Multi-head self-attention of each span: `ctx[t, h]` from `qkv`.
    fn attention(&self, spans: &[Span], qkv: &[Self::T], ctx: &mut [Self::T]);
    /// `x[t, h] += ctx·Wo`.
    fn attn_out(&self, layer: usize, t: usize, ctx: &[Self::T], x: &mut [f32]);
    /// `ff[t, i] = act(x·W1 + b1)`.
    fn ffn_up(&self, layer: usize, t: usize, x: &[Self::T], ff: &mut [Self::T]);
    /// `x[t, h] += ff·W2`.
    fn ffn_down(&self, layer: usize, t: usize, ff: &[Self::T], x: &mut [f32]);
}

/// A loaded BERT encoder running on engine `C`. Immutable after loading, so `embed`
/// may be called from several threads (each call allocates its own activation buffers).
struct FastBert<C: Compute> {
    cfg: BertConfig,
    word: Vec<f32>,
    pos: Vec<f32>,
    /// Row 0 of token_type_embeddings: all token_type_ids are 0.
    type0: Vec<f32>,
    emb_ln_g: Vec<f32>,
    emb_ln_b: Vec<f32>,
    norms: Vec<Norms>,
    compute: C,
    isa: Isa,
    /// Most tokens per packed forward pass.
    pack_tokens: usize,
}

/// Everything read from the weights file, before an engine takes the dense layers.
struct Weights {
    word: Vec<f32>,
    pos: Vec<f32>,
    type0: Vec<f32>,
    emb_ln_g: Vec<f32>,
    emb_ln_b: Vec<f32>,
    norms: Vec<Norms>,
    dense: Vec<DenseWeights>,
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

/// Reads `model.safetensors` for the configuration `cfg`: every tensor checked for shape,
/// Q/K/V fused, PyTorch `[out, in]` weights transposed to `[in, out]`.
fn read_weights(model: &ModelDir) -> Result<Weights, FastBertError> {
    let cfg = &model.config;
    let path = model.weights_path();
    let bytes = std::fs::read(&path).map_err(|source| FastBertError::Io { path, source })?;
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| FastBertError::Safetensors(e.to_string()))?;
    let src = TensorSource { st };

    let h = cfg.hidden_size;
    let word_name = "embeddings.word_embeddings.weight";
    let vocab = src
        .find(word_name)
        .map(|(_, t)| t.shape().first().copied().unwrap_or(0))
        .ok_or_else(|| FastBertError::MissingTensor(word_name.into()))?;
    let word = src.get(word_name, &[vocab, h])?;
    let pos = src.get(
        "embeddings.position_embeddings.weight",
        &[cfg.max_position_embeddings, h],
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

    let mut dense = Vec::with_capacity(cfg.num_hidden_layers);
    let mut norms = Vec::with_capacity(cfg.num_hidden_layers);
    let i = cfg.intermediate_size;
    for l in 0..cfg.num_hidden_layers {
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
        dense.push(DenseWeights {
            w_qkv,
            b_qkv,
            w_o: src.linear_t(&format!("{p}attention.output.dense.weight"), h, h)?,
            w_1: src.linear_t(&format!("{p}intermediate.dense.weight"), i, h)?,
            b_1: src.get(&format!("{p}intermediate.dense.bias"), &[i])?,
            w_2: src.linear_t(&format!("{p}output.dense.weight"), h, i)?,
        });
        norms.push(Norms {
            b_o: src.get(&format!("{p}attention.output.dense.bias"), &[h])?,
            ln1_g: src.get(&format!("{p}attention.output.LayerNorm.weight"), &[h])?,
            ln1_b: src.get(&format!("{p}attention.output.LayerNorm.bias"), &[h])?,
            b_2: src.get(&format!("{p}output.dense.bias"), &[h])?,
            ln2_g: src.get(&format!("{p}output.LayerNorm.weight"), &[h])?,
            ln2_b: src.get(&format!("{p}output.LayerNorm.bias"), &[h])?,
        });
    }
    Ok(Weights {
        word,
        pos,
        type0,
        emb_ln_g,
        emb_ln_b,
        norms,
        dense,
    })
}

impl<C: Compute> FastBert<C> {
    fn new(model: &ModelDir, w: Weights, compute: C, opts: &EmbedOptions) -> FastBert<C> {
        FastBert {
            cfg: model.config.clone(),
            word: w.word,
            pos: w.pos,
            type0: w.type0,
            emb_ln_g: w.emb_ln_g,
            emb_ln_b: w.emb_ln_b,
            norms: w.norms,
            compute,
            isa: Isa::detect(),
            pack_tokens: opts
                .pack_tokens
                .filter(|&n| n > 0)
                .unwrap_or(MAX_PACK_TOKENS),
        }
    }

    /// Embeds a batch of token-id sequences (each already truncated, with
    /// [CLS]/[SEP]; lengths may differ; no padding). Returns one
    /// L2-normalised vector per sequence, pooled by `pooling`, in input order.
    ///
    /// Sequences are sorted by length and packed into groups of up to
    /// `pack_tokens` tokens. Ids outside the vocabulary are mapped to
    /// id 0, tokens beyond `max_position_embeddings` are dropped, and an
    /// empty sequence gives a zero vector (none of these occur with a proper
    /// tokenizer).
    fn embed_packed(&self, seqs: &[&[u32]], pooling: Pooling) -> Vec<Vec<f32>> {
        let h = self.cfg.hidden_size;
        let threads = rayon::current_num_threads();
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
        let clip = |s: &[u32]| s.len().min(self.cfg.max_position_embeddings);
        // Packs of up to `pack_tokens` tokens, but small enough that a small batch still
        // gives every thread a pack.
        let total: usize = seqs.iter().map(|s| clip(s)).sum();
        let cap = self.pack_tokens.min(total.div_ceil(threads)).max(1);
        let mut packs: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < order.len() && (end == start || tokens + clip(seqs[order[end]]) <= cap) {
                tokens += clip(seqs[order[end]]);
                end += 1;
            }
            packs.push(&order[start..end]);
            start = end;
        }
        let run = |pack: &[usize]| {
            let group: Vec<&[u32]> = pack.iter().map(|&i| &seqs[i][..clip(seqs[i])]).collect();
            self.forward(&group, pooling)
        };
        let results: Vec<Vec<Vec<f32>>> = if threads > 1 && packs.len() > 1 {
            packs.par_iter().map(|p| run(p)).collect()
        } else {
            packs.iter().map(|p| run(p)).collect()
        };
        let mut out = vec![Vec::new(); seqs.len()];
        for (pack, vecs) in packs.iter().zip(results) {
            for (&i, v) in pack.iter().zip(vecs) {
                out[i] = v;
            }
        }
        for v in out.iter_mut().filter(|v| v.is_empty()) {
            *v = vec![0.0; h];
        }
        out
    }

    /// Runs the encoder on one pack of sequences, single-threaded, and pools each.
    fn forward(&self, seqs: &[&[u32]], pooling: Pooling) -> Vec<Vec<f32>> {
        let (c, cfg) = (&self.compute, &self.cfg);
        let (h, inter, isa) = (cfg.hidden_size, cfg.intermediate_size, self.isa);
        let (vocab, eps) = (self.word.len() / h, cfg.layer_norm_eps as f32);
        let spans: Vec<Span> = seqs
            .iter()
            .scan(0, |acc, s| {
                let span = Span {
                    offset: *acc,
                    len: s.len(),
                };
                *acc += s.len();
                Some(span)
            })
            .collect();
        let t = seqs.iter().map(|s| s.len()).sum::<usize>();
        if t == 0 {
            return vec![vec![0.0; h]; seqs.len()];
        }
        let rows = c.rows(t);
        // Embeddings: word + position + type 0, then LayerNorm.
        let mut x = vec![0.0f32; rows * h];
        for (s, span) in seqs.iter().zip(&spans) {
            for (p, &id) in s.iter().enumerate() {
                let id = if (id as usize) < vocab {
                    id as usize
                } else {
                    0
                };
                let row = &mut x[(span.offset + p) * h..(span.offset + p + 1) * h];
                row.copy_from_slice(&self.word[id * h..(id + 1) * h]);
                kernels::add(isa, row, &self.pos[p * h..(p + 1) * h]);
                kernels::add(isa, row, &self.type0);
            }
        }
        let zero = C::T::default();
        let mut xin = vec![zero; rows * h];
        let mut qkv = vec![zero; rows * 3 * h];
        let mut ctx = vec![zero; rows * h];
        let mut ff = vec![zero; rows * inter];
        let norm = |x: &mut [f32], xin: &mut [C::T], bias: Option<&[f32]>, g: &[f32], b: &[f32]| {
            C::T::layer_norm(isa, &mut x[..t * h], bias, g, b, eps, &mut xin[..t * h]);
        };
        norm(&mut x, &mut xin, None, &self.emb_ln_g, &self.emb_ln_b);
        for (l, n) in self.norms.iter().enumerate() {
            c.qkv(l, t, &xin, &mut qkv);
            c.attention(&spans, &qkv, &mut ctx);
            c.attn_out(l, t, &ctx, &mut x);
            norm(&mut x, &mut xin, Some(&n.b_o), &n.ln1_g, &n.ln1_b);
            c.ffn_up(l, t, &xin, &mut ff);
            c.ffn_down(l, t, &ff, &mut x);
            norm(&mut x, &mut xin, Some(&n.b_2), &n.ln2_g, &n.ln2_b);
        }

        seqs.iter()
            .zip(&spans)
            .map(|(s, span)| {
                let mut v = vec![0.0f32; h];
                let off = span.offset;
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
}

impl<C: Compute> Forward for FastBert<C> {
    /// Large calls: the engine packs and parallelises them itself; bounded so that
    /// progress is reported regularly.
    fn batch_size(&self) -> usize {
        256
    }

    /// E.g. `onednn bf16 (brg:avx512_core_amx_bf16, oneDNN 2.6.3 (libdnnl.so.2)), packed
    /// (no padding), avx512 element-wise kernels, 2 threads`.
    fn describe(&self) -> String {
        format!(
            "{}, packed (no padding), {} element-wise kernels, {} threads",
            self.compute.name(),
            self.isa.name(),
            rayon::current_num_threads()
        )
    }

    fn precision(&self) -> Precision {
        self.compute.precision()
    }

    fn embed(&self, seqs: &[&[u32]], pooling: Pooling) -> Result<Vec<Vector>, Error> {
        Ok(self.embed_packed(seqs, pooling))
    }
}

/// The engine [`EmbedOptions`] resolve to on this machine, before any weights are loaded.
enum Choice {
    Portable,
    OneDnn(&'static Dnnl, Precision),
}

impl Choice {
    /// oneDNN when installed unless the options say otherwise; BF16 when oneDNN runs BF16
    /// matmuls on AMX tile units unless the options say otherwise (without AMX they are
    /// no faster than F32, so auto keeps the exact path).
    fn resolve(opts: &EmbedOptions) -> Result<Choice, Error> {
        use super::Backend;
        let dnnl = match opts.backend {
            Backend::Portable => None,
            Backend::OneDnn => Some(Dnnl::shared().ok_or_else(|| {
                Error::Unsupported(
                    "oneDNN was asked for but libdnnl.so.2 (oneDNN 2.x) cannot be opened; install libdnnl2".into(),
                )
            })?),
            Backend::Auto | Backend::Candle => Dnnl::shared(),
        };
        Ok(match (dnnl, opts.precision) {
            (None, Some(Precision::Bf16)) => {
                return Err(Error::Unsupported(
                    "bf16 needs the oneDNN engine (libdnnl.so.2)".into(),
                ))
            }
            (None, _) => Choice::Portable,
            (Some(d), Some(Precision::Bf16)) if !d.bf16_supported() => {
                let level = match crate::vector::cpu_cap() {
                    crate::vector::CpuCap::Native => String::new(),
                    cap => format!(" at CPU level {cap} (--cpu / PAPERSCOPE_CPU)"),
                };
                return Err(Error::Unsupported(format!(
                    "{} has no BF16 matrix-multiply kernel for this CPU{level}: it needs \
                     AVX512-BF16 or AMX; use --precision f32",
                    d.version
                )));
            }
            (Some(d), Some(p)) => Choice::OneDnn(d, p),
            (Some(d), None) if d.bf16_on_amx() => Choice::OneDnn(d, Precision::Bf16),
            (Some(d), None) => Choice::OneDnn(d, Precision::F32),
        })
    }
}

/// What [`load`] would run with these options on this machine, e.g. `onednn bf16 on AMX
/// tiles (oneDNN 2.6.3 (libdnnl.so.2)), avx512 element-wise kernels`; for `--version`,
/// logs and tests that skip what the CPU cannot run.
///
/// # Errors
/// [`Error::Unsupported`] for options that cannot be met here.
pub(super) fn describe(opts: &EmbedOptions) -> Result<String, Error> {
    let engine = match Choice::resolve(opts)? {
        Choice::Portable => "portable f32 (gemm crate)".to_string(),
        Choice::OneDnn(d, p) => {
            let amx = if p == Precision::Bf16 && d.bf16_on_amx() {
                " on AMX tiles"
            } else {
                ""
            };
            format!("onednn {}{amx} ({})", p.name(), d.version)
        }
    };
    Ok(format!(
        "{engine}, {} element-wise kernels",
        Isa::detect().name()
    ))
}

/// Loads the model's weights into the engine the options resolve to.
///
/// # Errors
/// Unreadable or malformed weights ([`Error::Model`]); options that cannot be met here
/// ([`Error::Unsupported`]).
pub(super) fn load(model: &ModelDir, opts: &EmbedOptions) -> Result<Box<dyn Forward>, Error> {
    let choice = Choice::resolve(opts)?;
    let build = || -> Result<Box<dyn Forward>, FastBertError> {
        let mut w = read_weights(model)?;
        let cfg = &model.config;
        let (h, i, nh, act) = (
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.num_attention_heads,
            cfg.activation,
        );
        let dense = std::mem::take(&mut w.dense);
        let isa = Isa::detect();
        Ok(match choice {
            Choice::Portable => {
                let c = Portable::new(dense, h, i, nh, act, isa);
                Box::new(FastBert::new(model, w, c, opts))
            }
            Choice::OneDnn(d, Precision::F32) => {
                let c: OneDnn<f32> = OneDnn::new(d, &dense, h, i, nh, act, isa)?;
                Box::new(FastBert::new(model, w, c, opts))
            }
            Choice::OneDnn(d, Precision::Bf16) => {
                let c: OneDnn<Bf16> = OneDnn::new(d, &dense, h, i, nh, act, isa)?;
                Box::new(FastBert::new(model, w, c, opts))
            }
        })
    };
    build().map_err(|e| Error::model(model, e))
}
