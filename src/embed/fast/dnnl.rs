//! oneDNN (Intel's deep-learning kernel library), opened at run time.
//!
//! Why oneDNN: on CPUs with AMX (Sapphire Rapids and later) its `brgemm` matmuls run
//! BF16 products on the AMX tile units, several times faster than any F32 kernel; on
//! AVX-512 CPUs its F32 matmuls are also faster than the pure-Rust `gemm` crate. It is
//! what PyTorch itself uses on CPU.
//!
//! Why opened at run time (`libloading`) rather than linked: paperscope must build and
//! run where the library is absent (it then uses its portable kernels), and no crate
//! binds oneDNN's C API in a maintained way. The bindings below cover the handful of
//! calls paperscope needs — matmul with bias and post-ops, weight reorder — for the
//! **v2.x C API** (`libdnnl.so.2`; Debian 12 ships 2.6.3 as `libdnnl2`). The v3 API
//! changed these signatures, so a v3 library is simply not used.
//!
//! Memory descriptors are opaque to us: the library fills buffers we own ([`MemDesc`]),
//! larger than any v2.x `dnnl_memory_desc_t` (696 bytes in 2.6), and we only pass
//! pointers to them back. Descriptors the library computes (weights layout, scratchpad)
//! are read through the primitive descriptor that owns them, which we keep alive.
//!
//! Threading: Debian's build uses OpenMP. paperscope parallelises over packs of texts
//! itself (rayon), so every thread that executes a primitive first sets its OpenMP
//! thread count to 1; each thread has its own stream and scratchpad buffer
//! ("user" scratchpad mode), so one primitive may run on several threads at once.

use crate::vector::CpuCap;
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};
use std::ptr;

type Handle = *mut c_void;
type Status = i32;
type Dims = [i64; 12];

const SUCCESS: Status = 0;
const ENGINE_CPU: i32 = 1;
const STREAM_DEFAULT_FLAGS: u32 = 1;
const FORMAT_ANY: i32 = 1;
const SCRATCHPAD_MODE_USER: i32 = 1;
const QUERY_IMPL_INFO_STR: i32 = 8;
const QUERY_WEIGHTS_MD: i32 = 131;
const QUERY_SCRATCHPAD_MD: i32 = 136;
const ARG_SRC: i32 = 1;
const ARG_DST: i32 = 17;
const ARG_WEIGHTS: i32 = 33;
const ARG_BIAS: i32 = 41;
const ARG_SCRATCHPAD: i32 = 80;
const ARG_FROM: i32 = ARG_SRC;
const ARG_TO: i32 = ARG_DST;

/// `dnnl_data_type_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum DType {
    Bf16 = 2,
    F32 = 3,
}

/// `dnnl_alg_kind_t` of the element-wise post-ops used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Eltwise {
    Relu = 31,
    GeluErf = 48,
    GeluTanh = 207,
}

/// What a matmul does to its output after the product (and bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PostOp {
    /// `dst = dst + product`: the residual connection.
    Sum,
    /// `dst = f(product)`.
    Eltwise(Eltwise),
}

/// Storage for a `dnnl_memory_desc_t` (v2.x: 696 bytes).
#[repr(C, align(16))]
struct MemDesc([u8; 2048]);

/// Storage for a `dnnl_matmul_desc_t` (v2.x: 2800 bytes).
#[repr(C, align(16))]
struct OpDesc([u8; 8192]);

#[repr(C)]
struct ExecArg {
    arg: i32,
    memory: Handle,
}

#[repr(C)]
struct Version {
    major: i32,
    minor: i32,
    patch: i32,
    hash: *const c_char,
    cpu_runtime: u32,
    gpu_runtime: u32,
}

/// `DNNL_RUNTIME_OMP`.
const CPU_RUNTIME_OMP: u32 = 2;

// `dnnl_cpu_isa_t` values (oneDNN 2.x dnnl_types.h) for `dnnl_set_max_cpu_isa`.
const ISA_SSE41: i32 = 0x1;
const ISA_AVX2: i32 = 0x7;
const ISA_AVX512_CORE_BF16: i32 = 0xe7;

/// Declares the C functions we use, loads them all, and fails if one is missing.
macro_rules! api {
    ($($name:ident : fn($($arg:ty),*) -> $ret:ty;)*) => {
        #[allow(non_snake_case)]
        struct Api { $($name: unsafe extern "C" fn($($arg),*) -> $ret,)* }
        impl Api {
            /// # Safety
            /// The declared signatures must match the library's (oneDNN v2.x).
            unsafe fn load(lib: &libloading::Library) -> Option<Api> {
                Some(Api { $($name: *lib.get(concat!(stringify!($name), "\0").as_bytes()).ok()?,)* })
            }
        }
    };
}

api! {
    dnnl_version: fn() -> *const Version;
    dnnl_engine_create: fn(*mut Handle, i32, usize) -> Status;
    dnnl_stream_create: fn(*mut Handle, Handle, u32) -> Status;
    dnnl_stream_destroy: fn(Handle) -> Status;
    dnnl_memory_desc_init_by_strides: fn(*mut MemDesc, i32, *const i64, i32, *const i64) -> Status;
    dnnl_memory_desc_init_by_tag: fn(*mut MemDesc, i32, *const i64, i32, i32) -> Status;
    dnnl_memory_desc_get_size: fn(*const MemDesc) -> usize;
    dnnl_memory_create: fn(*mut Handle, *const MemDesc, Handle, *mut c_void) -> Status;
    dnnl_memory_destroy: fn(Handle) -> Status;
    dnnl_matmul_desc_init: fn(*mut OpDesc, *const MemDesc, *const MemDesc, *const MemDesc, *const MemDesc) -> Status;
    dnnl_primitive_attr_create: fn(*mut Handle) -> Status;
    dnnl_primitive_attr_destroy: fn(Handle) -> Status;
    dnnl_primitive_attr_set_scratchpad_mode: fn(Handle, i32) -> Status;
    dnnl_primitive_attr_set_post_ops: fn(Handle, Handle) -> Status;
    dnnl_post_ops_create: fn(*mut Handle) -> Status;
    dnnl_post_ops_destroy: fn(Handle) -> Status;
    dnnl_post_ops_append_sum: fn(Handle, f32) -> Status;
    dnnl_post_ops_append_eltwise: fn(Handle, f32, i32, f32, f32) -> Status;
    dnnl_primitive_desc_create: fn(*mut Handle, *const OpDesc, Handle, Handle, Handle) -> Status;
    dnnl_reorder_primitive_desc_create: fn(*mut Handle, *const MemDesc, Handle, *const MemDesc, Handle, Handle) -> Status;
    dnnl_primitive_desc_destroy: fn(Handle) -> Status;
    dnnl_primitive_desc_query: fn(Handle, i32, i32, *mut c_void) -> Status;
    dnnl_primitive_desc_query_md: fn(Handle, i32, i32) -> *const MemDesc;
    dnnl_primitive_create: fn(*mut Handle, Handle) -> Status;
    dnnl_primitive_destroy: fn(Handle) -> Status;
    dnnl_primitive_execute: fn(Handle, Handle, i32, *const ExecArg) -> Status;
    dnnl_stream_wait: fn(Handle) -> Status;
}

/// A oneDNN call failed; the string names the call and the status code.
#[derive(Debug, thiserror::Error)]
#[error("oneDNN: {0}")]
pub(crate) struct DnnlError(String);

fn check(status: Status, what: &str) -> Result<(), DnnlError> {
    if status == SUCCESS {
        Ok(())
    } else {
        Err(DnnlError(format!("{what} failed with status {status}")))
    }
}

/// The loaded library and its CPU engine. One per process ([`Dnnl::shared`]).
pub(crate) struct Dnnl {
    api: Api,
    engine: Handle,
    omp_set_num_threads: Option<unsafe extern "C" fn(i32)>,
    /// e.g. `oneDNN 2.6.3 (libdnnl.so.2)`.
    pub(crate) version: String,
    // Keeps the library mapped; never unloaded (see `shared`).
    _lib: libloading::Library,
}

// SAFETY: the engine handle is immutable after creation and oneDNN documents engines
// as thread-safe; all other state is plain function pointers.
unsafe impl Send for Dnnl {}
unsafe impl Sync for Dnnl {}

impl Dnnl {
    /// The process-wide library, opened on first use; `None` when `libdnnl.so.2` is not
    /// installed or is not a v2.x build. Never closed: primitives and thread-local
    /// streams may outlive any one embedder, and unloading a library with live OpenMP
    /// threads crashes the process.
    pub(crate) fn shared() -> Option<&'static Dnnl> {
        static DNNL: std::sync::OnceLock<Option<Dnnl>> = std::sync::OnceLock::new();
        DNNL.get_or_init(|| match Dnnl::open() {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::debug!("oneDNN not used: {e}");
                None
            }
        })
        .as_ref()
    }

    fn open() -> Result<Dnnl, DnnlError> {
        const NAME: &str = "libdnnl.so.2";
        // SAFETY: loading oneDNN runs its initialisers (benign); the symbol signatures
        // declared in `api!` are those of the v2.x C API, checked by version below
        // before anything else is called.
        unsafe {
            let lib = libloading::Library::new(NAME)
                .map_err(|e| DnnlError(format!("cannot open {NAME}: {e}")))?;
            let api = Api::load(&lib)
                .ok_or_else(|| DnnlError(format!("{NAME} lacks a v2.x C API function")))?;
            let v = &*(api.dnnl_version)();
            if v.major != 2 {
                return Err(DnnlError(format!(
                    "{NAME} is version {}, need 2.x",
                    v.major
                )));
            }
            let version = format!("oneDNN {}.{}.{} ({NAME})", v.major, v.minor, v.patch);
            let omp_set_num_threads = if v.cpu_runtime == CPU_RUNTIME_OMP {
                // Resolved through the library's dependencies (libgomp).
                Some(
                    *lib.get::<unsafe extern "C" fn(i32)>(b"omp_set_num_threads\0")
                        .map_err(|e| DnnlError(format!("omp_set_num_threads: {e}")))?,
                )
            } else {
                None
            };
            // The process's CPU cap (crate::vector) applies to oneDNN too; it must be set
            // before oneDNN first looks at the CPU, i.e. before the engine exists.
            let max_isa = match crate::vector::cpu_cap() {
                CpuCap::Native => None,
                CpuCap::Avx512 => Some(ISA_AVX512_CORE_BF16),
                CpuCap::Avx2 => Some(ISA_AVX2),
                CpuCap::Generic => Some(ISA_SSE41),
            };
            if let Some(isa) = max_isa {
                let set = lib
                    .get::<unsafe extern "C" fn(i32) -> Status>(b"dnnl_set_max_cpu_isa\0")
                    .map_err(|e| DnnlError(format!("dnnl_set_max_cpu_isa: {e}")))?;
                check(set(isa), "set_max_cpu_isa")?;
            }
            let mut engine = ptr::null_mut();
            check(
                (api.dnnl_engine_create)(&mut engine, ENGINE_CPU, 0),
                "engine_create",
            )?;
            Ok(Dnnl {
                api,
                engine,
                omp_set_num_threads,
                version,
                _lib: lib,
            })
        }
    }

    /// The implementation oneDNN picks for a small BF16 matmul on this CPU (probed once),
    /// or `None` when it has none (CPUs without AVX512-BF16 or AMX, or a lowered CPU
    /// level): oneDNN 2.x then fails to create the primitive ("status 3", unimplemented).
    fn bf16_probe(&'static self) -> Option<&'static str> {
        static PROBE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        PROBE
            .get_or_init(|| {
                self.matmul(
                    &Tensor::matrix(64, 64, 64, DType::Bf16),
                    &Weights::Packed {
                        dims: vec![64, 64],
                        dtype: DType::Bf16,
                    },
                    None,
                    &Tensor::matrix(64, 64, 64, DType::F32),
                    &[],
                )
                .ok()
                .map(|m| m.implementation.clone())
            })
            .as_deref()
    }

    /// Whether oneDNN can run BF16 matmuls here at all.
    pub(crate) fn bf16_supported(&'static self) -> bool {
        self.bf16_probe().is_some()
    }

    /// Whether oneDNN runs BF16 matmuls on AMX tile units here (the probe's
    /// implementation name says which kernel oneDNN picked for this CPU).
    pub(crate) fn bf16_on_amx(&'static self) -> bool {
        self.bf16_probe().is_some_and(|i| i.contains("amx"))
    }

    /// A memory descriptor for a dense tensor with explicit strides (in elements).
    fn md(&self, dims: &[i64], strides: &[i64], dtype: DType) -> Result<Box<MemDesc>, DnnlError> {
        assert!(
            dims.len() == strides.len() && dims.len() <= 12,
            "tensor rank mismatch. This is a bug."
        );
        let mut md = Box::new(MemDesc([0; 2048]));
        // SAFETY: `md` is larger than the library's descriptor; dims/strides are valid
        // arrays of `ndims` elements.
        check(
            unsafe {
                (self.api.dnnl_memory_desc_init_by_strides)(
                    &mut *md,
                    dims.len() as i32,
                    dims.as_ptr(),
                    dtype as i32,
                    strides.as_ptr(),
                )
            },
            "memory_desc_init_by_strides",
        )?;
        Ok(md)
    }

    /// Creates `dst = post(src · weights + bias)` for row-major operands described by
    /// `src` and `dst`. Weights are either a fixed strided layout or, with
    /// [`Weights::Packed`], the layout the implementation prefers (fill it with
    /// [`Matmul::pack_weights`]).
    pub(crate) fn matmul(
        &'static self,
        src: &Tensor,
        weights: &Weights<'_>,
        bias: Option<&Tensor>,
        dst: &Tensor,
        post: &[PostOp],
    ) -> Result<Matmul, DnnlError> {
        let src_md = self.md(&src.dims, &src.strides, src.dtype)?;
        let dst_md = self.md(&dst.dims, &dst.strides, dst.dtype)?;
        let bias_md = bias
            .map(|b| self.md(&b.dims, &b.strides, b.dtype))
            .transpose()?;
        let wei_owned = match weights {
            Weights::Strided(t) => Some(self.md(&t.dims, &t.strides, t.dtype)?),
            Weights::Packed { dims, dtype } => {
                let mut md = Box::new(MemDesc([0; 2048]));
                // SAFETY: as in `md`.
                check(
                    unsafe {
                        (self.api.dnnl_memory_desc_init_by_tag)(
                            &mut *md,
                            dims.len() as i32,
                            Dims::from_slice(dims).as_ptr(),
                            *dtype as i32,
                            FORMAT_ANY,
                        )
                    },
                    "memory_desc_init_by_tag",
                )?;
                Some(md)
            }
            Weights::SameAs(_) => None,
        };
        let wei_md: *const MemDesc = match (&wei_owned, weights) {
            (Some(md), _) => &**md,
            (None, Weights::SameAs(other)) => other.pd.md(QUERY_WEIGHTS_MD),
            (None, _) => unreachable!("only SameAs borrows a descriptor"),
        };
        let mut op = Box::new(OpDesc([0; 8192]));
        let bias_ptr = bias_md.as_deref().map_or(ptr::null(), |m| m as *const _);
        // SAFETY: all descriptors were initialised by the library above.
        check(
            unsafe {
                (self.api.dnnl_matmul_desc_init)(&mut *op, &*src_md, wei_md, bias_ptr, &*dst_md)
            },
            "matmul_desc_init",
        )?;
        let attr = Attr::new(self, post)?;
        let mut pd = ptr::null_mut();
        // SAFETY: `op` and `attr` are valid; no forward hint is needed for inference.
        check(
            unsafe {
                (self.api.dnnl_primitive_desc_create)(
                    &mut pd,
                    &*op,
                    attr.0,
                    self.engine,
                    ptr::null_mut(),
                )
            },
            "matmul primitive_desc_create",
        )?;
        let pd = PrimitiveDesc { dnnl: self, pd };
        let mut prim = ptr::null_mut();
        // SAFETY: `pd` is a valid primitive descriptor.
        check(
            unsafe { (self.api.dnnl_primitive_create)(&mut prim, pd.pd) },
            "matmul primitive_create",
        )?;
        Ok(Matmul {
            implementation: pd.implementation(),
            scratch_size: pd.md_size(QUERY_SCRATCHPAD_MD),
            weights_size: pd.md_size(QUERY_WEIGHTS_MD),
            src_md,
            dst_md,
            bias_md,
            prim: Primitive { dnnl: self, prim },
            pd,
        })
    }

    /// Runs `f` with this thread's stream and scratchpad, creating them on first use.
    fn with_thread<R>(&'static self, f: impl FnOnce(Handle, &mut Vec<u64>) -> R) -> R {
        thread_local! {
            static CTX: RefCell<Option<ThreadCtx>> = const { RefCell::new(None) };
        }
        CTX.with(|cell| {
            let mut ctx = cell.borrow_mut();
            let ctx = ctx.get_or_insert_with(|| {
                if let Some(set) = self.omp_set_num_threads {
                    // SAFETY: a plain OpenMP call setting this thread's team size.
                    unsafe { set(1) };
                }
                let mut stream = ptr::null_mut();
                // SAFETY: the engine is valid for the life of the process.
                let status = unsafe {
                    (self.api.dnnl_stream_create)(&mut stream, self.engine, STREAM_DEFAULT_FLAGS)
                };
                assert_eq!(
                    status, SUCCESS,
                    "oneDNN stream_create failed. This is a bug."
                );
                ThreadCtx {
                    dnnl: self,
                    stream,
                    scratch: Vec::new(),
                }
            });
            f(ctx.stream, &mut ctx.scratch)
        })
    }

    /// Wraps `handle` (memory laid out as `md`) in a temporary memory object.
    ///
    /// # Safety
    /// `handle` must point to memory valid for `md` for the life of the result.
    unsafe fn memory(&'static self, md: *const MemDesc, handle: *mut c_void) -> Memory {
        let mut mem = ptr::null_mut();
        let status = (self.api.dnnl_memory_create)(&mut mem, md, self.engine, handle);
        assert_eq!(
            status, SUCCESS,
            "oneDNN memory_create failed. This is a bug."
        );
        Memory { dnnl: self, mem }
    }

    /// Executes `prim` on this thread with `args` (`(arg kind, descriptor, pointer)`).
    ///
    /// # Safety
    /// Every pointer must be valid for its descriptor; outputs must not alias inputs
    /// except where the primitive allows it (sum post-op: dst is read).
    unsafe fn execute(
        &'static self,
        prim: Handle,
        args: &[(i32, *const MemDesc, *mut c_void)],
        scratch: Option<(*const MemDesc, usize)>,
    ) {
        self.with_thread(|stream, buf| {
            let mut mems: Vec<(i32, Memory)> = args
                .iter()
                .map(|&(kind, md, p)| (kind, self.memory(md, p)))
                .collect();
            if let Some((md, size)) = scratch.filter(|&(_, size)| size > 0) {
                if buf.len() * 8 < size {
                    buf.resize(size.div_ceil(8), 0);
                }
                mems.push((ARG_SCRATCHPAD, self.memory(md, buf.as_mut_ptr().cast())));
            }
            let exec: Vec<ExecArg> = mems
                .iter()
                .map(|(arg, m)| ExecArg {
                    arg: *arg,
                    memory: m.mem,
                })
                .collect();
            let status =
                (self.api.dnnl_primitive_execute)(prim, stream, exec.len() as i32, exec.as_ptr());
            assert_eq!(
                status, SUCCESS,
                "oneDNN primitive_execute failed. This is a bug."
            );
            // CPU streams execute synchronously; the wait is for form's sake and cheap.
            (self.api.dnnl_stream_wait)(stream);
        })
    }
}

/// A dense operand: dimensions and strides in elements (row-major when `strides` are
/// the running products of `dims`).
#[derive(Clone, Debug)]
pub(crate) struct Tensor {
    pub dims: Vec<i64>,
    pub strides: Vec<i64>,
    pub dtype: DType,
}

impl Tensor {
    /// A `[rows, cols]` matrix whose rows are `ld` elements apart.
    pub(crate) fn matrix(rows: usize, cols: usize, ld: usize, dtype: DType) -> Tensor {
        Tensor {
            dims: vec![rows as i64, cols as i64],
            strides: vec![ld as i64, 1],
            dtype,
        }
    }

    /// A `[rows, cols]` matrix stored transposed (column `j` contiguous, `ld` apart).
    pub(crate) fn transposed(rows: usize, cols: usize, ld: usize, dtype: DType) -> Tensor {
        Tensor {
            dims: vec![rows as i64, cols as i64],
            strides: vec![1, ld as i64],
            dtype,
        }
    }
}

/// How a matmul's weights are laid out.
pub(crate) enum Weights<'w> {
    /// As given.
    Strided(Tensor),
    /// In the layout oneDNN prefers for these shapes (blocked for AMX tiles); the
    /// caller packs them once with [`Matmul::pack_weights`].
    Packed { dims: Vec<i64>, dtype: DType },
    /// The packed layout of another matmul with the same weights shape and type: the
    /// layout oneDNN picks does not depend on the number of rows, so weights packed
    /// once serve matmuls of every row count.
    SameAs(&'w Matmul),
}

/// Conversion of a dims slice to the fixed-size array the C API reads.
trait FromSlice {
    fn from_slice(s: &[i64]) -> Self;
}

impl FromSlice for Dims {
    fn from_slice(s: &[i64]) -> Dims {
        let mut d = [0i64; 12];
        d[..s.len()].copy_from_slice(s);
        d
    }
}

/// A ready-to-run matmul.
pub(crate) struct Matmul {
    /// oneDNN's implementation name, e.g. `brg:avx512_core_amx_bf16`.
    pub(crate) implementation: String,
    scratch_size: usize,
    weights_size: usize,
    src_md: Box<MemDesc>,
    dst_md: Box<MemDesc>,
    bias_md: Option<Box<MemDesc>>,
    prim: Primitive,
    /// Owns the weights and scratchpad descriptors we query.
    pd: PrimitiveDesc,
}

// SAFETY: a created primitive is immutable; oneDNN allows executing it from several
// threads at once, and each execution here brings its own stream and scratchpad.
unsafe impl Send for Matmul {}
unsafe impl Sync for Matmul {}

impl Matmul {
    /// Converts row-major F32 weights `[k, n]` (`w[i * n + j]`) into this matmul's
    /// weights layout and type (a reorder primitive, run once at load time).
    ///
    /// # Errors
    /// When oneDNN cannot reorder into the layout (not expected for matmul weights).
    pub(crate) fn pack_weights(&self, w: &[f32], k: usize, n: usize) -> Result<Packed, DnnlError> {
        assert_eq!(w.len(), k * n, "weights shape. This is a bug.");
        let dnnl = self.pd.dnnl;
        let src_md = dnnl.md(&[k as i64, n as i64], &[n as i64, 1], DType::F32)?;
        let dst_md = self.pd.md(QUERY_WEIGHTS_MD);
        let mut pd = ptr::null_mut();
        // SAFETY: both descriptors are valid; default attributes.
        check(
            unsafe {
                (dnnl.api.dnnl_reorder_primitive_desc_create)(
                    &mut pd,
                    &*src_md,
                    dnnl.engine,
                    dst_md,
                    dnnl.engine,
                    ptr::null_mut(),
                )
            },
            "reorder primitive_desc_create",
        )?;
        let pd = PrimitiveDesc { dnnl, pd };
        let mut prim = ptr::null_mut();
        // SAFETY: `pd` is valid.
        check(
            unsafe { (dnnl.api.dnnl_primitive_create)(&mut prim, pd.pd) },
            "reorder primitive_create",
        )?;
        let prim = Primitive { dnnl, prim };
        let mut out = Packed(vec![0u64; self.weights_size.div_ceil(8)]);
        // SAFETY: `w` holds k x n f32 as `src_md` says; `out` is as large as the packed
        // layout; the reorder writes only `out`.
        unsafe {
            dnnl.execute(
                prim.prim,
                &[
                    (ARG_FROM, &*src_md, w.as_ptr() as *mut c_void),
                    (ARG_TO, dst_md, out.0.as_mut_ptr().cast()),
                ],
                None,
            );
        }
        Ok(out)
    }

    /// Runs the matmul on this thread.
    ///
    /// # Safety
    /// `src`, `dst` and `bias` must be valid for the descriptors this matmul was created
    /// with, `weights` for its weights layout (a [`Packed`] made by this matmul's
    /// [`Matmul::pack_weights`], or memory matching [`Weights::Strided`]); `dst` must
    /// not overlap the inputs.
    pub(crate) unsafe fn run(
        &self,
        src: *const c_void,
        weights: *const c_void,
        bias: Option<*const f32>,
        dst: *mut c_void,
    ) {
        let wei_md = self.pd.md(QUERY_WEIGHTS_MD);
        let mut args = vec![
            (ARG_SRC, &*self.src_md as *const MemDesc, src as *mut c_void),
            (ARG_WEIGHTS, wei_md, weights as *mut c_void),
            (ARG_DST, &*self.dst_md as *const MemDesc, dst),
        ];
        if let (Some(md), Some(b)) = (&self.bias_md, bias) {
            args.push((ARG_BIAS, &**md as *const MemDesc, b as *mut c_void));
        }
        let scratch = (self.pd.md(QUERY_SCRATCHPAD_MD), self.scratch_size);
        self.pd.dnnl.execute(self.prim.prim, &args, Some(scratch));
    }
}

/// Weights in a matmul's preferred layout (64-bit words keep them 8-byte aligned).
pub(crate) struct Packed(Vec<u64>);

impl Packed {
    pub(crate) fn as_ptr(&self) -> *const c_void {
        self.0.as_ptr().cast()
    }
}

/// Primitive attributes: user-managed scratchpad plus the post-ops.
struct Attr(Handle, &'static Dnnl);

impl Attr {
    fn new(dnnl: &'static Dnnl, post: &[PostOp]) -> Result<Attr, DnnlError> {
        let api = &dnnl.api;
        let mut attr = ptr::null_mut();
        // SAFETY: plain constructor calls on handles we own and destroy in Drop.
        unsafe {
            check((api.dnnl_primitive_attr_create)(&mut attr), "attr_create")?;
            let attr = Attr(attr, dnnl);
            check(
                (api.dnnl_primitive_attr_set_scratchpad_mode)(attr.0, SCRATCHPAD_MODE_USER),
                "attr_set_scratchpad_mode",
            )?;
            if !post.is_empty() {
                let mut ops = ptr::null_mut();
                check((api.dnnl_post_ops_create)(&mut ops), "post_ops_create")?;
                for op in post {
                    let status = match op {
                        PostOp::Sum => (api.dnnl_post_ops_append_sum)(ops, 1.0),
                        PostOp::Eltwise(alg) => {
                            (api.dnnl_post_ops_append_eltwise)(ops, 1.0, *alg as i32, 0.0, 0.0)
                        }
                    };
                    if status != SUCCESS {
                        (api.dnnl_post_ops_destroy)(ops);
                        return Err(DnnlError(format!("post_ops_append({op:?}) failed")));
                    }
                }
                let status = (api.dnnl_primitive_attr_set_post_ops)(attr.0, ops);
                (api.dnnl_post_ops_destroy)(ops);
                check(status, "attr_set_post_ops")?;
            }
            Ok(attr)
        }
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: created by attr_create, destroyed once.
        unsafe { (self.1.api.dnnl_primitive_attr_destroy)(self.0) };
    }
}

struct PrimitiveDesc {
    dnnl: &'static Dnnl,
    pd: Handle,
}

impl PrimitiveDesc {
    fn implementation(&self) -> String {
        let mut s: *const c_char = ptr::null();
        // SAFETY: the query writes a pointer to a string owned by the descriptor.
        let status = unsafe {
            (self.dnnl.api.dnnl_primitive_desc_query)(
                self.pd,
                QUERY_IMPL_INFO_STR,
                0,
                (&mut s as *mut *const c_char).cast(),
            )
        };
        if status != SUCCESS || s.is_null() {
            return "unknown".into();
        }
        // SAFETY: a NUL-terminated string valid while the descriptor lives.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }

    /// A descriptor owned by this primitive descriptor (null if none).
    fn md(&self, what: i32) -> *const MemDesc {
        // SAFETY: a query on a valid descriptor.
        unsafe { (self.dnnl.api.dnnl_primitive_desc_query_md)(self.pd, what, 0) }
    }

    fn md_size(&self, what: i32) -> usize {
        let md = self.md(what);
        if md.is_null() {
            0
        } else {
            // SAFETY: `md` is a valid descriptor owned by `self`.
            unsafe { (self.dnnl.api.dnnl_memory_desc_get_size)(md) }
        }
    }
}

impl Drop for PrimitiveDesc {
    fn drop(&mut self) {
        // SAFETY: created by primitive_desc_create, destroyed once.
        unsafe { (self.dnnl.api.dnnl_primitive_desc_destroy)(self.pd) };
    }
}

struct Primitive {
    dnnl: &'static Dnnl,
    prim: Handle,
}

impl Drop for Primitive {
    fn drop(&mut self) {
        // SAFETY: created by primitive_create, destroyed once.
        unsafe { (self.dnnl.api.dnnl_primitive_destroy)(self.prim) };
    }
}

struct Memory {
    dnnl: &'static Dnnl,
    mem: Handle,
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: created by memory_create, destroyed once; does not free the handle's data.
        unsafe { (self.dnnl.api.dnnl_memory_destroy)(self.mem) };
    }
}

/// A thread's stream and scratchpad; the stream is destroyed at thread exit.
struct ThreadCtx {
    dnnl: &'static Dnnl,
    stream: Handle,
    scratch: Vec<u64>,
}

impl Drop for ThreadCtx {
    fn drop(&mut self) {
        // SAFETY: created by stream_create, destroyed once.
        unsafe { (self.dnnl.api.dnnl_stream_destroy)(self.stream) };
    }
}
