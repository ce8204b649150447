//! Vector math shared by the embedder and the index, and the one place that decides which
//! SIMD instruction sets this process uses.
//!
//! **Why a process-wide cap.** paperscope picks its kernels at run time from what the CPU
//! offers (AVX-512 with BF16 dot products, AVX2 + FMA, or portable code), and so does
//! oneDNN (AMX tiles, AVX-512, AVX2). A machine with AMX therefore never runs the AVX2
//! paths that an AMD EPYC without AVX-512 runs. [`set_cpu_cap`] lowers the ceiling for the
//! whole process — paperscope's own kernels and oneDNN's alike, as oneDNN's own
//! `ONEDNN_MAX_CPU_ISA` does for it — so that every path can be tested on one machine
//! (`paperscope --cpu avx2 ...`, `PAPERSCOPE_CPU=avx2 scripts/test.sh`).

use std::str::FromStr;
use std::sync::OnceLock;

/// Instruction-set level a kernel is compiled for, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Portable code (whatever the baseline target offers).
    Generic,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 (F, BW, VL, DQ) + FMA.
    Avx512,
    /// AVX-512 plus the BF16 dot product (`vdpbf16ps`).
    Avx512Bf16,
}

impl Simd {
    /// The best level this CPU supports, ignoring any cap.
    pub fn detected() -> Simd {
        static DETECTED: OnceLock<Simd> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                let avx512 = has!("avx512f")
                    && has!("avx512bw")
                    && has!("avx512vl")
                    && has!("avx512dq")
                    && has!("fma");
                if avx512 && has!("avx512bf16") {
                    return Simd::Avx512Bf16;
                }
                if avx512 {
                    return Simd::Avx512;
                }
                if has!("avx2") && has!("fma") {
                    return Simd::Avx2;
                }
            }
            Simd::Generic
        })
    }

    /// The level to use: the CPU's, lowered to the process's [`CpuCap`].
    pub fn current() -> Simd {
        Simd::detected().min(cpu_cap().ceiling())
    }

    pub fn name(self) -> &'static str {
        match self {
            Simd::Generic => "generic",
            Simd::Avx2 => "avx2+fma",
            Simd::Avx512 => "avx512",
            Simd::Avx512Bf16 => "avx512+bf16",
        }
    }
}

/// A ceiling on the instruction sets paperscope and oneDNN may use in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CpuCap {
    /// Everything the CPU has (AMX included). The default.
    #[default]
    Native,
    /// AVX-512 (with BF16 dot products where present), no AMX tiles.
    Avx512,
    /// AVX2 + FMA: what an AMD EPYC of the Zen 2/3 generations offers.
    Avx2,
    /// No vector extensions beyond the baseline; oneDNN limited to SSE4.1.
    Generic,
}

impl CpuCap {
    fn ceiling(self) -> Simd {
        match self {
            CpuCap::Native | CpuCap::Avx512 => Simd::Avx512Bf16,
            CpuCap::Avx2 => Simd::Avx2,
            CpuCap::Generic => Simd::Generic,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CpuCap::Native => "native",
            CpuCap::Avx512 => "avx512",
            CpuCap::Avx2 => "avx2",
            CpuCap::Generic => "generic",
        }
    }
}

impl std::fmt::Display for CpuCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--cpu` value that is not one of the known levels.
#[derive(Debug, thiserror::Error)]
#[error("unknown CPU level '{0}': expected native, avx512, avx2 or generic")]
pub struct ParseCpuCapError(String);

impl FromStr for CpuCap {
    type Err = ParseCpuCapError;

    fn from_str(s: &str) -> Result<CpuCap, ParseCpuCapError> {
        match s.to_ascii_lowercase().as_str() {
            "" | "native" | "auto" => Ok(CpuCap::Native),
            "avx512" => Ok(CpuCap::Avx512),
            "avx2" => Ok(CpuCap::Avx2),
            "generic" | "portable" => Ok(CpuCap::Generic),
            _ => Err(ParseCpuCapError(s.to_string())),
        }
    }
}

static CAP: OnceLock<CpuCap> = OnceLock::new();

/// Sets the process's [`CpuCap`]. Call it before anything is embedded or searched (the
/// binary does, first thing); oneDNN reads it once, when it is opened.
///
/// # Errors
/// When a different cap is already in force (a cap cannot be raised or changed later).
pub fn set_cpu_cap(cap: CpuCap) -> Result<(), CpuCapAlreadySet> {
    let current = *CAP.get_or_init(|| cap);
    if current == cap {
        Ok(())
    } else {
        Err(CpuCapAlreadySet {
            current,
            wanted: cap,
        })
    }
}

/// [`set_cpu_cap`] called twice with different caps.
#[derive(Debug, thiserror::Error)]
#[error("the CPU level of this process is already {current}; cannot change it to {wanted}")]
pub struct CpuCapAlreadySet {
    pub current: CpuCap,
    pub wanted: CpuCap,
}

/// The process's [`CpuCap`] ([`CpuCap::Native`] unless [`set_cpu_cap`] said otherwise).
pub fn cpu_cap() -> CpuCap {
    CAP.get().copied().unwrap_or_default()
}

/// `x` rounded to the nearest BF16, ties to even (the conversion PyTorch and oneDNN use),
/// as its bits; `x` is finite. Used by the embedder's BF16 kernels and the index's walk
/// vectors alike, so both round the same way.
#[inline(always)]
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// Scales `v` to unit length in place and returns its length before; a (near-)zero
/// vector is left as it is (there is no direction to keep).
pub fn normalize(v: &mut [f32]) -> f32 {
    let norm = dot(v, v).sqrt();
    if norm >= 1e-6 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

/// Dot product of two equal-length vectors; for unit vectors, their cosine similarity.
///
/// The hot loop of every exact scan and re-scoring, so it is compiled for AVX-512 and
/// AVX2 + FMA as well as the baseline and picks one by [`Simd::current`].
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    match Simd::current() {
        // SAFETY: `Simd::current` never exceeds what the CPU supports.
        Simd::Avx512 | Simd::Avx512Bf16 => return unsafe { dot_avx512(a, b) },
        // SAFETY: as above.
        Simd::Avx2 => return unsafe { dot_avx2(a, b) },
        Simd::Generic => {}
    }
    dot_inline(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    dot_inline(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_inline(a, b)
}

/// [`dot`]'s body, inlined into each target-feature instantiation.
#[inline(always)]
fn dot_inline(a: &[f32], b: &[f32]) -> f32 {
    // 64 independent accumulators let the compiler vectorise without reassociating, in
    // four (AVX-512) or eight (AVX2) registers, so additions do not wait on each other.
    const LANES: usize = 64;
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    let mut width = LANES / 2;
    while width > 0 {
        for k in 0..width {
            acc[k] += acc[k + width];
        }
        width /= 2;
    }
    acc[0] + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum_at_every_length() {
        for n in [0, 1, 7, 63, 64, 65, 384, 1000] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-3, "n = {n}");
            assert!((dot_inline(&a, &b) as f64 - want).abs() < 1e-3, "n = {n}");
        }
    }

    #[test]
    fn caps_parse_and_order() {
        assert_eq!("AVX2".parse::<CpuCap>().unwrap(), CpuCap::Avx2);
        assert_eq!("native".parse::<CpuCap>().unwrap(), CpuCap::Native);
        assert!("sse9".parse::<CpuCap>().is_err());
        assert!(Simd::Generic < Simd::Avx2 && Simd::Avx512 < Simd::Avx512Bf16);
        assert_eq!(CpuCap::Avx2.ceiling(), Simd::Avx2);
        assert!(Simd::current() <= Simd::detected());
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two BF16 values: ties go to the even one.
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16_bits(-2.0), 0xc000);
    }
}
