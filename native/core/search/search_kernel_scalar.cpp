// Scalar search kernels (core/search), baseline flags: the fallback path and the reference the
// SIMD paths are tested against. Panel width 16, query group 4. Each (query, row) score is one
// std::fma chain over d ascending, so results are bit-identical to the AVX2/AVX-512 paths (glibc
// resolves fmaf to the hardware instruction where the CPU has one).
#include <cmath>

#include "search/search_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int kNr = 16;
constexpr int kMr = 4;

bool pack_panel(const float* g, int64_t stride, int64_t dim, int nrows, float* panel,
                float* norms2) {
  bool finite = true;
  for (int j = 0; j < kNr; ++j) {
    if (j >= nrows) {
      for (int64_t d = 0; d < dim; ++d) panel[d * kNr + j] = 0.0f;
      norms2[j] = 0.0f;
      continue;
    }
    const float* row = g + j * stride;
    float n = 0.0f;
    for (int64_t d = 0; d < dim; ++d) {
      const float v = row[d];
      finite = finite && std::isfinite(v);
      panel[d * kNr + j] = v;
      n = std::fma(v, v, n);
    }
    norms2[j] = n;
  }
  return finite;
}

template <ScanKey K>
inline float make_key(float acc, float qaux, float laux) {
  if (K == ScanKey::kCosine) return (acc * qaux) * laux;
  if (K == ScanKey::kL2) return (acc + acc) - laux;
  return acc;
}

template <ScanKey K>
void scan(const ScanArgs& a) {
  const int64_t dim = a.dim;
  for (int64_t g0 = 0; g0 < a.nq; g0 += kMr) {
    const int m = static_cast<int>(a.nq - g0 < kMr ? a.nq - g0 : kMr);
    const float* qg = a.qpack + g0 * dim;
    for (int i = 0; i < m; ++i) {
      const int64_t q = g0 + i;
      const float qaux = K == ScanKey::kCosine ? a.q_aux[q] : 0.0f;
      float keys[kNr];
      uint32_t lanes = 0;
      for (int j = 0; j < a.nrows; ++j) {
        float acc = 0.0f;
        for (int64_t d = 0; d < dim; ++d) acc = std::fma(qg[d * m + i], a.panel[d * kNr + j], acc);
        keys[j] = make_key<K>(acc, qaux, K == ScanKey::kIp ? 0.0f : a.lane_aux[j]);
        if (keys[j] > a.thr[q]) lanes |= 1u << j;
      }
      if (lanes != 0) a.accept(a.sink, q, a.row0, keys, lanes);
    }
  }
}

bool score_rows(const float* const* rows, int nrows, const float* q, int64_t dim, float* dots,
                float* norms2) {
  bool finite = true;
  for (int j = 0; j < kNr; ++j) {
    float acc = 0.0f, n = 0.0f;
    if (j < nrows) {
      for (int64_t d = 0; d < dim; ++d) {
        const float v = rows[j][d];
        finite = finite && std::isfinite(v);
        acc = std::fma(q[d], v, acc);
        n = std::fma(v, v, n);
      }
    }
    dots[j] = acc;
    norms2[j] = n;
  }
  return finite;
}

void scan_panel(const ScanArgs& a) {
  switch (a.key) {
    case ScanKey::kIp: return scan<ScanKey::kIp>(a);
    case ScanKey::kCosine: return scan<ScanKey::kCosine>(a);
    case ScanKey::kL2: return scan<ScanKey::kL2>(a);
  }
}

}  // namespace

const SearchKernels& search_kernels_scalar() {
  static const SearchKernels k{kNr, kMr, &pack_panel, &scan_panel, nullptr, 0, &score_rows};
  return k;
}

}  // namespace core
}  // namespace vlk
