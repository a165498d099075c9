// C++ core tests of reduced-precision storage (test/native): a bf16 or i8 FlatIndex returns exactly
// what the f32 FlatIndex over the same vectors returns (ids and scores bit for bit, counts,
// padding), on random data and on clustered data full of near-ties and exact duplicates, at awkward
// sizes, every metric, the AVX-512 BF16/VNNI and the portable scan, with filters; approximate mode
// returns valid rows with high recall and re-scores nothing; get() round trips.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
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
      double err = 0, norm = 0;
      for (int64_t j = 0; j < d; ++j) {
        err += std::pow(back[static_cast<size_t>(j)] - rows[static_cast<size_t>(17 * d + j)], 2);
        norm += std::pow(rows[static_cast<size_t>(17 * d + j)], 2);
      }
      VLK_CHECK(std::sqrt(err / norm) < 0.02) << "relative error " << std::sqrt(err / norm);
    }
  }
  VLK_CHECK(!FlatIndex::validate_options(8, Storage::kF32, true).ok());
  VLK_CHECK(!FlatIndex::validate_options(70000, Storage::kI8, false).ok());
  VLK_CHECK(FlatIndex::validate_options(70000, Storage::kBF16, false).ok());
}
