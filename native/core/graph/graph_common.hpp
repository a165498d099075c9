// Shared helpers of the in-batch graph ops (core/graph, seed 004 AAHR), header-only and internal:
// a row-split GEMM (linalg/gemm parallelises over 512-wide column blocks only, so a 512 x 512
// product would run on one thread) and the finiteness check that names an input.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/context.hpp"
#include "common/finite.hpp"
#include "common/status.hpp"
#include "linalg/gemm.hpp"

namespace vlk {
namespace core {
namespace graph_detail {

/// gemm(g) with C's rows split over the pool when the column blocks alone would leave threads
/// idle. Every element of C is computed by the same fp32 sequence whatever the split, so results
/// do not depend on the thread count.
inline Status parallel_gemm(const GemmArgs& g, const Context& ctx) {
  const int64_t col_blocks = (g.n + 511) / 512;
  const int threads = ctx.pool != nullptr ? std::max(1, ctx.threads) : 1;
  if (threads <= 1 || col_blocks >= threads || g.m < 64) return gemm(g, ctx);
  const int64_t chunks = std::min<int64_t>(threads, g.m / 32);
  const int64_t per = ((g.m + chunks - 1) / chunks + 15) / 16 * 16;  // MR-friendly slices
  const int64_t count = (g.m + per - 1) / per;
  std::vector<Status> st(static_cast<size_t>(count));
  Context one = ctx;
  one.pool = nullptr;
  one.threads = 1;
  ctx.pool->parallel_for(count, threads, [&](int64_t c) {
    const int64_t i0 = c * per, m = std::min(per, g.m - i0);
    GemmArgs s = g;
    s.m = m;
    s.a = g.trans_a ? g.a + i0 : g.a + i0 * g.lda;
    s.c = g.c + i0 * g.ldc;
    st[static_cast<size_t>(c)] = gemm(s, one);
  });
  for (const Status& s : st) VLK_RETURN_IF_ERROR(s);
  return Status::Ok();
}

/// C = op(A) op(B) (+ beta C), all row-major and dense.
inline Status matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
                     float beta, const Context& ctx) {
  GemmArgs g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.lda = ta ? m : k;
  g.b = b;
  g.ldb = tb ? k : n;
  g.c = c;
  g.ldc = n;
  g.beta = beta;
  return parallel_gemm(g, ctx);
}

/// The upper triangle (block rows of 64, diagonal blocks whole) of C = A A^T for A n x k
/// row-major, C n x n: block row I computes C[I, I*64 .. n) in one single-threaded GEMM, block rows
/// spread over the pool (about half the flops of the full product). The lower triangle is left
/// unwritten; mirror it afterwards. Every entry's fp32 sequence is fixed, whatever the threads.
inline Status gram_upper(int64_t n, int64_t k, const float* a, float* c, const Context& ctx) {
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<Status> st(static_cast<size_t>(blocks));
  Context one = ctx;
  one.pool = nullptr;
  one.threads = 1;
  auto task = [&](int64_t bi) {
    const int64_t i0 = bi * kBlock, m = std::min(kBlock, n - i0);
    GemmArgs g;
    g.trans_b = true;
    g.m = m;
    g.n = n - i0;
    g.k = k;
    g.a = a + i0 * k;
    g.lda = k;
    g.b = a + i0 * k;
    g.ldb = k;
    g.c = c + i0 * n + i0;
    g.ldc = n;
    st[static_cast<size_t>(bi)] = gemm(g, one);
  };
  if (ctx.pool != nullptr && ctx.threads > 1 && blocks > 1) {
    ctx.pool->parallel_for(blocks, ctx.threads, task);
  } else {
    for (int64_t bi = 0; bi < blocks; ++bi) task(bi);
  }
  for (const Status& s : st) VLK_RETURN_IF_ERROR(s);
  return Status::Ok();
}

/// kNonFinite naming `name`, row and column of the first NaN / infinity of a rows x cols array.
inline Status check_finite(const char* name, const float* x, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  if (all_finite(x, total)) return Status::Ok();  // only a failing input takes the naming pass
  for (int64_t i = 0; i < total; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i / cols) + ", column " +
                                          std::to_string(i % cols) + " is not finite (" +
                                          (std::isnan(x[i]) ? "NaN" : "infinity") + ")");
    }
  }
  return Status::Ok();
}

/// Runs fn(i) for i in [0, n) on the pool (ctx.threads wide) or inline.
template <typename Fn>
void for_rows(int64_t n, const Context& ctx, Fn&& fn) {
  if (ctx.pool != nullptr && ctx.threads > 1 && n > 1) {
    ctx.pool->parallel_for(n, ctx.threads, [&](int64_t i) { fn(i); });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

}  // namespace graph_detail
}  // namespace core
}  // namespace vlk
