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

// GCC 12 at -O3 reports the shuffle intrinsics' internal undefined operand as maybe-uninitialized
// once they are inlined here (a false positive: every lane read is set); silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// r[0 .. 16) = the 16 x 16 block's rows -> its columns (r[c] = column c, rows 0..15).
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4 i + c], 128-bit lane L: column 4 L + c of rows 4 i .. 4 i + 3.
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);  // lanes 0, 2 of each
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);  // lanes 1, 3 of each
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
}

inline __mmask16 first_lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u); }

// See GemmKernels::pack_a. The strided case reads 16 columns of up to 12 rows and transposes
// them in registers; each packed k-row is a 12-lane masked store.
void pack_a_12(const float* __restrict a, int64_t lda, bool trans, int64_t kc, int h, float* __restrict dst) {
  const __mmask16 row_mask = __mmask16(0x0FFF);
  if (trans) {
    const __mmask16 m = first_lanes(h);
    for (int64_t k = 0; k < kc; ++k) _mm512_mask_storeu_ps(dst + k * kMr, row_mask, _mm512_maskz_loadu_ps(m, a + k * lda));
    return;
  }
  __m512 r[16];
  for (int64_t k0 = 0; k0 < kc; k0 += 16) {
    const int64_t count = kc - k0 < 16 ? kc - k0 : 16;
    const __mmask16 m = first_lanes(count);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) r[i] = i < h ? _mm512_maskz_loadu_ps(m, a + i * lda + k0) : _mm512_setzero_ps();
    transpose16(r);
    for (int64_t q = 0; q < count; ++q) _mm512_mask_storeu_ps(dst + (k0 + q) * kMr, row_mask, r[q]);
  }
}

// See GemmKernels::pack_b. The transposed case reads 16 rows of B (16 packed columns) 16 deep and
// transposes them in registers into two half panels.
void pack_b_32(const float* __restrict b, int64_t ldb, bool trans, int64_t kc, int w, float alpha,
               float* __restrict dst) {
  const __m512 va = _mm512_set1_ps(alpha);
  const bool scale = alpha != 1.0f;
  if (!trans) {
    const __mmask16 m0 = first_lanes(w), m1 = w > 16 ? first_lanes(w - 16) : __mmask16(0);
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = b + k * ldb;
      __m512 v0 = _mm512_maskz_loadu_ps(m0, src), v1 = _mm512_maskz_loadu_ps(m1, src + 16);
      if (scale) {
        v0 = _mm512_mul_ps(va, v0);
        v1 = _mm512_mul_ps(va, v1);
      }
      _mm512_storeu_ps(dst + k * kNr, v0);
      _mm512_storeu_ps(dst + k * kNr + 16, v1);
    }
    return;
  }
  __m512 r[16];
  for (int half = 0; half < 2; ++half) {
    const int j0 = half * 16;
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
      const int64_t count = kc - k0 < 16 ? kc - k0 : 16;
      const __mmask16 m = first_lanes(count);
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) {
        r[j] = j0 + j < w ? _mm512_maskz_loadu_ps(m, b + (j0 + j) * ldb + k0) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int64_t q = 0; q < count; ++q) {
        _mm512_storeu_ps(dst + (k0 + q) * kNr + j0, scale ? _mm512_mul_ps(va, r[q]) : r[q]);
      }
    }
  }
}

}  // namespace

const GemmKernels& gemm_kernels_avx512() {
  static const GemmKernels k{kMr, kNr, &tile_12x32, &pack_a_12, &pack_b_32};
  return k;
}

}  // namespace core
}  // namespace vlk
