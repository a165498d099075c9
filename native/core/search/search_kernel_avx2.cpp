// AVX2 + FMA search kernels (core/search), compiled with -mavx2 -mfma only.
// Tile: 6 queries x 16 gallery rows = 12 ymm accumulators (fp32), two panel vectors and one
// broadcast per step (15 of 16 registers). A 16-row panel is D x 16 floats (32 KiB at D = 512,
// L1-resident). Score order per pair: fma chain over d ascending, as on every path.
#include <immintrin.h>

#include "search/search_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int kNr = 16;
constexpr int kMr = 6;

bool pack_panel(const float* g, int64_t stride, int64_t dim, int nrows, float* panel,
                float* norms2) {
  const __m256 zero = _mm256_setzero_ps();
  __m256 n0 = zero, n1 = zero, bad = zero;
  for (int64_t d = 0; d < dim; ++d) {
    float* dst = panel + d * kNr;
    for (int j = 0; j < kNr; ++j) dst[j] = j < nrows ? g[j * stride + d] : 0.0f;
    const __m256 v0 = _mm256_load_ps(dst), v1 = _mm256_load_ps(dst + 8);
    n0 = _mm256_fmadd_ps(v0, v0, n0);
    n1 = _mm256_fmadd_ps(v1, v1, n1);
    // v - v is NaN exactly when v is NaN or infinite.
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(v0, v0), zero, _CMP_NEQ_UQ));
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(v1, v1), zero, _CMP_NEQ_UQ));
  }
  _mm256_storeu_ps(norms2, n0);
  _mm256_storeu_ps(norms2 + 8, n1);
  return _mm256_movemask_ps(bad) == 0;
}

template <int M>
inline void tile(const float* __restrict panel, const float* __restrict qg, int64_t dim,
                 __m256 (&acc)[M][2]) {
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t d = 0; d < dim; ++d) {
    const __m256 b0 = _mm256_load_ps(panel + d * kNr);
    const __m256 b1 = _mm256_load_ps(panel + d * kNr + 8);
    const float* qd = qg + d * M;
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      const __m256 a = _mm256_broadcast_ss(qd + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
}

template <ScanKey K>
inline __m256 make_key(__m256 acc, __m256 qaux, __m256 laux) {
  if (K == ScanKey::kCosine) return _mm256_mul_ps(_mm256_mul_ps(acc, qaux), laux);
  if (K == ScanKey::kL2) return _mm256_sub_ps(_mm256_add_ps(acc, acc), laux);
  return acc;
}

template <int M, ScanKey K>
void group(const ScanArgs& a, int64_t g0, unsigned valid, __m256 laux0, __m256 laux1) {
  __m256 acc[M][2];
  tile<M>(a.panel, a.qpack + g0 * a.dim, a.dim, acc);
#pragma GCC unroll 6
  for (int i = 0; i < M; ++i) {
    const int64_t q = g0 + i;
    const __m256 qaux = K == ScanKey::kCosine ? _mm256_set1_ps(a.q_aux[q]) : _mm256_setzero_ps();
    const __m256 k0 = make_key<K>(acc[i][0], qaux, laux0);
    const __m256 k1 = make_key<K>(acc[i][1], qaux, laux1);
    const __m256 t = _mm256_set1_ps(a.thr[q]);
    const unsigned m = (static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(k0, t, _CMP_GT_OQ))) |
                        (static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(k1, t, _CMP_GT_OQ)))
                         << 8)) &
                       valid;
    if (__builtin_expect(m != 0, 0)) {
      alignas(32) float keys[kNr];
      _mm256_store_ps(keys, k0);
      _mm256_store_ps(keys + 8, k1);
      a.accept(a.sink, q, a.row0, keys, m);
    }
  }
}

template <ScanKey K>
void scan(const ScanArgs& a) {
  const unsigned valid = a.nrows >= 16 ? 0xFFFFu : ((1u << a.nrows) - 1);
  const __m256 l0 = K == ScanKey::kIp ? _mm256_setzero_ps() : _mm256_loadu_ps(a.lane_aux);
  const __m256 l1 = K == ScanKey::kIp ? _mm256_setzero_ps() : _mm256_loadu_ps(a.lane_aux + 8);
  int64_t g0 = 0;
  for (; g0 + kMr <= a.nq; g0 += kMr) group<kMr, K>(a, g0, valid, l0, l1);
  switch (a.nq - g0) {
    case 1: group<1, K>(a, g0, valid, l0, l1); break;
    case 2: group<2, K>(a, g0, valid, l0, l1); break;
    case 3: group<3, K>(a, g0, valid, l0, l1); break;
    case 4: group<4, K>(a, g0, valid, l0, l1); break;
    case 5: group<5, K>(a, g0, valid, l0, l1); break;
    default: break;
  }
}

bool score_rows(const float* const* rows, int nrows, const float* q, int64_t dim, float* dots,
                float* norms2) {
  const __m256 zero = _mm256_setzero_ps();
  __m256 acc0 = zero, acc1 = zero, n0 = zero, n1 = zero, bad = zero;
  alignas(32) float col[kNr];
  for (int64_t d = 0; d < dim; ++d) {
    for (int j = 0; j < kNr; ++j) col[j] = j < nrows ? rows[j][d] : 0.0f;
    const __m256 v0 = _mm256_load_ps(col), v1 = _mm256_load_ps(col + 8);
    const __m256 qd = _mm256_broadcast_ss(q + d);
    acc0 = _mm256_fmadd_ps(qd, v0, acc0);
    acc1 = _mm256_fmadd_ps(qd, v1, acc1);
    n0 = _mm256_fmadd_ps(v0, v0, n0);
    n1 = _mm256_fmadd_ps(v1, v1, n1);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(v0, v0), zero, _CMP_NEQ_UQ));
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(v1, v1), zero, _CMP_NEQ_UQ));
  }
  _mm256_storeu_ps(dots, acc0);
  _mm256_storeu_ps(dots + 8, acc1);
  _mm256_storeu_ps(norms2, n0);
  _mm256_storeu_ps(norms2 + 8, n1);
  return _mm256_movemask_ps(bad) == 0;
}

void scan_panel(const ScanArgs& a) {
  switch (a.key) {
    case ScanKey::kIp: return scan<ScanKey::kIp>(a);
    case ScanKey::kCosine: return scan<ScanKey::kCosine>(a);
    case ScanKey::kL2: return scan<ScanKey::kL2>(a);
  }
}

}  // namespace

const SearchKernels& search_kernels_avx2() {
  static const SearchKernels k{kNr, kMr, &pack_panel, &scan_panel, nullptr, 0, &score_rows};
  return k;
}

}  // namespace core
}  // namespace vlk
