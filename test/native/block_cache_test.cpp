// C++ core tests of the block cache (test/native): exact-size reuse, small blocks never cached,
// the bound and its oldest-first eviction, trim, CachedArray; and gemm's beta handling that the
// cached (uninitialised) buffers rely on: beta = 0 never reads C (NaN garbage cannot leak),
// beta = 1 adds, k = 0 scales.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/block_cache.hpp"
#include "common/context.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"
#include "linalg/gemm.hpp"
#include "vlk_test.hpp"

using vlk::core::block_acquire;
using vlk::core::block_cache_set_limit;
using vlk::core::block_cache_stats;
using vlk::core::block_cache_trim;
using vlk::core::block_release;
using vlk::core::CachedArray;
using vlk::core::kMinBlockBytes;

VLK_TEST(block_cache_reuses_exact_size_class) {
  block_cache_set_limit(size_t(64) << 20);
  block_cache_trim();
  const size_t bytes = size_t(1) << 20;
  bool recycled = true;
  void* a = block_acquire(bytes, &recycled);
  VLK_CHECK(a != nullptr);
  VLK_CHECK(!recycled);
  VLK_CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  std::memset(a, 0x5a, bytes);
  block_release(a, bytes);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, bytes);
  // Another size class is not served by it; the same class (bytes - 100 rounds to the same 4 KiB) is.
  void* other = block_acquire(bytes * 2, &recycled);
  VLK_CHECK(!recycled);
  VLK_CHECK(other != a);
  const uint64_t hits = block_cache_stats().hits;
  void* b = block_acquire(bytes - 100, &recycled);
  VLK_CHECK(recycled);
  VLK_CHECK(b == a);
  VLK_CHECK_EQ(block_cache_stats().hits, hits + 1);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, size_t(0));
  block_release(b, bytes - 100);
  block_release(other, bytes * 2);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, bytes * 3);
  VLK_CHECK_EQ(block_cache_trim(), bytes * 3);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, size_t(0));
}

VLK_TEST(block_cache_small_blocks_are_not_cached) {
  block_cache_trim();
  bool recycled = true;
  void* p = block_acquire(kMinBlockBytes - 1, &recycled);
  VLK_CHECK(p != nullptr);
  VLK_CHECK(!recycled);
  block_release(p, kMinBlockBytes - 1);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, size_t(0));
}

VLK_TEST(block_cache_bound_evicts_oldest_first) {
  block_cache_trim();
  const size_t mb = size_t(1) << 20;
  block_cache_set_limit(3 * mb);
  void* p1 = block_acquire(mb);
  void* p2 = block_acquire(mb);
  void* p3 = block_acquire(mb);
  void* p4 = block_acquire(mb);
  block_release(p1, mb);
  block_release(p2, mb);
  block_release(p3, mb);
  block_release(p4, mb);  // over the bound: p1, the oldest, is freed
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, 3 * mb);
  // A block larger than the bound is never kept.
  void* big = block_acquire(4 * mb);
  block_release(big, 4 * mb);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, 3 * mb);
  // Lowering the bound frees down to it; 0 disables caching.
  block_cache_set_limit(mb);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, mb);
  block_cache_set_limit(0);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, size_t(0));
  void* q = block_acquire(mb);
  block_release(q, mb);
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, size_t(0));
  block_cache_set_limit(size_t(256) << 20);
}

VLK_TEST(cached_array_returns_its_block) {
  block_cache_trim();
  block_cache_set_limit(size_t(256) << 20);
  {
    CachedArray<float> a(size_t(1) << 18);
    VLK_CHECK(a.data() != nullptr);
    VLK_CHECK_EQ(a.size(), size_t(1) << 18);
    a[0] = 1.0f;
    a[a.size() - 1] = 2.0f;
    a.reset(0);
    VLK_CHECK(a.data() == nullptr);
    VLK_CHECK_EQ(block_cache_stats().cached_bytes, size_t(1) << 20);
    a.reset(size_t(1) << 18);  // the same block again
    VLK_CHECK_EQ(block_cache_stats().cached_bytes, size_t(0));
  }
  VLK_CHECK_EQ(block_cache_stats().cached_bytes, size_t(1) << 20);
  block_cache_trim();
}

VLK_TEST(gemm_beta_zero_never_reads_c) {
  vlk::Context ctx;
  ctx.pool = &vlk::global_pool();
  ctx.threads = 2;
  ctx.isa = vlk::detected_isa();
  const int64_t m = 37, n = 530, k = 300;
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n));
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7 % 13)) - 6.0f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 5 % 11)) - 5.0f;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> c(static_cast<size_t>(m * n), nan), c1(static_cast<size_t>(m * n), 0.5f);
  vlk::core::GemmArgs g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a.data();
  g.lda = k;
  g.b = b.data();
  g.ldb = n;
  g.c = c.data();
  g.ldc = n;
  VLK_CHECK(vlk::core::gemm(g, ctx).ok());
  g.c = c1.data();
  g.beta = 1.0f;
  VLK_CHECK(vlk::core::gemm(g, ctx).ok());
  int bad = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0;  // small integers: exact in fp32
      for (int64_t p = 0; p < k; ++p) ref += double(a[i * k + p]) * b[p * n + j];
      if (c[i * n + j] != ref || c1[i * n + j] != ref + 0.5) ++bad;
    }
  }
  VLK_CHECK_EQ(bad, 0);
  // k = 0: C = beta C (beta = 0 clears NaN garbage).
  std::vector<float> c2(static_cast<size_t>(m * n), nan), c3(static_cast<size_t>(m * n), 2.0f);
  g.k = 0;
  g.beta = 0.0f;
  g.c = c2.data();
  VLK_CHECK(vlk::core::gemm(g, ctx).ok());
  g.beta = -0.5f;
  g.c = c3.data();
  VLK_CHECK(vlk::core::gemm(g, ctx).ok());
  bad = 0;
  for (size_t i = 0; i < c2.size(); ++i) bad += (c2[i] != 0.0f) + (c3[i] != -1.0f);
  VLK_CHECK_EQ(bad, 0);
}
