// GEMM micro-kernel, avx512 build (core/linalg): a 12 x 32 tile held in 24 zmm accumulators; per k
// step two loads of the packed B panel and one embedded broadcast per A row feed 24 FMAs. Same
// arithmetic as the generic tile in gemm_kernel.hpp (acc = fma(a_ik, b_kj, acc) over k ascending
// from zero, then C + acc), so every ISA gives the same bits.
#include <immintrin.h>

#include <cstdint>

#include "linalg/gemm_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int kMr = 12;
constexpr int kNr = 32;

void tile_12x32(const float* __restrict a, const float* __restrict b, int64_t kc, float* __restrict c, int64_t ldc,
                int rows, int cols, bool accumulate) {
  __m512 acc[kMr][2];
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i) {
    acc[i][0] = _mm512_setzero_ps();
    acc[i][1] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * kNr);
    const __m512 b1 = _mm512_loadu_ps(b + k * kNr + 16);
    const float* ak = a + k * kMr;
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i) {
      const __m512 ai = _mm512_set1_ps(ak[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1u);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols > 16 ? __mmask16((1u << (cols - 16)) - 1u) : __mmask16(0);
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i) {
    if (i >= rows) break;
    float* ci = c + i * ldc;
    __m512 v0 = acc[i][0], v1 = acc[i][1];
    if (accumulate) {
      v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), v0);
      v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), v1);
    }
    _mm512_mask_storeu_ps(ci, m0, v0);
    _mm512_mask_storeu_ps(ci + 16, m1, v1);
  }
}

}  // namespace

const GemmKernels& gemm_kernels_avx512() {
  static const GemmKernels k{kMr, kNr, &tile_12x32};
  return k;
}

}  // namespace core
}  // namespace vlk
