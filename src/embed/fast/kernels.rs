//! Element-wise and row-wise kernels (bias, GELU, LayerNorm, softmax, pooling).
//!
//! Every kernel is written once as plain, branch-free Rust over slices (`*_impl`
//! functions marked `#[inline(always)]`) and instantiated twice: inside an
//! `#[target_feature(enable = "avx2,fma")]` wrapper, where LLVM auto-vectorises
//! the loops to 8-wide AVX2 with fused multiply-adds, and as a portable
//! fallback for CPUs without AVX2. The choice is made once at load time
//! ([`Isa::detect`]), so the binary needs no `-C target-cpu` flags.
//!
//! Reductions use 8 independent accumulators so that LLVM may vectorise them
//! without fast-math (strict IEEE ordering otherwise forbids it).
//! `exp` and `erf` are branch-free polynomial approximations (a few ULP in
//! f32) so that they vectorise too: a scalar libm `erff` per element would
//! cost about as much as the feed-forward matmul itself.

/// Instruction set the kernels were instantiated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 AVX2 + FMA (auto-vectorised 8-wide).
    Avx2Fma,
    /// Portable scalar / baseline-SIMD code.
    Generic,
}

impl Isa {
    /// Detects the best instruction set available on the running CPU.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2Fma;
            }
        }
        Isa::Generic
    }

    /// Short name for [`super::FastBert::kernel_path`].
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx2Fma => "avx2+fma",
            Isa::Generic => "generic",
        }
    }
}

/// Feed-forward activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Exact GELU: `0.5 x (1 + erf(x / sqrt 2))` (HF `gelu`).
    GeluErf,
    /// Tanh approximation (HF `gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// ReLU.
    Relu,
}

/// Multiply-add that becomes one `vfmadd` when compiled with FMA and stays a
/// plain `a * b + c` otherwise (`f32::mul_add` without FMA is a slow libm call).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Branch-free `exp(x)` (Cephes-style: range reduction by ln 2, degree-6
/// polynomial, exponent bits assembled directly). Relative error ~2 ULP;
/// inputs below -87.3 flush to 0 (what softmax needs).
#[inline(always)]
fn exp_approx<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-87.33, 88.37);
    // Round x / ln2 to nearest with the 1.5 * 2^23 trick (no libm call, vectorises).
    let magic = 12_582_912.0f32;
    let n = (x * std::f32::consts::LOG2_E + magic) - magic;
    let r = madd::<FMA>(n, -0.693_359_4, x);
    let r = madd::<FMA>(n, 2.121_944_4e-4, r);
    let mut p = 1.987_569_1e-4f32;
    p = madd::<FMA>(p, r, 1.398_199_9e-3);
    p = madd::<FMA>(p, r, 8.333_452e-3);
    p = madd::<FMA>(p, r, 4.166_579_6e-2);
    p = madd::<FMA>(p, r, 1.666_666_5e-1);
    p = madd::<FMA>(p, r, 0.5);
    p = madd::<FMA>(p, r * r, r + 1.0);
    // 2^n via the exponent field; n is in [-126, 128) after the clamp.
    let bits = ((n as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

/// Branch-free `erf(x)`: odd rational minimax approximation on [-4, 4]
/// (the one used by Eigen / TensorFlow), clamped to [-4, 4]. Max error
/// ~1e-7 absolute, i.e. as exact as f32 `erff` for GELU purposes.
#[inline(always)]
fn erf_approx<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = madd::<FMA>(x2, p, 2.770_681_4e-8);
    p = madd::<FMA>(x2, p, -2.101_024e-6);
    p = madd::<FMA>(x2, p, -5.692_506_4e-5);
    p = madd::<FMA>(x2, p, -7.349_906_3e-4);
    p = madd::<FMA>(x2, p, -2.954_6e-3);
    p = madd::<FMA>(x2, p, -1.609_603_3e-2);
    p *= x;
    let mut q = -1.456_607_2e-5f32;
    q = madd::<FMA>(x2, q, -2.133_740_5e-4);
    q = madd::<FMA>(x2, q, -1.682_827e-3);
    q = madd::<FMA>(x2, q, -7.373_329e-3);
    q = madd::<FMA>(x2, q, -1.426_474e-2);
    p / q
}

#[inline(always)]
fn act_impl<const FMA: bool>(x: &mut [f32], bias: &[f32], act: Act) {
    let n = bias.len();
    match act {
        Act::GeluErf => {
            for row in x.chunks_exact_mut(n) {
                for (v, b) in row.iter_mut().zip(bias) {
                    let y = *v + *b;
                    *v = 0.5 * y * (1.0 + erf_approx::<FMA>(y * std::f32::consts::FRAC_1_SQRT_2));
                }
            }
        }
        Act::GeluTanh => {
            const C: f32 = 0.797_884_6; // sqrt(2/pi)
            for row in x.chunks_exact_mut(n) {
                for (v, b) in row.iter_mut().zip(bias) {
                    let y = *v + *b;
                    let u = C * madd::<FMA>(0.044_715 * y, y * y, y);
                    // tanh(u) = 1 - 2 / (exp(2u) + 1)
                    let t = 1.0 - 2.0 / (exp_approx::<FMA>(2.0 * u) + 1.0);
                    *v = 0.5 * y * (1.0 + t);
                }
            }
        }
        Act::Relu => {
            for row in x.chunks_exact_mut(n) {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = (*v + *b).max(0.0);
                }
            }
        }
    }
}

/// Sum with 8 independent lanes (vectorisable without reassociation).
#[inline(always)]
fn sum8(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rem = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for v in rem {
        s += *v;
    }
    s
}

#[inline(always)]
fn max8(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rem = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for v in acc.iter().chain(rem) {
        m = if *v > m { *v } else { m };
    }
    m
}

#[inline(always)]
fn layer_norm_impl<const FMA: bool>(
    x: &mut [f32],
    bias: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let n = gamma.len();
    let inv_n = 1.0 / n as f32;
    for row in x.chunks_exact_mut(n) {
        if let Some(b) = bias {
            for (v, b) in row.iter_mut().zip(b) {
                *v += *b;
            }
        }
        let mean = sum8(row) * inv_n;
        // Two-pass variance: accurate even for rows with a large mean.
        let mut acc = [0.0f32; 8];
        let chunks = row.chunks_exact(8);
        let rem = chunks.remainder();
        for c in chunks {
            for i in 0..8 {
                let d = c[i] - mean;
                acc[i] = madd::<FMA>(d, d, acc[i]);
            }
        }
        let mut var =
            ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for v in rem {
            var += (v - mean) * (v - mean);
        }
        let rstd = 1.0 / (var * inv_n + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = madd::<FMA>((*v - mean) * rstd, *g, *b);
        }
    }
}

#[inline(always)]
fn softmax_rows_impl<const FMA: bool>(x: &mut [f32], n: usize, scale: f32) {
    for row in x.chunks_exact_mut(n) {
        let m = max8(row);
        for v in row.iter_mut() {
            *v = exp_approx::<FMA>((*v - m) * scale);
        }
        let inv = 1.0 / sum8(row);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

#[inline(always)]
fn add_impl(y: &mut [f32], x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += *x;
    }
}

macro_rules! dispatch {
    ($(#[$m:meta])* $name:ident, $avx:ident, $gen:ident, ($($arg:ident : $ty:ty),*), $body_fma:expr, $body_gen:expr) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx($($arg: $ty),*) {
            $body_fma
        }
        fn $gen($($arg: $ty),*) {
            $body_gen
        }
        $(#[$m])*
        #[inline]
        pub fn $name(isa: Isa, $($arg: $ty),*) {
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx2Fma` is only produced by `Isa::detect` after
                // checking that the CPU supports AVX2 and FMA.
                Isa::Avx2Fma => unsafe { $avx($($arg),*) },
                _ => $gen($($arg),*),
            }
        }
    };
}

dispatch!(
    /// `x[r, :] = act(x[r, :] + bias)` for every row of `x` (row length `bias.len()`).
    bias_act, bias_act_avx2, bias_act_gen,
    (x: &mut [f32], bias: &[f32], act: Act),
    act_impl::<true>(x, bias, act),
    act_impl::<false>(x, bias, act)
);

dispatch!(
    /// In-place LayerNorm of every row of `x`, after adding `bias` if given
    /// (fuses the dense layer's bias, the residual is already in `x`).
    layer_norm, layer_norm_avx2, layer_norm_gen,
    (x: &mut [f32], bias: Option<&[f32]>, gamma: &[f32], beta: &[f32], eps: f32),
    layer_norm_impl::<true>(x, bias, gamma, beta, eps),
    layer_norm_impl::<false>(x, bias, gamma, beta, eps)
);

dispatch!(
    /// Row-wise `softmax(scale * x)` over rows of length `n`.
    softmax_rows, softmax_rows_avx2, softmax_rows_gen,
    (x: &mut [f32], n: usize, scale: f32),
    softmax_rows_impl::<true>(x, n, scale),
    softmax_rows_impl::<false>(x, n, scale)
);

dispatch!(
    /// `y += x`.
    add, add_avx2, add_gen,
    (y: &mut [f32], x: &[f32]),
    add_impl(y, x),
    add_impl(y, x)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut x = -30.0f32;
        while x < 30.0 {
            let a = exp_approx::<false>(x);
            let b = x.exp();
            assert!(((a - b) / b).abs() < 1e-6, "{x}: {a} vs {b}");
            x += 0.0137;
        }
        assert_eq!(
            exp_approx::<false>(-1000.0),
            0.0f32.max(exp_approx::<false>(-1000.0))
        );
        assert!(exp_approx::<false>(-1000.0) < 1e-37);
    }

    #[test]
    fn erf_matches_f64() {
        // Reference: erf via its Taylor / continued expansion in f64 is overkill; use
        // known values plus the identity erf(x) ~ 1 for large x.
        let known = [
            (0.0f64, 0.0f64),
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (1.5, 0.966_105_146_475_310_7),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (-0.7, -0.677_801_193_837_418_5),
        ];
        for (x, e) in known {
            let a = erf_approx::<false>(x as f32) as f64;
            assert!((a - e).abs() < 3e-7, "{x}: {a} vs {e}");
        }
        assert!((erf_approx::<false>(10.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn avx2_and_generic_agree() {
        let isa = Isa::detect();
        let data: Vec<f32> = (0..384 * 3)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let bias: Vec<f32> = (0..384).map(|i| i as f32 / 1000.0).collect();
        let mut a = data.clone();
        let mut b = data.clone();
        bias_act(isa, &mut a, &bias, Act::GeluErf);
        bias_act(Isa::Generic, &mut b, &bias, Act::GeluErf);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
        let g = vec![1.0f32; 384];
        let z = vec![0.0f32; 384];
        let mut a = data.clone();
        layer_norm(isa, &mut a, Some(&bias), &g, &z, 1e-12);
        let m: f32 = a[..384].iter().sum::<f32>() / 384.0;
        assert!(m.abs() < 1e-5);
        let mut s = data[..256].to_vec();
        softmax_rows(isa, &mut s, 128, 0.5);
        let t: f32 = s[..128].iter().sum();
        assert!((t - 1.0).abs() < 1e-5);
    }
}
