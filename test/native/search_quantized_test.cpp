// C++ core tests of reduced-precision storage (test/native): a bf16 or i8 FlatIndex returns exactly
// what the f32 FlatIndex over the same vectors returns (ids and scores bit for bit, counts,
// padding), on random data and on clustered data full of near-ties and exact duplicates, at awkward
// sizes, every metric, the AVX-512 BF16/VNNI, AVX2 and portable scans, with filters; approximate
// mode returns valid rows with high recall and re-scores nothing; get() round trips. The kernel
// tables also agree with each other directly, panel by panel. Token-max items (tokens 1, 3, 32) and
// one-shot quantization (quantize_gallery, search_reduced) equal core::search with the same tokens
// and filters bit for bit, ties between whole items and per-query best tokens included.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
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

// ---------------------------------------------------------------------------------------------
// Token-max items (QuantSearchArgs::tokens) and the one-shot path (quantize_gallery +
// search_quantized, search_reduced): indices, scores and counts equal core::search with the same
// tokens and filters, bit for bit.
namespace {

using vlk::core::QuantGalleryBuffers;
using vlk::core::QuantSearchArgs;
using vlk::core::QuantSearchOut;
using vlk::core::SearchArgs;
using vlk::core::SearchOut;

struct TokResult {
  std::vector<int32_t> idx;
  std::vector<float> scores;
  std::vector<int32_t> counts, rescored;
};

struct TokFilter {
  std::vector<uint64_t> allow;  // empty: none
  std::vector<int64_t> off;     // empty: none
  std::vector<int32_t> rows;
};

TokResult run_search(const std::vector<float>& qs, const std::vector<float>& g, int64_t d, int64_t tokens,
                     int64_t k, Metric metric, const TokFilter& f, const Context& ctx) {
  const int64_t nq = static_cast<int64_t>(qs.size()) / d, n = static_cast<int64_t>(g.size()) / d;
  SearchArgs a;
  a.queries = MatrixView<const float>(qs.data(), nq, d);
  a.gallery = MatrixView<const float>(g.data(), n, d);
  a.k = k;
  a.metric = metric;
  a.tokens = tokens;
  if (!f.allow.empty()) a.filter.allow = f.allow.data();
  if (!f.off.empty()) {
    a.filter.exclude_offsets = f.off.data();
    a.filter.exclude_rows = f.rows.data();
  }
  TokResult r;
  r.idx.assign(static_cast<size_t>(nq * k), 7);
  r.scores.assign(static_cast<size_t>(nq * k), 7.0f);
  r.counts.assign(static_cast<size_t>(nq), 7);
  const vlk::Status st = vlk::core::search(a, SearchOut{r.idx.data(), r.scores.data(), r.counts.data()}, ctx);
  VLK_CHECK(st.ok()) << st.message;
  return r;
}

TokResult run_quant(const std::vector<float>& qs, const vlk::core::QuantGallery& g, int64_t d, int64_t tokens,
                    int64_t k, const TokFilter& f, const Context& ctx) {
  const int64_t nq = static_cast<int64_t>(qs.size()) / d;
  QuantSearchArgs a;
  a.queries = MatrixView<const float>(qs.data(), nq, d);
  a.gallery = g;
  a.k = k;
  a.tokens = tokens;
  if (!f.allow.empty()) a.allow = f.allow.data();
  if (!f.off.empty()) {
    a.exclude_offsets = f.off.data();
    a.exclude_rows = f.rows.data();
  }
  TokResult r;
  r.idx.assign(static_cast<size_t>(nq * k), 7);
  r.scores.assign(static_cast<size_t>(nq * k), 7.0f);
  r.counts.assign(static_cast<size_t>(nq), 7);
  r.rescored.assign(static_cast<size_t>(nq), -1);
  QuantSearchOut out{r.idx.data(), r.scores.data(), r.counts.data(), r.rescored.data()};
  const vlk::Status st = vlk::core::search_quantized(a, out, ctx);
  VLK_CHECK(st.ok()) << st.message;
  return r;
}

// got (k_got >= k_want columns) equals want on its first k_want columns; the rest is padding.
bool check_tok(const TokResult& want, int64_t k_want, const TokResult& got, int64_t k_got, const std::string& what) {
  const size_t nq = want.counts.size();
  bool ok = want.counts == got.counts;
  for (size_t q = 0; q < nq && !ok; ++q) {
    VLK_CHECK(want.counts[q] == got.counts[q]) << what << ": query " << q << " count " << got.counts[q] << " vs "
                                               << want.counts[q];
    if (want.counts[q] != got.counts[q]) break;
  }
  for (size_t q = 0; q < nq && ok; ++q) {
    for (int64_t j = 0; j < k_got && ok; ++j) {
      const size_t gi = q * static_cast<size_t>(k_got) + static_cast<size_t>(j);
      if (j < k_want) {
        const size_t wi = q * static_cast<size_t>(k_want) + static_cast<size_t>(j);
        ok = want.idx[wi] == got.idx[gi] && same_bits(want.scores[wi], got.scores[gi]);
        VLK_CHECK(ok) << what << ": query " << q << " rank " << j << ": (" << got.idx[gi] << ", " << got.scores[gi]
                      << ") vs search (" << want.idx[wi] << ", " << want.scores[wi] << ")";
      } else {
        ok = got.idx[gi] == -1 && std::isnan(got.scores[gi]);
        VLK_CHECK(ok) << what << ": query " << q << " rank " << j << " should be padding";
      }
    }
  }
  for (size_t q = 0; q < got.rescored.size() && ok; ++q) {
    ok = got.rescored[q] >= got.counts[q];
    VLK_CHECK(ok) << what << ": query " << q << " re-scored " << got.rescored[q] << " items for "
                  << got.counts[q] << " results";
  }
  return ok;
}

QuantGalleryBuffers* quantize(Storage storage, Metric metric, const std::vector<float>& g, int64_t d,
                              QuantGalleryBuffers* qb, const Context& ctx) {
  const vlk::Status st = vlk::core::quantize_gallery(
      storage, metric, MatrixView<const float>(g.data(), static_cast<int64_t>(g.size()) / d, d), qb, ctx);
  VLK_CHECK(st.ok()) << st.message;
  return qb;
}

// Filters for the token cases: exclude each query's unfiltered best item plus two more; allow
// every item but those = 1 (mod 3) (item 0 always allowed).
TokFilter make_filter(bool exclude, bool allow, int64_t items, const TokResult& top1, int64_t nq) {
  TokFilter f;
  if (allow) {
    f.allow.assign(static_cast<size_t>((items + 63) / 64), 0);
    for (int64_t i = 0; i < items; ++i) {
      if (i % 3 != 1) f.allow[static_cast<size_t>(i >> 6)] |= uint64_t{1} << (i & 63);
    }
  }
  if (exclude) {
    f.off.push_back(0);
    for (int64_t q = 0; q < nq; ++q) {
      f.rows.push_back(top1.idx[static_cast<size_t>(q)]);
      f.rows.push_back(static_cast<int32_t>(q % items));
      if (q % 2 == 0) f.rows.push_back(static_cast<int32_t>((q * 7 + 3) % items));
      f.off.push_back(static_cast<int64_t>(f.rows.size()));
    }
  }
  return f;
}

}  // namespace

VLK_TEST(quantized_tokens_equal_search) {
  const Context ctx2 = ctx_for(vlk::detected_isa(), 2);
  int cases = 0;
  int64_t seed = 500;
  for (int64_t tokens : {1, 3, 32}) {
    for (int64_t items : {1, 7, 513}) {
      for (int64_t d : {1, 7, 256}) {
        Rng rng(static_cast<uint64_t>(++seed));
        const int64_t n = items * tokens;
        std::vector<float> g(static_cast<size_t>(n * d));
        for (auto& x : g) x = rng.uniform();
        // An item repeated (with its tokens in reverse order): ties between whole items.
        if (items >= 7) {
          for (int64_t t = 0; t < tokens; ++t) {
            std::copy(g.begin() + (2 * tokens + t) * d, g.begin() + (2 * tokens + t + 1) * d,
                      g.begin() + (5 * tokens + (tokens - 1 - t)) * d);
          }
        }
        // 100 queries: parts over query ranges (every kernel's group size); 13: over gallery rows.
        const int64_t nq = d == 7 ? 100 : 13;
        std::vector<float> qs(static_cast<size_t>(nq * d));
        for (auto& x : qs) x = rng.uniform();
        std::copy(g.begin(), g.begin() + d, qs.begin());  // a query on a token row
        for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
          const TokResult top1 = run_search(qs, g, d, tokens, 1, metric, TokFilter(), ctx2);
          for (Storage storage : {Storage::kBF16, Storage::kI8}) {
            QuantGalleryBuffers qb;
            quantize(storage, metric, g, d, &qb, ctx2);
            VLK_CHECK(qb.gallery.f32 == g.data()) << "the fp32 rows are used in place";
            std::vector<int64_t> ks{1};  // k = 1, 10 and the item count (what a caller clamps k > items to)
            if (items > 10) ks.push_back(10);
            if (items > 1) ks.push_back(items);
            for (int64_t k : ks) {
              for (int fl = 0; fl < 4; ++fl) {
                const TokFilter f = make_filter(fl & 1, fl & 2, items, top1, nq);
                const TokResult want = run_search(qs, g, d, tokens, k, metric, f, ctx2);
                std::string what = std::string(vlk::core::storage_name(storage)) + " " +
                                   vlk::core::metric_name(metric) + " tokens " + std::to_string(tokens) + " items " +
                                   std::to_string(items) + " d " + std::to_string(d) + " k " + std::to_string(k) +
                                   " filter " + std::to_string(fl);
                if (!check_tok(want, k, run_quant(qs, qb.gallery, d, tokens, k, f, ctx2), k, what)) continue;
                // Every kernel path and width on the unfiltered k = 10 case.
                if (fl == 0 && k == std::min<int64_t>(10, items)) {
                  for (Isa isa : isas()) {
                    for (int threads : {1, 2}) {
                      check_tok(want, k, run_quant(qs, qb.gallery, d, tokens, k, f, ctx_for(isa, threads)), k,
                                what + " isa " + vlk::isa_name(isa) + " threads " + std::to_string(threads));
                    }
                  }
                }
                // k beyond the items: the extra columns are padding.
                if (k == items) {
                  check_tok(want, k, run_quant(qs, qb.gallery, d, tokens, k + 3, f, ctx2), k + 3, what + " k + 3");
                }
                ++cases;
              }
            }
          }
        }
      }
    }
  }
  VLK_CHECK(cases == 3 * (1 + 2 + 3) * 3 * 3 * 2 * 4) << cases;
}

VLK_TEST(quantized_tokens_best_token_differs_across_queries_and_ties) {
  // Item 1's token t is 3 e_t, every other item's tokens are small noise; query t is e_t (+ noise),
  // so item 1 wins every query through a different token. Items 2 and 4 are the same tokens in
  // another order (exact ties: the lower item first).
  const int64_t tokens = 8, items = 6, d = 16, nq = 8;
  for (Storage storage : {Storage::kBF16, Storage::kI8}) {
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      Rng rng(77);
      std::vector<float> g(static_cast<size_t>(items * tokens * d));
      for (auto& x : g) x = 0.01f * rng.uniform();
      for (int64_t t = 0; t < tokens; ++t) g[static_cast<size_t>((1 * tokens + t) * d + t)] = 3.0f;
      for (int64_t t = 0; t < tokens; ++t) {
        std::copy(g.begin() + (2 * tokens + t) * d, g.begin() + (2 * tokens + t + 1) * d,
                  g.begin() + (4 * tokens + (t + 3) % tokens) * d);
      }
      std::vector<float> qs(static_cast<size_t>(nq * d));
      for (auto& x : qs) x = 0.001f * rng.uniform();
      for (int64_t q = 0; q < nq; ++q) qs[static_cast<size_t>(q * d + q)] = 3.0f;
      const Context ctx = ctx_for(vlk::detected_isa(), 2);
      QuantGalleryBuffers qb;
      quantize(storage, metric, g, d, &qb, ctx);
      const TokResult want = run_search(qs, g, d, tokens, items, metric, TokFilter(), ctx);
      const std::string what = std::string(vlk::core::storage_name(storage)) + " " + vlk::core::metric_name(metric);
      check_tok(want, items, run_quant(qs, qb.gallery, d, tokens, items, TokFilter(), ctx), items, what);
      for (int64_t q = 0; q < nq; ++q) {
        VLK_CHECK(want.idx[static_cast<size_t>(q * items)] == 1) << what << ": query " << q;
        // Item 1's score is its token q's: the best token differs per query.
        const float* tok = g.data() + (1 * tokens + q) * d;
        const float* qr = qs.data() + q * d;
        if (metric == Metric::kL2) {
          double s = 0;
          for (int64_t j = 0; j < d; ++j) s += (double(qr[j]) - tok[j]) * (double(qr[j]) - tok[j]);
          VLK_CHECK(same_bits(want.scores[static_cast<size_t>(q * items)], static_cast<float>(s))) << what;
        }
        // Items 2 and 4 tie: adjacent, 2 first.
        int64_t p2 = -1, p4 = -1;
        for (int64_t j = 0; j < items; ++j) {
          if (want.idx[static_cast<size_t>(q * items + j)] == 2) p2 = j;
          if (want.idx[static_cast<size_t>(q * items + j)] == 4) p4 = j;
        }
        VLK_CHECK(p4 == p2 + 1) << what << ": tied items at " << p2 << ", " << p4;
        VLK_CHECK(same_bits(want.scores[static_cast<size_t>(q * items + p2)], want.scores[static_cast<size_t>(q * items + p4)]));
      }
    }
  }
}

VLK_TEST(quantized_one_shot_search_reduced_equals_search) {
  // search_reduced: core::search's results and errors. Strided gallery views are copied.
  const int64_t tokens = 4, items = 300, d = 33, nq = 21, k = 10;
  Rng rng(4711);
  std::vector<float> g(static_cast<size_t>(items * tokens * d)), qs(static_cast<size_t>(nq * d));
  for (auto& x : g) x = rng.uniform();
  for (auto& x : qs) x = rng.uniform();
  const int64_t stride = d + 5;
  std::vector<float> gs(static_cast<size_t>(items * tokens * stride), std::numeric_limits<float>::quiet_NaN());
  for (int64_t r = 0; r < items * tokens; ++r) std::copy(g.begin() + r * d, g.begin() + (r + 1) * d, gs.begin() + r * stride);
  const Context ctx = ctx_for(vlk::detected_isa(), 2);
  for (Storage storage : {Storage::kBF16, Storage::kI8}) {
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      const TokResult want = run_search(qs, g, d, tokens, k, metric, TokFilter(), ctx);
      for (bool strided : {false, true}) {
        SearchArgs a;
        a.queries = MatrixView<const float>(qs.data(), nq, d);
        a.gallery = strided ? MatrixView<const float>(gs.data(), items * tokens, d, stride)
                            : MatrixView<const float>(g.data(), items * tokens, d);
        a.k = k;
        a.metric = metric;
        a.tokens = tokens;
        TokResult got;
        got.idx.assign(static_cast<size_t>(nq * k), 7);
        got.scores.assign(static_cast<size_t>(nq * k), 7.0f);
        got.counts.assign(static_cast<size_t>(nq), 7);
        got.rescored.assign(static_cast<size_t>(nq), -1);
        const vlk::Status st = vlk::core::search_reduced(a, storage, SearchOut{got.idx.data(), got.scores.data(), got.counts.data()},
                                                         ctx, got.rescored.data());
        VLK_CHECK(st.ok()) << st.message;
        check_tok(want, k, got, k, std::string("search_reduced ") + vlk::core::storage_name(storage) + " " +
                                       vlk::core::metric_name(metric) + (strided ? " strided" : ""));
      }
    }
  }
  // Errors as search reports them.
  auto code_of = [&](const std::vector<float>& gal, const std::vector<float>& q, int64_t kk, int64_t tok,
                     const int64_t* off, const int32_t* rows, Storage storage) {
    SearchArgs a;
    a.queries = MatrixView<const float>(q.data(), static_cast<int64_t>(q.size()) / d, d);
    a.gallery = MatrixView<const float>(gal.data(), static_cast<int64_t>(gal.size()) / d, d);
    a.k = kk;
    a.tokens = tok;
    a.filter.exclude_offsets = off;
    a.filter.exclude_rows = rows;
    std::vector<int32_t> idx(static_cast<size_t>(a.queries.rows * std::max<int64_t>(kk, 1)));
    std::vector<float> sc(idx.size());
    return vlk::core::search_reduced(a, storage, SearchOut{idx.data(), sc.data(), nullptr}, ctx);
  };
  for (Storage storage : {Storage::kF32, Storage::kBF16, Storage::kI8}) {
    const std::string s = vlk::core::storage_name(storage);
    std::vector<float> bad = g;
    bad[static_cast<size_t>(37 * d + 5)] = std::numeric_limits<float>::quiet_NaN();
    vlk::Status st = code_of(bad, qs, k, tokens, nullptr, nullptr, storage);
    VLK_CHECK_EQ(st.code, vlk::Code::kNonFinite) << s;
    VLK_CHECK(st.message == "gallery: row 37, column 5 is NaN (every value must be finite)") << s << ": " << st.message;
    std::vector<float> big = g;
    big[static_cast<size_t>(50 * d)] = 1e19f;
    st = code_of(big, qs, k, tokens, nullptr, nullptr, storage);
    VLK_CHECK_EQ(st.code, vlk::Code::kNonFinite) << s;
    VLK_CHECK(st.message.find("row 50 has a squared norm") != std::string::npos) << s << ": " << st.message;
    std::vector<float> badq = qs;
    badq[3] = std::numeric_limits<float>::infinity();
    st = code_of(bad, badq, k, tokens, nullptr, nullptr, storage);  // queries are checked first
    VLK_CHECK(st.code == vlk::Code::kNonFinite && st.message.rfind("queries: row 0, column 3", 0) == 0) << s << ": " << st.message;
    VLK_CHECK_EQ(code_of(g, qs, items + 1, tokens, nullptr, nullptr, storage).code, vlk::Code::kInvalidK) << s;
    VLK_CHECK_EQ(code_of(g, qs, k, 7, nullptr, nullptr, storage).code, vlk::Code::kShape) << s;
    std::vector<int64_t> off(static_cast<size_t>(nq) + 1, 1);
    off[0] = 0;
    const int32_t out_of_range[1] = {static_cast<int32_t>(items)};
    st = code_of(g, qs, k, tokens, off.data(), out_of_range, storage);
    VLK_CHECK_EQ(st.code, vlk::Code::kInvalidArg) << s;
    VLK_CHECK(st.message == "exclude: query 0 lists row 300, outside 0..299") << s << ": " << st.message;
  }
}

VLK_TEST(quantized_one_shot_blocks_merge_like_search) {
  // Galleries past search_reduced's block (65,536 rows of whole items): the blocks' lists merge to
  // search's result; an item duplicated across blocks ties and the lower one comes first; filters
  // shifted per block (allow words, local exclude lists) keep their meaning.
  struct Shape {
    int64_t tokens, items, d;
  };
  const Context ctx = ctx_for(vlk::detected_isa(), 2);
  for (const Shape sh : {Shape{32, 2100, 8}, Shape{1, 140000, 4}, Shape{3, 45000, 5}}) {
    Rng rng(static_cast<uint64_t>(sh.items));
    const int64_t n = sh.items * sh.tokens, d = sh.d, nq = 13;
    std::vector<float> g(static_cast<size_t>(n * d)), qs(static_cast<size_t>(nq * d));
    for (auto& x : g) x = rng.uniform();
    for (auto& x : qs) x = rng.uniform();
    // Item 7's tokens again as the last item (another block) and query 0 on its first token.
    std::copy(g.begin() + 7 * sh.tokens * d, g.begin() + 8 * sh.tokens * d, g.end() - sh.tokens * d);
    std::copy(g.begin() + 7 * sh.tokens * d, g.begin() + 7 * sh.tokens * d + d, qs.begin());
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      const TokResult top1 = run_search(qs, g, d, sh.tokens, 1, metric, TokFilter(), ctx);
      for (int fl = 0; fl < 4; ++fl) {
        TokFilter f = make_filter(fl & 1, fl & 2, sh.items, top1, nq);
        if (!f.allow.empty()) f.allow.back() |= uint64_t{1} << ((sh.items - 1) & 63);  // the copy stays allowed
        for (int64_t k : {int64_t(1), int64_t(10), int64_t(300)}) {
          const TokResult want = run_search(qs, g, d, sh.tokens, k, metric, f, ctx);
          for (Storage storage : {Storage::kBF16, Storage::kI8}) {
            SearchArgs a;
            a.queries = MatrixView<const float>(qs.data(), nq, d);
            a.gallery = MatrixView<const float>(g.data(), n, d);
            a.k = k;
            a.metric = metric;
            a.tokens = sh.tokens;
            if (!f.allow.empty()) a.filter.allow = f.allow.data();
            if (!f.off.empty()) {
              a.filter.exclude_offsets = f.off.data();
              a.filter.exclude_rows = f.rows.data();
            }
            TokResult got;
            got.idx.assign(static_cast<size_t>(nq * k), 7);
            got.scores.assign(static_cast<size_t>(nq * k), 7.0f);
            got.counts.assign(static_cast<size_t>(nq), 7);
            got.rescored.assign(static_cast<size_t>(nq), -1);
            const vlk::Status st = vlk::core::search_reduced(
                a, storage, SearchOut{got.idx.data(), got.scores.data(), got.counts.data()}, ctx, got.rescored.data());
            VLK_CHECK(st.ok()) << st.message;
            const std::string what = std::string("blocks ") + vlk::core::storage_name(storage) + " " +
                                     vlk::core::metric_name(metric) + " tokens " + std::to_string(sh.tokens) +
                                     " items " + std::to_string(sh.items) + " k " + std::to_string(k) + " filter " +
                                     std::to_string(fl);
            if (!check_tok(want, k, got, k, what)) continue;
            if (fl == 0 && k >= 10 && metric == Metric::kL2) {
              // Query 0 sits on item 7, whose copy is the last item: both first, 7 before the copy.
              VLK_CHECK(got.idx[0] == 7 && got.idx[1] == sh.items - 1) << what << ": " << got.idx[0] << ", " << got.idx[1];
            }
          }
        }
      }
    }
  }
}
