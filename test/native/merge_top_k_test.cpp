// C++ core tests of merge_top_k (test/native): merging per-shard searches equals one search over
// the whole gallery, bit for bit; padding, ordering of ties and error statuses.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"
#include "search/merge_top_k.hpp"
#include "search/search.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Code;
using vlk::Context;
using vlk::MatrixView;
using vlk::core::Metric;
using vlk::core::SearchArgs;
using vlk::core::SearchOut;
using vlk_test::Rng;

constexpr Metric kMetrics[] = {Metric::kInnerProduct, Metric::kCosine, Metric::kL2};

}  // namespace

// merge_top_k over gallery shards equals one search over the whole gallery, bit for bit, on
// every metric; ties go to the earlier shard.
VLK_TEST(merge_top_k_equals_whole_search) {
  for (int trial = 0; trial < 12; ++trial) {
    Rng rng(2000 + trial);
    const int64_t n = 40 + static_cast<int64_t>(rng.next() % 400);
    const int64_t q = 1 + static_cast<int64_t>(rng.next() % 20);
    const int64_t d = 1 + static_cast<int64_t>(rng.next() % 30);
    const int64_t k = 1 + static_cast<int64_t>(rng.next() % 30);
    const Metric metric = kMetrics[trial % 3];
    std::vector<float> g(static_cast<size_t>(n * d)), qs(static_cast<size_t>(q * d));
    for (auto& x : g) x = static_cast<float>(rng.uniform());
    for (auto& x : qs) x = static_cast<float>(rng.uniform());
    if (trial % 3 == 0) {  // identical rows in several shards
      for (int64_t r = 7; r < n; r += 11) std::copy(g.begin() + 5 * d, g.begin() + 6 * d, g.begin() + r * d);
    }
    Context ctx;
    ctx.pool = &vlk::global_pool();
    ctx.threads = 2;
    ctx.isa = vlk::detected_isa();
    SearchArgs whole;
    whole.queries = MatrixView<const float>(qs.data(), q, d);
    whole.gallery = MatrixView<const float>(g.data(), n, d);
    whole.k = std::min(k, n);
    whole.metric = metric;
    std::vector<int32_t> wi(static_cast<size_t>(q * whole.k));
    std::vector<float> ws(static_cast<size_t>(q * whole.k));
    VLK_CHECK(vlk::core::search(whole, SearchOut{wi.data(), ws.data()}, ctx).ok());

    const int64_t cuts[4] = {0, n / 5, n / 5 + n / 2, n};  // uneven shards
    std::vector<std::vector<int64_t>> ids(3);
    std::vector<std::vector<float>> scores(3);
    std::vector<std::vector<int32_t>> counts(3);
    std::vector<vlk::core::TopKPartial> parts(3);
    for (int s = 0; s < 3; ++s) {
      const int64_t rows = cuts[s + 1] - cuts[s];
      SearchArgs a = whole;
      a.gallery = MatrixView<const float>(g.data() + cuts[s] * d, rows, d);
      a.k = std::min(k, rows);
      std::vector<int32_t> idx(static_cast<size_t>(q * a.k));
      scores[s].resize(static_cast<size_t>(q * a.k));
      counts[s].resize(static_cast<size_t>(q));
      VLK_CHECK(vlk::core::search(a, SearchOut{idx.data(), scores[s].data(), counts[s].data()}, ctx).ok());
      for (int32_t i : idx) ids[s].push_back(i + cuts[s]);
      parts[static_cast<size_t>(s)] = vlk::core::TopKPartial{ids[s].data(), scores[s].data(), counts[s].data(), a.k};
    }
    vlk::core::MergeTopKArgs m;
    m.parts = parts.data();
    m.nparts = 3;
    m.queries = q;
    m.k = whole.k;
    m.metric = metric;
    std::vector<int64_t> mi(static_cast<size_t>(q * m.k));
    std::vector<float> ms(static_cast<size_t>(q * m.k));
    std::vector<int32_t> mc(static_cast<size_t>(q));
    VLK_CHECK(vlk::core::merge_top_k(m, vlk::core::MergeTopKOut{mi.data(), ms.data(), mc.data()}, ctx).ok());
    for (size_t i = 0; i < mi.size(); ++i) {
      VLK_CHECK_EQ(mi[i], static_cast<int64_t>(wi[i]));
      VLK_CHECK(ms[i] == ws[i]);
    }
    for (int32_t c : mc) VLK_CHECK_EQ(c, static_cast<int32_t>(m.k));
  }
}

VLK_TEST(merge_top_k_padding_and_errors) {
  const int64_t ids0[] = {4, 9, 1}, ids1[] = {7, 8, 2};
  const float s0[] = {0.5f, 0.25f, 0.0f}, s1[] = {0.5f, 0.75f, 0.1f};
  const int32_t c0[] = {2}, c1[] = {1};
  vlk::core::TopKPartial parts[2] = {{ids0, s0, c0, 3}, {ids1, s1, c1, 3}};
  vlk::core::MergeTopKArgs m;
  m.parts = parts;
  m.nparts = 2;
  m.queries = 1;
  m.k = 4;
  int64_t ids[4];
  float sc[4];
  int32_t counts[1];
  Context ctx;
  VLK_CHECK(vlk::core::merge_top_k(m, vlk::core::MergeTopKOut{ids, sc, counts}, ctx).ok());
  VLK_CHECK_EQ(counts[0], 3);
  VLK_CHECK_EQ(ids[0], int64_t{4});  // 0.5 in part 0 before 0.5 in part 1
  VLK_CHECK_EQ(ids[1], int64_t{7});
  VLK_CHECK_EQ(ids[2], int64_t{9});
  VLK_CHECK_EQ(ids[3], int64_t{-1});
  VLK_CHECK(std::isnan(sc[3]));
  m.metric = Metric::kL2;  // ascending
  VLK_CHECK(vlk::core::merge_top_k(m, vlk::core::MergeTopKOut{ids, sc, counts}, ctx).ok());
  VLK_CHECK_EQ(ids[0], int64_t{9});
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), 0.0f, 0.0f};
  parts[1].scores = bad;
  VLK_CHECK_EQ(vlk::core::merge_top_k(m, vlk::core::MergeTopKOut{ids, sc, counts}, ctx).code, Code::kNonFinite);
  parts[1].scores = s1;
  const int32_t too_many[] = {4};
  parts[1].counts = too_many;
  VLK_CHECK_EQ(vlk::core::merge_top_k(m, vlk::core::MergeTopKOut{ids, sc, counts}, ctx).code, Code::kInvalidArg);
  m.k = 0;
  VLK_CHECK_EQ(vlk::core::merge_top_k(m, vlk::core::MergeTopKOut{ids, sc, counts}, ctx).code, Code::kInvalidK);
}

