// C++ core tests of FlatIndex (test/native): search equals core::search over the live vectors, bit
// for bit, across block boundaries and after removals; ids, get/has, automatic ids; all-or-nothing
// errors; compaction; and a race of add/remove/compact against search in which every returned
// score must be the exact score of the returned id's vector (no torn reads, no crash).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <utility>
#include <unordered_map>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"
#include "common/thread_pool.hpp"
#include "index/flat_index.hpp"
#include "isa/isa.hpp"
#include "search/search.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::Code;
using vlk::Context;
using vlk::MatrixView;
using vlk::core::FlatIndex;
using vlk::core::IndexSearchOut;
using vlk::core::Metric;
using vlk::core::Storage;
using vlk::core::SearchArgs;
using vlk::core::SearchOut;
using vlk_test::Rng;

Context pool_ctx(int threads) {
  Context c;
  c.pool = &vlk::global_pool();
  c.threads = threads;
  c.isa = vlk::detected_isa();
  return c;
}

// core::search over `rows` (in insertion order) with k = min(k, n), ids mapped.
void reference(const std::vector<float>& rows, const std::vector<int64_t>& ids, const std::vector<float>& qs,
               int64_t d, int64_t k, Metric metric, std::vector<int64_t>* out_ids, std::vector<float>* out_scores) {
  const int64_t n = static_cast<int64_t>(ids.size()), q = static_cast<int64_t>(qs.size()) / d;
  const int64_t kk = std::min(k, n);
  std::vector<int32_t> idx(static_cast<size_t>(q * kk));
  std::vector<float> sc(static_cast<size_t>(q * kk));
  SearchArgs a;
  a.queries = MatrixView<const float>(qs.data(), q, d);
  a.gallery = MatrixView<const float>(rows.data(), n, d);
  a.k = kk;
  a.metric = metric;
  VLK_CHECK(vlk::core::search(a, SearchOut{idx.data(), sc.data()}, pool_ctx(2)).ok());
  out_ids->assign(static_cast<size_t>(q * k), -1);
  out_scores->assign(static_cast<size_t>(q * k), std::nanf(""));
  for (int64_t i = 0; i < q; ++i) {
    for (int64_t j = 0; j < kk; ++j) {
      (*out_ids)[static_cast<size_t>(i * k + j)] = ids[static_cast<size_t>(idx[static_cast<size_t>(i * kk + j)])];
      (*out_scores)[static_cast<size_t>(i * k + j)] = sc[static_cast<size_t>(i * kk + j)];
    }
  }
}

}  // namespace

VLK_TEST(flat_index_equals_search_over_live_rows) {
  const int64_t d = 8;
  for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
    Rng rng(4000 + static_cast<int>(metric));
    FlatIndex index(d, metric);
    std::vector<float> live_rows;
    std::vector<int64_t> live_ids;
    // 70,000 rows in three adds (1,000 + 5,000 + 64,000): three blocks, two boundaries.
    const int64_t n = 70000;
    std::vector<float> v(static_cast<size_t>(n * d));
    for (auto& x : v) x = rng.uniform();
    std::vector<int64_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = 3 * i + 1000000007LL;
    for (const auto& [from, to] : {std::pair<int64_t, int64_t>{0, 1000}, {1000, 6000}, {6000, n}}) {
      VLK_CHECK(index.add(MatrixView<const float>(v.data() + from * d, to - from, d), ids.data() + from, nullptr).ok());
    }
    VLK_CHECK_EQ(index.size(), n);
    // Remove every 7th id.
    std::vector<int64_t> gone;
    for (int64_t i = 0; i < n; i += 7) gone.push_back(ids[static_cast<size_t>(i)]);
    VLK_CHECK(index.remove(gone.data(), static_cast<int64_t>(gone.size())).ok());
    for (int64_t i = 0; i < n; ++i) {
      if (i % 7 == 0) continue;
      live_rows.insert(live_rows.end(), v.begin() + i * d, v.begin() + (i + 1) * d);
      live_ids.push_back(ids[static_cast<size_t>(i)]);
    }
    VLK_CHECK_EQ(index.size(), static_cast<int64_t>(live_ids.size()));
    std::vector<float> qs(static_cast<size_t>(9 * d));
    for (auto& x : qs) x = rng.uniform();
    for (int64_t k : {1, 10, 100}) {
      std::vector<int64_t> got(static_cast<size_t>(9 * k)), want;
      std::vector<float> gs(static_cast<size_t>(9 * k)), ws;
      std::vector<int32_t> counts(9);
      VLK_CHECK(index.search(MatrixView<const float>(qs.data(), 9, d), k, IndexSearchOut{got.data(), gs.data(), counts.data()},
                             pool_ctx(2)).ok());
      reference(live_rows, live_ids, qs, d, k, metric, &want, &ws);
      VLK_CHECK(got == want);
      for (size_t i = 0; i < gs.size(); ++i) VLK_CHECK(gs[i] == ws[i] || (std::isnan(gs[i]) && std::isnan(ws[i])));
      for (int32_t c : counts) VLK_CHECK_EQ(c, static_cast<int32_t>(k));
    }
    std::vector<float> row(static_cast<size_t>(d));
    VLK_CHECK(index.get(ids[1], row.data()).ok());
    VLK_CHECK(std::equal(row.begin(), row.end(), v.begin() + d));
    VLK_CHECK(!index.has(ids[0]) && index.has(ids[1]));
    VLK_CHECK_EQ(index.get(ids[0], row.data()).code, Code::kInvalidArg);
  }
}

VLK_TEST(flat_index_ids_and_errors) {
  FlatIndex index(2, Metric::kInnerProduct);
  const float v[] = {1, 0, 0, 1, 1, 1};
  int64_t first = -5;
  VLK_CHECK(index.add(MatrixView<const float>(v, 2, 2), nullptr, &first).ok());
  VLK_CHECK_EQ(first, int64_t{0});
  const int64_t ids[] = {10, 11};
  VLK_CHECK(index.add(MatrixView<const float>(v, 2, 2), ids, nullptr).ok());
  VLK_CHECK(index.add(MatrixView<const float>(v + 4, 1, 2), nullptr, &first).ok());
  VLK_CHECK_EQ(first, int64_t{12});  // one past the largest id ever added
  const int64_t dup[] = {20, 10};
  VLK_CHECK_EQ(index.add(MatrixView<const float>(v, 2, 2), dup, nullptr).code, Code::kInvalidArg);
  VLK_CHECK(!index.has(20));  // all or nothing
  const int64_t twice[] = {30, 30};
  VLK_CHECK_EQ(index.add(MatrixView<const float>(v, 2, 2), twice, nullptr).code, Code::kInvalidArg);
  const int64_t neg[] = {-1};
  VLK_CHECK_EQ(index.add(MatrixView<const float>(v, 1, 2), neg, nullptr).code, Code::kInvalidArg);
  VLK_CHECK_EQ(index.add(MatrixView<const float>(v, 1, 3), nullptr, nullptr).code, Code::kDimMismatch);
  const float bad[] = {1, std::nanf("")};
  VLK_CHECK_EQ(index.add(MatrixView<const float>(bad, 1, 2), nullptr, nullptr).code, Code::kNonFinite);
  const int64_t unknown[] = {10, 99};
  VLK_CHECK_EQ(index.remove(unknown, 2).code, Code::kInvalidArg);
  VLK_CHECK(index.has(10));  // all or nothing
  VLK_CHECK_EQ(index.size(), int64_t{5});
  VLK_CHECK(index.memory_usage() > 0);
  // k above size: padded, counted.
  std::vector<int64_t> got(8);
  std::vector<float> sc(8);
  std::vector<int32_t> counts(1);
  VLK_CHECK(index.search(MatrixView<const float>(v, 1, 2), 8, IndexSearchOut{got.data(), sc.data(), counts.data()},
                         Context()).ok());
  VLK_CHECK_EQ(counts[0], 5);
  VLK_CHECK_EQ(got[0], int64_t{0});  // score 1 ties: ids 0, 2 (row 2 = [1,1] scores 1), 10, 12: insertion order
  VLK_CHECK_EQ(got[5], int64_t{-1});
  FlatIndex empty(4, Metric::kL2);
  std::vector<float> q4(4, 0.5f);
  VLK_CHECK(empty.search(MatrixView<const float>(q4.data(), 1, 4), 3, IndexSearchOut{got.data(), sc.data(), counts.data()},
                         Context()).ok());
  VLK_CHECK_EQ(counts[0], 0);
}

// Every storage: bf16/i8 searches re-score in fp32, so the same exact-score check applies.
VLK_TEST(flat_index_race_add_remove_search) {
  for (Storage storage : {Storage::kF32, Storage::kBF16, Storage::kI8}) {
  const int64_t d = 16;
  FlatIndex index(d, Metric::kInnerProduct, storage);
  std::unordered_map<int64_t, std::vector<float>> vectors;  // written before the writer starts
  Rng rng(5000);
  const int64_t total = 90000;
  std::vector<float> all(static_cast<size_t>(total * d));
  for (auto& x : all) x = rng.uniform();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int64_t i = 0; i < total; i += 1000) {
      std::vector<int64_t> ids(1000);
      for (int64_t j = 0; j < 1000; ++j) ids[static_cast<size_t>(j)] = i + j;
      VLK_CHECK(index.add(MatrixView<const float>(all.data() + i * d, 1000, d), ids.data(), nullptr).ok());
      if (i >= 2000) {
        std::vector<int64_t> gone;
        for (int64_t j = i - 2000; j < i - 1000; j += 3) gone.push_back(j);
        VLK_CHECK(index.remove(gone.data(), static_cast<int64_t>(gone.size())).ok());
      }
      if (i % 10000 == 5000) VLK_CHECK(index.compact(nullptr).ok());  // under running searches
    }
    done = true;
  });
  std::vector<float> qs(static_cast<size_t>(4 * d));
  for (auto& x : qs) x = rng.uniform();
  int searches = 0;
  while (!done.load() || searches < 5) {
    const int64_t k = 20;
    std::vector<int64_t> got(static_cast<size_t>(4 * k));
    std::vector<float> sc(static_cast<size_t>(4 * k));
    VLK_CHECK(index.search(MatrixView<const float>(qs.data(), 4, d), k, IndexSearchOut{got.data(), sc.data()},
                           pool_ctx(1)).ok());
    for (int64_t i = 0; i < 4; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t id = got[static_cast<size_t>(i * k + j)];
        if (id < 0) continue;
        VLK_CHECK(id < total);
        float acc = 0.0f;  // the same fma chain the kernels use
        for (int64_t c = 0; c < d; ++c) acc = std::fma(qs[static_cast<size_t>(i * d + c)], all[static_cast<size_t>(id * d + c)], acc);
        VLK_CHECK(acc == sc[static_cast<size_t>(i * k + j)]);
      }
    }
    ++searches;
  }
  writer.join();
  VLK_CHECK(searches >= 5) << vlk::core::storage_name(storage);
  }
}

VLK_TEST(flat_index_compact_keeps_results) {
  const int64_t d = 12;
  for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
    Rng rng(6000 + static_cast<int>(metric));
    FlatIndex index(d, metric);
    const int64_t n = 5000;
    std::vector<float> v(static_cast<size_t>(n * d));
    for (auto& x : v) x = rng.uniform();
    for (int64_t r = 9; r < n; r += 97) std::copy(v.begin(), v.begin() + d, v.begin() + r * d);  // ties
    for (int64_t from = 0; from < n; from += 1250) {
      VLK_CHECK(index.add(MatrixView<const float>(v.data() + from * d, 1250, d), nullptr, nullptr).ok());
    }
    std::vector<int64_t> gone;
    for (int64_t i = 0; i < n; ++i) {
      if (i % 3 != 0) gone.push_back(i);
    }
    VLK_CHECK(index.remove(gone.data(), static_cast<int64_t>(gone.size())).ok());
    std::vector<float> qs(static_cast<size_t>(6 * d));
    for (auto& x : qs) x = rng.uniform();
    qs.assign(v.begin(), v.begin() + d);  // one query equal to the tied rows
    qs.resize(static_cast<size_t>(6 * d), 0.25f);
    const int64_t k = 40;
    std::vector<int64_t> before(static_cast<size_t>(6 * k)), after(static_cast<size_t>(6 * k));
    std::vector<float> sb(static_cast<size_t>(6 * k)), sa(static_cast<size_t>(6 * k));
    VLK_CHECK(index.search(MatrixView<const float>(qs.data(), 6, d), k, IndexSearchOut{before.data(), sb.data()}, pool_ctx(2)).ok());
    const int64_t mem_before = index.memory_usage();
    int64_t freed = 0;
    VLK_CHECK(index.compact(&freed).ok());
    VLK_CHECK(freed > 0);
    VLK_CHECK(index.memory_usage() < mem_before);
    VLK_CHECK(index.search(MatrixView<const float>(qs.data(), 6, d), k, IndexSearchOut{after.data(), sa.data()}, pool_ctx(2)).ok());
    VLK_CHECK(before == after);
    for (size_t i = 0; i < sa.size(); ++i) VLK_CHECK(sa[i] == sb[i]);
    VLK_CHECK(index.has(3) && !index.has(4));
    std::vector<float> row(static_cast<size_t>(d));
    VLK_CHECK(index.get(3, row.data()).ok());
    VLK_CHECK(std::equal(row.begin(), row.end(), v.begin() + 3 * d));
    int64_t first = 0;
    VLK_CHECK(index.add(MatrixView<const float>(v.data(), 1, d), nullptr, &first).ok());
    VLK_CHECK_EQ(first, n);  // automatic ids continue past every id ever added
    VLK_CHECK(index.compact(&freed).ok());
    VLK_CHECK_EQ(index.size(), n / 3 + 1 + (n % 3 != 0 ? 1 : 0));
  }
}

// version(): bumped by every change that alters the live rows or their blocks (add of >= 1 row,
// remove of >= 1 id, a compaction that rewrites), never by a no-op or a failed call; a snapshot
// carries the version it was taken at. (The binding's GPU mirror rebuilds on a version change.)
VLK_TEST(flat_index_version_tracks_changes) {
  const int64_t d = 4;
  FlatIndex index(d, Metric::kInnerProduct);
  std::vector<float> v(static_cast<size_t>(10 * d), 0.5f);
  const int64_t v0 = index.version();
  VLK_CHECK_EQ(FlatIndex::snapshot_version(*index.freeze()), v0);
  VLK_CHECK(index.add(MatrixView<const float>(v.data(), 0, d), nullptr, nullptr).ok());
  VLK_CHECK_EQ(index.version(), v0);  // empty add
  VLK_CHECK(index.add(MatrixView<const float>(v.data(), 10, d), nullptr, nullptr).ok());
  const int64_t v1 = index.version();
  VLK_CHECK(v1 > v0);
  VLK_CHECK_EQ(FlatIndex::snapshot_version(*index.freeze()), v1);
  const int64_t dup[2] = {3, 3};
  VLK_CHECK_EQ(index.remove(dup, 2).code, Code::kInvalidArg);
  VLK_CHECK_EQ(index.version(), v1);  // failed remove
  VLK_CHECK(index.remove(dup, 0).ok());
  VLK_CHECK_EQ(index.version(), v1);  // empty remove
  const int64_t existing[1] = {0};
  VLK_CHECK_EQ(index.add(MatrixView<const float>(v.data(), 1, d), existing, nullptr).code, Code::kInvalidArg);
  VLK_CHECK_EQ(index.version(), v1);  // failed add
  VLK_CHECK(index.remove(dup, 1).ok());
  const int64_t v2 = index.version();
  VLK_CHECK(v2 > v1);
  int64_t freed = 0;
  VLK_CHECK(index.compact(&freed).ok());
  const int64_t v3 = index.version();
  VLK_CHECK(v3 > v2);
  VLK_CHECK(index.compact(&freed).ok());
  VLK_CHECK_EQ(index.version(), v3);  // nothing left to compact
  VLK_CHECK_EQ(FlatIndex::snapshot_version(*index.freeze()), v3);
}
