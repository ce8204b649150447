//! The portable engine: F32 everywhere, matrix multiplies by the pure-Rust [`gemm`]
//! crate (the one Candle uses), which needs no system library and picks AVX2/FMA or
//! AVX-512 micro-kernels at run time. Used where oneDNN is not installed.
//!
//! Attention runs per (sequence, head) and reads Q, K and V in place from the fused QKV
//! buffer through strided views (`gemm` takes any strides), so nothing is copied.

use super::kernels::{self, Act, Isa};
use super::{Compute, DenseWeights, Span};
use crate::embed::Precision;

/// Row-major strided read-only matrix view.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    /// Row stride in elements.
    rs: usize,
    /// Column stride in elements (1 for a plain row-major matrix).
    cs: usize,
}

impl View {
    fn rows(ptr: *const f32, ld: usize) -> View {
        View { ptr, rs: ld, cs: 1 }
    }
}

/// The portable engine: the model's dense weights as row-major `[in, out]` F32.
pub(super) struct Portable {
    layers: Vec<DenseWeights>,
    hidden: usize,
    intermediate: usize,
    heads: usize,
    act: Act,
    isa: Isa,
}

impl Portable {
    pub(super) fn new(
        layers: Vec<DenseWeights>,
        hidden: usize,
        intermediate: usize,
        heads: usize,
        act: Act,
        isa: Isa,
    ) -> Portable {
        Portable {
            layers,
            hidden,
            intermediate,
            heads,
            act,
            isa,
        }
    }
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

impl Compute for Portable {
    type T = f32;

    fn name(&self) -> String {
        "portable f32 (gemm crate)".into()
    }

    fn precision(&self) -> Precision {
        Precision::F32
    }

    fn rows(&self, tokens: usize) -> usize {
        tokens
    }

    fn qkv(&self, layer: usize, t: usize, x: &[f32], out: &mut [f32]) {
        let (w, h) = (&self.layers[layer], self.hidden);
        // Bias pre-loaded, product accumulated.
        for row in out[..t * 3 * h].chunks_exact_mut(3 * h) {
            row.copy_from_slice(&w.b_qkv);
        }
        // SAFETY: x is t x h, w_qkv h x 3h, out t x 3h; no aliasing.
        unsafe {
            gemm(
                t,
                3 * h,
                h,
                View::rows(x.as_ptr(), h),
                View::rows(w.w_qkv.as_ptr(), 3 * h),
                out.as_mut_ptr(),
                3 * h,
                true,
            );
        }
    }

    fn attention(&self, spans: &[Span], qkv: &[f32], ctx: &mut [f32]) {
        let (h, nh, isa) = (self.hidden, self.heads, self.isa);
        let dh = h / nh;
        let scale = 1.0 / (dh as f32).sqrt();
        let ctx_ptr = SendPtr(ctx.as_mut_ptr());
        let qkv_ptr = qkv.as_ptr() as usize;
        let jobs: Vec<(Span, usize)> = spans
            .iter()
            .flat_map(|&s| (0..nh).map(move |hd| (s, hd)))
            .collect();
        let job = |(Span { offset: off, len }, hd): (Span, usize)| {
            let base = qkv_ptr as *const f32;
            SCORES.with(|cell| {
                let mut scores = cell.borrow_mut();
                if scores.len() < len * len {
                    scores.resize(len * len, 0.0);
                }
                let sc = &mut scores[..len * len];
                // SAFETY: Q/K/V views stay inside `qkv` (rows off..off+len, columns of
                // this head); the ctx block (rows of the span, columns of hd) is written
                // by this job only.
                unsafe {
                    let q = View::rows(base.add(off * 3 * h + hd * dh), 3 * h);
                    // K^T as a [dh, len] view: element (k, n) = K[n, k].
                    let kt = View {
                        ptr: base.add(off * 3 * h + h + hd * dh),
                        rs: 1,
                        cs: 3 * h,
                    };
                    let v = View::rows(base.add(off * 3 * h + 2 * h + hd * dh), 3 * h);
                    gemm(len, len, dh, q, kt, sc.as_mut_ptr(), len, false);
                    kernels::softmax_rows(isa, sc, len, scale);
                    gemm(
                        len,
                        dh,
                        len,
                        View::rows(sc.as_ptr(), len),
                        v,
                        ctx_ptr.get().add(off * h + hd * dh),
                        h,
                        false,
                    );
                }
            });
        };
        jobs.into_iter().for_each(job);
    }

    fn attn_out(&self, layer: usize, t: usize, ctx: &[f32], x: &mut [f32]) {
        let (w, h) = (&self.layers[layer], self.hidden);
        // SAFETY: ctx is t x h, w_o h x h, x t x h; no aliasing.
        unsafe {
            gemm(
                t,
                h,
                h,
                View::rows(ctx.as_ptr(), h),
                View::rows(w.w_o.as_ptr(), h),
                x.as_mut_ptr(),
                h,
                true,
            );
        }
    }

    fn ffn_up(&self, layer: usize, t: usize, x: &[f32], ff: &mut [f32]) {
        let (w, h, i) = (&self.layers[layer], self.hidden, self.intermediate);
        // SAFETY: x is t x h, w_1 h x i, ff t x i; no aliasing.
        unsafe {
            gemm(
                t,
                i,
                h,
                View::rows(x.as_ptr(), h),
                View::rows(w.w_1.as_ptr(), i),
                ff.as_mut_ptr(),
                i,
                false,
            );
        }
        kernels::bias_act(self.isa, &mut ff[..t * i], &w.b_1, self.act);
    }

    fn ffn_down(&self, layer: usize, t: usize, ff: &[f32], x: &mut [f32]) {
        let (w, h, i) = (&self.layers[layer], self.hidden, self.intermediate);
        // SAFETY: ff is t x i, w_2 i x h, x t x h; no aliasing.
        unsafe {
            gemm(
                t,
                h,
                i,
                View::rows(ff.as_ptr(), i),
                View::rows(w.w_2.as_ptr(), h),
                x.as_mut_ptr(),
                h,
                true,
            );
        }
    }
}

/// `C[m, n] (+)= A[m, k] * B[k, n]` with the `gemm` crate, single-threaded; views may be
/// strided. With `accumulate` the product is added to `C` (fuses residual connections).
///
/// # Safety
/// The pointers must be valid for the given shapes and strides and `c` must not alias
/// `a` or `b`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // gemm computes dst = alpha * dst + beta * lhs * rhs (dst read only if read_dst).
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        ldc as isize,
        accumulate,
        a.ptr,
        a.cs as isize,
        a.rs as isize,
        b.ptr,
        b.cs as isize,
        b.rs as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}
