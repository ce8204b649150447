//! Matrix multiplication back-ends.
//!
//! The default is the pure-Rust [`gemm`] crate (the one Candle uses): it needs
//! no system library, dispatches to AVX2/FMA (or AVX-512) micro-kernels at run
//! time, and takes its thread count per call. Optionally a CBLAS library
//! (OpenBLAS) is opened at run time with `libloading`, so the program still
//! builds and runs where the library is absent.

use std::sync::Arc;

/// Row-major strided read-only matrix view.
#[derive(Clone, Copy)]
pub(crate) struct View {
    pub ptr: *const f32,
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements (1 for a plain row-major matrix).
    pub cs: usize,
}

type CblasSgemm = unsafe extern "C" fn(
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    f32,
    *const f32,
    i32,
    *const f32,
    i32,
    f32,
    *mut f32,
    i32,
);

/// A CBLAS `cblas_sgemm` found at run time.
pub(crate) struct Cblas {
    name: String,
    sgemm: CblasSgemm,
    // Keeps the library mapped for as long as `sgemm` may be called.
    _lib: libloading::Library,
}

impl Cblas {
    /// The process-wide CBLAS, opened on first use and never closed: unloading
    /// OpenBLAS while its thread pool still exists crashes the process (seen at
    /// exit of a test binary that had dropped an embedder), and one mapping per
    /// process is all that is needed.
    pub(crate) fn shared() -> Option<Arc<Cblas>> {
        static CBLAS: std::sync::OnceLock<Option<Arc<Cblas>>> = std::sync::OnceLock::new();
        CBLAS.get_or_init(|| Cblas::open().map(Arc::new)).clone()
    }

    /// Tries the usual sonames of OpenBLAS and makes it single-threaded: the
    /// engine parallelises over packs itself, and OpenBLAS' own spinning
    /// threads fight rayon's (measured: 3x slower end to end).
    fn open() -> Option<Cblas> {
        const NAMES: [&str; 4] = [
            "libopenblas.so.0",
            "libopenblas.so",
            "libopenblasp.so.0",
            "libblas.so.3",
        ];
        for name in NAMES {
            // SAFETY: loading a shared library runs its initialisers; OpenBLAS'
            // are benign. The symbol types match the CBLAS C prototypes.
            unsafe {
                let Ok(lib) = libloading::Library::new(name) else {
                    continue;
                };
                let Ok(sym) = lib.get::<CblasSgemm>(b"cblas_sgemm\0") else {
                    continue;
                };
                let sgemm = *sym;
                if let Ok(set) = lib.get::<unsafe extern "C" fn(i32)>(b"openblas_set_num_threads\0")
                {
                    set(1);
                }
                return Some(Cblas {
                    name: name.to_string(),
                    sgemm,
                    _lib: lib,
                });
            }
        }
        None
    }
}

/// Which library runs the dense matmuls.
#[derive(Clone)]
pub(crate) enum Backend {
    /// Pure-Rust `gemm` crate.
    GemmCrate,
    /// CBLAS loaded at run time.
    Cblas(Arc<Cblas>),
}

impl Backend {
    pub(crate) fn name(&self) -> String {
        match self {
            Backend::GemmCrate => "gemm crate".to_string(),
            Backend::Cblas(c) => format!("cblas ({})", c.name),
        }
    }

    /// `C[m, n] (+)= A[m, k] * B[k, n]` with row-major `A` (`lda`), `B`
    /// (`ldb`) and `C` (`ldc`). With `accumulate` the product is added to `C`
    /// (used to fuse residual connections); `threads` > 1 splits the work.
    ///
    /// # Safety
    /// The pointers must be valid for the given shapes and strides and `c`
    /// must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn sgemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: View,
        b: View,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        threads: usize,
    ) {
        match self {
            // B may be plain row-major (cs == 1) or a transposed view (rs == 1).
            Backend::Cblas(lib) if a.cs == 1 && (b.cs == 1 || b.rs == 1) && threads == 1 => {
                let (trans_b, ldb) = if b.cs == 1 { (111, b.rs) } else { (112, b.cs) };
                (lib.sgemm)(
                    101, // row major
                    111, // A not transposed
                    trans_b,
                    m as i32,
                    n as i32,
                    k as i32,
                    1.0,
                    a.ptr,
                    a.rs as i32,
                    b.ptr,
                    ldb as i32,
                    if accumulate { 1.0 } else { 0.0 },
                    c,
                    ldc as i32,
                );
            }
            _ => gemm_crate(m, n, k, a, b, c, ldc, accumulate, threads, 1.0),
        }
    }
}

/// `C (+)= scale * A * B` with the `gemm` crate; views may be strided, which
/// lets attention read Q/K/V heads in place and read `K` transposed.
///
/// # Safety
/// As [`Backend::sgemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_crate(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    threads: usize,
    scale: f32,
) {
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
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
        scale,
        false,
        false,
        false,
        par,
    );
}
