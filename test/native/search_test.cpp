// C++ tests of the core without Node (CMake target vlk_core_tests): vlk::core::search against a float64
// brute-force reference (queries Q x D, gallery N x D, row-major), tie order, bit-identity across ISA
// paths, thread counts and batching, error statuses, ThreadPool::parallel_for and the status table.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <future>
#include <limits>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/cancel.hpp"
#include "common/context.hpp"
#include "common/status.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"
#include "search/search.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::CancelFlag;
using vlk::Code;
using vlk::Context;
using vlk::Isa;
using vlk::MatrixView;
using vlk::Status;
using vlk::ThreadPool;
using vlk::core::Metric;
using vlk::core::SearchArgs;
using vlk::core::SearchOut;
using vlk_test::Rng;

constexpr Metric kMetrics[] = {Metric::kInnerProduct, Metric::kCosine, Metric::kL2};
constexpr double kUnit = 1.0 / 16777216.0;  // fp32 unit roundoff, 2^-24

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (float& v : m) v = rng.uniform();
  return m;
}

bool higher_is_better(Metric m) { return m != Metric::kL2; }

// The process-wide ISA override, cleared when the guard goes out of scope.
class IsaGuard {
 public:
  explicit IsaGuard(Isa isa) { status_ = vlk::set_isa(&isa); }
  ~IsaGuard() { vlk::set_isa(nullptr); }
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// One test pool wide enough that threads = 5 really runs five ways.
ThreadPool& test_pool() {
  static ThreadPool pool(4);
  return pool;
}

struct Problem {
  int64_t q = 0, n = 0, d = 0;
  std::vector<float> queries, gallery;
  SearchArgs args(int64_t k, Metric metric) const {
    SearchArgs a;
    a.queries = MatrixView<const float>(queries.data(), q, d);
    a.gallery = MatrixView<const float>(gallery.data(), n, d);
    a.k = k;
    a.metric = metric;
    return a;
  }
};

Problem random_problem(int64_t q, int64_t n, int64_t d, uint64_t seed) {
  Problem p;
  p.q = q;
  p.n = n;
  p.d = d;
  p.queries = random_matrix(q, d, seed * 2 + 1);
  p.gallery = random_matrix(n, d, seed * 2 + 2);
  return p;
}

struct Result {
  Status status;
  std::vector<int32_t> indices;
  std::vector<float> scores;
};

// Guard entries past Q*k catch writes beyond the documented output size.
constexpr int kCanary = 8;
constexpr int32_t kCanaryIndex = -12345;
constexpr float kCanaryScore = -12345.5f;

// Runs core::search with the ISA the process would use now (after any set_isa), on `pool`.
Result run_search(const SearchArgs& args, int threads = 1, ThreadPool* pool = nullptr,
                  const CancelFlag* cancel = nullptr) {
  Result r;
  const size_t count =
      static_cast<size_t>(std::max<int64_t>(0, args.queries.rows) * std::max<int64_t>(0, args.k));
  r.indices.assign(count + kCanary, kCanaryIndex);
  r.scores.assign(count + kCanary, kCanaryScore);
  Context ctx;
  r.status = vlk::active_isa(&ctx.isa);
  if (!r.status.ok()) return r;
  ctx.pool = pool;
  ctx.threads = threads;
  ctx.cancel = cancel;
  SearchOut out;
  out.indices = r.indices.data();
  out.scores = r.scores.data();
  r.status = vlk::core::search(args, out, ctx);
  for (int i = 0; i < kCanary; ++i) {
    VLK_CHECK(r.indices[count + i] == kCanaryIndex && r.scores[count + i] == kCanaryScore)
        << "search wrote past Q*k = " << count;
  }
  r.indices.resize(count);
  r.scores.resize(count);
  return r;
}

bool same_bits(const Result& a, const Result& b) {
  return a.indices == b.indices && a.scores.size() == b.scores.size() &&
         std::memcmp(a.scores.data(), b.scores.data(), a.scores.size() * sizeof(float)) == 0;
}

std::string where(const Problem& p, int64_t k, Metric m) {
  std::ostringstream os;
  os << "Q=" << p.q << " N=" << p.n << " D=" << p.d << " k=" << k << " metric=" << vlk::core::metric_name(m);
  return os.str();
}

// ---- float64 reference -------------------------------------------------------------------------

struct Reference {
  std::vector<double> score;  // Q x N exact-ish scores
  std::vector<double> tol;    // per query: bound on |fp32 kernel score - exact score|
  std::vector<int32_t> order; // Q x N, best first, ties by lower index
};

Reference reference(const Problem& p, Metric metric) {
  Reference ref;
  const int64_t Q = p.q, N = p.n, D = p.d;
  ref.score.assign(static_cast<size_t>(Q * N), 0.0);
  ref.tol.assign(static_cast<size_t>(Q), 0.0);
  ref.order.resize(static_cast<size_t>(Q * N));
  std::vector<double> gnorm(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += double(p.gallery[i * D + d]) * p.gallery[i * D + d];
    gnorm[i] = std::sqrt(s);
  }
  for (int64_t q = 0; q < Q; ++q) {
    const float* qv = &p.queries[q * D];
    double qn = 0;
    for (int64_t d = 0; d < D; ++d) qn += double(qv[d]) * qv[d];
    qn = std::sqrt(qn);
    double tol = 0;
    for (int64_t i = 0; i < N; ++i) {
      const float* gv = &p.gallery[i * D];
      double dot = 0, absdot = 0, l2 = 0;
      for (int64_t d = 0; d < D; ++d) {
        dot += double(qv[d]) * gv[d];
        absdot += std::fabs(double(qv[d]) * gv[d]);
        const double diff = double(qv[d]) - gv[d];
        l2 += diff * diff;
      }
      double s = 0, t = 0;
      switch (metric) {
        case Metric::kInnerProduct:
          // fp32 FMA accumulation of D products: |error| <= ~D u sum|q_d g_d|.
          s = dot;
          t = (D + 2) * kUnit * absdot;
          break;
        case Metric::kCosine:
          s = (qn == 0 || gnorm[i] == 0) ? 0.0 : dot / (qn * gnorm[i]);
          t = (qn == 0 || gnorm[i] == 0)
                  ? 0.0
                  : (2 * D + 16) * kUnit * std::max(1.0, absdot / (qn * gnorm[i]));
          break;
        case Metric::kL2:
          // Documented as exact to float64, then rounded to fp32.
          s = l2;
          t = 2 * kUnit * l2;
          break;
      }
      ref.score[q * N + i] = s;
      tol = std::max(tol, t);
    }
    ref.tol[q] = tol + 1e-30;
    int32_t* ord = &ref.order[q * N];
    for (int64_t i = 0; i < N; ++i) ord[i] = static_cast<int32_t>(i);
    const double* sc = &ref.score[q * N];
    const bool desc = higher_is_better(metric);
    std::sort(ord, ord + N, [&](int32_t a, int32_t b) {
      if (sc[a] != sc[b]) return desc ? sc[a] > sc[b] : sc[a] < sc[b];
      return a < b;
    });
  }
  return ref;
}

// Checks one result against the reference: indices distinct and in range, fp32 order with ties
// by lower index, each score within tolerance of its row's exact score, the j-th score within
// tolerance of the exact j-th best, and the exact index wherever the j-th best is separated from
// its neighbours by more than the tolerance.
void check_against_reference(const Problem& p, const Reference& ref, const Result& r, int64_t k,
                             Metric metric) {
  VLK_CHECK_EQ(r.status.code, Code::kOk) << where(p, k, metric) << " " << r.status.message;
  if (!r.status.ok()) return;
  const bool desc = higher_is_better(metric);
  const int64_t N = p.n;
  int reported = 0;
  for (int64_t q = 0; q < p.q && reported < 3; ++q) {
    const int32_t* idx = &r.indices[q * k];
    const float* sc = &r.scores[q * k];
    const double* exact = &ref.score[q * N];
    const int32_t* ord = &ref.order[q * N];
    const double tol = ref.tol[q];
    std::set<int32_t> seen;
    for (int64_t j = 0; j < k; ++j) {
      std::ostringstream ctx;
      ctx.precision(9);
      ctx << where(p, k, metric) << " q=" << q << " j=" << j << " index=" << idx[j]
          << " score=" << sc[j];
      if (idx[j] < 0 || idx[j] >= N || !seen.insert(idx[j]).second) {
        VLK_CHECK(false) << "index out of range or repeated: " << ctx.str();
        ++reported;
        break;
      }
      bool ok = true;
      if (std::fabs(sc[j] - exact[idx[j]]) > tol) {
        VLK_CHECK(false) << "score vs exact " << exact[idx[j]] << " (tol " << tol
                         << "): " << ctx.str();
        ok = false;
      }
      if (ok && std::fabs(sc[j] - exact[ord[j]]) > 2 * tol) {
        VLK_CHECK(false) << "j-th score vs exact j-th best " << exact[ord[j]] << " (row " << ord[j]
                         << "): " << ctx.str();
        ok = false;
      }
      if (ok && j > 0) {
        const bool in_order = desc ? sc[j - 1] >= sc[j] : sc[j - 1] <= sc[j];
        if (!in_order) {
          VLK_CHECK(false) << "not sorted best first after (" << idx[j - 1] << ", " << sc[j - 1]
                           << "): " << ctx.str();
          ok = false;
        } else if (sc[j - 1] == sc[j] && idx[j - 1] > idx[j]) {
          VLK_CHECK(false) << "equal scores, higher index first: row " << idx[j - 1]
                           << " before " << ctx.str();
          ok = false;
        }
      }
      if (ok) {
        const bool sep_prev = j == 0 || std::fabs(exact[ord[j]] - exact[ord[j - 1]]) > 2 * tol;
        const bool sep_next = j + 1 >= N || std::fabs(exact[ord[j + 1]] - exact[ord[j]]) > 2 * tol;
        if (sep_prev && sep_next && idx[j] != ord[j]) {
          VLK_CHECK(false) << "expected row " << ord[j] << " (exact " << exact[ord[j]]
                           << ", clearly separated): " << ctx.str();
          ok = false;
        }
      }
      if (!ok) {
        ++reported;
        break;
      }
    }
  }
}

// Awkward sizes: one row, a prime, one past a power of two (a partial block), and a few blocks.
constexpr int64_t kSizesN[] = {1, 7, 513, 4097};
constexpr int64_t kSizesD[] = {1, 3, 512};
// 4 is the widest "few queries" path (fused AVX-512 row scan); 7 and 33 take the panel path.
constexpr int64_t kSizesQ[] = {1, 4, 7, 33};

std::vector<int64_t> ks_for(int64_t n) {
  std::vector<int64_t> ks = {1};
  if (n >= 10) ks.push_back(10);
  if (n > 300) ks.push_back(300);
  if (n > 1) ks.push_back(n);
  return ks;
}

void reference_sweep(Metric metric) {
  uint64_t seed = 100 + static_cast<uint64_t>(metric) * 1000;
  for (int64_t n : kSizesN) {
    for (int64_t d : kSizesD) {
      for (int64_t q : kSizesQ) {
        const Problem p = random_problem(q, n, d, ++seed);
        const Reference ref = reference(p, metric);
        for (int64_t k : ks_for(n)) {
          check_against_reference(p, ref, run_search(p.args(k, metric), 2, &test_pool()), k, metric);
        }
      }
    }
  }
}

}  // namespace

// ---- agreement with the float64 reference ------------------------------------------------------

VLK_TEST(reference_ip) { reference_sweep(Metric::kInnerProduct); }
VLK_TEST(reference_cosine) { reference_sweep(Metric::kCosine); }
VLK_TEST(reference_l2) { reference_sweep(Metric::kL2); }

// Small integers make ip and l2 exact in fp32 and float64 alike, with ties everywhere: the result
// must be exactly the reference order (score, then lower index), including ties cut at k.
VLK_TEST(planted_ties_exact_integers) {
  for (Metric metric : {Metric::kInnerProduct, Metric::kL2}) {
    for (int64_t d : {1, 3, 16}) {
      Problem p;
      p.q = 5;
      p.n = 513;
      p.d = d;
      Rng rng(7 + static_cast<uint64_t>(d));
      for (int64_t i = 0; i < p.q * d; ++i) p.queries.push_back(float(rng.small_int(-2, 2)));
      for (int64_t i = 0; i < p.n * d; ++i) p.gallery.push_back(float(rng.small_int(-2, 2)));
      const Reference ref = reference(p, metric);
      for (int64_t k : {int64_t(1), int64_t(10), int64_t(100), p.n}) {
        const Result r = run_search(p.args(k, metric), 2, &test_pool());
        VLK_CHECK_EQ(r.status.code, Code::kOk) << where(p, k, metric);
        if (!r.status.ok()) continue;
        for (int64_t q = 0; q < p.q; ++q) {
          for (int64_t j = 0; j < k; ++j) {
            const int32_t want = ref.order[q * p.n + j];
            const int32_t got = r.indices[q * k + j];
            const double want_score = ref.score[q * p.n + want];
            if (got != want || double(r.scores[q * k + j]) != want_score) {
              VLK_CHECK(false) << where(p, k, metric) << " q=" << q << " j=" << j << ": got row "
                               << got << " score " << r.scores[q * k + j] << ", want row " << want
                               << " score " << want_score;
              j = k;
              q = p.q;
            }
          }
        }
      }
    }
  }
}

// Exact duplicate rows score bit-identically under every metric: within each group of equal rows
// the lower index comes first, and a group cut by k keeps its lowest indices.
VLK_TEST(planted_ties_duplicate_rows) {
  for (Metric metric : kMetrics) {
    for (int64_t d : {3, 512}) {
      const int64_t kDistinct = 5;
      const std::vector<float> base = random_matrix(kDistinct, d, 99 + static_cast<uint64_t>(d));
      Problem p;
      p.q = 7;
      p.n = 513;
      p.d = d;
      p.queries = random_matrix(p.q, d, 77);
      for (int64_t i = 0; i < p.n; ++i) {
        const int64_t b = (i * 7 + i / 3) % kDistinct;  // scattered, not sorted by group
        p.gallery.insert(p.gallery.end(), base.begin() + b * d, base.begin() + (b + 1) * d);
      }
      const Reference ref = reference(p, metric);
      for (int64_t k : {int64_t(1), int64_t(50), int64_t(200), p.n}) {
        const Result r = run_search(p.args(k, metric), 2, &test_pool());
        VLK_CHECK_EQ(r.status.code, Code::kOk) << where(p, k, metric);
        if (!r.status.ok()) continue;
        for (int64_t q = 0; q < p.q; ++q) {
          for (int64_t j = 0; j < k; ++j) {
            const int32_t want = ref.order[q * p.n + j];
            const int32_t got = r.indices[q * k + j];
            if (got != want) {
              VLK_CHECK(false) << where(p, k, metric) << " q=" << q << " j=" << j << ": got row "
                               << got << ", want row " << want;
              j = k;
              q = p.q;
            }
          }
        }
      }
    }
  }
}

// Cosine with a zero vector is 0, never NaN: zero gallery rows score 0, a zero query scores 0
// against everything (so its result is rows 0..k-1 in order).
VLK_TEST(cosine_zero_vectors) {
  Problem p = random_problem(2, 9, 3, 5);
  for (int64_t i : {2, 5, 6}) std::fill_n(&p.gallery[i * 3], 3, 0.0f);
  std::fill_n(&p.queries[3], 3, 0.0f);  // query 1 is zero
  const int64_t k = 9;
  const Result r = run_search(p.args(k, Metric::kCosine));
  VLK_CHECK_EQ(r.status.code, Code::kOk) << r.status.message;
  if (!r.status.ok()) return;
  for (int64_t j = 0; j < k; ++j) {
    const int32_t row = r.indices[j];
    if (row == 2 || row == 5 || row == 6) {
      VLK_CHECK_EQ(r.scores[j], 0.0f) << "zero gallery row " << row;
    }
    VLK_CHECK_EQ(r.indices[k + j], int32_t(j)) << "zero query";
    VLK_CHECK_EQ(r.scores[k + j], 0.0f) << "zero query, j=" << j;
  }
}

// ---- bit-identity: ISA paths, threads, batching ------------------------------------------------

VLK_TEST(isa_paths_bit_identical_to_scalar) {
  const std::vector<Isa> isas = vlk::supported_isas();
  VLK_CHECK(!isas.empty() && isas.front() == Isa::kScalar) << "supported_isas starts with scalar";
  uint64_t seed = 5000;
  for (Metric metric : kMetrics) {
    for (int64_t n : kSizesN) {
      for (int64_t d : kSizesD) {
        for (int64_t q : {int64_t(1), int64_t(4), int64_t(5), int64_t(33)}) {
          const Problem p = random_problem(q, n, d, ++seed);
          for (int64_t k : ks_for(n)) {
            const SearchArgs args = p.args(k, metric);
            Result scalar;
            {
              IsaGuard guard(Isa::kScalar);
              scalar = run_search(args, 2, &test_pool());
            }
            VLK_CHECK_EQ(scalar.status.code, Code::kOk) << where(p, k, metric);
            for (Isa isa : isas) {
              if (isa == Isa::kScalar) continue;
              IsaGuard guard(isa);
              VLK_CHECK(guard.status().ok()) << "set_isa(" << vlk::isa_name(isa) << ") "
                                             << guard.status().message;
              const Result r = run_search(args, 2, &test_pool());
              VLK_CHECK(same_bits(scalar, r))
                  << vlk::isa_name(isa) << " differs from scalar: " << where(p, k, metric);
            }
          }
        }
      }
    }
  }
}

VLK_TEST(threads_1_2_5_identical) {
  uint64_t seed = 6000;
  for (Metric metric : kMetrics) {
    for (int64_t q : {int64_t(1), int64_t(7), int64_t(33)}) {
      for (int64_t n : {int64_t(513), int64_t(4097)}) {
        const Problem p = random_problem(q, n, 64, ++seed);
        for (int64_t k : ks_for(n)) {
          const SearchArgs args = p.args(k, metric);
          const Result base = run_search(args, 1, nullptr);
          VLK_CHECK_EQ(base.status.code, Code::kOk) << where(p, k, metric);
          for (int threads : {1, 2, 5}) {
            const Result r = run_search(args, threads, &test_pool());
            VLK_CHECK(same_bits(base, r)) << "threads=" << threads << ": " << where(p, k, metric);
          }
          const Result g = run_search(args, 2, &vlk::global_pool());
          VLK_CHECK(same_bits(base, g)) << "global pool: " << where(p, k, metric);
        }
      }
    }
  }
}

VLK_TEST(one_query_at_a_time_equals_batched) {
  uint64_t seed = 7000;
  for (Metric metric : kMetrics) {
    for (int64_t d : {3, 512}) {
      const Problem p = random_problem(33, 4097, d, ++seed);
      for (int64_t k : {int64_t(1), int64_t(10), int64_t(300), p.n}) {
        const Result batched = run_search(p.args(k, metric), 2, &test_pool());
        VLK_CHECK_EQ(batched.status.code, Code::kOk) << where(p, k, metric);
        if (!batched.status.ok()) continue;
        for (int64_t chunk : {1, 5}) {
          Result joined;
          for (int64_t q0 = 0; q0 < p.q; q0 += chunk) {
            SearchArgs args = p.args(k, metric);
            const int64_t rows = std::min(chunk, p.q - q0);
            args.queries = MatrixView<const float>(p.queries.data() + q0 * d, rows, d);
            const Result part = run_search(args, 2, &test_pool());
            VLK_CHECK_EQ(part.status.code, Code::kOk);
            joined.indices.insert(joined.indices.end(), part.indices.begin(), part.indices.end());
            joined.scores.insert(joined.scores.end(), part.scores.begin(), part.scores.end());
          }
          VLK_CHECK(same_bits(batched, joined)) << "chunks of " << chunk << ": " << where(p, k, metric);
        }
      }
    }
  }
}

// Strided views (a sub-block of wider rows) give the dense result, and the padding between rows is
// never read: it holds NaN, which would otherwise be ERR_VLK_NON_FINITE.
VLK_TEST(strided_views_ignore_padding) {
  for (Metric metric : kMetrics) {
    const Problem p = random_problem(7, 513, 13, 31);
    const int64_t stride = 16;
    std::vector<float> qpad(static_cast<size_t>(p.q * stride), std::nanf(""));
    std::vector<float> gpad(static_cast<size_t>(p.n * stride), std::nanf(""));
    for (int64_t i = 0; i < p.q; ++i) std::copy_n(&p.queries[i * p.d], p.d, &qpad[i * stride]);
    for (int64_t i = 0; i < p.n; ++i) std::copy_n(&p.gallery[i * p.d], p.d, &gpad[i * stride]);
    const int64_t k = 10;
    SearchArgs args = p.args(k, metric);
    args.queries = MatrixView<const float>(qpad.data(), p.q, p.d, stride);
    args.gallery = MatrixView<const float>(gpad.data(), p.n, p.d, stride);
    const Result dense = run_search(p.args(k, metric), 2, &test_pool());
    const Result strided = run_search(args, 2, &test_pool());
    VLK_CHECK_EQ(strided.status.code, Code::kOk) << vlk::core::metric_name(metric) << " "
                                                 << strided.status.message;
    VLK_CHECK(same_bits(dense, strided)) << vlk::core::metric_name(metric);
  }
}

VLK_TEST(inputs_never_written) {
  for (Metric metric : kMetrics) {
    const Problem p = random_problem(33, 4097, 64, 41);
    const Problem copy = p;
    const Result r = run_search(p.args(10, metric), 5, &test_pool());
    VLK_CHECK_EQ(r.status.code, Code::kOk);
    VLK_CHECK(std::memcmp(p.queries.data(), copy.queries.data(), p.queries.size() * 4) == 0 &&
              std::memcmp(p.gallery.data(), copy.gallery.data(), p.gallery.size() * 4) == 0)
        << vlk::core::metric_name(metric) << " modified its inputs";
  }
}

// ---- error statuses ----------------------------------------------------------------------------

VLK_TEST(error_invalid_k) {
  const Problem p = random_problem(3, 7, 4, 1);
  for (int64_t k : {int64_t(0), int64_t(-1), int64_t(8), int64_t(1) << 40}) {
    SearchArgs args = p.args(k, Metric::kInnerProduct);
    VLK_CHECK_EQ(vlk::core::validate_search(args).code, Code::kInvalidK) << "k=" << k;
    // Outputs sized for k = 1: an invalid k must fail before writing anything.
    std::vector<int32_t> idx(64, kCanaryIndex);
    std::vector<float> sc(64, kCanaryScore);
    Context ctx;
    const Status s = vlk::core::search(args, SearchOut{idx.data(), sc.data()}, ctx);
    VLK_CHECK_EQ(s.code, Code::kInvalidK) << "k=" << k;
    VLK_CHECK(!s.message.empty()) << "message names k";
    VLK_CHECK(idx[0] == kCanaryIndex && sc[0] == kCanaryScore) << "k=" << k << " wrote output";
  }
}

VLK_TEST(error_dim_mismatch) {
  const Problem p = random_problem(3, 7, 4, 2);
  SearchArgs args = p.args(2, Metric::kL2);
  args.gallery = MatrixView<const float>(p.gallery.data(), 7, 3);
  VLK_CHECK_EQ(vlk::core::validate_search(args).code, Code::kDimMismatch);
  const Result r = run_search(args);
  VLK_CHECK_EQ(r.status.code, Code::kDimMismatch);
  VLK_CHECK(r.status.message.find('4') != std::string::npos &&
            r.status.message.find('3') != std::string::npos)
      << "message names both dims: " << r.status.message;
}

VLK_TEST(error_empty) {
  const Problem p = random_problem(3, 7, 4, 3);
  struct Shape { int64_t q, n, d; };
  for (const Shape s : {Shape{0, 7, 4}, Shape{3, 0, 4}, Shape{3, 7, 0}, Shape{0, 0, 0}}) {
    SearchArgs args;
    args.queries = MatrixView<const float>(p.queries.data(), s.q, s.d);
    args.gallery = MatrixView<const float>(p.gallery.data(), s.n, s.d);
    args.k = 1;
    VLK_CHECK_EQ(vlk::core::validate_search(args).code, Code::kEmpty)
        << "Q=" << s.q << " N=" << s.n << " D=" << s.d;
    const Result r = run_search(args);
    VLK_CHECK_EQ(r.status.code, Code::kEmpty) << "Q=" << s.q << " N=" << s.n << " D=" << s.d;
  }
}

VLK_TEST(error_non_finite) {
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  for (Metric metric : kMetrics) {
    for (float v : bad) {
      for (int64_t n : {int64_t(7), int64_t(4097)}) {
        Problem p = random_problem(3, n, 5, 4);
        p.gallery[(n - 1) * 5 + 4] = v;  // the very last element
        VLK_CHECK_EQ(run_search(p.args(1, metric)).status.code, Code::kNonFinite)
            << "gallery " << v << " " << vlk::core::metric_name(metric) << " N=" << n;
        Problem pq = random_problem(3, n, 5, 4);
        pq.queries[1 * 5 + 2] = v;
        VLK_CHECK_EQ(run_search(pq.args(1, metric), 2, &test_pool()).status.code,
                     Code::kNonFinite)
            << "queries " << v << " " << vlk::core::metric_name(metric) << " N=" << n;
      }
    }
  }
}

// Finite inputs whose products overflow fp32 are reported, not returned as inf scores, on every
// path (small Q and large Q take different kernels).
VLK_TEST(error_overflowing_magnitudes) {
  for (Isa isa : vlk::supported_isas()) {
    IsaGuard guard(isa);
    for (Metric metric : kMetrics) {
      for (int64_t q : {1, 2, 33}) {
        // Mixed signs give +inf and -inf dot products; opposite signs give only -inf, which no
        // acceptance threshold lets through.
        for (bool opposite : {false, true}) {
          Problem p = random_problem(q, 7, 3, 6);
          for (float& v : p.gallery) v = (opposite || v < 0) ? -3e30f : 3e30f;
          for (float& v : p.queries) v = (!opposite && v < 0) ? -3e30f : 3e30f;
          VLK_CHECK_EQ(run_search(p.args(2, metric)).status.code, Code::kNonFinite)
              << vlk::isa_name(isa) << " " << vlk::core::metric_name(metric) << " Q=" << q
              << (opposite ? " all products negative" : " mixed signs");
        }
      }
    }
  }
}

VLK_TEST(error_aborted_before_call) {
  CancelFlag flag;
  flag.cancel();
  for (Metric metric : kMetrics) {
    for (int64_t n : {int64_t(7), int64_t(4097)}) {
      const Problem p = random_problem(33, n, 64, 8);
      VLK_CHECK_EQ(run_search(p.args(1, metric), 1, nullptr, &flag).status.code, Code::kAborted)
          << "single thread, N=" << n;
      VLK_CHECK_EQ(run_search(p.args(1, metric), 5, &test_pool(), &flag).status.code,
                   Code::kAborted)
          << "pool, N=" << n;
    }
  }
  // A flag that is never set changes nothing.
  CancelFlag idle;
  const Problem p = random_problem(33, 4097, 64, 8);
  VLK_CHECK(same_bits(run_search(p.args(10, Metric::kL2), 2, &test_pool(), &idle),
                      run_search(p.args(10, Metric::kL2), 2, &test_pool())));
}

// ---- names and ISA selection -------------------------------------------------------------------

VLK_TEST(metric_names_round_trip) {
  for (Metric m : kMetrics) {
    Metric back = Metric::kInnerProduct;
    VLK_CHECK(vlk::core::parse_metric(vlk::core::metric_name(m), &back).ok());
    VLK_CHECK_EQ(back, m);
  }
  Metric out;
  for (const char* bad : {"dot", "", "IP", "cos"}) {
    VLK_CHECK_EQ(vlk::core::parse_metric(bad, &out).code, Code::kInvalidArg) << "'" << bad << "'";
  }
}

VLK_TEST(isa_selection) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    Isa back = Isa::kScalar;
    VLK_CHECK(vlk::parse_isa(vlk::isa_name(isa), &back).ok());
    VLK_CHECK_EQ(back, isa);
  }
  Isa out;
  VLK_CHECK_EQ(vlk::parse_isa("sse2", &out).code, Code::kInvalidArg);
  const std::vector<Isa> isas = vlk::supported_isas();
  VLK_CHECK_EQ(isas.back(), vlk::isa_cap());
  VLK_CHECK(static_cast<int>(vlk::isa_cap()) <= static_cast<int>(vlk::detected_isa()));
  for (Isa isa : isas) {
    IsaGuard guard(isa);
    VLK_CHECK(guard.status().ok()) << vlk::isa_name(isa);
    Isa active = Isa::kScalar;
    VLK_CHECK(vlk::active_isa(&active).ok());
    VLK_CHECK_EQ(active, isa);
  }
  if (vlk::isa_cap() != Isa::kAvx512) {
    const Isa above = static_cast<Isa>(static_cast<int>(vlk::isa_cap()) + 1);
    IsaGuard guard(above);
    VLK_CHECK_EQ(guard.status().code, Code::kUnsupportedIsa) << vlk::isa_name(above);
  }
  Isa after = Isa::kScalar;
  VLK_CHECK(vlk::active_isa(&after).ok());
  VLK_CHECK_EQ(after, vlk::isa_cap()) << "override cleared";
}

// ---- thread pool -------------------------------------------------------------------------------

VLK_TEST(parallel_for_covers_each_index_once) {
  ThreadPool& pool = test_pool();
  for (int64_t n : {0, 1, 2, 7, 1000, 100003}) {
    for (int width : {1, 2, 5, 64}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (auto& h : hits) h.store(0);
      pool.parallel_for(n, width, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
      int64_t wrong = 0;
      for (auto& h : hits) wrong += h.load() != 1;
      VLK_CHECK_EQ(wrong, int64_t(0)) << "n=" << n << " width=" << width;
    }
  }
}

// Waits for a future with a deadline; a deadlock ends the process with the summary line rather
// than hanging CI.
template <class T>
bool wait_or_die(std::future<T>& f, const char* what) {
  if (f.wait_for(std::chrono::seconds(60)) == std::future_status::ready) return true;
  std::printf("FAIL %s: deadlock (no progress in 60 s)\n", what);
  std::printf("0 passed, 1 failed\n");
  std::fflush(stdout);
  std::_Exit(1);
}

// Pool tasks that fan out on the same pool (every worker busy) still finish: the caller of
// parallel_for works through its own indices.
VLK_TEST(parallel_for_nested_in_pool_tasks) {
  ThreadPool pool(2);
  const int kTasks = 6;
  const int64_t kN = 2000;
  std::vector<std::vector<std::atomic<int>>> hits(kTasks);
  for (auto& v : hits) {
    v = std::vector<std::atomic<int>>(static_cast<size_t>(kN));
    for (auto& h : v) h.store(0);
  }
  std::vector<std::promise<void>> done(kTasks);
  std::vector<std::future<void>> futures;
  for (int t = 0; t < kTasks; ++t) {
    futures.push_back(done[t].get_future());
    pool.submit([&, t] {
      pool.parallel_for(kN / 10, 3, [&](int64_t outer) {
        // Nested once more: parallel_for inside a parallel_for body.
        pool.parallel_for(10, 2, [&](int64_t inner) {
          hits[t][static_cast<size_t>(outer * 10 + inner)].fetch_add(1);
        });
      });
      done[t].set_value();
    });
  }
  for (auto& f : futures) wait_or_die(f, "parallel_for_nested_in_pool_tasks");
  for (int t = 0; t < kTasks; ++t) {
    int64_t wrong = 0;
    for (auto& h : hits[t]) wrong += h.load() != 1;
    VLK_CHECK_EQ(wrong, int64_t(0)) << "task " << t;
  }
  // parallel_for helpers that arrive after their loop finished are queued no-ops; they drain.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pool.queue_depth() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  VLK_CHECK_EQ(pool.queue_depth(), int64_t(0)) << "queue drains";
}

// Searches running concurrently as pool jobs (the addon's async path) agree with a direct call.
VLK_TEST(concurrent_searches_on_pool) {
  ThreadPool pool(2);
  const Problem p = random_problem(7, 4097, 64, 55);
  const SearchArgs args = p.args(10, Metric::kCosine);
  const Result want = run_search(args, 1, nullptr);
  const int kJobs = 8;
  std::vector<Result> got(kJobs);
  std::vector<std::promise<void>> done(kJobs);
  std::vector<std::future<void>> futures;
  for (int j = 0; j < kJobs; ++j) {
    futures.push_back(done[j].get_future());
    pool.submit([&, j] {
      got[j] = run_search(args, 1 + j % 3, &pool);
      done[j].set_value();
    });
  }
  for (auto& f : futures) wait_or_die(f, "concurrent_searches_on_pool");
  for (int j = 0; j < kJobs; ++j) VLK_CHECK(same_bits(want, got[j])) << "job " << j;
}

// ---- status table ------------------------------------------------------------------------------

VLK_TEST(status_code_strings) {
  const int n = vlk::code_count();
#define VLK_X(name, str) +1
  const int listed = 0 VLK_STATUS_CODES(VLK_X);
#undef VLK_X
  VLK_CHECK_EQ(n, listed);
  std::set<std::string> seen;
  for (int i = 0; i < n; ++i) {
    const Code c = vlk::code_at(i);
    const std::string s = vlk::code_string(c);
    VLK_CHECK(seen.insert(s).second) << "duplicate " << s;
    if (c == Code::kOk) {
      VLK_CHECK_EQ(s, std::string("OK"));
    } else if (c == Code::kAborted) {
      VLK_CHECK_EQ(s, std::string("ABORT_ERR"));
    } else {
      VLK_CHECK(s.rfind("ERR_VLK_", 0) == 0) << s;
    }
  }
  VLK_CHECK(Status().ok() && Status::Ok().ok());
  VLK_CHECK(!Status(Code::kShape, "x").ok());
}

// Filters: the filtered top-k equals the first k allowed rows of the full ordering (k = N) on
// every path and thread count; short rows are padded with -1 / NaN and counted.
VLK_TEST(filter_allow_and_exclude) {
  for (int trial = 0; trial < 40; ++trial) {
    Rng rng(1000 + trial);
    const int64_t n = 1 + static_cast<int64_t>(rng.next() % 600);
    const int64_t q = 1 + static_cast<int64_t>(rng.next() % 30);
    const int64_t d = 1 + static_cast<int64_t>(rng.next() % 40);
    const int64_t k = 1 + static_cast<int64_t>(rng.next() % static_cast<uint64_t>(std::min<int64_t>(n, 40)));
    const Metric metric = kMetrics[trial % 3];
    std::vector<float> g(static_cast<size_t>(n * d)), qs(static_cast<size_t>(q * d));
    for (auto& x : g) x = static_cast<float>(rng.uniform());
    for (auto& x : qs) x = static_cast<float>(rng.uniform());
    if (trial % 4 == 0) {  // planted ties: every third row a copy of row 0
      for (int64_t r = 3; r < n; r += 3) std::copy(g.begin(), g.begin() + d, g.begin() + r * d);
    }
    const double density = (trial % 5) / 4.0;
    std::vector<uint64_t> allow(static_cast<size_t>((n + 63) / 64), 0);
    for (int64_t r = 0; r < n; ++r) {
      if ((rng.next() % 1000) < density * 1000) allow[static_cast<size_t>(r >> 6)] |= uint64_t{1} << (r & 63);
    }
    std::vector<int64_t> off(static_cast<size_t>(q) + 1, 0);
    std::vector<int32_t> ex;
    for (int64_t i = 0; i < q; ++i) {
      const int m = static_cast<int>(rng.next() % 4);
      for (int j = 0; j < m; ++j) ex.push_back(static_cast<int32_t>(rng.next() % static_cast<uint64_t>(n)));
      off[static_cast<size_t>(i) + 1] = static_cast<int64_t>(ex.size());
    }
    SearchArgs full;
    full.queries = MatrixView<const float>(qs.data(), q, d);
    full.gallery = MatrixView<const float>(g.data(), n, d);
    full.k = n;
    full.metric = metric;
    std::vector<int32_t> fi(static_cast<size_t>(q * n));
    std::vector<float> fs(static_cast<size_t>(q * n));
    Context c0;
    c0.isa = Isa::kScalar;
    VLK_CHECK(vlk::core::search(full, SearchOut{fi.data(), fs.data()}, c0).ok());

    SearchArgs a = full;
    a.k = k;
    a.filter.allow = allow.data();
    a.filter.exclude_offsets = off.data();
    a.filter.exclude_rows = ex.data();
    for (Isa isa : vlk::supported_isas()) {
      for (int threads : {1, 3}) {
        Context ctx;
        ctx.pool = &vlk::global_pool();
        ctx.threads = threads;
        ctx.isa = isa;
        std::vector<int32_t> idx(static_cast<size_t>(q * k)), counts(static_cast<size_t>(q));
        std::vector<float> sc(static_cast<size_t>(q * k));
        SearchOut out{idx.data(), sc.data(), counts.data()};
        VLK_CHECK(vlk::core::search(a, out, ctx).ok());
        for (int64_t i = 0; i < q; ++i) {
          std::set<int32_t> excluded(ex.begin() + off[static_cast<size_t>(i)], ex.begin() + off[static_cast<size_t>(i) + 1]);
          int64_t have = 0;
          for (int64_t j = 0; j < n && have < k; ++j) {
            const int32_t r = fi[static_cast<size_t>(i * n + j)];
            if (((allow[static_cast<size_t>(r >> 6)] >> (r & 63)) & 1u) == 0 || excluded.count(r) != 0) continue;
            VLK_CHECK_EQ(idx[static_cast<size_t>(i * k + have)], r);
            VLK_CHECK(sc[static_cast<size_t>(i * k + have)] == fs[static_cast<size_t>(i * n + j)]);
            ++have;
          }
          VLK_CHECK_EQ(counts[static_cast<size_t>(i)], static_cast<int32_t>(have));
          for (int64_t j = have; j < k; ++j) {
            VLK_CHECK_EQ(idx[static_cast<size_t>(i * k + j)], -1);
            VLK_CHECK(std::isnan(sc[static_cast<size_t>(i * k + j)]));
          }
        }
      }
    }
  }
}

VLK_TEST(filter_bad_exclusions) {
  std::vector<float> g(40, 0.5f), qs(8, 0.25f);
  SearchArgs a;
  a.queries = MatrixView<const float>(qs.data(), 2, 4);
  a.gallery = MatrixView<const float>(g.data(), 10, 4);
  a.k = 3;
  std::vector<int64_t> off = {0, 2, 1};
  std::vector<int32_t> rows = {1, 2};
  a.filter.exclude_offsets = off.data();
  a.filter.exclude_rows = rows.data();
  std::vector<int32_t> idx(6);
  std::vector<float> sc(6);
  Context ctx;
  VLK_CHECK_EQ(vlk::core::search(a, SearchOut{idx.data(), sc.data()}, ctx).code, Code::kInvalidArg);
  off = {0, 1, 2};
  rows = {1, 10};
  VLK_CHECK_EQ(vlk::core::search(a, SearchOut{idx.data(), sc.data()}, ctx).code, Code::kInvalidArg);
  rows = {1, 9};
  VLK_CHECK(vlk::core::search(a, SearchOut{idx.data(), sc.data()}, ctx).ok());
}

int main(int argc, char** argv) { return vlk_test::run_all(argc, argv); }
