// Dense fp32 matrix multiply (core/linalg). See gemm.hpp. Blocking: columns of C in NC-wide
// blocks, and, when those are too few to keep the pool busy, rows in chunks of whole MC slices
// (one pool task per (column block, row chunk)); K in KC-deep slices, rows in MC-tall slices; per
// (KC, NC) the task
// packs op(B) into NR-wide panels, per (MC, KC) op(A) into MR-tall panels, then runs the tile
// kernel over the panels, adding the slices' partial products to C in k order.
#include "linalg/gemm.hpp"

#include <algorithm>
#include <new>
#include <string>
#include <vector>

#include "common/block_cache.hpp"
#include "isa/isa.hpp"
#include "linalg/gemm_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int64_t kKc = 256;
constexpr int64_t kMc = 96;
constexpr int64_t kNc = 512;

const GemmKernels& kernels(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return gemm_kernels_avx512();
    case Isa::kAvx2: return gemm_kernels_avx2();
    case Isa::kScalar: break;
  }
  return gemm_kernels_scalar();
}


}  // namespace

Status gemm(const GemmArgs& g, const Context& ctx) {
  if (g.m < 0 || g.n < 0 || g.k < 0) return Status(Code::kInvalidArg, "gemm: negative size");
  if (g.m == 0 || g.n == 0) return Status::Ok();
  if (g.c == nullptr || g.ldc < g.n) return Status(Code::kInvalidArg, "gemm: C is null or ldc < n");
  if (g.k > 0) {
    if (g.a == nullptr || g.lda < (g.trans_a ? g.m : g.k)) return Status(Code::kInvalidArg, "gemm: A is null or lda is short");
    if (g.b == nullptr || g.ldb < (g.trans_b ? g.k : g.n)) return Status(Code::kInvalidArg, "gemm: B is null or ldb is short");
  }
  const GemmKernels& kern = kernels(ctx.isa);
  const int mr = kern.mr, nr = kern.nr;
  const int64_t nblocks = (g.n + kNc - 1) / kNc;
  // Row chunks (whole MC slices) when the column blocks alone leave threads idle. Every element of
  // C is still computed by one task in the same k order, so the bits do not depend on the split.
  const int64_t mslices = (g.m + kMc - 1) / kMc;
  const int64_t want = ctx.pool != nullptr && ctx.threads > 1 ? 2 * int64_t(ctx.threads) : 1;
  const int64_t mchunks = std::max<int64_t>(1, std::min(mslices, (want + nblocks - 1) / nblocks));
  const int64_t chunk_rows = ((mslices + mchunks - 1) / mchunks) * kMc;
  const int64_t ntasks = nblocks * mchunks;
  bool oom = false;
  auto task = [&](int64_t t) {
    const int64_t jb = t % nblocks, ib = t / nblocks;
    const int64_t j0 = jb * kNc, nc = std::min(kNc, g.n - j0);
    const int64_t r0 = ib * chunk_rows, r1 = std::min(g.m, r0 + chunk_rows);
    if (r0 >= r1) return;
    // C *= beta first, unless beta == 0 and the first K slice will overwrite C: then C is never
    // read, so NaN garbage cannot leak. One branch per call, not per element.
    const bool overwrite = g.beta == 0.0f && g.k > 0 && g.alpha != 0.0f;
    if (!overwrite && g.beta != 1.0f) {
      const float beta = g.beta;
      for (int64_t i = r0; i < r1; ++i) {
        float* __restrict ci = g.c + i * g.ldc + j0;
        if (beta == 0.0f) {
          std::fill(ci, ci + nc, 0.0f);
        } else {
          for (int64_t j = 0; j < nc; ++j) ci[j] *= beta;
        }
      }
    }
    if (g.k == 0 || g.alpha == 0.0f) return;
    CachedArray<float> bp, ap;  // packing panels; every slot read is written first
    try {
      bp.reset(static_cast<size_t>(((nc + nr - 1) / nr) * nr * kKc));
      ap.reset(static_cast<size_t>(((kMc + mr - 1) / mr) * mr * kKc));
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    for (int64_t p0 = 0; p0 < g.k; p0 += kKc) {
      const int64_t kc = std::min(kKc, g.k - p0);
      // Pack op(B)[p0 .. p0+kc, j0 .. j0+nc] into NR-wide panels, alpha folded in.
      for (int64_t jp = 0; jp < nc; jp += nr) {
        const int w = static_cast<int>(std::min<int64_t>(nr, nc - jp));
        const float* src = g.trans_b ? g.b + (j0 + jp) * g.ldb + p0 : g.b + p0 * g.ldb + j0 + jp;
        kern.pack_b(src, g.ldb, g.trans_b, kc, w, g.alpha, bp.data() + (jp / nr) * nr * kc);
      }
      for (int64_t i0 = r0; i0 < r1; i0 += kMc) {
        const int64_t mc = std::min(kMc, r1 - i0);
        for (int64_t ip = 0; ip < mc; ip += mr) {
          const int h = static_cast<int>(std::min<int64_t>(mr, mc - ip));
          const float* src = g.trans_a ? g.a + p0 * g.lda + i0 + ip : g.a + (i0 + ip) * g.lda + p0;
          kern.pack_a(src, g.lda, g.trans_a, kc, h, ap.data() + (ip / mr) * mr * kc);
        }
        for (int64_t ip = 0; ip < mc; ip += mr) {
          const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ip));
          for (int64_t jp = 0; jp < nc; jp += nr) {
            const int cols = static_cast<int>(std::min<int64_t>(nr, nc - jp));
            kern.tile(ap.data() + (ip / mr) * mr * kc, bp.data() + (jp / nr) * nr * kc, kc,
                      g.c + (i0 + ip) * g.ldc + j0 + jp, g.ldc, rows, cols, !(overwrite && p0 == 0));
          }
        }
      }
    }
  };
  if (ctx.pool != nullptr && ctx.threads > 1 && ntasks > 1) {
    ctx.pool->parallel_for(ntasks, ctx.threads, task);
  } else {
    for (int64_t t = 0; t < ntasks; ++t) task(t);
  }
  if (oom) return Status(Code::kOutOfMemory, "gemm: out of memory for packing buffers");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
