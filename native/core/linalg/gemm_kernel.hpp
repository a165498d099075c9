// GEMM micro-kernel (core/linalg, internal). Included by each gemm_kernel_<isa>.cpp, which is
// compiled with its ISA's flags: the code is plain C++ that the compiler vectorizes for that ISA.
// Everything but the table type lives in an anonymous namespace, so each ISA file has its own
// internal copy and no ISA-flagged inline function can be linked into portable code.
#pragma once

#include <cstdint>

namespace vlk {
namespace core {

/// C[MR x NR] (row stride ldc) = (accumulate ? C : 0) + sum_k a[k * MR + i] * b[k * NR + j],
/// fma over k ascending; `rows` x `cols` of the tile are written (the rest is padding).
///
/// pack_a: rows [0, h) of op(A) (h <= MR, the rest zero) over kc columns into dst[k * MR + i];
/// `a` points at op(A)[i0][p0]: row i at a + i * lda, or (trans) row k at a + k * lda.
/// pack_b: columns [0, w) of op(B) (w <= NR, the rest zero) times alpha over kc rows into
/// dst[k * NR + j]; `b` points at op(B)[p0][j0]: row k at b + k * ldb, or (trans) column j at
/// b + j * ldb. Plain copies (one multiply by alpha), so every ISA packs the same bits.
struct GemmKernels {
  int mr, nr;
  void (*tile)(const float* a, const float* b, int64_t kc, float* c, int64_t ldc, int rows, int cols, bool accumulate);
  void (*pack_a)(const float* a, int64_t lda, bool trans, int64_t kc, int h, float* dst);
  void (*pack_b)(const float* b, int64_t ldb, bool trans, int64_t kc, int w, float alpha, float* dst);
};

const GemmKernels& gemm_kernels_scalar();
const GemmKernels& gemm_kernels_avx2();
const GemmKernels& gemm_kernels_avx512();

namespace {

template <int MR, int NR>
void gemm_tile(const float* __restrict a, const float* __restrict b, int64_t kc, float* __restrict c, int64_t ldc,
               int rows, int cols, bool accumulate) {
  float acc[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) acc[i][j] = 0.0f;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float* ak = a + k * MR;
    const float* bk = b + k * NR;
    for (int i = 0; i < MR; ++i) {
      const float ai = ak[i];
#pragma GCC ivdep
      for (int j = 0; j < NR; ++j) acc[i][j] = __builtin_fmaf(ai, bk[j], acc[i][j]);  // no <cmath>: see above
    }
  }
  for (int i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < cols; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
  }
}

template <int MR>
void gemm_pack_a(const float* __restrict a, int64_t lda, bool trans, int64_t kc, int h, float* __restrict dst) {
  if (trans) {  // row k of A^T's source holds op(A)[., k] contiguously
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = a + k * lda;
      float* d = dst + k * MR;
      for (int i = 0; i < h; ++i) d[i] = src[i];
      for (int i = h; i < MR; ++i) d[i] = 0.0f;
    }
    return;
  }
  for (int i = 0; i < MR; ++i) {  // row i of A holds op(A)[i, .] contiguously
    if (i >= h) {
      for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = 0.0f;
      continue;
    }
    const float* src = a + i * lda;
    for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = src[k];
  }
}

template <int NR>
void gemm_pack_b(const float* __restrict b, int64_t ldb, bool trans, int64_t kc, int w, float alpha,
                 float* __restrict dst) {
  if (trans) {  // row j of B holds op(B)[., j] contiguously
    for (int j = 0; j < NR; ++j) {
      if (j >= w) {
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = 0.0f;
        continue;
      }
      const float* src = b + j * ldb;
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = alpha * src[k];
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {  // row k of B holds op(B)[k, .] contiguously
    const float* src = b + k * ldb;
    float* d = dst + k * NR;
    for (int j = 0; j < w; ++j) d[j] = alpha * src[j];
    for (int j = w; j < NR; ++j) d[j] = 0.0f;
  }
}

}  // namespace

}  // namespace core
}  // namespace vlk
