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
struct GemmKernels {
  int mr, nr;
  void (*tile)(const float* a, const float* b, int64_t kc, float* c, int64_t ldc, int rows, int cols, bool accumulate);
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

}  // namespace

}  // namespace core
}  // namespace vlk
