// C++ core tests of rerank (test/native): each query's result equals the first k of its own
// candidates in the full search ordering (k = N), bit for bit, on every ISA path and thread count;
// duplicates count once, short lists are padded; bad candidate lists give statuses.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"
#include "search/rerank.hpp"
#include "search/search.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Code;
using vlk::Context;
using vlk::Isa;
using vlk::MatrixView;
using vlk::core::Metric;
using vlk::core::RerankArgs;
using vlk::core::RerankOut;
using vlk::core::SearchArgs;
using vlk::core::SearchOut;
using vlk_test::Rng;

constexpr Metric kMetrics[] = {Metric::kInnerProduct, Metric::kCosine, Metric::kL2};

}  // namespace

VLK_TEST(rerank_equals_restricted_search) {
  for (int trial = 0; trial < 30; ++trial) {
    Rng rng(3000 + trial);
    const int64_t n = 1 + static_cast<int64_t>(rng.next() % 500);
    const int64_t q = 1 + static_cast<int64_t>(rng.next() % 25);
    const int64_t d = 1 + static_cast<int64_t>(rng.next() % 70);
    const int64_t k = 1 + static_cast<int64_t>(rng.next() % 20);
    const Metric metric = kMetrics[trial % 3];
    std::vector<float> g(static_cast<size_t>(n * d)), qs(static_cast<size_t>(q * d));
    for (auto& x : g) x = rng.uniform();
    for (auto& x : qs) x = rng.uniform();
    if (trial % 4 == 0) {  // planted ties
      for (int64_t r = 2; r < n; r += 5) std::copy(g.begin(), g.begin() + d, g.begin() + r * d);
    }
    std::vector<int64_t> off(static_cast<size_t>(q) + 1, 0);
    std::vector<int32_t> rows;
    for (int64_t i = 0; i < q; ++i) {
      const int m = static_cast<int>(rng.next() % 40);  // 0..39 candidates, duplicates possible
      for (int j = 0; j < m; ++j) rows.push_back(static_cast<int32_t>(rng.next() % static_cast<uint64_t>(n)));
      off[static_cast<size_t>(i) + 1] = static_cast<int64_t>(rows.size());
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

    RerankArgs a;
    a.queries = full.queries;
    a.gallery = full.gallery;
    a.offsets = off.data();
    a.rows = rows.data();
    a.k = k;
    a.metric = metric;
    for (Isa isa : vlk::supported_isas()) {
      for (int threads : {1, 3}) {
        Context ctx;
        ctx.pool = &vlk::global_pool();
        ctx.threads = threads;
        ctx.isa = isa;
        std::vector<int32_t> idx(static_cast<size_t>(q * k)), counts(static_cast<size_t>(q));
        std::vector<float> sc(static_cast<size_t>(q * k));
        VLK_CHECK(vlk::core::rerank(a, RerankOut{idx.data(), sc.data(), counts.data()}, ctx).ok());
        for (int64_t i = 0; i < q; ++i) {
          const std::set<int32_t> mine(rows.begin() + off[static_cast<size_t>(i)], rows.begin() + off[static_cast<size_t>(i) + 1]);
          int64_t have = 0;
          for (int64_t j = 0; j < n && have < k; ++j) {
            const int32_t r = fi[static_cast<size_t>(i * n + j)];
            if (mine.count(r) == 0) continue;
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

VLK_TEST(rerank_bad_candidates) {
  std::vector<float> g(40, 0.5f), qs(8, 0.25f);
  RerankArgs a;
  a.queries = MatrixView<const float>(qs.data(), 2, 4);
  a.gallery = MatrixView<const float>(g.data(), 10, 4);
  a.k = 3;
  std::vector<int64_t> off = {0, 2, 1};
  std::vector<int32_t> rows = {1, 2};
  a.offsets = off.data();
  a.rows = rows.data();
  std::vector<int32_t> idx(6);
  std::vector<float> sc(6);
  Context ctx;
  VLK_CHECK_EQ(vlk::core::rerank(a, RerankOut{idx.data(), sc.data()}, ctx).code, Code::kInvalidArg);
  off = {1, 1, 2};
  VLK_CHECK_EQ(vlk::core::rerank(a, RerankOut{idx.data(), sc.data()}, ctx).code, Code::kInvalidArg);
  off = {0, 1, 2};
  rows = {1, 10};
  VLK_CHECK_EQ(vlk::core::rerank(a, RerankOut{idx.data(), sc.data()}, ctx).code, Code::kInvalidArg);
  rows = {1, 9};
  a.k = 0;
  VLK_CHECK_EQ(vlk::core::rerank(a, RerankOut{idx.data(), sc.data()}, ctx).code, Code::kInvalidK);
  a.k = 3;
  g[9 * 4 + 2] = std::nanf("");
  VLK_CHECK_EQ(vlk::core::rerank(a, RerankOut{idx.data(), sc.data()}, ctx).code, Code::kNonFinite);
  g[9 * 4 + 2] = 0.5f;
  VLK_CHECK(vlk::core::rerank(a, RerankOut{idx.data(), sc.data()}, ctx).ok());
}
