// C++ tests of the NEON search kernels (arm64 builds only, vlk_neon_test_sources): the NEON table
// against the scalar table bit for bit (packed panels D x 16, norms, scan keys per (query, row),
// gathered-row scores) and both against a float64 reference, on random inputs at awkward sizes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "search/search_kernel.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::core::ScanArgs;
using vlk::core::ScanKey;
using vlk::core::SearchKernels;
using vlk_test::Rng;

constexpr int kNr = 16;
constexpr int64_t kDims[] = {1, 7, 16, 513};
constexpr int kRows[] = {1, 7, 16};

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

std::vector<float> random_vec(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform();
  return v;
}

// 64-byte aligned panel storage, as the driver provides.
struct Panel {
  explicit Panel(int64_t dim) : raw(static_cast<size_t>(dim * kNr + 16)) {
    const auto addr = reinterpret_cast<uintptr_t>(raw.data());
    p = raw.data() + ((64 - addr % 64) % 64) / sizeof(float);
  }
  std::vector<float> raw;
  float* p;
};

// Query groups in the table's layout: group g at g * MR * D, qg[d * m + i] = q[i][d].
std::vector<float> pack_queries(const std::vector<float>& q, int64_t nq, int64_t dim, int mr) {
  std::vector<float> out(static_cast<size_t>(((nq + mr - 1) / mr) * mr * dim), 0.0f);
  for (int64_t g0 = 0; g0 < nq; g0 += mr) {
    const int64_t m = std::min<int64_t>(mr, nq - g0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t d = 0; d < dim; ++d) out[g0 * dim + d * m + i] = q[(g0 + i) * dim + d];
  }
  return out;
}

using Hit = std::tuple<int64_t, int64_t, uint32_t>;  // query, gallery row, key bits

void collect(void* sink, int64_t q, int64_t row0, const float* keys, uint32_t lanes) {
  auto* hits = static_cast<std::vector<Hit>*>(sink);
  for (int j = 0; j < kNr; ++j)
    if (lanes & (1u << j)) hits->emplace_back(q, row0 + j, bits(keys[j]));
}

// Every hit of one table for the given panel rows, queries and thresholds.
std::vector<Hit> scan_hits(const SearchKernels& k, const std::vector<float>& g, int nrows,
                           int64_t dim, const std::vector<float>& q, int64_t nq, ScanKey key,
                           const std::vector<float>& thr0) {
  Panel panel(dim);
  float norms2[kNr];
  k.pack_panel(g.data(), dim, dim, nrows, panel.p, norms2);
  float lane_aux[kNr];
  for (int j = 0; j < kNr; ++j)
    lane_aux[j] = key == ScanKey::kCosine ? (norms2[j] > 0 ? 1.0f / std::sqrt(norms2[j]) : 0.0f)
                                          : norms2[j];
  std::vector<float> q_aux(static_cast<size_t>(nq));
  for (int64_t i = 0; i < nq; ++i) q_aux[i] = 0.5f + 0.01f * static_cast<float>(i);
  const std::vector<float> qpack = pack_queries(q, nq, dim, k.query_group);
  std::vector<float> thr = thr0;
  std::vector<Hit> hits;
  ScanArgs a;
  a.panel = panel.p;
  a.lane_aux = lane_aux;
  a.dim = dim;
  a.nrows = nrows;
  a.row0 = 100;
  a.key = key;
  a.qpack = qpack.data();
  a.nq = nq;
  a.q_aux = q_aux.data();
  a.thr = thr.data();
  a.sink = &hits;
  a.accept = &collect;
  k.scan_panel(a);
  std::sort(hits.begin(), hits.end());
  return hits;
}

VLK_TEST(neon_pack_panel_equals_scalar) {
  const SearchKernels& neon = vlk::core::search_kernels_neon();
  const SearchKernels& scalar = vlk::core::search_kernels_scalar();
  VLK_CHECK_EQ(neon.panel_width, kNr);
  Rng rng(11);
  for (int64_t dim : kDims) {
    for (int nrows : kRows) {
      const std::vector<float> g = random_vec(static_cast<size_t>(nrows * dim), rng);
      Panel pn(dim), ps(dim);
      float nn[kNr], ns[kNr];
      VLK_CHECK(neon.pack_panel(g.data(), dim, dim, nrows, pn.p, nn)) << "dim " << dim;
      VLK_CHECK(scalar.pack_panel(g.data(), dim, dim, nrows, ps.p, ns)) << "dim " << dim;
      VLK_CHECK(std::memcmp(pn.p, ps.p, sizeof(float) * dim * kNr) == 0)
          << "panel differs, dim " << dim << " rows " << nrows;
      for (int j = 0; j < kNr; ++j) {
        VLK_CHECK_EQ(bits(nn[j]), bits(ns[j])) << "norm lane " << j << " dim " << dim;
        double ref = 0.0;
        if (j < nrows)
          for (int64_t d = 0; d < dim; ++d) ref += double(g[j * dim + d]) * g[j * dim + d];
        VLK_CHECK(std::fabs(nn[j] - ref) <= 1e-5 * (1.0 + ref)) << "norm vs float64, lane " << j;
      }
    }
  }
}

VLK_TEST(neon_pack_panel_rejects_nan_and_inf) {
  const SearchKernels& neon = vlk::core::search_kernels_neon();
  Rng rng(12);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    for (int64_t dim : kDims) {
      std::vector<float> g = random_vec(static_cast<size_t>(7 * dim), rng);
      g[static_cast<size_t>(rng.small_int(0, static_cast<int>(7 * dim - 1)))] = bad;
      Panel p(dim);
      float n[kNr];
      VLK_CHECK(!neon.pack_panel(g.data(), dim, dim, 7, p.p, n)) << "value " << bad << " dim " << dim;
    }
  }
}

VLK_TEST(neon_scan_panel_equals_scalar_and_float64) {
  const SearchKernels& neon = vlk::core::search_kernels_neon();
  const SearchKernels& scalar = vlk::core::search_kernels_scalar();
  Rng rng(13);
  for (ScanKey key : {ScanKey::kIp, ScanKey::kCosine, ScanKey::kL2}) {
    for (int64_t dim : kDims) {
      for (int nrows : kRows) {
        for (int64_t nq : {int64_t(1), int64_t(5), int64_t(6), int64_t(13)}) {
          const std::vector<float> g = random_vec(static_cast<size_t>(nrows * dim), rng);
          const std::vector<float> q = random_vec(static_cast<size_t>(nq * dim), rng);
          // Everything passes at -inf; a random threshold keeps some lanes out.
          for (bool all : {true, false}) {
            std::vector<float> thr(static_cast<size_t>(nq));
            for (float& t : thr)
              t = all ? -std::numeric_limits<float>::infinity() : rng.uniform() * 0.5f;
            const std::vector<Hit> hn = scan_hits(neon, g, nrows, dim, q, nq, key, thr);
            const std::vector<Hit> hs = scan_hits(scalar, g, nrows, dim, q, nq, key, thr);
            VLK_CHECK(hn == hs) << "hits differ: key " << int(key) << " dim " << dim << " rows "
                                << nrows << " nq " << nq << " (" << hn.size() << " vs "
                                << hs.size() << ")";
            if (all) VLK_CHECK_EQ(hn.size(), static_cast<size_t>(nq * nrows));
            if (key != ScanKey::kIp || !all) continue;
            for (const Hit& h : hn) {
              const int64_t qi = std::get<0>(h), r = std::get<1>(h) - 100;
              double ref = 0.0, mag = 0.0;
              for (int64_t d = 0; d < dim; ++d) {
                ref += double(q[qi * dim + d]) * g[r * dim + d];
                mag += std::fabs(double(q[qi * dim + d]) * g[r * dim + d]);
              }
              float got;
              const uint32_t b = std::get<2>(h);
              std::memcpy(&got, &b, sizeof got);
              VLK_CHECK(std::fabs(got - ref) <= 1e-6 * (1.0 + mag) * double(dim))
                  << "dot vs float64: q " << qi << " row " << r << " got " << got << " ref " << ref;
            }
          }
        }
      }
    }
  }
}

VLK_TEST(neon_score_rows_equals_scalar) {
  const SearchKernels& neon = vlk::core::search_kernels_neon();
  const SearchKernels& scalar = vlk::core::search_kernels_scalar();
  Rng rng(14);
  for (int64_t dim : kDims) {
    for (int nrows : kRows) {
      const std::vector<float> g = random_vec(static_cast<size_t>(nrows * dim), rng);
      const std::vector<float> q = random_vec(static_cast<size_t>(dim), rng);
      std::vector<const float*> rows;
      for (int j = nrows - 1; j >= 0; --j) rows.push_back(g.data() + j * dim);  // gathered order
      float dn[kNr], nn[kNr], ds[kNr], ns[kNr];
      VLK_CHECK(neon.score_rows(rows.data(), nrows, q.data(), dim, dn, nn));
      VLK_CHECK(scalar.score_rows(rows.data(), nrows, q.data(), dim, ds, ns));
      for (int j = 0; j < kNr; ++j) {
        VLK_CHECK_EQ(bits(dn[j]), bits(ds[j])) << "dot lane " << j << " dim " << dim;
        VLK_CHECK_EQ(bits(nn[j]), bits(ns[j])) << "norm lane " << j << " dim " << dim;
        double ref = 0.0;
        if (j < nrows)
          for (int64_t d = 0; d < dim; ++d) ref += double(q[d]) * rows[j][d];
        VLK_CHECK(std::fabs(dn[j] - ref) <= 1e-6 * (1.0 + double(dim))) << "dot vs float64 lane " << j;
      }
      std::vector<float> bad = g;
      bad[static_cast<size_t>(dim / 2)] = std::numeric_limits<float>::quiet_NaN();
      std::vector<const float*> bad_rows;
      for (int j = 0; j < nrows; ++j) bad_rows.push_back(bad.data() + j * dim);
      VLK_CHECK(!neon.score_rows(bad_rows.data(), nrows, q.data(), dim, dn, nn)) << "NaN, dim " << dim;
    }
  }
}

}  // namespace
