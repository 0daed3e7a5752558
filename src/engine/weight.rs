//! A weight matrix and its product with activations, on one thread or on the `parallel` pool.
//!
//! Q8_0 and Q4_1 on wasm: the engine's own kernels (`q8_0`, `q4_1`). Every other quantized
//! type: the output columns are split across the pool, and each column runs candle's block dot
//! products (`vec_dot_4` on column quads, then `vec_dot_2` / `vec_dot` for the tail), chosen at
//! compile time (AVX2 natively, simd128 in wasm). Float matrices: `dot_f32`.
//!
//! Never candle's `QMatMul::forward`: on x86 it picks repacked kernels at run time by CPU
//! (AVX-512 VNNI, AVX-VNNI, AMX or AVX2) that quantize activations differently (Q8_K instead of
//! Q8_0 for Q8_0 weights, for one), so one binary gave other tokens on another machine. Here the
//! arithmetic is fixed by the build, and the thread count never changes a bit. candle's own
//! thread pool never starts in wasm either (it counts one CPU there and spawns with
//! `std::thread`, which wasm32-unknown-unknown lacks).

use std::sync::Arc;

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlType,
};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::{act_quant, k_quants, parallel, q4_1, q5_0, q8_0};

pub struct Weight {
    kind: Kind,
}

enum Kind {
    /// Quantized blocks as read from the file (or requantized at load).
    Quantized(Matrix),
    /// F32, F16 and BF16 matrices, widened to f32 rows `[n][k]`. Their products run on
    /// `dot_f32` in a fixed order rather than on candle's f32 matmul, whose `gemm` picks its
    /// blocking from the CPU's cache sizes at run time.
    Float { w: Vec<f32>, n: usize, k: usize },
    /// Several matrices of one width and one type that has an own kernel here, multiplied as
    /// one: the output holds each one's columns in turn (`Weight::joint`).
    Joint(Vec<Matrix>),
}

/// A quantized matrix's blocks: candle's tensor, or a matrix laid out for the relaxed build's
/// kernels: Q8_0 (`q8_0::Arranged`) or Q6_K widened (`k_quants::q6k_widen`).
#[derive(Clone)]
enum Matrix {
    Stored(Arc<QTensor>),
    ArrangedQ8_0(Arc<q8_0::Arranged>),
    WideQ6K(Arc<WideQ6K>),
    /// Q8_0 rows (either of the above) read from IQ4_XS (`iq4`), whose activations are
    /// quantized on Q8_K's grid as llama.cpp's IQ4_XS products quantize them
    /// (`act_quant::q8_0_on_k_grid`).
    OnKGrid(Box<Matrix>),
}

/// A Q6_K matrix as `k_quants::q6k_widen` lays it out: a byte per value, which candle's
/// `QTensor` has no block type for.
pub struct WideQ6K {
    rows: usize,
    cols: usize,
    bytes: Vec<u8>,
}

impl WideQ6K {
    /// `blocks`: `rows` rows of `cols / 256` stored Q6_K blocks.
    pub fn new(rows: usize, cols: usize, blocks: &[u8]) -> candle_core::Result<Self> {
        let per_row = cols / k_quants::BLOCK;
        if !cols.is_multiple_of(k_quants::BLOCK)
            || blocks.len() != rows * per_row * k_quants::Q6K_BLOCK_BYTES
        {
            candle_core::bail!("a Q6_K matrix ({rows}, {cols}) of {} bytes", blocks.len());
        }
        Ok(WideQ6K {
            rows,
            cols,
            bytes: k_quants::q6k_widen(blocks),
        })
    }
}

impl Matrix {
    fn dtype(&self) -> GgmlDType {
        match self {
            Matrix::Stored(t) => t.dtype(),
            Matrix::ArrangedQ8_0(_) => GgmlDType::Q8_0,
            Matrix::WideQ6K(_) => GgmlDType::Q6K,
            Matrix::OnKGrid(m) => m.dtype(),
        }
    }

    fn on_k_grid(&self) -> bool {
        matches!(self, Matrix::OnKGrid(_))
    }

    /// Laid out for this build's kernels, not as stored: only they can read it, and never in
    /// one product with stored rows.
    fn arranged(&self) -> bool {
        match self {
            Matrix::Stored(_) => false,
            Matrix::OnKGrid(m) => m.arranged(),
            _ => true,
        }
    }

    /// (rows, values per row)
    fn dims2(&self) -> candle_core::Result<(usize, usize)> {
        match self {
            Matrix::Stored(t) => t.shape().dims2(),
            Matrix::ArrangedQ8_0(a) => Ok((a.rows(), a.cols())),
            Matrix::WideQ6K(w) => Ok((w.rows, w.cols)),
            Matrix::OnKGrid(m) => m.dims2(),
        }
    }

    fn data(&self) -> candle_core::Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Matrix::Stored(t) => t.data(),
            Matrix::ArrangedQ8_0(a) => Ok(std::borrow::Cow::Borrowed(a.bytes())),
            Matrix::WideQ6K(w) => Ok(std::borrow::Cow::Borrowed(&w.bytes)),
            Matrix::OnKGrid(m) => m.data(),
        }
    }
}

impl Weight {
    pub fn new(qt: Arc<QTensor>) -> candle_core::Result<Self> {
        let kind = match qt.dtype() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                let (n, k) = qt.shape().dims2()?;
                let w = qt
                    .dequantize(&candle_core::Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                Kind::Float { w, n, k }
            }
            _ => {
                qt.shape().dims2()?;
                Kind::Quantized(Matrix::Stored(qt))
            }
        };
        Ok(Weight { kind })
    }

    /// A Q8_0 matrix laid out by `q8_0::arrange_row`, multiplied by the arranged kernels.
    pub fn arranged_q8_0(a: Arc<q8_0::Arranged>) -> Self {
        Weight {
            kind: Kind::Quantized(Matrix::ArrangedQ8_0(a)),
        }
    }

    /// A Q6_K matrix widened for the relaxed build's kernels (`model::Kernels::widens_q6k`).
    pub fn wide_q6k(w: Arc<WideQ6K>) -> Self {
        Weight {
            kind: Kind::Quantized(Matrix::WideQ6K(w)),
        }
    }

    /// This Q8_0 weight, read from IQ4_XS, with its activations quantized on Q8_K's grid
    /// (`Matrix::OnKGrid`); other weights are returned as they are.
    pub fn on_k_grid(self) -> Self {
        match self.kind {
            Kind::Quantized(m) if m.dtype() == GgmlDType::Q8_0 && !m.on_k_grid() => Weight {
                kind: Kind::Quantized(Matrix::OnKGrid(Box::new(m))),
            },
            kind => Weight { kind },
        }
    }

    /// `parts` as one weight whose product is theirs side by side (q, k and v; gate and up):
    /// the activation is quantized once, and all their columns are one job for the pool, so
    /// the threads meet once instead of two or three times. Each output has the bits of its
    /// part's own product. `None` unless the parts are quantized, of one type with an own kernel
    /// here (or all Q8_0 laid out by `q8_0::arrange_row`, never mixed with stored rows), and of
    /// one width.
    pub fn joint(parts: &[&Weight]) -> Option<Weight> {
        let mut tensors = Vec::with_capacity(parts.len());
        for p in parts {
            match &p.kind {
                Kind::Quantized(t) => tensors.push(t.clone()),
                Kind::Joint(ts) => tensors.extend(ts.iter().cloned()),
                Kind::Float { .. } => return None,
            }
        }
        let first = tensors.first()?;
        let (dtype, width, arranged) = (first.dtype(), first.dims2().ok()?.1, first.arranged());
        let alike = tensors.iter().all(|t| {
            t.dtype() == dtype
                && t.arranged() == arranged
                && t.on_k_grid() == first.on_k_grid()
                && t.dims2().is_ok_and(|(_, k)| k == width)
        });
        (alike && (own_kernel(dtype) || arranged)).then_some(Weight {
            kind: Kind::Joint(tensors),
        })
    }

    /// Outputs per activation row: the matrix's rows, all parts' for a joint weight.
    pub fn out_features(&self) -> usize {
        let rows = |t: &Matrix| t.dims2().map_or(0, |(n, _)| n);
        match &self.kind {
            Kind::Quantized(t) => rows(t),
            Kind::Joint(ts) => ts.iter().map(rows).sum(),
            Kind::Float { n, .. } => *n,
        }
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let kind = match &self.kind {
            Kind::Quantized(t) => type_name(t.dtype()),
            Kind::Joint(ts) => ts.first().map_or("other", |t| type_name(t.dtype())),
            Kind::Float { .. } => "f32/f16",
        };
        super::profile::time_product(kind, || self.product(x))
    }

    fn product(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.kind {
            Kind::Float { w, n, k } => {
                let dims = x.dims();
                if dims.last() != Some(k) {
                    candle_core::bail!("matmul shapes: activations {dims:?}, weight ({n}, {k})");
                }
                let xs = x.flatten_all()?.to_vec1::<f32>()?;
                let m = xs.len() / k;
                let mut dst = vec![0f32; m * n];
                product_f32((m, *k, *n), &xs, w, &mut dst);
                let mut out_dims = dims.to_vec();
                if let Some(last) = out_dims.last_mut() {
                    *last = *n;
                }
                Tensor::from_vec(dst, out_dims, x.device())
            }
            Kind::Quantized(w) => x.contiguous()?.apply_op1_no_bwd(&ParMatMul {
                ws: vec![w.clone()],
            }),
            Kind::Joint(ws) => x
                .contiguous()?
                .apply_op1_no_bwd(&ParMatMul { ws: ws.clone() }),
        }
    }
}

/// `dst[m, n] = x[m, k] · w[n, k]ᵀ` for f32 weights, columns spread over the pool.
fn product_f32((m, k, n): (usize, usize, usize), x: &[f32], w: &[f32], dst: &mut [f32]) {
    let dst_at = parallel::DisjointOut::new(dst);
    let items = n.div_ceil(COLUMNS_PER_ITEM);
    parallel::for_each_chunk(items, grab(items), &|range| {
        for item in range {
            let c0 = item * COLUMNS_PER_ITEM;
            let c1 = n.min(c0 + COLUMNS_PER_ITEM);
            for r in 0..m {
                let row = &x[r * k..(r + 1) * k];
                let out: Vec<f32> = (c0..c1)
                    .map(|c| dot_f32(row, &w[c * k..(c + 1) * k]))
                    .collect();
                // SAFETY: item `item` owns columns c0..c1 of every row.
                unsafe { dst_at.write(r * n + c0, &out) };
            }
        }
    });
}

/// An f32 dot product in a fixed order: four partial sums (one SIMD register), then the tail.
/// The order is the source's, so every build and CPU gets the same bits.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0f32; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..4 {
            s[i] += x[i] * y[i];
        }
    }
    s[0] + s[1] + s[2] + s[3] + tail
}

/// `dot_f32` of `a` with each of `bs`, every result with `dot_f32`'s bits: the `N` sums are
/// independent chains of work, so the CPU overlaps them where one dot product waits on its
/// own additions (attention's scores, 64 values each, were 7% of SmolLM2's decoding).
pub fn dot_f32_many<const N: usize>(a: &[f32], bs: [&[f32]; N]) -> [f32; N] {
    let bs = bs.map(|b| &b[..a.len()]);
    let whole = a.len() / 4 * 4;
    let s: [[f32; 4]; N] = {
        #[cfg(any(
            all(target_arch = "wasm32", target_feature = "simd128"),
            target_arch = "x86_64"
        ))]
        {
            // SAFETY: every `bs[n]` is `a.len()` long, and the loads stay below `whole`.
            unsafe { f32_simd::partial_sums(a, bs, whole) }
        }
        #[cfg(not(any(
            all(target_arch = "wasm32", target_feature = "simd128"),
            target_arch = "x86_64"
        )))]
        {
            let mut s = [[0f32; 4]; N];
            for c in (0..whole).step_by(4) {
                let x = &a[c..c + 4];
                for (s, b) in s.iter_mut().zip(&bs) {
                    let y = &b[c..c + 4];
                    for i in 0..4 {
                        s[i] += x[i] * y[i];
                    }
                }
            }
            s
        }
    };
    std::array::from_fn(|n| {
        let tail: f32 = a[whole..]
            .iter()
            .zip(&bs[n][whole..])
            .map(|(x, y)| x * y)
            .sum();
        s[n][0] + s[n][1] + s[n][2] + s[n][3] + tail
    })
}

/// `acc[i] = acc[i] + p[0]·v[0][i] + p[1]·v[1][i] + p[2]·v[2][i] + p[3]·v[3][i]`, added left to
/// right for every `i`: attention's weighted sum of four positions' values in one pass over
/// `acc`, each element with the bits of one position at a time.
pub fn add_weighted4(acc: &mut [f32], p: [f32; 4], v: [&[f32]; 4]) {
    let v = v.map(|v| &v[..acc.len()]);
    #[cfg(any(
        all(target_arch = "wasm32", target_feature = "simd128"),
        target_arch = "x86_64"
    ))]
    let done = {
        // SAFETY: every `v[n]` is `acc.len()` long, and the vectors stay below the returned end.
        unsafe { f32_simd::add_weighted4(acc, p, v) }
    };
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "simd128"),
        target_arch = "x86_64"
    )))]
    let done = 0;
    for i in done..acc.len() {
        acc[i] = acc[i] + p[0] * v[0][i] + p[1] * v[1][i] + p[2] * v[2][i] + p[3] * v[3][i];
    }
}

/// The f32 loops above in 128-bit vectors, written out once for the two instruction sets that
/// have them everywhere: wasm's simd128 (the page) and x86-64's SSE (the CLI, whose portable
/// loops LLVM compiled to scalar code: Gemma 3's 256-wide heads ran about 1.9× slower, issue
/// 15's twenty-seventh stop). A multiply then an add per lane (wasm has no fused form, and SSE's
/// separate ones round the same), so every lane gets the portable code's bits.
#[cfg(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
))]
mod f32_simd {
    #[cfg(target_arch = "wasm32")]
    mod lanes {
        use core::arch::wasm32::*;
        pub type V = v128;
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> V {
            v128_load(p as *const v128)
        }
        #[inline(always)]
        pub unsafe fn store(p: *mut f32, v: V) {
            v128_store(p as *mut v128, v)
        }
        #[inline(always)]
        pub unsafe fn splat(x: f32) -> V {
            f32x4_splat(x)
        }
        #[inline(always)]
        pub unsafe fn to_array(v: V) -> [f32; 4] {
            [
                f32x4_extract_lane::<0>(v),
                f32x4_extract_lane::<1>(v),
                f32x4_extract_lane::<2>(v),
                f32x4_extract_lane::<3>(v),
            ]
        }
        /// `s + a·b`, the product rounded first.
        #[inline(always)]
        pub unsafe fn add_product(s: V, a: V, b: V) -> V {
            f32x4_add(s, f32x4_mul(a, b))
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod lanes {
        use core::arch::x86_64::*;
        pub type V = __m128;
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> V {
            _mm_loadu_ps(p)
        }
        #[inline(always)]
        pub unsafe fn store(p: *mut f32, v: V) {
            _mm_storeu_ps(p, v)
        }
        #[inline(always)]
        pub unsafe fn splat(x: f32) -> V {
            _mm_set1_ps(x)
        }
        #[inline(always)]
        pub unsafe fn to_array(v: V) -> [f32; 4] {
            let mut out = [0f32; 4];
            _mm_storeu_ps(out.as_mut_ptr(), v);
            out
        }
        /// `s + a·b`, the product rounded first.
        #[inline(always)]
        pub unsafe fn add_product(s: V, a: V, b: V) -> V {
            _mm_add_ps(s, _mm_mul_ps(a, b))
        }
    }

    use lanes::*;

    /// Lane i of sum n: Σ over c of `a[4c + i]·bs[n][4c + i]`, c in order.
    ///
    /// # Safety
    /// `whole` is a multiple of 4, at most `a.len()` and every `bs[n].len()`.
    #[inline(always)]
    pub unsafe fn partial_sums<const N: usize>(
        a: &[f32],
        bs: [&[f32]; N],
        whole: usize,
    ) -> [[f32; 4]; N] {
        let mut s = [splat(0.0); N];
        let (a, bs) = (a.as_ptr(), bs.map(|b| b.as_ptr()));
        let mut c = 0;
        while c < whole {
            let x = load(a.add(c));
            for n in 0..N {
                s[n] = add_product(s[n], x, load(bs[n].add(c)));
            }
            c += 4;
        }
        s.map(|s| to_array(s))
    }

    /// `super::add_weighted4` over the first `acc.len() / 4 * 4` elements; returns that count.
    ///
    /// # Safety
    /// Every `v[n]` is at least `acc.len()` long.
    #[inline(always)]
    pub unsafe fn add_weighted4(acc: &mut [f32], p: [f32; 4], v: [&[f32]; 4]) -> usize {
        let whole = acc.len() / 4 * 4;
        let p = p.map(|p| splat(p));
        let (a, v) = (acc.as_mut_ptr(), v.map(|v| v.as_ptr()));
        let mut i = 0;
        while i < whole {
            let mut s = load(a.add(i));
            for n in 0..4 {
                s = add_product(s, p[n], load(v[n].add(i)));
            }
            store(a.add(i), s);
            i += 4;
        }
        whole
    }
}

/// Types this module multiplies with the engine's own kernels rather than candle's:
/// - wasm simd128: Q8_0 (`q8_0`; measured on one thread, SmolLM2 prefill 63 → 121 tokens/s,
///   Gemma 3 decode 22 → 31) and Q4_1 (`q4_1`; candle's is scalar on wasm);
/// - wasm relaxed SIMD: also Q5_0 (`q5_0`), Q4_K and Q6_K (`k_quants`), as stored, which the
///   simd128 build requantizes to Q8_0 instead (`model::Kernels::requantizes`);
/// - native x86-64 (AVX2): Q8_0, Q4_1, Q5_0, Q4_K and Q6_K, with the relaxed build's bits
///   (the CLI gives the page's numbers; README, "Same build, same numbers").
fn own_kernel(t: GgmlDType) -> bool {
    (cfg!(all(target_arch = "wasm32", target_feature = "simd128"))
        && matches!(t, GgmlDType::Q4_1 | GgmlDType::Q8_0))
        || (cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"))
            && matches!(t, GgmlDType::Q5_0 | GgmlDType::Q4K | GgmlDType::Q6K))
        || (cfg!(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        )) && matches!(
            t,
            GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q8_0 | GgmlDType::Q4K | GgmlDType::Q6K
        ))
}

fn type_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        _ => "other",
    }
}

/// `x · [w₁; w₂; …]ᵀ`: one matrix, or several that `Weight::joint` accepted.
struct ParMatMul {
    ws: Vec<Matrix>,
}

impl CustomOp1 for ParMatMul {
    fn name(&self) -> &'static str {
        "tinylab-parallel-qmatmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("parallel matmul wants f32 activations");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("parallel matmul wants contiguous activations");
        };
        let x = &data[start..end];
        let Some(first) = self.ws.first() else {
            candle_core::bail!("a product with no weight");
        };
        let dtype = first.dtype();
        let (_, k) = first.dims2()?;
        if k == 0 {
            candle_core::bail!("a weight with rows of no values");
        }
        let dims = layout.shape().dims();
        let mut shapes = Vec::with_capacity(self.ws.len());
        for w in &self.ws {
            let (n, wk) = w.dims2()?;
            if dims.last() != Some(&wk) || w.dtype() != dtype {
                candle_core::bail!("matmul shapes: activations {dims:?}, weight ({n}, {wk})");
            }
            if w.arranged() != first.arranged() {
                candle_core::bail!("a joint product of stored and laid-out rows");
            }
            if w.on_k_grid() != first.on_k_grid() {
                candle_core::bail!("a joint product of IQ4_XS and other rows");
            }
            shapes.push(n);
        }
        let m = x.len() / k;
        let n: usize = shapes.iter().sum();
        let datas = self
            .ws
            .iter()
            .map(|w| w.data())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let parts: Vec<(&[u8], usize)> = datas.iter().map(|d| &d[..]).zip(shapes).collect();
        let mut dst = vec![0f32; m * n];
        let k_grid = first.on_k_grid();
        if k_grid && !k.is_multiple_of(256) {
            candle_core::bail!("IQ4_XS rows of {k} values are not whole blocks of 256");
        }
        let own = |dst: &mut [f32]| match dtype {
            GgmlDType::Q8_0 if first.arranged() && k_grid => {
                product_own_parts::<Q8_0Kernel<true, true>>((m, k), x, &parts, dst)
            }
            GgmlDType::Q8_0 if k_grid => {
                product_own_parts::<Q8_0Kernel<false, true>>((m, k), x, &parts, dst)
            }
            GgmlDType::Q8_0 if first.arranged() => {
                product_own_parts::<Q8_0Kernel<true, false>>((m, k), x, &parts, dst)
            }
            GgmlDType::Q8_0 => {
                product_own_parts::<Q8_0Kernel<false, false>>((m, k), x, &parts, dst)
            }
            GgmlDType::Q4_1 => product_own_parts::<Q4_1Kernel>((m, k), x, &parts, dst),
            GgmlDType::Q5_0 => product_own_parts::<Q5_0Kernel>((m, k), x, &parts, dst),
            GgmlDType::Q4K => product_own_parts::<Q4KKernel>((m, k), x, &parts, dst),
            GgmlDType::Q6K if first.arranged() => {
                product_own_parts::<Q6KKernel<true>>((m, k), x, &parts, dst)
            }
            GgmlDType::Q6K => product_own_parts::<Q6KKernel<false>>((m, k), x, &parts, dst),
            other => candle_core::bail!("no own kernel for {other:?}"),
        };
        // IQ4_XS rows take the own kernel everywhere: candle's has no Q8_K-grid activations.
        if own_kernel(dtype) || first.arranged() || k_grid {
            own(&mut dst)?;
        } else {
            let [(bytes, _)] = parts[..] else {
                candle_core::bail!("{dtype:?} weights cannot be multiplied jointly here");
            };
            match dtype {
                GgmlDType::Q4_1 => product::<BlockQ4_1>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q5_0 => product::<BlockQ5_0>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q8_0 => product::<BlockQ8_0>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q4_0 => product::<BlockQ4_0>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q4K => product::<BlockQ4K>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q5K => product::<BlockQ5K>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q6K => product::<BlockQ6K>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q5_1 => product::<BlockQ5_1>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q8_1 => product::<BlockQ8_1>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q2K => product::<BlockQ2K>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q3K => product::<BlockQ3K>((m, k, n), x, bytes, &mut dst)?,
                GgmlDType::Q8K => product::<BlockQ8K>((m, k, n), x, bytes, &mut dst)?,
                other => candle_core::bail!("no parallel kernel for {other:?}"),
            }
        }
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(dst), Shape::from(out_dims)))
    }
}

/// Columns per work item: small enough to balance two threads on a 576-wide layer, large
/// enough that handing out items costs nothing next to the dot products.
const COLUMNS_PER_ITEM: usize = 16;

/// The most items a thread takes at once: a quarter of each thread's share (the pool's grabs
/// shrink below it towards the end of a segment, `parallel::Job::grab`). Handing out single
/// items all along, when the pool still had one shared cursor, made its cache line bounce
/// between cores on every 16 columns, which cost as much as the second thread gained on
/// one-row (decode) products.
fn grab(items: usize) -> usize {
    items.div_ceil(4 * parallel::threads()).max(1)
}

/// `dst[m, n] = x[m, k] · w[n, k]ᵀ` with `w` given as the raw blocks of type `T`.
fn product<T: GgmlType>(
    (m, k, n): (usize, usize, usize),
    x: &[f32],
    bytes: &[u8],
    dst: &mut [f32],
) -> candle_core::Result<()> {
    if k % T::BLCK_SIZE != 0 || T::BLCK_SIZE != T::VecDotType::BLCK_SIZE {
        candle_core::bail!("row length {k} is not whole blocks of {:?}", T::DTYPE);
    }
    let per_row = k / T::BLCK_SIZE;
    let size = std::mem::size_of::<T>();
    if bytes.len() != n * per_row * size
        || !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>())
    {
        candle_core::bail!(
            "weight storage does not hold {n}×{per_row} {:?} blocks",
            T::DTYPE
        );
    }
    // SAFETY: length and alignment checked above; the blocks are plain old data written by
    // candle as a `Vec<T>`.
    let w: &[T] = unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, n * per_row) };
    // candle's quantizers take a NaN activation to 0 (their maximum skips it), and the model's
    // broken numbers would come out as plausible ones: NaN goes on instead, to the check on
    // the scores (`model::logits_rows`). The engine's own quantizers (`act_quant`) keep it.
    if x.iter().any(|v| v.is_nan()) {
        dst.fill(f32::NAN);
        return Ok(());
    }
    let mut lhs = vec![T::VecDotType::zeros(); m * per_row];
    quantize_activations::<T::VecDotType>(x, k, &mut lhs)?;
    let lhs = &lhs;
    let col = |c: usize| &w[c * per_row..(c + 1) * per_row];
    let dst_at = parallel::DisjointOut::new(dst);
    let items = n.div_ceil(COLUMNS_PER_ITEM);
    parallel::for_each_chunk(items, grab(items), &|range| {
        let dst_at = &dst_at;
        for item in range {
            let c0 = item * COLUMNS_PER_ITEM;
            let c1 = n.min(c0 + COLUMNS_PER_ITEM);
            for r in 0..m {
                let y = &lhs[r * per_row..(r + 1) * per_row];
                let mut c = c0;
                while c + 4 <= c1 {
                    let (a, b, e, f) =
                        T::vec_dot_4(k, col(c), col(c + 1), col(c + 2), col(c + 3), y);
                    // SAFETY (all writes here): item `item` owns columns c0..c1 of every row.
                    unsafe { dst_at.write(r * n + c, &[a, b, e, f]) };
                    c += 4;
                }
                if c + 2 <= c1 {
                    let (a, b) = T::vec_dot_2(k, col(c), col(c + 1), y);
                    unsafe { dst_at.write(r * n + c, &[a, b]) };
                    c += 2;
                }
                if c < c1 {
                    unsafe { dst_at.write(r * n + c, &[T::vec_dot(k, col(c), y)]) };
                }
            }
        }
    });
    Ok(())
}

/// Activation rows `x` (of `k` values) as `B` blocks for candle's block dot products,
/// quantized as llama.cpp does (`act_quant`) where `B` is one of its 8-bit types. candle's own
/// `from_float` rounds halves away from zero and scales by 1/(amax/127): on Gemma 3 that moved
/// single tokens' entropy by over a nat ("the lazy dog": 2.00 nats against llama.cpp's
/// 3.14-3.59), farther from llama.cpp than its own configurations are from each other.
fn quantize_activations<B: GgmlType>(
    x: &[f32],
    k: usize,
    out: &mut [B],
) -> candle_core::Result<()> {
    type Quantizer = fn(&[f32], &mut [u8]);
    let (quantize, block_bytes): (Quantizer, usize) = match B::DTYPE {
        GgmlDType::Q8_0 => (act_quant::q8_0, 34),
        GgmlDType::Q8_1 => (act_quant::q8_1, 36),
        GgmlDType::Q8K => (act_quant::q8_k, 292),
        _ => {
            for (row, q) in x
                .chunks_exact(k)
                .zip(out.chunks_exact_mut(k / B::BLCK_SIZE))
            {
                B::from_float(row, q);
            }
            return Ok(());
        }
    };
    if std::mem::size_of::<B>() != block_bytes || out.len() * B::BLCK_SIZE != x.len() {
        candle_core::bail!("{:?} blocks are not laid out as ggml's", B::DTYPE);
    }
    // SAFETY: candle's 8-bit block types are plain `repr(C)` data of exactly `block_bytes`
    // bytes (checked above), and every byte pattern is a valid block.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, std::mem::size_of_val(out))
    };
    for (row, q) in x
        .chunks_exact(k)
        .zip(bytes.chunks_exact_mut(k / B::BLCK_SIZE * block_bytes))
    {
        quantize(row, q);
    }
    Ok(())
}

/// A kernel of the engine's own (`q8_0`, `q4_1`): weight rows as raw block bytes, one
/// activation row prepared once for many columns.
trait OwnKernel {
    const NAME: &'static str;
    const BLOCK: usize;
    const WEIGHT_BLOCK_BYTES: usize;
    /// Bytes per block of the quantized activation, and its quantizer (`act_quant`: ggml's).
    const ACT_BLOCK_BYTES: usize;
    fn quantize(x: &[f32], out: &mut [u8]);
    type Prepared<'a>: Sync;
    fn prepare(row: &[u8]) -> Self::Prepared<'_>;
    /// One weight row against `R` prepared activation rows.
    fn dot_rows<const R: usize>(w: &[u8], ys: [&Self::Prepared<'_>; R]) -> [f32; R];
    /// Activation rows per prefill pass over a weight row (at most `MAX_TILE_ROWS`), the rows
    /// prepared together as a `Tile`. Kernels without a layout of their own take the prepared
    /// rows as they are, four at a time (`rows_dot_tile`).
    const TILE_ROWS: usize = ROWS_PER_PASS;
    type Tile<'a>: Sync
    where
        Self: 'a;
    fn tile<'t, 'a: 't>(rows: &'t [Self::Prepared<'a>]) -> Self::Tile<'t>;
    /// One weight row against a tile; `out` takes one value per row, with `dot_rows`'s bits.
    fn dot_tile(w: &[u8], tile: &Self::Tile<'_>, out: &mut [f32]);
    /// One weight row against one activation row, read front to back
    /// (`decode_streams`), with `dot_rows`'s bits.
    fn dot_in_order(w: &[u8], y: &Self::Prepared<'_>) -> f32 {
        Self::dot_rows(w, [y])[0]
    }
}

/// Q8_0 rows as stored (`Q8_0Kernel<false, _>`) or laid out by `q8_0::arrange_row`
/// (`Q8_0Kernel<true, _>`, `model::Kernels::arranges_q8_0`: an f32 scale per block); the same
/// products, bit for bit. `K_GRID`: activations on Q8_K's grid, for rows read from IQ4_XS
/// (`Matrix::OnKGrid`).
struct Q8_0Kernel<const ARRANGED: bool, const K_GRID: bool>;
impl<const ARRANGED: bool, const K_GRID: bool> OwnKernel for Q8_0Kernel<ARRANGED, K_GRID> {
    const NAME: &'static str = "Q8_0";
    const BLOCK: usize = q8_0::BLOCK;
    const WEIGHT_BLOCK_BYTES: usize = if ARRANGED {
        q8_0::ARRANGED_BLOCK_BYTES
    } else {
        q8_0::BLOCK_BYTES
    };
    const ACT_BLOCK_BYTES: usize = 34;
    fn quantize(x: &[f32], out: &mut [u8]) {
        if K_GRID {
            act_quant::q8_0_on_k_grid(x, out)
        } else {
            act_quant::q8_0(x, out)
        }
    }
    type Prepared<'a> = q8_0::Activation<'a>;
    fn prepare(row: &[u8]) -> Self::Prepared<'_> {
        q8_0::Activation::new(row)
    }
    fn dot_rows<const R: usize>(w: &[u8], ys: [&Self::Prepared<'_>; R]) -> [f32; R] {
        if ARRANGED {
            q8_0::dot_rows_arranged(w, ys)
        } else {
            q8_0::dot_rows(w, ys)
        }
    }
    type Tile<'a> = &'a [Self::Prepared<'a>];
    fn tile<'t, 'a: 't>(rows: &'t [Self::Prepared<'a>]) -> Self::Tile<'t> {
        rows
    }
    fn dot_tile(w: &[u8], tile: &Self::Tile<'_>, out: &mut [f32]) {
        rows_dot_tile::<Self>(w, tile, out)
    }
    fn dot_in_order(w: &[u8], y: &Self::Prepared<'_>) -> f32 {
        if ARRANGED {
            q8_0::dot_in_order_arranged(w, y)
        } else {
            q8_0::dot_in_order(w, y)
        }
    }
}

struct Q4_1Kernel;
impl OwnKernel for Q4_1Kernel {
    const NAME: &'static str = "Q4_1";
    const BLOCK: usize = q4_1::BLOCK;
    const WEIGHT_BLOCK_BYTES: usize = q4_1::BLOCK_BYTES;
    const ACT_BLOCK_BYTES: usize = 36;
    fn quantize(x: &[f32], out: &mut [u8]) {
        act_quant::q8_1(x, out)
    }
    type Prepared<'a> = q4_1::Activation<'a>;
    fn prepare(row: &[u8]) -> Self::Prepared<'_> {
        q4_1::Activation::new(row)
    }
    fn dot_rows<const R: usize>(w: &[u8], ys: [&Self::Prepared<'_>; R]) -> [f32; R] {
        q4_1::dot_rows(w, ys)
    }
    // Eight rows, four to a vector's lanes, in the relaxed build (`q4_1::Tile`); the others
    // take them four at a time.
    const TILE_ROWS: usize = q4_1::TILE_ROWS;
    type Tile<'a> = q4_1::Tile<'a>;
    fn tile<'t, 'a: 't>(rows: &'t [Self::Prepared<'a>]) -> Self::Tile<'t> {
        q4_1::Tile::new(rows)
    }
    fn dot_tile(w: &[u8], tile: &Self::Tile<'_>, out: &mut [f32]) {
        q4_1::dot_tile(w, tile, out)
    }
    fn dot_in_order(w: &[u8], y: &Self::Prepared<'_>) -> f32 {
        q4_1::dot_in_order(w, y)
    }
}

struct Q5_0Kernel;
impl OwnKernel for Q5_0Kernel {
    const NAME: &'static str = "Q5_0";
    const BLOCK: usize = q5_0::BLOCK;
    const WEIGHT_BLOCK_BYTES: usize = q5_0::BLOCK_BYTES;
    const ACT_BLOCK_BYTES: usize = 34;
    fn quantize(x: &[f32], out: &mut [u8]) {
        act_quant::q8_0(x, out)
    }
    type Prepared<'a> = q5_0::Activation<'a>;
    fn prepare(row: &[u8]) -> Self::Prepared<'_> {
        q5_0::Activation::new(row)
    }
    fn dot_rows<const R: usize>(w: &[u8], ys: [&Self::Prepared<'_>; R]) -> [f32; R] {
        q5_0::dot_rows(w, ys)
    }
    // Eight rows in two vectors, four rows to a vector's lanes (`q5_0::Tile`).
    const TILE_ROWS: usize = q5_0::TILE_ROWS;
    type Tile<'a> = q5_0::Tile<'a>;
    fn tile<'t, 'a: 't>(rows: &'t [Self::Prepared<'a>]) -> Self::Tile<'t> {
        q5_0::Tile::new(rows)
    }
    fn dot_tile(w: &[u8], tile: &Self::Tile<'_>, out: &mut [f32]) {
        q5_0::dot_tile(w, tile, out)
    }
    fn dot_in_order(w: &[u8], y: &Self::Prepared<'_>) -> f32 {
        q5_0::dot_in_order(w, y)
    }
}

struct Q4KKernel;
impl OwnKernel for Q4KKernel {
    const NAME: &'static str = "Q4_K";
    const BLOCK: usize = k_quants::BLOCK;
    const WEIGHT_BLOCK_BYTES: usize = k_quants::Q4K_BLOCK_BYTES;
    const ACT_BLOCK_BYTES: usize = 292;
    fn quantize(x: &[f32], out: &mut [u8]) {
        act_quant::q8_k(x, out)
    }
    type Prepared<'a> = k_quants::Activation<'a>;
    fn prepare(row: &[u8]) -> Self::Prepared<'_> {
        k_quants::Activation::new(row)
    }
    fn dot_rows<const R: usize>(w: &[u8], ys: [&Self::Prepared<'_>; R]) -> [f32; R] {
        k_quants::q4k_dot_rows(w, ys)
    }
    const TILE_ROWS: usize = k_quants::TILE_ROWS;
    type Tile<'a> = k_quants::Tile<'a>;
    fn tile<'t, 'a: 't>(rows: &'t [Self::Prepared<'a>]) -> Self::Tile<'t> {
        k_quants::Tile::new(rows)
    }
    fn dot_tile(w: &[u8], tile: &Self::Tile<'_>, out: &mut [f32]) {
        k_quants::q4k_dot_tile(w, tile, out)
    }
}

/// Q6_K rows as stored (`Q6KKernel<false>`: a tied output layer's in the relaxed build) or
/// widened at load (`Q6KKernel<true>`, `Matrix::WideQ6K`, `model::Kernels::widens_q6k`: the
/// relaxed build's SIMD forms, the portable ones where the tests load a model as it does); the
/// same bits.
struct Q6KKernel<const WIDE: bool>;
impl<const WIDE: bool> OwnKernel for Q6KKernel<WIDE> {
    const NAME: &'static str = "Q6_K";
    const BLOCK: usize = k_quants::BLOCK;
    const WEIGHT_BLOCK_BYTES: usize = if WIDE {
        k_quants::Q6K_WIDE_BLOCK_BYTES
    } else {
        k_quants::Q6K_BLOCK_BYTES
    };
    const ACT_BLOCK_BYTES: usize = 292;
    fn quantize(x: &[f32], out: &mut [u8]) {
        act_quant::q8_k(x, out)
    }
    type Prepared<'a> = k_quants::Activation<'a>;
    fn prepare(row: &[u8]) -> Self::Prepared<'_> {
        k_quants::Activation::new(row)
    }
    fn dot_rows<const R: usize>(w: &[u8], ys: [&Self::Prepared<'_>; R]) -> [f32; R] {
        if WIDE {
            k_quants::q6k_wide_dot_rows(w, ys)
        } else {
            k_quants::q6k_dot_rows(w, ys)
        }
    }
    const TILE_ROWS: usize = k_quants::TILE_ROWS;
    type Tile<'a> = k_quants::Tile<'a>;
    fn tile<'t, 'a: 't>(rows: &'t [Self::Prepared<'a>]) -> Self::Tile<'t> {
        k_quants::Tile::new(rows)
    }
    fn dot_tile(w: &[u8], tile: &Self::Tile<'_>, out: &mut [f32]) {
        if WIDE {
            k_quants::q6k_wide_dot_tile(w, tile, out)
        } else {
            k_quants::q6k_dot_tile(w, tile, out)
        }
    }
}

/// Activation rows per pass over a weight row for the kernels that take the prepared rows as
/// they are: each weight block is loaded and widened once for this many tokens of a prompt.
/// Four rows keep the four widened weight vectors and four accumulators in the 16 vector
/// registers of x86-64.
const ROWS_PER_PASS: usize = 4;

/// The most rows a kernel's tile may hold.
const MAX_TILE_ROWS: usize = 8;

/// `dot_tile` for kernels whose tile is the prepared rows themselves: `dot_rows` on 1 to 4.
fn rows_dot_tile<K: OwnKernel>(w: &[u8], rows: &[K::Prepared<'_>], out: &mut [f32]) {
    match rows {
        [a, b, e, f] => out.copy_from_slice(&K::dot_rows(w, [a, b, e, f])),
        [a, b, e] => out.copy_from_slice(&K::dot_rows(w, [a, b, e])),
        [a, b] => out.copy_from_slice(&K::dot_rows(w, [a, b])),
        [a] => out.copy_from_slice(&K::dot_rows(w, [a])),
        _ => unreachable!("tiles of prepared rows hold 1 to {ROWS_PER_PASS}"),
    }
}

/// One matrix's rows of raw blocks, `row_bytes` each.
#[derive(Clone, Copy)]
struct Rows<'w> {
    bytes: &'w [u8],
    row_bytes: usize,
}

impl<'w> Rows<'w> {
    fn row(&self, c: usize) -> &'w [u8] {
        &self.bytes[c * self.row_bytes..(c + 1) * self.row_bytes]
    }
}

/// Decoding's rows of `items` against the one activation row `y`: the items split into up to
/// `DECODE_STREAMS` runs, and a row of each run in turn, each row read front to back. `locate`
/// gives an item's matrix, its columns and their offset in the output row; `out` takes a
/// column's value. Every row's sum is the same as alone, so the order changes no bit.
///
/// Why rows front to back: two or four rows per pass, a block of each in turn (as wasm decoded
/// until issue 15's seventh stop), read as many runs at once as interleaved blocks, which the
/// prefetching did not follow, and reading a byte of every line some 16 KB ahead stalled the
/// kernel on every miss. One Q8_0 matrix of 178 MB (Gemma 3's output), in V8 on the EPYC VM:
/// 5.5-6 GB/s that way, 9-10 GB/s row by row; one-thread decoding in Chromium went from 19.6 to
/// 26.6 tokens/s (docs/BENCHMARKS.md). Wasm has no prefetch instruction.
///
/// Why several runs: whole rows taken in turn from four runs far apart read Q4_1 from memory
/// 1.1-1.5× as fast as one run, Q5_0 and Q8_0 1.1-1.2×, on the Intel Xeon VM in Chromium (the
/// kernel harness, paired rounds; BENCHMARKS' eighteenth stop); eight runs no faster than four,
/// nor two threads of two runs each than two of four.
fn decode_streams<'w, K: OwnKernel>(
    items: std::ops::Range<usize>,
    locate: &dyn Fn(usize) -> (Rows<'w>, std::ops::Range<usize>, usize),
    y: &K::Prepared<'_>,
    out: &dyn Fn(usize, &[f32]),
) {
    let streams = DECODE_STREAMS.min(items.len()).max(1);
    let per = items.len().div_ceil(streams);
    for i in 0..per {
        let runs: [Option<_>; DECODE_STREAMS] = std::array::from_fn(|s| {
            let item = items.start + s * per + i;
            (s < streams && item < items.end).then(|| locate(item))
        });
        for r in 0..COLUMNS_PER_ITEM {
            for (part, cols, offset) in runs.iter().flatten() {
                let c = cols.start + r;
                if c < cols.end {
                    out(offset + c, &[K::dot_in_order(part.row(c), y)]);
                }
            }
        }
    }
}

/// How many runs of rows `decode_streams` reads at once.
const DECODE_STREAMS: usize = 4;

/// `product` with one of the engine's own kernels.
#[cfg(test)]
fn product_own<K: OwnKernel>(
    (m, k, n): (usize, usize, usize),
    x: &[f32],
    bytes: &[u8],
    dst: &mut [f32],
) -> candle_core::Result<()> {
    product_own_parts::<K>((m, k), x, &[(bytes, n)], dst)
}

/// `dst[m, Σn] = x[m, k] · [w₁; w₂; …]ᵀ` with one of the engine's own kernels; `parts` holds
/// each matrix's raw blocks and row count, and `dst`'s rows hold each one's columns in turn.
fn product_own_parts<K: OwnKernel>(
    (m, k): (usize, usize),
    x: &[f32],
    parts: &[(&[u8], usize)],
    dst: &mut [f32],
) -> candle_core::Result<()> {
    let per_row = k / K::BLOCK;
    let row_bytes = per_row * K::WEIGHT_BLOCK_BYTES;
    if m == 0 {
        return Ok(());
    }
    if k % K::BLOCK != 0 || parts.iter().any(|(b, n)| b.len() != n * row_bytes) {
        candle_core::bail!(
            "weight storage does not hold whole rows of {per_row} {} blocks",
            K::NAME
        );
    }
    let n: usize = parts.iter().map(|p| p.1).sum();
    let act_bytes = per_row * K::ACT_BLOCK_BYTES;
    let mut lhs = vec![0u8; m * act_bytes];
    // On the pool when there are many rows: on one thread this was 13% of Gemma 3's prefill at
    // two threads. Each row is quantized alone, so the bytes do not depend on the split.
    parallel::for_each_row(&mut lhs, act_bytes, &|r, q| {
        K::quantize(&x[r * k..(r + 1) * k], q)
    });
    let acts: Vec<K::Prepared<'_>> = lhs.chunks_exact(act_bytes).map(K::prepare).collect();
    const { assert!(K::TILE_ROWS >= 1 && K::TILE_ROWS <= MAX_TILE_ROWS) };
    let tiles: Vec<K::Tile<'_>> = if m > 1 {
        acts.chunks(K::TILE_ROWS).map(K::tile).collect()
    } else {
        Vec::new()
    };
    // Work items never straddle two parts: (part, its first item, its first output column).
    let mut starts = Vec::with_capacity(parts.len());
    let (mut items, mut column) = (0, 0);
    for (bytes, rows) in parts {
        starts.push((*bytes, items, column));
        items += rows.div_ceil(COLUMNS_PER_ITEM);
        column += rows;
    }
    let dst_at = parallel::DisjointOut::new(dst);
    // Item `item`'s matrix, its columns there and where they go in `dst`'s rows.
    let locate = |item: usize| {
        let p = starts.partition_point(|s| s.1 <= item) - 1;
        let (bytes, first_item, offset) = starts[p];
        let c0 = (item - first_item) * COLUMNS_PER_ITEM;
        let c1 = parts[p].1.min(c0 + COLUMNS_PER_ITEM);
        (Rows { bytes, row_bytes }, c0..c1, offset)
    };
    parallel::for_each_chunk(items, grab(items), &|range| {
        let dst_at = &dst_at;
        if let [ref y] = *acts {
            let out = |c: usize, v: &[f32]| {
                // SAFETY: the items of `range` own their columns, and `c` is one of them.
                unsafe { dst_at.write(c, v) }
            };
            decode_streams::<K>(range, &locate, y, &out);
            return;
        }
        for item in range {
            let p = starts.partition_point(|s| s.1 <= item) - 1;
            let (bytes, first_item, offset) = starts[p];
            let rows = parts[p].1;
            let c0 = (item - first_item) * COLUMNS_PER_ITEM;
            let c1 = rows.min(c0 + COLUMNS_PER_ITEM);
            let part = Rows { bytes, row_bytes };
            for (t, tile) in tiles.iter().enumerate() {
                let r0 = t * K::TILE_ROWS;
                let rows = K::TILE_ROWS.min(m - r0);
                let mut out = [0f32; MAX_TILE_ROWS];
                for c in c0..c1 {
                    K::dot_tile(part.row(c), tile, &mut out[..rows]);
                    for (i, v) in out[..rows].iter().enumerate() {
                        // SAFETY: item `item` owns columns c0..c1 of its part in every row.
                        unsafe { dst_at.write((r0 + i) * n + offset + c, &[*v]) };
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_data::values as random;
    // candle's own product, as the reference (shapes whose 151 columns its repacked x86 kernels
    // do not take, so it runs the same block dot products).
    use candle_core::quantized::QMatMul;
    use candle_core::{Device, Module};

    /// IQ4_XS rows (`Weight::on_k_grid`) multiply activations rounded on Q8_K's grid, on
    /// every build: the sum of the weights' values times the activations as Q8_K gives them,
    /// to f32 rounding, and not what a plain Q8_0 weight gives (one scale per 32, which the
    /// outlier below sets apart). Candle's product, which non-AVX2 native builds take for
    /// Q8_0, has no such activations and was used for these rows too.
    #[test]
    fn k_grid_rows_take_q8_k_rounded_activations() {
        parallel::test_pool();
        let (n, k) = (8, 512);
        let w = Tensor::from_vec(random(n * k, 7), (n, k), &Device::Cpu).unwrap();
        let qt = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let wf: Vec<f32> = qt
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mut x = random(k, 8);
        x[5] = 40.0;
        let mut acts = vec![0u8; k / 32 * 34];
        act_quant::q8_0_on_k_grid(&x, &mut acts);
        let xq: Vec<f32> = acts
            .chunks_exact(34)
            .flat_map(|b| {
                let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
                b[2..].iter().map(move |&q| d * f32::from(q as i8))
            })
            .collect();
        let xt = Tensor::from_vec(x.clone(), (1, k), &Device::Cpu).unwrap();
        let out = |w: Weight| -> Vec<f32> {
            let y = w.forward(&xt).unwrap();
            y.flatten_all().unwrap().to_vec1().unwrap()
        };
        let qt = Arc::new(qt);
        let got = out(Weight::new(qt.clone()).unwrap().on_k_grid());
        let fine = out(Weight::new(qt).unwrap());
        for c in 0..n {
            let want: f32 = (0..k).map(|i| wf[c * k + i] * xq[i]).sum();
            assert!(
                (got[c] - want).abs() <= 1e-4 * want.abs().max(1.0),
                "[{c}] {} vs {want}",
                got[c]
            );
        }
        assert!((0..n).any(|c| (got[c] - fine[c]).abs() > 1e-3 * fine[c].abs().max(1.0)));
    }

    fn own_product(
        dtype: GgmlDType,
        shape: (usize, usize, usize),
        x: &[f32],
        bytes: &[u8],
        out: &mut [f32],
    ) {
        match dtype {
            GgmlDType::Q8_0 => product_own::<Q8_0Kernel<false, false>>(shape, x, bytes, out),
            GgmlDType::Q4_1 => product_own::<Q4_1Kernel>(shape, x, bytes, out),
            GgmlDType::Q5_0 => product_own::<Q5_0Kernel>(shape, x, bytes, out),
            GgmlDType::Q4K => product_own::<Q4KKernel>(shape, x, bytes, out),
            GgmlDType::Q6K => product_own::<Q6KKernel<false>>(shape, x, bytes, out),
            other => panic!("no own kernel for {other:?}"),
        }
        .unwrap()
    }

    /// candle's block dot product of every weight row with every activation row, the
    /// activations quantized by `act_quant` (ggml's quantizers) and read as candle's blocks.
    fn reference<T: GgmlType>((m, k, n): (usize, usize, usize), w: &[u8], act: &[u8]) -> Vec<f32> {
        fn blocks<B: GgmlType>(bytes: &[u8]) -> Vec<B> {
            let mut v = vec![B::zeros(); bytes.len() / std::mem::size_of::<B>()];
            // SAFETY: candle's block types are plain `repr(C)` data; the lengths match.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    v.as_mut_ptr() as *mut u8,
                    bytes.len(),
                )
            };
            v
        }
        let w: Vec<T> = blocks(w);
        let y: Vec<T::VecDotType> = blocks(act);
        let per_row = k / T::BLCK_SIZE;
        let mut out = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                out[r * n + c] = T::vec_dot(
                    k,
                    &w[c * per_row..(c + 1) * per_row],
                    &y[r * per_row..(r + 1) * per_row],
                );
            }
        }
        out
    }

    /// `reference` with the activations quantized by `act_quant` for `T`'s dot type.
    fn reference_ggml<T: GgmlType>(shape: (usize, usize, usize), w: &[u8], x: &[f32]) -> Vec<f32> {
        let (m, k, _) = shape;
        let mut act = vec![T::VecDotType::zeros(); m * k / T::BLCK_SIZE];
        quantize_activations::<T::VecDotType>(x, k, &mut act).unwrap();
        // SAFETY: plain `repr(C)` blocks, read back as their bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(act.as_ptr() as *const u8, std::mem::size_of_val(&act[..]))
        };
        reference::<T>(shape, w, bytes)
    }

    fn weight_bytes(w: &Weight) -> Vec<u8> {
        match &w.kind {
            Kind::Quantized(m) => m.data().unwrap().into_owned(),
            _ => panic!("not a quantized weight"),
        }
    }

    /// The own kernels' products (natively: the AVX2 forms of Q8_0, Q4_1, Q5_0 and Q4_K, the portable ones
    /// of the rest, which the wasm forms mirror) against candle's block dot products on the same
    /// quantized activations, within f32 rounding, for one row and several.
    #[test]
    fn own_kernel_products_match_candle() {
        parallel::test_pool();
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q4K,
            GgmlDType::Q6K,
        ] {
            let (n, k) = (16 * 3 + 5, 256 * 2);
            let w = Tensor::from_vec(random(n * k, 3), (n, k), &Device::Cpu).unwrap();
            let qt = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let bytes = qt.data().unwrap();
            // 1 row (decode) and 11 (two passes of four rows and one of three).
            for m in [1, 11] {
                let x = random(m * k, 5 + m as u32);
                let mut ours = vec![0f32; m * n];
                own_product(dtype, (m, k, n), &x, &bytes, &mut ours);
                // Rows in a pass get the reference's bits (`portable`); one row alone is
                // decoding's form, which adds Q8_0's, Q4_1's and Q5_0's blocks in its own order
                // (`q8_0::in_order_sum`, `portable_in_order`), natively as in wasm. K-quants
                // decode with the reference's order.
                if m > 1 {
                    let mut alone = vec![0f32; n];
                    own_product(dtype, (1, k, n), &x[k..2 * k], &bytes, &mut alone);
                    let x1 = &x[k..2 * k];
                    let per_row = bytes.len() / n;
                    let row = |c: usize| &bytes[c * per_row..(c + 1) * per_row];
                    let want: Option<Vec<(f32, f32)>> = match dtype {
                        GgmlDType::Q8_0 => {
                            let mut a = vec![0u8; k / 32 * q8_0::BLOCK_BYTES];
                            act_quant::q8_0(x1, &mut a);
                            let y = q8_0::Activation::new(&a);
                            Some(
                                (0..n)
                                    .map(|c| {
                                        (
                                            q8_0::portable(row(c), [&y])[0],
                                            q8_0::portable_in_order(row(c), &y),
                                        )
                                    })
                                    .collect(),
                            )
                        }
                        GgmlDType::Q4_1 => {
                            let mut a = vec![0u8; k / 32 * 36];
                            act_quant::q8_1(x1, &mut a);
                            let y = q4_1::Activation::new(&a);
                            Some(
                                (0..n)
                                    .map(|c| {
                                        (
                                            q4_1::portable(row(c), [&y])[0],
                                            q4_1::portable_in_order(row(c), &y),
                                        )
                                    })
                                    .collect(),
                            )
                        }
                        GgmlDType::Q5_0 => {
                            let mut a = vec![0u8; k / 32 * q8_0::BLOCK_BYTES];
                            act_quant::q8_0(x1, &mut a);
                            let y = q5_0::Activation::new(&a);
                            Some(
                                (0..n)
                                    .map(|c| {
                                        (
                                            q5_0::portable(row(c), [&y])[0],
                                            q5_0::portable_in_order(row(c), &y),
                                        )
                                    })
                                    .collect(),
                            )
                        }
                        _ => None,
                    };
                    match want {
                        Some(want) => {
                            for (c, (batch, single)) in want.into_iter().enumerate() {
                                assert_eq!(
                                    ours[n + c].to_bits(),
                                    batch.to_bits(),
                                    "{dtype:?} [{c}]"
                                );
                                assert_eq!(
                                    alone[c].to_bits(),
                                    single.to_bits(),
                                    "{dtype:?} alone [{c}]"
                                );
                            }
                            // The two orders do part on these values, so the checks above
                            // tell them apart.
                            assert!((0..n).any(|c| ours[n + c].to_bits() != alone[c].to_bits()));
                        }
                        None => assert_eq!(&ours[n..2 * n], &alone[..], "{dtype:?}: row 1 of {m}"),
                    }
                }
                let shape = (m, k, n);
                let theirs = match dtype {
                    GgmlDType::Q8_0 => {
                        let mut a = vec![0u8; m * k / 32 * 34];
                        act_quant::q8_0(&x, &mut a);
                        reference::<BlockQ8_0>(shape, &bytes, &a)
                    }
                    GgmlDType::Q4_1 => {
                        let mut a = vec![0u8; m * k / 32 * 36];
                        act_quant::q8_1(&x, &mut a);
                        reference::<BlockQ4_1>(shape, &bytes, &a)
                    }
                    GgmlDType::Q5_0 => {
                        let mut a = vec![0u8; m * k / 32 * 34];
                        act_quant::q8_0(&x, &mut a);
                        reference::<BlockQ5_0>(shape, &bytes, &a)
                    }
                    _ => {
                        let mut a = vec![0u8; m * k / 256 * 292];
                        act_quant::q8_k(&x, &mut a);
                        if dtype == GgmlDType::Q4K {
                            reference::<BlockQ4K>(shape, &bytes, &a)
                        } else {
                            reference::<BlockQ6K>(shape, &bytes, &a)
                        }
                    }
                };
                for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                        "{dtype:?} m={m} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// The parallel product must give exactly candle's block dot products' bits on ggml's
    /// quantized activations, for decode (one row) and prefill (several), with a tail of
    /// columns that is not a whole item or quad (types that run on candle's kernels in this
    /// build; the own kernels are checked above). candle's own product quantizes the
    /// activations another way, so it is compared within the quantization's error.
    #[test]
    fn parallel_product_equals_candle_bit_for_bit() {
        parallel::test_pool();
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q4K,
            GgmlDType::Q6K,
        ]
        .into_iter()
        .filter(|t| !own_kernel(*t))
        {
            let (n, k) = (16 * 9 + 7, 512);
            let w = Tensor::from_vec(random(n * k, 7), (n, k), &Device::Cpu).unwrap();
            let qt = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let single = QMatMul::from_arc(qt.clone()).unwrap();
            let weight = Weight::new(qt).unwrap();
            // Random rows, and rows whose values scale to exact halves (every 32nd is the
            // block's largest, 127): ggml rounds those to even, candle away from zero.
            let halves = |m: usize| -> Vec<f32> {
                (0..m * k)
                    .map(|i| {
                        if i % 32 == 0 {
                            127.0
                        } else {
                            (i % 23) as f32 - 10.5
                        }
                    })
                    .collect()
            };
            for (m, values) in [(1, random(k, 12)), (5, random(5 * k, 16)), (2, halves(2))] {
                let x = Tensor::from_vec(values, (1, m, k), &Device::Cpu).unwrap();
                let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let xs = flat(x.clone());
                let candles = flat(single.forward(&x).unwrap());
                let two = flat(weight.forward(&x).unwrap());
                assert_eq!(two.len(), m * n);
                let bytes = weight_bytes(&weight);
                let want = match dtype {
                    GgmlDType::Q8_0 => reference_ggml::<BlockQ8_0>((m, k, n), &bytes, &xs),
                    GgmlDType::Q4_0 => reference_ggml::<BlockQ4_0>((m, k, n), &bytes, &xs),
                    GgmlDType::Q4_1 => reference_ggml::<BlockQ4_1>((m, k, n), &bytes, &xs),
                    GgmlDType::Q5_0 => reference_ggml::<BlockQ5_0>((m, k, n), &bytes, &xs),
                    GgmlDType::Q4K => reference_ggml::<BlockQ4K>((m, k, n), &bytes, &xs),
                    GgmlDType::Q6K => reference_ggml::<BlockQ6K>((m, k, n), &bytes, &xs),
                    other => panic!("{other:?}"),
                };
                assert_eq!(two, want, "{dtype:?} m={m}");
                // Against candle's own product: the two roundings part by one step on a
                // value, a few hundredths of the whole (every other value, on the halves).
                let scale: f32 = xs[..k].iter().map(|v| v.abs()).sum::<f32>() / 127.0;
                let differ = two.iter().zip(&candles).filter(|(a, b)| a != b).count();
                for (a, b) in two.iter().zip(&candles) {
                    assert!((a - b).abs() <= scale, "{dtype:?}: {a} vs {b}");
                }
                // On x86-64 candle's quantizers round halves away from zero (its NEON forms
                // may round to even, as ggml does, and agree there).
                if m == 2 && cfg!(target_arch = "x86_64") {
                    assert!(
                        differ > 0,
                        "{dtype:?}: the halves must tell the roundings apart"
                    );
                }
            }
        }
    }

    /// A joint weight's product is its parts' products side by side, bit for bit, in decoding
    /// and in prefill, with parts of uneven heights (items never straddle two parts); types
    /// without an own kernel here, and parts of different widths, stay apart.
    #[test]
    fn joint_product_is_the_parts_side_by_side() {
        parallel::test_pool();
        let k = 256;
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q4K,
        ] {
            let parts: Vec<Weight> = [37, 16, 5]
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let w = Tensor::from_vec(random(n * k, 20 + i as u32), (n, k), &Device::Cpu)
                        .unwrap();
                    Weight::new(Arc::new(QTensor::quantize(&w, dtype).unwrap())).unwrap()
                })
                .collect();
            let refs: Vec<&Weight> = parts.iter().collect();
            let Some(joint) = Weight::joint(&refs) else {
                assert!(!own_kernel(dtype), "{dtype:?} has an own kernel here");
                continue;
            };
            for m in [1, 3, 9] {
                let x = Tensor::from_vec(random(m * k, 30 + m as u32), (1, m, k), &Device::Cpu)
                    .unwrap();
                let apart: Vec<Tensor> = parts.iter().map(|p| p.forward(&x).unwrap()).collect();
                let want = Tensor::cat(&apart, 2).unwrap().flatten_all().unwrap();
                let got = joint.forward(&x).unwrap();
                assert_eq!(got.dims(), &[1, m, 58]);
                let bits = |t: Tensor| {
                    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    v.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
                };
                assert_eq!(bits(got), bits(want), "{dtype:?} m={m}");
            }
        }
        let narrow = Tensor::from_vec(random(32 * 32, 5), (32, 32), &Device::Cpu).unwrap();
        let wide = Tensor::from_vec(random(32 * 64, 6), (32, 64), &Device::Cpu).unwrap();
        let [a, b] = [narrow, wide].map(|w| {
            Weight::new(Arc::new(QTensor::quantize(&w, GgmlDType::Q5_0).unwrap())).unwrap()
        });
        assert!(Weight::joint(&[&a, &b]).is_none(), "widths differ");
    }

    /// Decoding's runs of rows: whatever range of items a thread takes (ends of parts, a last
    /// item short of `COLUMNS_PER_ITEM`, fewer items than runs), every column of it is written
    /// once, with its row's own `dot_in_order`, and nothing else is.
    #[test]
    fn decode_streams_writes_each_row_once_with_its_own_bits() {
        type K = Q4_1Kernel;
        let k = 64;
        let row_bytes = k / K::BLOCK * K::WEIGHT_BLOCK_BYTES;
        let heights = [37, 16, 5];
        let blocks: Vec<Vec<u8>> = heights
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let w =
                    Tensor::from_vec(random(n * k, 40 + i as u32), (n, k), &Device::Cpu).unwrap();
                let qt = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
                qt.data().unwrap().to_vec()
            })
            .collect();
        let mut act = vec![0u8; k / K::BLOCK * K::ACT_BLOCK_BYTES];
        K::quantize(&random(k, 50), &mut act);
        let y = K::prepare(&act);
        // (part, first item, first output column), as `product_own_parts` lays them out.
        let mut starts = Vec::new();
        let (mut items, mut column) = (0, 0);
        for (p, &n) in heights.iter().enumerate() {
            starts.push((p, items, column));
            items += n.div_ceil(COLUMNS_PER_ITEM);
            column += n;
        }
        let locate = |item: usize| {
            let at = starts.partition_point(|s| s.1 <= item) - 1;
            let (p, first_item, offset) = starts[at];
            let c0 = (item - first_item) * COLUMNS_PER_ITEM;
            let c1 = heights[p].min(c0 + COLUMNS_PER_ITEM);
            let rows = Rows {
                bytes: &blocks[p],
                row_bytes,
            };
            (rows, c0..c1, offset)
        };
        let want: Vec<u32> = (0..items)
            .flat_map(|item| {
                let (rows, cols, _) = locate(item);
                let y = &y;
                cols.map(move |c| K::dot_in_order(rows.row(c), y).to_bits())
            })
            .collect();
        assert_eq!(want.len(), column);
        for start in 0..items {
            for end in start..=items {
                let got = std::sync::Mutex::new(vec![None; column]);
                let out = |c: usize, v: &[f32]| {
                    let mut got = got.lock().unwrap();
                    assert!(got[c].is_none(), "column {c} written twice");
                    got[c] = Some(v[0].to_bits());
                };
                decode_streams::<K>(start..end, &locate, &y, &out);
                let got = got.into_inner().unwrap();
                let (first, last) = (locate(start).2 + locate(start).1.start, {
                    if end == start {
                        locate(start).2 + locate(start).1.start
                    } else {
                        let (_, cols, offset) = locate(end - 1);
                        offset + cols.end
                    }
                });
                for (c, v) in got.iter().enumerate() {
                    let inside = (first..last).contains(&c);
                    assert_eq!(
                        *v,
                        inside.then_some(want[c]),
                        "items {start}..{end}, column {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn dot_f32_many_has_dot_f32s_bits() {
        for len in [0, 1, 3, 4, 7, 64, 66, 256] {
            let a = random(len, 1);
            let bs: Vec<Vec<f32>> = (0..4).map(|i| random(len, 2 + i)).collect();
            let many = dot_f32_many(&a, [&bs[0][..], &bs[1], &bs[2], &bs[3]]);
            for (got, b) in many.iter().zip(&bs) {
                assert_eq!(got.to_bits(), dot_f32(&a, b).to_bits(), "length {len}");
            }
        }
    }

    /// Float weights (F32, F16) take the engine's fixed-order product on the pool: every output
    /// equals `dot_f32` of its row and column exactly, and the f64 product within rounding.
    #[test]
    fn float_weights_use_the_fixed_order_product() {
        parallel::test_pool();
        for dtype in [GgmlDType::F32, GgmlDType::F16] {
            let (n, k) = (16 * 5 + 3, 96);
            let w = Tensor::from_vec(random(n * k, 3), (n, k), &Device::Cpu).unwrap();
            let qt = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let wide = qt
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let weight = Weight::new(qt).unwrap();
            for m in [1, 7] {
                let xs = random(m * k, 5 + m as u32);
                let x = Tensor::from_vec(xs.clone(), (1, m, k), &Device::Cpu).unwrap();
                let got = weight.forward(&x).unwrap();
                assert_eq!(got.dims(), &[1, m, n]);
                let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for r in 0..m {
                    for c in 0..n {
                        let (row, col) = (&xs[r * k..][..k], &wide[c * k..][..k]);
                        assert_eq!(got[r * n + c], dot_f32(row, col), "{dtype:?} ({r}, {c})");
                        let exact: f64 = row
                            .iter()
                            .zip(col)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum();
                        assert!((got[r * n + c] as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()));
                    }
                }
            }
        }
    }

    /// A Q8_0 matrix laid out by `q8_0::arrange_row` (the relaxed build's) multiplies to the
    /// bits of the own Q8_0 kernel on the stored matrix, alone and joined, for one activation
    /// row (decoding) and for eleven (prefill); rows of 13 blocks end in a run of four and a
    /// tail of one.
    #[test]
    fn arranged_q8_0_products_have_the_stored_bits() {
        parallel::test_pool();
        let (n, k) = (16 * 2 + 3, 32 * 13);
        let stored: Vec<Arc<QTensor>> = (0..2)
            .map(|i| {
                let w = Tensor::from_vec(random(n * k, 30 + i), (n, k), &Device::Cpu).unwrap();
                Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap())
            })
            .collect();
        let laid: Vec<Weight> = stored
            .iter()
            .map(|qt| {
                let mut a = q8_0::Arranged::new(n, k);
                a.set_rows(0, &qt.data().unwrap());
                Weight::arranged_q8_0(Arc::new(a))
            })
            .collect();
        let joint = Weight::joint(&[&laid[0], &laid[1]]).unwrap();
        // Stored and arranged parts are not joined: their rows differ in size.
        let plain = Weight::new(stored[0].clone()).unwrap();
        assert!(Weight::joint(&[&plain, &laid[1]]).is_none());
        assert_stored_bits(GgmlDType::Q8_0, (n, k), &stored, &laid, &joint, 7);
    }

    /// `laid` (one weight per matrix of `stored`, held in another layout) and `joint` (the
    /// first two joined) multiply with the bits of the own kernel on the stored blocks of
    /// `dtype`, for one activation row (decoding) and for eleven (prefill's tiles, the last
    /// one partial); the activations' seed is `seed` plus the row count.
    fn assert_stored_bits(
        dtype: GgmlDType,
        (n, k): (usize, usize),
        stored: &[Arc<QTensor>],
        laid: &[Weight],
        joint: &Weight,
        seed: u32,
    ) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        for m in [1, 11] {
            let x = random(m * k, seed + m as u32);
            let xt = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
            let got = |w: &Weight| {
                bits(
                    &w.forward(&xt)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap(),
                )
            };
            let want: Vec<Vec<f32>> = stored
                .iter()
                .map(|qt| {
                    let mut out = vec![0f32; m * n];
                    own_product(dtype, (m, k, n), &x, &qt.data().unwrap(), &mut out);
                    out
                })
                .collect();
            assert_eq!(got(&laid[0]), bits(&want[0]), "{m} rows");
            let joined: Vec<f32> = (0..m)
                .flat_map(|r| [&want[0][r * n..(r + 1) * n], &want[1][r * n..(r + 1) * n]].concat())
                .collect();
            assert_eq!(got(joint), bits(&joined), "{m} rows, joined");
        }
    }

    /// A Q6_K matrix widened at load multiplies with the stored rows' bits in decoding (one
    /// row) and prefill (tiles, with a partial last one), alone and joined with another; and a
    /// matrix whose rows are not whole blocks, or whose bytes do not fill its shape, is refused
    /// with a message, not a panic.
    #[test]
    fn widened_q6k_matrices_multiply_as_stored_and_refuse_bad_shapes() {
        let (k, n) = (512, 5);
        let stored: Vec<Arc<QTensor>> = (0..2)
            .map(|i| {
                let t = Tensor::from_vec(random(n * k, 40 + i), (n, k), &Device::Cpu).unwrap();
                Arc::new(QTensor::quantize(&t, GgmlDType::Q6K).unwrap())
            })
            .collect();
        let wide: Vec<Weight> = stored
            .iter()
            .map(|qt| Weight::wide_q6k(Arc::new(WideQ6K::new(n, k, &qt.data().unwrap()).unwrap())))
            .collect();
        let joint = Weight::joint(&[&wide[0], &wide[1]]).expect("widened parts join");
        assert_stored_bits(GgmlDType::Q6K, (n, k), &stored, &wide, &joint, 50);
        let blocks = stored[0].data().unwrap();
        for (rows, cols, bytes) in [
            (n, 500, &blocks[..]),
            (n, k, &blocks[1..]),
            (n + 1, k, &blocks[..]),
        ] {
            let e = WideQ6K::new(rows, cols, bytes).err().expect("refused");
            assert!(e.to_string().contains("a Q6_K matrix"), "{e}");
        }
    }
}
