// C++ core tests of reduced-precision storage (test/native): a bf16 or i8 FlatIndex returns exactly
// what the f32 FlatIndex over the same vectors returns (ids and scores bit for bit, counts,
// padding), on random data and on clustered data full of near-ties and exact duplicates, at awkward
// sizes, every metric, the AVX-512 BF16/VNNI, AVX2 and portable scans, with filters; approximate
// mode returns valid rows with high recall and re-scores nothing; get() round trips. The kernel
// tables also agree with each other directly, panel by panel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"
#include "common/thread_pool.hpp"
#include "index/flat_index.hpp"
#include "isa/isa.hpp"
#include "search/search_quantized.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Context;
using vlk::Isa;
using vlk::MatrixView;
using vlk::core::FlatIndex;
using vlk::core::IndexFilter;
using vlk::core::IndexSearchOut;
using vlk::core::Metric;
using vlk::core::Storage;
using vlk_test::Rng;

Context ctx_for(Isa isa, int threads) {
  Context c;
  c.pool = &vlk::global_pool();
  c.threads = threads;
  c.isa = isa;
  return c;
}

std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::kScalar};
  if (vlk::detected_isa() >= Isa::kAvx2) v.push_back(Isa::kAvx2);  // AVX2 + FMA kernels
  if (vlk::detected_isa() == Isa::kAvx512) v.push_back(Isa::kAvx512);  // BF16/VNNI kernels when present
  return v;
}

struct Result {
  std::vector<int64_t> ids;
  std::vector<float> scores;
  std::vector<int32_t> counts, rescored;
};

Result run(const FlatIndex& index, const std::vector<float>& qs, int64_t d, int64_t k, const Context& ctx,
           const IndexFilter* filter = nullptr) {
  const int64_t q = static_cast<int64_t>(qs.size()) / d;
  Result r;
  r.ids.assign(static_cast<size_t>(q * k), 0);
  r.scores.assign(static_cast<size_t>(q * k), 0);
  r.counts.assign(static_cast<size_t>(q), 0);
  r.rescored.assign(static_cast<size_t>(q), -1);
  IndexSearchOut out{r.ids.data(), r.scores.data(), r.counts.data(), r.rescored.data()};
  const vlk::Status st = index.search(MatrixView<const float>(qs.data(), q, d), k, out, ctx, filter);
  VLK_CHECK(st.ok()) << st.message;
  return r;
}

bool same_bits(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

// Data: random gaussian-ish rows, or clustered (few centres, tiny noise, exact duplicates).
std::vector<float> make_rows(Rng& rng, int64_t n, int64_t d, bool clustered) {
  std::vector<float> v(static_cast<size_t>(n * d));
  if (!clustered) {
    for (auto& x : v) x = rng.uniform();
    return v;
  }
  const int64_t centres = 3;
  std::vector<float> c(static_cast<size_t>(centres * d));
  for (auto& x : c) x = rng.uniform();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ci = rng.small_int(0, centres - 1);
    const bool dup = i > 0 && rng.small_int(0, 4) == 0;
    for (int64_t j = 0; j < d; ++j) {
      v[static_cast<size_t>(i * d + j)] =
          dup ? v[static_cast<size_t>((i - 1) * d + j)] : c[static_cast<size_t>(ci * d + j)] + 1e-4f * rng.uniform();
    }
  }
  return v;
}

void check_equal(const Result& want, const Result& got, const char* what) {
  VLK_CHECK(want.ids == got.ids) << what << ": ids differ";
  VLK_CHECK(want.counts == got.counts) << what << ": counts differ";
  for (size_t i = 0; i < want.scores.size(); ++i) {
    VLK_CHECK(same_bits(want.scores[i], got.scores[i]))
        << what << ": score " << i << " is " << got.scores[i] << ", f32 has " << want.scores[i];
    if (!same_bits(want.scores[i], got.scores[i])) break;
  }
}

}  // namespace

namespace {

using vlk::core::QuantKernels;
using vlk::core::QuantScanArgs;
using vlk::core::kQuantPanel;

// What one scan call reported: (query, row) -> key.
using Reported = std::map<std::pair<int64_t, int64_t>, float>;

void collect(void* sink, int64_t q, int64_t row0, const float* keys, uint32_t lanes) {
  Reported& r = *static_cast<Reported*>(sink);
  for (int j = 0; j < kQuantPanel; ++j) {
    if ((lanes >> j) & 1u) {
      VLK_CHECK(r.emplace(std::make_pair(q, row0 + j), keys[j]).second) << "lane reported twice";
    }
  }
}

struct KernelCase {
  bool i8;
  int64_t units;
  int nrows;
  int64_t nq;
  std::vector<uint32_t> buf;    // one panel at `codes` (64-byte aligned, as an index's panels are)
  uint32_t* codes = nullptr;    // kQuantPanel x units 32-bit units (layout of the header)
  std::vector<uint32_t> q;      // nq x units query units (i8: codes + 128)
  std::vector<float> lane_scale, lane_off, q_scale;
  std::vector<int32_t> lane_csum;
  std::vector<double> abs_sum;  // per (query, lane): sum of |terms| of the key, for the bf16 tolerance
};

uint16_t random_bf16(Rng& rng) {
  const float f = rng.uniform() * 4.0f;
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  uint16_t h = static_cast<uint16_t>(b >> 16);
  if ((h & 0x7F80u) == 0) h = 0;  // no subnormals, as quantize_rows stores
  return h;
}

float bf16_value(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

KernelCase make_kernel_case(Rng& rng, bool i8, int64_t dim, int nrows, int64_t nq) {
  KernelCase c;
  c.i8 = i8;
  const int step = i8 ? 4 : 2;
  c.units = (dim + step - 1) / step;
  c.nrows = nrows;
  c.nq = nq;
  // Every lane gets codes (also lanes >= nrows, which must never be reported); dims >= dim are 0.
  auto code = [&](int64_t d) -> uint32_t {
    if (d >= dim) return 0;
    return i8 ? static_cast<uint8_t>(static_cast<int8_t>(rng.small_int(-127, 127))) : random_bf16(rng);
  };
  auto unit = [&](int64_t u) {
    uint32_t w = 0;
    for (int t = 0; t < step; ++t) w |= code(u * step + t) << (t * (32 / step));
    return w;
  };
  c.buf.assign(static_cast<size_t>(kQuantPanel * c.units + 16), 0);
  c.codes = c.buf.data() + (16 - (reinterpret_cast<uintptr_t>(c.buf.data()) % 64) / 4) % 16;
  for (int64_t u = 0; u < c.units; ++u) {
    for (int j = 0; j < kQuantPanel; ++j) c.codes[u * kQuantPanel + j] = unit(u);
  }
  c.q.assign(static_cast<size_t>(nq * c.units), 0);
  for (size_t k = 0; k < c.q.size(); ++k) c.q[k] = unit(static_cast<int64_t>(k) % c.units);
  if (i8) {
    for (auto& w : c.q) w ^= 0x80808080u;  // signed codes -> codes + 128 (per byte)
  }
  for (int j = 0; j < kQuantPanel; ++j) {
    c.lane_scale.push_back(0.01f + 0.5f * (rng.uniform() + 1.0f));
    c.lane_off.push_back(rng.uniform() * 3.0f);
    int32_t s = 0;
    for (int64_t u = 0; u < c.units; ++u) {
      const uint32_t w = c.codes[u * kQuantPanel + j];
      for (int t = 0; t < 4; ++t) s += static_cast<int8_t>(static_cast<uint8_t>(w >> (8 * t)));
    }
    c.lane_csum.push_back(s);
  }
  for (int64_t i = 0; i < nq; ++i) c.q_scale.push_back(0.5f + 0.75f * (rng.uniform() + 1.0f));
  for (int64_t i = 0; i < nq; ++i) {
    for (int j = 0; j < kQuantPanel; ++j) {
      double s = 0;
      for (int64_t u = 0; u < c.units && !i8; ++u) {
        const uint32_t a = c.q[static_cast<size_t>(i * c.units + u)];
        const uint32_t b = c.codes[u * kQuantPanel + j];
        s += std::fabs(double(bf16_value(static_cast<uint16_t>(a))) * bf16_value(static_cast<uint16_t>(b)));
        s += std::fabs(double(bf16_value(static_cast<uint16_t>(a >> 16))) * bf16_value(static_cast<uint16_t>(b >> 16)));
      }
      // bf16 runs use lane_scale null (1) and this lane_off: key terms are acc * q_scale and lane_off.
      c.abs_sum.push_back(s * c.q_scale[static_cast<size_t>(i)] + std::fabs(c.lane_off[static_cast<size_t>(j)]));
    }
  }
  return c;
}

// Runs one table over the case with thresholds thr (per query); row0 = 96.
Reported run_kernel(const QuantKernels& k, const KernelCase& c, const std::vector<float>& thr_in) {
  const int mr = k.query_group;
  std::vector<uint32_t> qpack(static_cast<size_t>((c.nq + mr - 1) / mr * mr * c.units), 0);
  for (int64_t q = 0; q < c.nq; ++q) {
    const int64_t g0 = q / mr * mr, m = std::min<int64_t>(mr, c.nq - g0);
    for (int64_t u = 0; u < c.units; ++u) {
      qpack[static_cast<size_t>(g0 * c.units + u * m + (q - g0))] = c.q[static_cast<size_t>(q * c.units + u)];
    }
  }
  std::vector<float> thr = thr_in;
  Reported r;
  QuantScanArgs a;
  VLK_CHECK(reinterpret_cast<uintptr_t>(c.codes) % 64 == 0);
  a.panel = c.codes;
  a.units = c.units;
  a.nrows = c.nrows;
  a.row0 = 96;
  a.lane_scale = c.i8 ? c.lane_scale.data() : nullptr;
  a.lane_csum = c.i8 ? c.lane_csum.data() : nullptr;
  a.lane_off = c.lane_off.data();
  a.qpack = qpack.data();
  a.nq = c.nq;
  a.q_scale = c.q_scale.data();
  a.thr = thr.data();
  a.sink = &r;
  a.accept = &collect;
  (c.i8 ? k.scan_i8 : k.scan_bf16)(a);
  return r;
}

}  // namespace

VLK_TEST(quantized_kernel_tables_agree) {
  std::vector<std::pair<const char*, const QuantKernels*>> tables{{"scalar", &vlk::core::quant_kernels_scalar()}};
  if (vlk::detected_isa() >= Isa::kAvx2) tables.emplace_back("avx2", &vlk::core::quant_kernels_avx2());
  if (vlk::detected_isa() == Isa::kAvx512 && vlk::cpu_has_avx512_bf16_vnni()) {
    tables.emplace_back("avx512", &vlk::core::quant_kernels_avx512());
  }
  Rng rng(4242);
  int cases = 0;
  for (bool i8 : {false, true}) {
    for (int64_t dim : {1, 7, 64, 513}) {
      for (int nrows = 1; nrows <= kQuantPanel; ++nrows) {
        for (int64_t nq = 1; nq <= 13; ++nq) {
          const KernelCase c = make_kernel_case(rng, i8, dim, nrows, nq);
          const std::vector<float> none(static_cast<size_t>(nq), -std::numeric_limits<float>::infinity());
          const Reported ref = run_kernel(*tables[0].second, c, none);
          VLK_CHECK(ref.size() == static_cast<size_t>(nq * nrows)) << "scalar reported " << ref.size();
          for (const auto& t : tables) {
            const Reported got = t.second == tables[0].second ? ref : run_kernel(*t.second, c, none);
            bool same_set = got.size() == ref.size();
            for (const auto& kv : got) same_set = same_set && ref.count(kv.first) == 1;
            VLK_CHECK(same_set) << t.first << (i8 ? " i8" : " bf16") << " dim " << dim << " nrows " << nrows
                                << " nq " << nq << ": " << got.size() << " lanes vs " << ref.size();
            if (!same_set) continue;
            for (const auto& kv : got) {
              const float want = ref.at(kv.first);
              const int64_t q = kv.first.first, j = kv.first.second - 96;
              if (i8) {
                VLK_CHECK(same_bits(want, kv.second)) << t.first << " i8 dim " << dim << " q " << q << " lane " << j
                                                      << ": " << kv.second << " vs scalar " << want;
              } else {
                const double tol = 1e-5 * c.abs_sum[static_cast<size_t>(q * kQuantPanel + j)] + 1e-30;
                VLK_CHECK(std::fabs(double(kv.second) - double(want)) <= tol)
                    << t.first << " bf16 dim " << dim << " q " << q << " lane " << j << ": " << kv.second
                    << " vs scalar " << want;
              }
            }
            // Finite thresholds: exactly the lanes whose own key beats the query's threshold.
            std::vector<float> thr(static_cast<size_t>(nq));
            for (int64_t q = 0; q < nq; ++q) thr[static_cast<size_t>(q)] = got.at({q, 96 + (q % nrows)});
            const Reported cut = run_kernel(*t.second, c, thr);
            size_t expect = 0;
            for (const auto& kv : got) {
              if (kv.second > thr[static_cast<size_t>(kv.first.first)]) {
                ++expect;
                VLK_CHECK(cut.count(kv.first) == 1 && same_bits(cut.at(kv.first), kv.second)) << t.first << " thr";
              }
            }
            VLK_CHECK(cut.size() == expect) << t.first << " thr: " << cut.size() << " lanes vs " << expect;
          }
          ++cases;
        }
      }
    }
  }
  VLK_CHECK(cases == 2 * 4 * 32 * 13);
}

VLK_TEST(quantized_storage_equals_f32_topk) {
  struct Shape {
    int64_t n, d, k;
  };
  const Shape shapes[] = {{1, 1, 1}, {7, 7, 3}, {7, 5, 12}, {513, 64, 10}, {513, 513, 7}, {3000, 33, 50}};
  int cases = 0;
  for (Storage storage : {Storage::kBF16, Storage::kI8}) {
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      for (bool clustered : {false, true}) {
        for (const Shape& sh : shapes) {
          Rng rng(7000 + cases);
          const std::vector<float> rows = make_rows(rng, sh.n, sh.d, clustered);
          std::vector<float> qs = make_rows(rng, 13, sh.d, clustered);
          if (clustered) std::copy(rows.begin(), rows.begin() + sh.d, qs.begin());  // a query on a row
          FlatIndex f32(sh.d, metric), qi(sh.d, metric, storage);
          // Two adds, so the second crosses into another block for the larger shapes.
          const int64_t first = sh.n / 3;
          for (FlatIndex* ix : {&f32, &qi}) {
            VLK_CHECK(ix->add(MatrixView<const float>(rows.data(), first, sh.d), nullptr, nullptr).ok());
            VLK_CHECK(ix->add(MatrixView<const float>(rows.data() + first * sh.d, sh.n - first, sh.d), nullptr,
                              nullptr).ok());
          }
          const Result want = run(f32, qs, sh.d, sh.k, ctx_for(vlk::detected_isa(), 2));
          for (Isa isa : isas()) {
            for (int threads : {1, 2}) {
              const Result got = run(qi, qs, sh.d, sh.k, ctx_for(isa, threads));
              check_equal(want, got, "quantized vs f32");
              for (size_t i = 0; i < got.rescored.size(); ++i) {
                VLK_CHECK(got.rescored[i] >= got.counts[i]) << "rescored " << got.rescored[i];
              }
            }
          }
          ++cases;
        }
      }
    }
  }
  VLK_CHECK(cases == 72);
}

VLK_TEST(quantized_storage_rescore_count_is_small_on_random_data) {
  // 20,000 x 128 random rows, k = 10: the bound must prune most rows (the re-score is the cost).
  const int64_t n = 20000, d = 128, k = 10;
  Rng rng(99);
  std::vector<float> rows = make_rows(rng, n, d, false), qs = make_rows(rng, 40, d, false);
  for (Storage storage : {Storage::kBF16, Storage::kI8}) {
    FlatIndex qi(d, Metric::kCosine, storage);
    VLK_CHECK(qi.add(MatrixView<const float>(rows.data(), n, d), nullptr, nullptr).ok());
    const Result got = run(qi, qs, d, k, ctx_for(vlk::detected_isa(), 2));
    int64_t total = 0;
    for (int32_t r : got.rescored) total += r;
    VLK_CHECK(total < 40 * 400) << vlk::core::storage_name(storage) << " re-scored " << total << " rows for 40 queries";
  }
}

VLK_TEST(quantized_storage_filters_and_removals_match_f32) {
  const int64_t n = 2500, d = 24, k = 8, nq = 9;
  Rng rng(123);
  const std::vector<float> rows = make_rows(rng, n, d, true), qs = make_rows(rng, nq, d, true);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = 5 * i + 3;
  std::vector<int64_t> allow, removed;
  for (int64_t i = 0; i < n; i += 3) allow.push_back(ids[static_cast<size_t>(i)]);
  allow.push_back(999999999);  // unknown ids are ignored
  for (int64_t i = 0; i < n; i += 7) removed.push_back(ids[static_cast<size_t>(i)]);
  std::vector<int64_t> eoff{0}, eids;
  for (int64_t q = 0; q < nq; ++q) {
    for (int j = 0; j < 40; ++j) eids.push_back(ids[static_cast<size_t>(rng.small_int(0, n - 1))]);
    eoff.push_back(static_cast<int64_t>(eids.size()));
  }
  IndexFilter f;
  f.allow_ids = allow.data();
  f.n_allow = static_cast<int64_t>(allow.size());
  f.has_allow = true;
  f.exclude_offsets = eoff.data();
  f.exclude_ids = eids.data();
  for (Storage storage : {Storage::kBF16, Storage::kI8}) {
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      FlatIndex f32(d, metric), qi(d, metric, storage);
      for (FlatIndex* ix : {&f32, &qi}) {
        VLK_CHECK(ix->add(MatrixView<const float>(rows.data(), n, d), ids.data(), nullptr).ok());
        VLK_CHECK(ix->remove(removed.data(), static_cast<int64_t>(removed.size())).ok());
      }
      const Result want = run(f32, qs, d, k, ctx_for(vlk::detected_isa(), 2), &f);
      for (Isa isa : isas()) check_equal(want, run(qi, qs, d, k, ctx_for(isa, 2), &f), "filtered");
      // The filter itself against a brute-force reference of allowed, live, non-excluded ids.
      const std::set<int64_t> allowed(allow.begin(), allow.end()), gone(removed.begin(), removed.end());
      for (int64_t q = 0; q < nq; ++q) {
        const std::set<int64_t> ex(eids.begin() + eoff[static_cast<size_t>(q)], eids.begin() + eoff[static_cast<size_t>(q) + 1]);
        for (int64_t j = 0; j < want.counts[static_cast<size_t>(q)]; ++j) {
          const int64_t id = want.ids[static_cast<size_t>(q * k + j)];
          VLK_CHECK(allowed.count(id) == 1 && gone.count(id) == 0 && ex.count(id) == 0) << "id " << id;
        }
      }
      // compact keeps the answer.
      VLK_CHECK(qi.compact(nullptr).ok());
      check_equal(want, run(qi, qs, d, k, ctx_for(vlk::detected_isa(), 2), &f), "after compact");
    }
  }
}

VLK_TEST(quantized_approximate_mode) {
  const int64_t n = 5000, d = 64, k = 10, nq = 50;
  Rng rng(321);
  const std::vector<float> rows = make_rows(rng, n, d, false), qs = make_rows(rng, nq, d, false);
  for (Storage storage : {Storage::kBF16, Storage::kI8}) {
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      FlatIndex f32(d, metric), ap(d, metric, storage, true);
      VLK_CHECK(ap.approximate());
      for (FlatIndex* ix : {&f32, &ap}) VLK_CHECK(ix->add(MatrixView<const float>(rows.data(), n, d), nullptr, nullptr).ok());
      VLK_CHECK(ap.memory_usage() < f32.memory_usage() * (storage == Storage::kI8 ? 0.5 : 0.7))
          << ap.memory_usage() << " vs " << f32.memory_usage();
      const Result want = run(f32, qs, d, k, ctx_for(vlk::detected_isa(), 2));
      for (Isa isa : isas()) {
        const Result got = run(ap, qs, d, k, ctx_for(isa, 2));
        int64_t hit = 0;
        for (int64_t q = 0; q < nq; ++q) {
          VLK_CHECK(got.rescored[static_cast<size_t>(q)] == 0);
          const std::set<int64_t> truth(want.ids.begin() + q * k, want.ids.begin() + (q + 1) * k);
          for (int64_t j = 0; j < k; ++j) hit += truth.count(got.ids[static_cast<size_t>(q * k + j)]);
        }
        const double recall = double(hit) / double(nq * k);
        VLK_CHECK(recall > (storage == Storage::kBF16 ? 0.95 : 0.8)) << "recall " << recall;
      }
      // get() reconstructs from the codes, close to the original.
      std::vector<float> back(static_cast<size_t>(d));
      VLK_CHECK(ap.get(17, back.data()).ok());
      // Cosine codes hold the direction: get() returns the unit vector.
      double rn = 0;
      for (int64_t j = 0; j < d; ++j) rn += std::pow(rows[static_cast<size_t>(17 * d + j)], 2);
      const double scale = metric == Metric::kCosine ? 1.0 / std::sqrt(rn) : 1.0;
      double err = 0, norm = 0;
      for (int64_t j = 0; j < d; ++j) {
        const double want = rows[static_cast<size_t>(17 * d + j)] * scale;
        err += std::pow(back[static_cast<size_t>(j)] - want, 2);
        norm += want * want;
      }
      VLK_CHECK(std::sqrt(err / norm) < 0.02) << "relative error " << std::sqrt(err / norm);
    }
  }
  VLK_CHECK(!FlatIndex::validate_options(8, Storage::kF32, true).ok());
  VLK_CHECK(!FlatIndex::validate_options(70000, Storage::kI8, false).ok());
  VLK_CHECK(FlatIndex::validate_options(70000, Storage::kBF16, false).ok());
}
