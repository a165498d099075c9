// NEON search kernels (core/search), arm64 only, baseline flags (NEON is part of AArch64).
// Tile: 6 queries x 16 gallery rows = 24 q-register accumulators, four panel vectors and two query
// vectors (30 of 32 registers). Same panel layout and score order as every path: one fused
// multiply-add chain per (query, row) over d ascending, so results equal the scalar path bit for bit.
#include <arm_neon.h>

#include "search/search_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int kNr = 16;
constexpr int kMr = 6;

// All ones in a lane whose value is NaN or infinite (v - v is NaN exactly then).
inline uint32x4_t not_finite(float32x4_t v) {
  const float32x4_t z = vsubq_f32(v, v);
  return vmvnq_u32(vceqq_f32(z, z));
}

// Bit j of the result is lane j's comparison (like movemask), for four lanes.
inline unsigned lane_bits(uint32x4_t m) {
  const uint32x4_t weights = {1u, 2u, 4u, 8u};
  return vaddvq_u32(vandq_u32(m, weights));
}

bool pack_panel(const float* g, int64_t stride, int64_t dim, int nrows, float* panel,
                float* norms2) {
  float32x4_t n[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  uint32x4_t bad = vdupq_n_u32(0);
  for (int64_t d = 0; d < dim; ++d) {
    float* dst = panel + d * kNr;
    for (int j = 0; j < kNr; ++j) dst[j] = j < nrows ? g[j * stride + d] : 0.0f;
    for (int v = 0; v < 4; ++v) {
      const float32x4_t x = vld1q_f32(dst + 4 * v);
      n[v] = vfmaq_f32(n[v], x, x);
      bad = vorrq_u32(bad, not_finite(x));
    }
  }
  for (int v = 0; v < 4; ++v) vst1q_f32(norms2 + 4 * v, n[v]);
  return vmaxvq_u32(bad) == 0;
}

// acc[i][v] lanes = rows 4v..4v+3 for query i of the group; qg is the group's interleaved queries.
template <int M>
inline void tile(const float* __restrict panel, const float* __restrict qg, int64_t dim,
                 float32x4_t (&acc)[M][4]) {
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = vdupq_n_f32(0.0f);
  for (int64_t d = 0; d < dim; ++d) {
    const float* pd = panel + d * kNr;
    const float32x4_t b0 = vld1q_f32(pd), b1 = vld1q_f32(pd + 4);
    const float32x4_t b2 = vld1q_f32(pd + 8), b3 = vld1q_f32(pd + 12);
    const float* qd = qg + d * M;
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      // A broadcast load keeps the query's value exact; vfmaq_f32 is one fused multiply-add per
      // lane, the same rounding as std::fma(q, g, acc).
      const float32x4_t a = vld1q_dup_f32(qd + i);
      acc[i][0] = vfmaq_f32(acc[i][0], a, b0);
      acc[i][1] = vfmaq_f32(acc[i][1], a, b1);
      acc[i][2] = vfmaq_f32(acc[i][2], a, b2);
      acc[i][3] = vfmaq_f32(acc[i][3], a, b3);
    }
  }
}

template <ScanKey K>
inline float32x4_t make_key(float32x4_t acc, float32x4_t qaux, float32x4_t laux) {
  if (K == ScanKey::kCosine) return vmulq_f32(vmulq_f32(acc, qaux), laux);
  if (K == ScanKey::kL2) return vsubq_f32(vaddq_f32(acc, acc), laux);
  return acc;
}

template <int M, ScanKey K>
void group(const ScanArgs& a, int64_t g0, unsigned valid, const float32x4_t (&laux)[4]) {
  float32x4_t acc[M][4];
  tile<M>(a.panel, a.qpack + g0 * a.dim, a.dim, acc);
  for (int i = 0; i < M; ++i) {
    const int64_t q = g0 + i;
    const float32x4_t qaux = vdupq_n_f32(K == ScanKey::kCosine ? a.q_aux[q] : 0.0f);
    const float32x4_t t = vdupq_n_f32(a.thr[q]);
    float32x4_t k[4];
    unsigned m = 0;
    for (int v = 0; v < 4; ++v) {
      k[v] = make_key<K>(acc[i][v], qaux, laux[v]);
      // Ordered greater-than: a NaN key never passes, as in the scalar path.
      m |= lane_bits(vcgtq_f32(k[v], t)) << (4 * v);
    }
    m &= valid;
    if (__builtin_expect(m != 0, 0)) {
      float keys[kNr];
      for (int v = 0; v < 4; ++v) vst1q_f32(keys + 4 * v, k[v]);
      a.accept(a.sink, q, a.row0, keys, m);
    }
  }
}

template <ScanKey K>
void scan(const ScanArgs& a) {
  const unsigned valid = a.nrows >= kNr ? 0xFFFFu : ((1u << a.nrows) - 1);
  float32x4_t laux[4];
  for (int v = 0; v < 4; ++v) laux[v] = K == ScanKey::kIp ? vdupq_n_f32(0.0f) : vld1q_f32(a.lane_aux + 4 * v);
  int64_t g0 = 0;
  for (; g0 + kMr <= a.nq; g0 += kMr) group<kMr, K>(a, g0, valid, laux);
  switch (a.nq - g0) {
    case 1: group<1, K>(a, g0, valid, laux); break;
    case 2: group<2, K>(a, g0, valid, laux); break;
    case 3: group<3, K>(a, g0, valid, laux); break;
    case 4: group<4, K>(a, g0, valid, laux); break;
    case 5: group<5, K>(a, g0, valid, laux); break;
    default: break;
  }
}

bool score_rows(const float* const* rows, int nrows, const float* q, int64_t dim, float* dots,
                float* norms2) {
  float32x4_t acc[4], n[4];
  for (int v = 0; v < 4; ++v) acc[v] = n[v] = vdupq_n_f32(0.0f);
  uint32x4_t bad = vdupq_n_u32(0);
  float col[kNr];
  for (int64_t d = 0; d < dim; ++d) {
    for (int j = 0; j < kNr; ++j) col[j] = j < nrows ? rows[j][d] : 0.0f;
    const float32x4_t qd = vld1q_dup_f32(q + d);
    for (int v = 0; v < 4; ++v) {
      const float32x4_t x = vld1q_f32(col + 4 * v);
      acc[v] = vfmaq_f32(acc[v], qd, x);
      n[v] = vfmaq_f32(n[v], x, x);
      bad = vorrq_u32(bad, not_finite(x));
    }
  }
  for (int v = 0; v < 4; ++v) {
    vst1q_f32(dots + 4 * v, acc[v]);
    vst1q_f32(norms2 + 4 * v, n[v]);
  }
  return vmaxvq_u32(bad) == 0;
}

void scan_panel(const ScanArgs& a) {
  switch (a.key) {
    case ScanKey::kIp: return scan<ScanKey::kIp>(a);
    case ScanKey::kCosine: return scan<ScanKey::kCosine>(a);
    case ScanKey::kL2: return scan<ScanKey::kL2>(a);
  }
}

}  // namespace

const SearchKernels& search_kernels_neon() {
  static const SearchKernels k{kNr, kMr, &pack_panel, &scan_panel, nullptr, 0, &score_rows};
  return k;
}

}  // namespace core
}  // namespace vlk
