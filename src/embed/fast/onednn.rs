//! The oneDNN engine: every matrix multiply of the encoder through oneDNN, in F32 or in
//! BF16 (products of BF16 inputs accumulated in F32: on AMX CPUs, the tile units).
//!
//! What stays F32 in the BF16 engine: the residual stream, every LayerNorm, softmax,
//! biases, GELU's input, pooling and all accumulation. What is rounded to BF16: the
//! weights and the inputs of each matrix multiply (the LayerNorm outputs, Q/K/V, the
//! attention probabilities, the attention context and the GELU outputs). That is less
//! rounding than PyTorch's `model.to(bfloat16)`, which keeps everything in BF16.
//!
//! **Fixed shapes.** oneDNN's fast (brgemm/AMX) matmuls need the row count fixed when
//! the primitive is created (with a run-time row count it falls back to a slower
//! kernel), and creating one takes about a millisecond. So row counts are rounded up to
//! a multiple of [`ROW_QUANTUM`] and primitives are created on first use and cached per
//! shape; packed activations carry the few extra rows (zeros).
//!
//! **Attention** runs per sequence and head as two small matmuls (`Q·Kᵀ`, then `P·V`)
//! on head-major copies of Q, K and V padded to the same quantum; padded keys are masked
//! (probability 0), padded queries are never copied out. (Strided views straight into the
//! QKV buffer make oneDNN fall back to a kernel 3-5x slower.)

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use super::dnnl::{DType, Dnnl, DnnlError, Eltwise, Matmul, Packed, PostOp, Tensor, Weights};
use super::kernels::{Act, Bf16, Elem, Isa};
use super::{Compute, DenseWeights, Span};
use crate::embed::Precision;

/// Row counts (tokens of a pack, tokens of a sequence) are rounded up to a multiple of
/// this: AMX tiles are 16 rows, and it bounds the number of distinct primitives.
const ROW_QUANTUM: usize = 16;

/// Score given to padded keys: far below any real score, finite so that no NaN can arise.
const MASKED: f32 = -1e30;

/// Rows of the primitives the weights are packed with (any count gives the same layout).
const REFERENCE_ROWS: usize = 256;

/// Activation types oneDNN can take, with their oneDNN type.
pub(super) trait DnnlElem: Elem {
    const DTYPE: DType;
}

impl DnnlElem for f32 {
    const DTYPE: DType = DType::F32;
}

impl DnnlElem for Bf16 {
    const DTYPE: DType = DType::Bf16;
}

/// The four dense layers of an encoder layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Dense {
    /// `qkv = x·Wqkv + b` (fused Q, K and V).
    Qkv,
    /// `x += ctx·Wo` (bias added by the following LayerNorm).
    AttnOut,
    /// `ff = act(x·W1 + b1)`.
    Up,
    /// `x += ff·W2` (bias added by the following LayerNorm).
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Dense(Dense, usize),
    /// `S = Q·Kᵀ` for one head of a sequence padded to this length.
    Scores(usize),
    /// `ctx = P·V`, same.
    Context(usize),
}

/// One encoder layer's weights, packed for oneDNN.
struct Layer {
    qkv: Packed,
    b_qkv: Vec<f32>,
    attn_out: Packed,
    up: Packed,
    b_1: Vec<f32>,
    down: Packed,
}

/// The oneDNN engine with activations of type `T` (`f32` or [`Bf16`]).
pub(super) struct OneDnn<T> {
    dnnl: &'static Dnnl,
    layers: Vec<Layer>,
    hidden: usize,
    intermediate: usize,
    heads: usize,
    act: Eltwise,
    isa: Isa,
    /// The matmuls the weights were packed with; others reuse their weights layout.
    reference: HashMap<Dense, Arc<Matmul>>,
    cache: RwLock<HashMap<Key, Arc<Matmul>>>,
    _t: PhantomData<T>,
}

impl<T: DnnlElem> OneDnn<T> {
    /// Packs the weights for oneDNN (converting them to `T`).
    ///
    /// # Errors
    /// When oneDNN cannot create the matmuls for these shapes.
    pub(super) fn new(
        dnnl: &'static Dnnl,
        layers: &[DenseWeights],
        hidden: usize,
        intermediate: usize,
        heads: usize,
        act: Act,
        isa: Isa,
    ) -> Result<OneDnn<T>, DnnlError> {
        let act = match act {
            Act::GeluErf => Eltwise::GeluErf,
            Act::GeluTanh => Eltwise::GeluTanh,
            Act::Relu => Eltwise::Relu,
        };
        let mut engine = OneDnn {
            dnnl,
            layers: Vec::new(),
            hidden,
            intermediate,
            heads,
            act,
            isa,
            reference: HashMap::new(),
            cache: RwLock::new(HashMap::new()),
            _t: PhantomData,
        };
        for kind in [Dense::Qkv, Dense::AttnOut, Dense::Up, Dense::Down] {
            let m = engine.create_dense(kind, REFERENCE_ROWS, None)?;
            engine.reference.insert(kind, Arc::new(m));
        }
        let (h, i) = (hidden, intermediate);
        for w in layers {
            let pack = |kind, w: &[f32], k, n| engine.reference[&kind].pack_weights(w, k, n);
            engine.layers.push(Layer {
                qkv: pack(Dense::Qkv, &w.w_qkv, h, 3 * h)?,
                b_qkv: w.b_qkv.clone(),
                attn_out: pack(Dense::AttnOut, &w.w_o, h, h)?,
                up: pack(Dense::Up, &w.w_1, h, i)?,
                b_1: w.b_1.clone(),
                down: pack(Dense::Down, &w.w_2, i, h)?,
            });
        }
        Ok(engine)
    }

    /// oneDNN's implementation of the widest dense layer, e.g. `brg:avx512_core_amx_bf16`.
    pub(super) fn implementation(&self) -> &str {
        &self.reference[&Dense::Up].implementation
    }

    /// The matmul of a dense layer over `m` rows; weights in the reference layout
    /// (`like`), or in oneDNN's preferred one when creating the reference itself.
    fn create_dense(
        &self,
        kind: Dense,
        m: usize,
        like: Option<&Matmul>,
    ) -> Result<Matmul, DnnlError> {
        let (h, i) = (self.hidden, self.intermediate);
        let (k, n, out, post) = match kind {
            Dense::Qkv => (h, 3 * h, T::DTYPE, vec![]),
            Dense::AttnOut => (h, h, DType::F32, vec![PostOp::Sum]),
            Dense::Up => (h, i, T::DTYPE, vec![PostOp::Eltwise(self.act)]),
            Dense::Down => (i, h, DType::F32, vec![PostOp::Sum]),
        };
        let bias =
            matches!(kind, Dense::Qkv | Dense::Up).then(|| Tensor::matrix(1, n, n, DType::F32));
        let weights = match like {
            Some(other) => Weights::SameAs(other),
            None => Weights::Packed {
                dims: vec![k as i64, n as i64],
                dtype: T::DTYPE,
            },
        };
        self.dnnl.matmul(
            &Tensor::matrix(m, k, k, T::DTYPE),
            &weights,
            bias.as_ref(),
            &Tensor::matrix(m, n, n, out),
            &post,
        )
    }

    /// The cached matmul for `key`, created on first use.
    fn get(&self, key: Key) -> Arc<Matmul> {
        if let Some(m) = self
            .cache
            .read()
            .expect("matmul cache lock poisoned")
            .get(&key)
        {
            return m.clone();
        }
        let dh = self.hidden / self.heads;
        let made = match key {
            Key::Dense(kind, m) => self.create_dense(kind, m, Some(&self.reference[&kind])),
            Key::Scores(l) => self.dnnl.matmul(
                &Tensor::matrix(l, dh, dh, T::DTYPE),
                &Weights::Strided(Tensor::transposed(dh, l, dh, T::DTYPE)),
                None,
                &Tensor::matrix(l, l, l, DType::F32),
                &[],
            ),
            Key::Context(l) => self.dnnl.matmul(
                &Tensor::matrix(l, l, l, T::DTYPE),
                &Weights::Strided(Tensor::matrix(l, dh, dh, T::DTYPE)),
                None,
                &Tensor::matrix(l, dh, dh, T::DTYPE),
                &[],
            ),
        };
        // Shapes here differ from ones created successfully at load time only in their
        // row counts, which oneDNN supports for any value.
        let m = Arc::new(made.unwrap_or_else(|e| panic!("{e} for {key:?}. This is a bug.")));
        self.cache
            .write()
            .expect("matmul cache lock poisoned")
            .entry(key)
            .or_insert(m)
            .clone()
    }

    /// Runs dense layer `kind` of `layer` over `rows(t)` rows.
    fn dense(
        &self,
        kind: Dense,
        layer: usize,
        t: usize,
        src: *const T,
        dst: *mut std::ffi::c_void,
    ) {
        let w = &self.layers[layer];
        let (weights, bias) = match kind {
            Dense::Qkv => (&w.qkv, Some(w.b_qkv.as_ptr())),
            Dense::AttnOut => (&w.attn_out, None),
            Dense::Up => (&w.up, Some(w.b_1.as_ptr())),
            Dense::Down => (&w.down, None),
        };
        let m = self.get(Key::Dense(kind, self.rows(t)));
        // SAFETY: the forward pass sizes every activation buffer to `rows(t)` rows of
        // the widths these matmuls were created with; weights were packed by the
        // reference matmul whose layout this one shares.
        unsafe { m.run(src.cast(), weights.as_ptr(), bias, dst) };
    }
}

impl<T: DnnlElem> Compute for OneDnn<T> {
    type T = T;

    fn precision(&self) -> Precision {
        match T::DTYPE {
            DType::F32 => Precision::F32,
            DType::Bf16 => Precision::Bf16,
        }
    }

    fn name(&self) -> String {
        let precision = match T::DTYPE {
            DType::F32 => "f32",
            DType::Bf16 => "bf16",
        };
        format!(
            "onednn {precision} ({}, {})",
            self.implementation(),
            self.dnnl.version
        )
    }

    fn rows(&self, tokens: usize) -> usize {
        tokens.div_ceil(ROW_QUANTUM) * ROW_QUANTUM
    }

    fn qkv(&self, layer: usize, t: usize, x: &[T], out: &mut [T]) {
        self.dense(Dense::Qkv, layer, t, x.as_ptr(), out.as_mut_ptr().cast());
    }

    fn attention(&self, spans: &[Span], qkv: &[T], ctx: &mut [T]) {
        let (h, nh) = (self.hidden, self.heads);
        let dh = h / nh;
        let scale = 1.0 / (dh as f32).sqrt();
        let max_l = spans.iter().map(|s| self.rows(s.len)).max().unwrap_or(0);
        // Head-major Q, K, V ([nh][l][dh]), scores, probabilities, one head's context.
        let mut heads = vec![T::default(); 3 * nh * max_l * dh];
        let mut scores = vec![0f32; max_l * max_l];
        let mut probs = vec![T::default(); max_l * max_l];
        let mut out = vec![T::default(); max_l * dh];
        for &Span { offset, len } in spans.iter().filter(|s| s.len > 0) {
            let l = self.rows(len);
            let (qkv_heads, block) = (&mut heads[..3 * nh * l * dh], l * dh);
            for (r, row) in qkv[offset * 3 * h..(offset + len) * 3 * h]
                .chunks_exact(3 * h)
                .enumerate()
            {
                for (j, part) in row.chunks_exact(dh).enumerate() {
                    qkv_heads[j * block + r * dh..][..dh].copy_from_slice(part);
                }
            }
            for j in 0..3 * nh {
                qkv_heads[j * block + len * dh..(j + 1) * block].fill(T::default());
            }
            let s_mm = self.get(Key::Scores(l));
            let c_mm = self.get(Key::Context(l));
            let (scores, probs) = (&mut scores[..l * l], &mut probs[..l * l]);
            for hd in 0..nh {
                let q = qkv_heads[hd * block..].as_ptr();
                let k = qkv_heads[(nh + hd) * block..].as_ptr();
                let v = qkv_heads[(2 * nh + hd) * block..].as_ptr();
                // SAFETY: q, k, v are l x dh blocks inside `heads`; scores is l x l.
                unsafe { s_mm.run(q.cast(), k.cast(), None, scores.as_mut_ptr().cast()) };
                // Padded keys are masked out (their probability underflows to 0), so
                // every row is a whole number of 16-lane vectors; rows of padded queries
                // are never read back and are left as they are.
                for (s, p) in scores
                    .chunks_exact_mut(l)
                    .zip(probs.chunks_exact_mut(l))
                    .take(len)
                {
                    s[len..].fill(MASKED);
                    T::softmax(self.isa, s, scale, p);
                }
                // SAFETY: probs is l x l, v l x dh, out l x dh.
                unsafe {
                    c_mm.run(
                        probs.as_ptr().cast(),
                        v.cast(),
                        None,
                        out.as_mut_ptr().cast(),
                    )
                };
                for r in 0..len {
                    ctx[(offset + r) * h + hd * dh..][..dh]
                        .copy_from_slice(&out[r * dh..(r + 1) * dh]);
                }
            }
        }
    }

    fn attn_out(&self, layer: usize, t: usize, ctx: &[T], x: &mut [f32]) {
        self.dense(
            Dense::AttnOut,
            layer,
            t,
            ctx.as_ptr(),
            x.as_mut_ptr().cast(),
        );
    }

    fn ffn_up(&self, layer: usize, t: usize, x: &[T], ff: &mut [T]) {
        self.dense(Dense::Up, layer, t, x.as_ptr(), ff.as_mut_ptr().cast());
    }

    fn ffn_down(&self, layer: usize, t: usize, ff: &[T], x: &mut [f32]) {
        self.dense(Dense::Down, layer, t, ff.as_ptr(), x.as_mut_ptr().cast());
    }
}
