// AAHR's biased multi-head attention layer (core/graph). See biased_attention.hpp for the formulas
// and choices. Layout: Q, K, V, O are n x D row-major, head h owns columns h*dh .. h*dh+dh-1; each
// head's Q, K, V, dO are packed once per call into the register-tile kernel's panels. The per-tile
// elementwise work (mask, bias, online softmax, dS) runs through row kernels compiled for the
// active ISA with target attributes (-ffp-contract=off, fixed 16-lane partial sums, no branches so
// they vectorise). Every task owns its outputs, so any thread count gives the same bits.
#include "graph/biased_attention.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/block_cache.hpp"
#include "common/checked_size.hpp"
#include "common/finite.hpp"
#include "graph/fast_exp.hpp"
#include "linalg/gemm.hpp"
#include "linalg/gemm_kernel.hpp"

namespace vlk {
namespace core {

namespace {

using graph_detail::fexp;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kLanes = 16;

// One tile row of scores: s[c] = s[c] + w R[c] where connected, -inf elsewhere (diag: the column
// of the self-edge within the tile, or -1). Returns the row max.
VLK_INLINE float bias_row(float* __restrict s, const float* __restrict r, const uint8_t* __restrict m, int64_t cols,
                          int64_t diag, float w) {
  const float sd = diag >= 0 ? s[diag] + w * r[diag] : 0.0f;
  for (int64_t c = 0; c < cols; ++c) {
    const float keep = static_cast<float>(m[c]);
    const float v = s[c] + w * r[c];
    s[c] = keep != 0.0f ? v : kNegInf;
  }
  if (diag >= 0) s[diag] = sd;
  float mx[kLanes];
  for (int l = 0; l < kLanes; ++l) mx[l] = kNegInf;
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) {
    for (int l = 0; l < kLanes; ++l) mx[l] = s[c + l] > mx[l] ? s[c + l] : mx[l];
  }
  for (int l = 0; c < cols; ++c, ++l) mx[l] = s[c] > mx[l] ? s[c] : mx[l];
  float best = kNegInf;
  for (int l = 0; l < kLanes; ++l) best = mx[l] > best ? mx[l] : best;
  return best;
}

// p[c] = exp(s[c] - shift) (0 where s is -inf), in place; returns sum p (16 lanes, then in order).
VLK_INLINE float exp_row(float* __restrict s, int64_t cols, float shift) {
  float acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = 0.0f;
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float v = s[c + l];
      const float e = fexp(v - shift);
      const float p = v == kNegInf ? 0.0f : e;
      s[c + l] = p;
      acc[l] += p;
    }
  }
  for (int l = 0; c < cols; ++c, ++l) {
    const float v = s[c];
    const float e = fexp(v - shift);
    const float p = v == kNegInf ? 0.0f : e;
    s[c] = p;
    acc[l] += p;
  }
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += acc[l];
  return sum;
}

struct Tile {
  int64_t i0, rows, j0, cols, ld;  // tile rows/cols in the n x n score space; ld: row stride of s/dp
  int64_t n;
  const float* r;
  const uint8_t* mask;
  float w;
  bool self;
};

VLK_INLINE int64_t diag_of(const Tile& t, int64_t i) {
  return t.self && i >= t.j0 && i < t.j0 + t.cols ? i - t.j0 : -1;
}

// Forward tile: scores in s (scaled Q K^T) become P~ = exp(S - m_new); m, l updated; alpha[r] is
// the factor the row's output accumulator must be scaled by.
VLK_INLINE void fwd_tile_impl(const Tile& t, float* s, float* m, float* l, float* alpha) {
  for (int64_t rr = 0; rr < t.rows; ++rr) {
    const int64_t i = t.i0 + rr;
    float* srow = s + rr * t.ld;
    const float bm = bias_row(srow, t.r + i * t.n + t.j0, t.mask + i * t.n + t.j0, t.cols, diag_of(t, i), t.w);
    const float mold = m[rr];
    const float mnew = bm > mold ? bm : mold;
    if (mnew == kNegInf) {  // nothing connected so far
      for (int64_t c = 0; c < t.cols; ++c) srow[c] = 0.0f;
      alpha[rr] = 1.0f;
      continue;
    }
    const float a = mold == kNegInf ? 0.0f : std::exp(mold - mnew);
    const float sum = exp_row(srow, t.cols, mnew);
    l[rr] = l[rr] * a + sum;
    m[rr] = mnew;
    alpha[rr] = a;
  }
}

// Backward tile: s (scaled Q K^T) becomes P = exp(S - lse), dp (dO V^T) becomes dS = P (dP - Delta).
VLK_INLINE void bwd_tile_impl(const Tile& t, float* s, float* dp, const float* lse, const float* delta) {
  for (int64_t rr = 0; rr < t.rows; ++rr) {
    const int64_t i = t.i0 + rr;
    float* srow = s + rr * t.ld;
    float* drow = dp + rr * t.ld;
    bias_row(srow, t.r + i * t.n + t.j0, t.mask + i * t.n + t.j0, t.cols, diag_of(t, i), t.w);
    exp_row(srow, t.cols, lse[i]);
    const float di = delta[i];
    for (int64_t c = 0; c < t.cols; ++c) drow[c] = srow[c] * (drow[c] - di);
  }
}

VLK_TARGET_AVX512 void fwd_tile_avx512(const Tile& t, float* s, float* m, float* l, float* a) { fwd_tile_impl(t, s, m, l, a); }
VLK_TARGET_AVX2 void fwd_tile_avx2(const Tile& t, float* s, float* m, float* l, float* a) { fwd_tile_impl(t, s, m, l, a); }
void fwd_tile_scalar(const Tile& t, float* s, float* m, float* l, float* a) { fwd_tile_impl(t, s, m, l, a); }
VLK_TARGET_AVX512 void bwd_tile_avx512(const Tile& t, float* s, float* dp, const float* lse, const float* d) {
  bwd_tile_impl(t, s, dp, lse, d);
}
VLK_TARGET_AVX2 void bwd_tile_avx2(const Tile& t, float* s, float* dp, const float* lse, const float* d) {
  bwd_tile_impl(t, s, dp, lse, d);
}
void bwd_tile_scalar(const Tile& t, float* s, float* dp, const float* lse, const float* d) { bwd_tile_impl(t, s, dp, lse, d); }

void fwd_tile(Isa isa, const Tile& t, float* s, float* m, float* l, float* a) {
  switch (isa) {
    case Isa::kAvx512: return fwd_tile_avx512(t, s, m, l, a);
    case Isa::kAvx2: return fwd_tile_avx2(t, s, m, l, a);
    case Isa::kScalar: break;
  }
  fwd_tile_scalar(t, s, m, l, a);
}

void bwd_tile(Isa isa, const Tile& t, float* s, float* dp, const float* lse, const float* d) {
  switch (isa) {
    case Isa::kAvx512: return bwd_tile_avx512(t, s, dp, lse, d);
    case Isa::kAvx2: return bwd_tile_avx2(t, s, dp, lse, d);
    case Isa::kScalar: break;
  }
  bwd_tile_scalar(t, s, dp, lse, d);
}

// C = alpha op(A) op(B) + beta C through linalg/gemm.
Status mm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc, const Context& ctx) {
  GemmArgs g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.alpha = alpha;
  g.beta = beta;
  g.a = a;
  g.lda = lda;
  g.b = b;
  g.ldb = ldb;
  g.c = c;
  g.ldc = ldc;
  return gemm(g, ctx);
}

void run_tasks(const Context& ctx, int64_t count, const std::function<void(int64_t)>& fn) {
  if (ctx.pool != nullptr && ctx.threads > 1 && count > 1) {
    ctx.pool->parallel_for(count, ctx.threads, fn);
  } else {
    for (int64_t i = 0; i < count; ++i) fn(i);
  }
}

Status check_finite(const char* name, const float* x, int64_t rows, int64_t per) {
  if (all_finite(x, rows * per)) return Status::Ok();
  for (int64_t i = 0; i < rows * per; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i / per) + ", element " +
                                          std::to_string(i % per) + " is not finite");
    }
  }
  return Status::Ok();
}

// The float inputs in the order their errors are reported: name, data, rows, row length.
struct FloatInput {
  const char* name;
  const float* data;
  int64_t rows, cols;
};

// Ok when every input is finite: one parallel pass over 64K-float pieces of all of them (the
// weights are 4 D^2 floats read on every call); only a failure runs the naming checks, in order.
Status check_inputs_finite(const BiasedAttentionArgs& a, const Context& ctx) {
  const int64_t n = a.n, d = a.d;
  const FloatInput inputs[] = {{"x", a.x, n, d},         {"wq", a.wq, d, d},       {"wk", a.wk, d, d},
                               {"wv", a.wv, d, d},       {"wo", a.wo, d, d},       {"bq", a.bq, 1, d},
                               {"bk", a.bk, 1, d},       {"bv", a.bv, 1, d},       {"bo", a.bo, 1, d},
                               {"gamma", a.gamma, 1, d}, {"beta", a.beta, 1, d},   {"relevance", a.relevance, n, n}};
  constexpr int64_t kPiece = int64_t(1) << 16;
  std::vector<std::pair<const float*, int64_t>> pieces;
  for (const FloatInput& in : inputs) {
    const int64_t count = in.rows * in.cols;
    for (int64_t o = 0; o < count; o += kPiece) pieces.emplace_back(in.data + o, std::min(kPiece, count - o));
  }
  std::atomic<bool> bad{false};
  run_tasks(ctx, static_cast<int64_t>(pieces.size()), [&](int64_t i) {
    if (!all_finite(pieces[size_t(i)].first, pieces[size_t(i)].second)) bad = true;
  });
  if (!bad) return Status::Ok();
  for (const FloatInput& in : inputs) VLK_RETURN_IF_ERROR(check_finite(in.name, in.data, in.rows, in.cols));
  return Status::Ok();
}

Status validate(const BiasedAttentionArgs& a, const Context& ctx) {
  if (a.n <= 0 || a.d <= 0 || a.heads <= 0) {
    return Status(Code::kEmpty, "biased attention: n, D and heads must be >= 1 (got n = " + std::to_string(a.n) +
                                    ", D = " + std::to_string(a.d) + ", heads = " + std::to_string(a.heads) + ")");
  }
  if (a.d % a.heads != 0) {
    return Status(Code::kInvalidArg, "heads: D = " + std::to_string(a.d) + " is not divisible by heads = " +
                                         std::to_string(a.heads));
  }
  if (a.x == nullptr || a.wq == nullptr || a.wk == nullptr || a.wv == nullptr || a.wo == nullptr || a.bq == nullptr ||
      a.bk == nullptr || a.bv == nullptr || a.bo == nullptr || a.gamma == nullptr || a.beta == nullptr ||
      a.relevance == nullptr || a.mask == nullptr) {
    return Status(Code::kInvalidArg, "biased attention: every input is required");
  }
  if (!std::isfinite(a.bias_weight)) {
    return Status(Code::kInvalidArg, "biasWeight: " + std::to_string(a.bias_weight) + " is not finite");
  }
  if (!std::isfinite(a.eps) || !(a.eps > 0)) {
    return Status(Code::kInvalidArg, "eps: " + std::to_string(a.eps) + " is not a finite number > 0");
  }
  if (a.block_q < 1 || a.block_k < 1) {
    return Status(Code::kInvalidArg, "block sizes must be >= 1 (got " + std::to_string(a.block_q) + ", " +
                                         std::to_string(a.block_k) + ")");
  }
  const int64_t n = a.n;
  for (int64_t i = 0; i < n; ++i) {
    // Fast pass per row (vectorizes): the largest entry and whether any is 1.
    uint8_t top = 0, ones = 0;
    const uint8_t* row = a.mask + i * n;
    for (int64_t j = 0; j < n; ++j) {
      top = row[j] > top ? row[j] : top;
      ones |= static_cast<uint8_t>(row[j] == 1);
    }
    if (top <= 1 && (ones != 0 || a.self_loops)) continue;
    bool any = false;
    for (int64_t j = 0; j < n; ++j) {
      const uint8_t v = a.mask[i * n + j];
      if (v > 1) {
        return Status(Code::kInvalidArg, "mask: entry (" + std::to_string(i) + ", " + std::to_string(j) + ") is " +
                                             std::to_string(v) + ", expected 0 or 1");
      }
      any = any || v == 1;
    }
    if (!any && !a.self_loops) {
      return Status(Code::kEmpty, "mask: row " + std::to_string(i) +
                                      " has no connected entry (selfLoops is false), its softmax would be empty");
    }
  }
  return check_inputs_finite(a, ctx);
}

// C (n x D) = X W^T + b.
Status project(const BiasedAttentionArgs& a, const float* w, const float* b, float* c, const Context& ctx) {
  for (int64_t i = 0; i < a.n; ++i) std::memcpy(c + i * a.d, b, static_cast<size_t>(a.d) * sizeof(float));
  return mm(false, true, a.n, a.d, a.d, 1.0f, a.x, a.d, w, a.d, 1.0f, c, a.d, ctx);
}

// Runs fn(i0, i1) over [0, count) in pieces of `grain` on the pool: each index is handled by
// exactly one piece, in order within it, so results do not depend on the thread count.
template <typename F>
void for_ranges(const Context& ctx, int64_t count, int64_t grain, const F& fn) {
  const int64_t pieces = (count + grain - 1) / grain;
  run_tasks(ctx, pieces, [&](int64_t p) { fn(p * grain, std::min(count, (p + 1) * grain)); });
}

constexpr int64_t kColChunk = 64;

// out[c] = sum_i m[i, c] in float64, rows in order; column chunks on the pool.
void column_sums(const float* m, int64_t rows, int64_t cols, float* out, const Context& ctx) {
  for_ranges(ctx, cols, kColChunk, [&](int64_t c0, int64_t c1) {
    double acc[kColChunk] = {};
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = m + i * cols;
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; ++c) out[c] = static_cast<float>(acc[c - c0]);
  });
}

// Packed operands of the attention tile products, in the layout of linalg's register-tile kernel
// (gemm_kernel.hpp): an "A" operand in MR-row panels (a[k * MR + i]), a "B" operand in NR-column
// panels (b[k * NR + j]). Each head's Q, K, V, dO are packed once per call (O(n D)), so the tile
// products run the kernel straight on the panels; the P / dS tiles are packed per tile.
struct Packing {
  const GemmKernels* kern = nullptr;
  int64_t mr = 0, nr = 0, n = 0, d = 0, dh = 0;
  int64_t npa = 0, npb = 0, dpb = 0;  // n rounded up to MR, n to NR, dh to NR
  int64_t a_size() const { return npa * dh; }  // per head
  int64_t t_size() const { return npb * dh; }
  int64_t n_size() const { return dpb * n; }
};

const GemmKernels& kernels_for(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return gemm_kernels_avx512();
    case Isa::kAvx2: return gemm_kernels_avx2();
    case Isa::kScalar: break;
  }
  return gemm_kernels_scalar();
}

Packing make_packing(const BiasedAttentionArgs& a, Isa isa) {
  Packing p;
  p.kern = &kernels_for(isa);
  p.mr = p.kern->mr;
  p.nr = p.kern->nr;
  p.n = a.n;
  p.d = a.d;
  p.dh = a.d / a.heads;
  p.npa = (a.n + p.mr - 1) / p.mr * p.mr;
  p.npb = (a.n + p.nr - 1) / p.nr * p.nr;
  p.dpb = (p.dh + p.nr - 1) / p.nr * p.nr;
  return p;
}

// Head `h` of m (n x D): "A" panels over the nodes, depth dh, times `scale`.
void pack_a(const Packing& p, const float* m, int64_t h, float scale, float* out) {
  const int64_t c0 = h * p.dh;
  for (int64_t i0 = 0; i0 < p.npa; i0 += p.mr) {
    float* dst = out + i0 * p.dh;
    const int64_t w = std::min(p.mr, p.n - i0);
    const float* src = m + i0 * p.d + c0;
    for (int64_t k = 0; k < p.dh; ++k) {
      float* dk = dst + k * p.mr;
      for (int64_t i = 0; i < w; ++i) dk[i] = scale * src[i * p.d + k];
      for (int64_t i = w; i < p.mr; ++i) dk[i] = 0.0f;
    }
  }
}

// Head `h` of m as the "B" operand m_h^T: NR panels over the nodes, depth dh.
void pack_t(const Packing& p, const float* m, int64_t h, float* out) {
  const int64_t c0 = h * p.dh;
  for (int64_t j0 = 0; j0 < p.npb; j0 += p.nr) {
    float* dst = out + j0 * p.dh;
    const int64_t w = std::min(p.nr, p.n - j0);
    const float* src = m + j0 * p.d + c0;
    for (int64_t k = 0; k < p.dh; ++k) {
      float* dk = dst + k * p.nr;
      for (int64_t j = 0; j < w; ++j) dk[j] = src[j * p.d + k];
      for (int64_t j = w; j < p.nr; ++j) dk[j] = 0.0f;
    }
  }
}

// Head `h` of m as the "B" operand m_h (depth = the nodes): NR panels over the dh columns, each
// n deep, so a tile of nodes j0.. starts at panel + j0 * NR.
void pack_n(const Packing& p, const float* m, int64_t h, float* out) {
  const int64_t c0 = h * p.dh;
  for (int64_t q0 = 0; q0 < p.dpb; q0 += p.nr) {
    float* dst = out + q0 * p.n;
    const int64_t w = std::min(p.nr, p.dh - q0);
    for (int64_t row = 0; row < p.n; ++row) {
      const float* src = m + row * p.d + c0 + q0;
      float* dr = dst + row * p.nr;
      for (int64_t j = 0; j < w; ++j) dr[j] = src[j];
      for (int64_t j = w; j < p.nr; ++j) dr[j] = 0.0f;
    }
  }
}

// A tile (rows x cols, row stride ld) times `scale` as an "A" operand of depth cols: MR panels of rows.
void pack_tile(const Packing& p, const float* t, int64_t rows, int64_t cols, int64_t ld, float scale, float* out) {
  for (int64_t i0 = 0; i0 < rows; i0 += p.mr) {
    float* dst = out + i0 * cols;
    for (int64_t i = 0; i < p.mr; ++i) {
      if (i0 + i >= rows) {
        for (int64_t k = 0; k < cols; ++k) dst[k * p.mr + i] = 0.0f;
        continue;
      }
      const float* src = t + (i0 + i) * ld;
      for (int64_t k = 0; k < cols; ++k) dst[k * p.mr + i] = scale * src[k];
    }
  }
}

// The transposed tile (cols x rows) times `scale` as an "A" operand of depth rows.
void pack_tile_t(const Packing& p, const float* t, int64_t rows, int64_t cols, int64_t ld, float scale, float* out) {
  const int64_t cpad = (cols + p.mr - 1) / p.mr * p.mr;
  for (int64_t r0 = 0; r0 < cpad; r0 += p.mr) {
    float* dst = out + r0 * rows;
    const int64_t w = std::min<int64_t>(p.mr, cols - r0);
    for (int64_t q = 0; q < rows; ++q) {
      const float* src = t + q * ld + r0;
      float* d = dst + q * p.mr;
      for (int64_t r = 0; r < w; ++r) d[r] = scale * src[r];
      for (int64_t r = w; r < p.mr; ++r) d[r] = 0.0f;
    }
  }
}

// C (rows x cols, ldc) = or += A B: A in MR panels (panel stride a_stride), B in NR panels (b_stride).
void tile_mm(const Packing& p, const float* a, int64_t a_stride, const float* b, int64_t b_stride, int64_t kc, float* c,
             int64_t ldc, int64_t rows, int64_t cols, bool accumulate) {
  for (int64_t i0 = 0; i0 < rows; i0 += p.mr) {
    const int rr = static_cast<int>(std::min<int64_t>(p.mr, rows - i0));
    for (int64_t j0 = 0; j0 < cols; j0 += p.nr) {
      const int cc = static_cast<int>(std::min<int64_t>(p.nr, cols - j0));
      p.kern->tile(a + (i0 / p.mr) * a_stride, b + (j0 / p.nr) * b_stride, kc, c + i0 * ldc + j0, ldc, rr, cc, accumulate);
    }
  }
}

// Packs for every head (in parallel over heads) into one buffer of `per` floats per head.
template <typename F>
void pack_heads(const Context& ctx, int64_t heads, const F& f) {
  run_tasks(ctx, heads, [&](int64_t h) { f(h); });
}

// Pool tasks may not throw: allocation failures and cancellation are flagged and reported after.
struct TaskFlags {
  std::atomic<bool> oom{false}, aborted{false}, failed{false};
  Status result() const {
    if (oom) return Status(Code::kOutOfMemory, "biased attention: out of memory for the tile buffers");
    if (aborted) return Status(Code::kAborted, "aborted");
    if (failed) return Status(Code::kInternal, "biased attention: a tile product failed");
    return Status::Ok();
  }
};

void layer_norm_rows(const BiasedAttentionArgs& a, int64_t r0, int64_t r1, float* y, const BiasedAttentionSaved& s);

Status forward_impl(const BiasedAttentionArgs& a, float* y, const BiasedAttentionSaved& s, const Context& ctx) {
  const int64_t n = a.n, d = a.d, h = a.heads, dh = d / h;
  VLK_RETURN_IF_ERROR(project(a, a.wq, a.bq, s.q, ctx));
  VLK_RETURN_IF_ERROR(project(a, a.wk, a.bk, s.k, ctx));
  VLK_RETURN_IF_ERROR(project(a, a.wv, a.bv, s.v, ctx));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");

  const Packing pk = make_packing(a, ctx.isa);
  // Tiles: block_q rounded up to MR rows, block_k to NR columns, so tiles start on panel edges.
  const int64_t bq = std::min((a.block_q + pk.mr - 1) / pk.mr * pk.mr, pk.npa);
  const int64_t bk = std::min((a.block_k + pk.nr - 1) / pk.nr * pk.nr, pk.npb);
  const int64_t nqb = (n + bq - 1) / bq, nkb = (n + bk - 1) / bk;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
  // Each running task holds a score tile and its packed copy (blockQuery x blockKey, both up to n).
  VLK_RETURN_IF_ERROR(check_alloc("biased attention: the score tiles (threads x blockQuery x blockKey, twice)",
                                  {std::max(ctx.threads, 1), 2, bq + pk.mr, bk + pk.mr}, sizeof(float)));
  CachedArray<float> qa, kt, vn;
  try {
    qa.reset(static_cast<size_t>(h * pk.a_size()));
    kt.reset(static_cast<size_t>(h * pk.t_size()));
    vn.reset(static_cast<size_t>(h * pk.n_size()));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "biased attention: out of memory for the packed heads");
  }
  pack_heads(ctx, h, [&](int64_t head) {
    pack_a(pk, s.q, head, scale, qa.data() + head * pk.a_size());
    pack_t(pk, s.k, head, kt.data() + head * pk.t_size());
    pack_n(pk, s.v, head, vn.data() + head * pk.n_size());
  });
  TaskFlags flags;
  run_tasks(ctx, nqb * h, [&](int64_t task) {
    if (flags.oom || flags.aborted || flags.failed) return;
    if (ctx.cancelled()) {
      flags.aborted = true;
      return;
    }
    const int64_t qb = task / h, head = task % h;
    const int64_t i0 = qb * bq, rows = std::min(bq, n - i0), c0 = head * dh;
    std::vector<float> sbuf, pa, m, l, alpha;
    try {
      sbuf.resize(static_cast<size_t>(bq * bk));
      pa.resize(static_cast<size_t>((bq + pk.mr) * (bk + pk.mr)));
      m.assign(static_cast<size_t>(rows), kNegInf);
      l.assign(static_cast<size_t>(rows), 0.0f);
      alpha.resize(static_cast<size_t>(rows));
    } catch (const std::bad_alloc&) {
      flags.oom = true;
      return;
    }
    const float* a_q = qa.data() + head * pk.a_size() + i0 * dh;
    const float* k_h = kt.data() + head * pk.t_size();
    const float* v_h = vn.data() + head * pk.n_size();
    float* o = s.o + i0 * d + c0;  // rows x dh accumulator, ld = D
    for (int64_t rr = 0; rr < rows; ++rr) std::fill(o + rr * d, o + rr * d + dh, 0.0f);
    for (int64_t kb = 0; kb < nkb; ++kb) {
      const int64_t j0 = kb * bk, cols = std::min(bk, n - j0);
      tile_mm(pk, a_q, pk.mr * dh, k_h + j0 * dh, pk.nr * dh, dh, sbuf.data(), cols, rows, cols, false);
      const Tile t{i0, rows, j0, cols, cols, n, a.relevance, a.mask, static_cast<float>(a.bias_weight), a.self_loops};
      fwd_tile(ctx.isa, t, sbuf.data(), m.data(), l.data(), alpha.data());
      for (int64_t rr = 0; rr < rows; ++rr) {
        if (alpha[rr] != 1.0f) {
          float* orow = o + rr * d;
          for (int64_t c = 0; c < dh; ++c) orow[c] *= alpha[rr];
        }
      }
      pack_tile(pk, sbuf.data(), rows, cols, cols, 1.0f, pa.data());
      tile_mm(pk, pa.data(), pk.mr * cols, v_h + j0 * pk.nr, n * pk.nr, cols, o, d, rows, dh, true);
    }
    for (int64_t rr = 0; rr < rows; ++rr) {
      // l >= 1 on every row with a connected entry (the max term contributes exp(0)).
      const float inv = l[rr] > 0 ? 1.0f / l[rr] : 0.0f;
      float* orow = o + rr * d;
      for (int64_t c = 0; c < dh; ++c) orow[c] *= inv;
      s.lse[head * n + i0 + rr] = m[rr] + std::log(l[rr]);
    }
  });
  VLK_RETURN_IF_ERROR(flags.result());
  for (int64_t i = 0; i < h * n; ++i) {
    if (!std::isfinite(s.lse[i])) {
      return Status(Code::kNonFinite, "biased attention: head " + std::to_string(i / n) + ", row " +
                                          std::to_string(i % n) +
                                          ": the scores overflow float (inputs too large for fp32 attention)");
    }
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");

  // A = O Wo^T + bo into y, then Y = LayerNorm(X + A), rows on the pool.
  for (int64_t i = 0; i < n; ++i) std::memcpy(y + i * d, a.bo, static_cast<size_t>(d) * sizeof(float));
  VLK_RETURN_IF_ERROR(mm(false, true, n, d, d, 1.0f, s.o, d, a.wo, d, 1.0f, y, d, ctx));
  for_ranges(ctx, n, 16, [&](int64_t r0, int64_t r1) { layer_norm_rows(a, r0, r1, y, s); });
  return Status::Ok();
}

// Rows [r0, r1) of Y = LayerNorm(X + A) in place of A (in y), with xhat and rstd saved.
void layer_norm_rows(const BiasedAttentionArgs& a, int64_t r0, int64_t r1, float* y, const BiasedAttentionSaved& s) {
  const int64_t d = a.d;
  for (int64_t i = r0; i < r1; ++i) {
    float* yr = y + i * d;
    const float* xr = a.x + i * d;
    float* xh = s.xhat + i * d;
    double mean = 0;
    for (int64_t c = 0; c < d; ++c) {
      yr[c] = xr[c] + yr[c];
      mean += yr[c];
    }
    mean /= static_cast<double>(d);
    double var = 0;
    for (int64_t c = 0; c < d; ++c) var += (yr[c] - mean) * (yr[c] - mean);
    var /= static_cast<double>(d);
    const double rstd = 1.0 / std::sqrt(var + a.eps);
    s.rstd[i] = static_cast<float>(rstd);
    for (int64_t c = 0; c < d; ++c) {
      const double xv = (yr[c] - mean) * rstd;
      xh[c] = static_cast<float>(xv);
      yr[c] = static_cast<float>(a.gamma[c] * xv + a.beta[c]);
    }
  }
}

}  // namespace

Status biased_attention(const BiasedAttentionArgs& a, float* y, BiasedAttentionSaved* saved, const Context& ctx) {
  if (y == nullptr) return Status(Code::kInvalidArg, "biased attention: null output");
  VLK_RETURN_IF_ERROR(validate(a, ctx));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  const int64_t n = a.n, d = a.d;
  CachedArray<float> tmp;
  BiasedAttentionSaved s;
  if (saved != nullptr) s = *saved;
  try {
    const size_t nd = static_cast<size_t>(n * d);
    size_t need = 0;
    need += s.q == nullptr ? nd : 0;
    need += s.k == nullptr ? nd : 0;
    need += s.v == nullptr ? nd : 0;
    need += s.o == nullptr ? nd : 0;
    need += s.xhat == nullptr ? nd : 0;
    need += s.lse == nullptr ? static_cast<size_t>(a.heads * n) : 0;
    need += s.rstd == nullptr ? static_cast<size_t>(n) : 0;
    tmp.reset(need);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "biased attention: out of memory for the projections");
  }
  float* p = tmp.data();
  auto take = [&](float*& slot, int64_t count) {
    if (slot == nullptr) {
      slot = p;
      p += count;
    }
  };
  take(s.q, n * d);
  take(s.k, n * d);
  take(s.v, n * d);
  take(s.o, n * d);
  take(s.xhat, n * d);
  take(s.lse, a.heads * n);
  take(s.rstd, n);
  return forward_impl(a, y, s, ctx);
}

Status biased_attention_backward(const BiasedAttentionArgs& a, const BiasedAttentionSaved* saved, const float* dy,
                                 BiasedAttentionGrads* grads, const Context& ctx) {
  if (grads == nullptr || dy == nullptr) return Status(Code::kInvalidArg, "biased attention backward: null dY or gradients");
  BiasedAttentionGrads& g = *grads;
  if (g.dx == nullptr || g.dwq == nullptr || g.dwk == nullptr || g.dwv == nullptr || g.dwo == nullptr ||
      g.dbq == nullptr || g.dbk == nullptr || g.dbv == nullptr || g.dbo == nullptr || g.dgamma == nullptr ||
      g.dbeta == nullptr || g.drelevance == nullptr) {
    return Status(Code::kInvalidArg, "biased attention backward: every gradient buffer is required");
  }
  VLK_RETURN_IF_ERROR(validate(a, ctx));
  const int64_t n = a.n, d = a.d, h = a.heads, dh = d / h;
  VLK_RETURN_IF_ERROR(check_finite("dOutput", dy, n, d));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  const size_t nd = static_cast<size_t>(n * d);
  CachedArray<float> fwd, work;
  std::vector<double> delta64;
  BiasedAttentionSaved s;
  try {
    if (saved == nullptr) {
      fwd.reset(6 * nd + static_cast<size_t>(h * n + n));
      s.q = fwd.data();
      s.k = s.q + nd;
      s.v = s.k + nd;
      s.o = s.v + nd;
      s.xhat = s.o + nd;
      float* y = s.xhat + nd;
      s.lse = y + nd;
      s.rstd = s.lse + h * n;
      VLK_RETURN_IF_ERROR(forward_impl(a, y, s, ctx));
    } else {
      s = *saved;
      if (s.q == nullptr || s.k == nullptr || s.v == nullptr || s.o == nullptr || s.lse == nullptr ||
          s.xhat == nullptr || s.rstd == nullptr) {
        return Status(Code::kInvalidArg, "biased attention backward: saved tensors incomplete");
      }
      // Saved tensors come from the caller (lib passes back what the forward returned): all finite,
      // or the softmax recomputed from them is NaN.
      VLK_RETURN_IF_ERROR(check_finite("saved.q", s.q, n, d));
      VLK_RETURN_IF_ERROR(check_finite("saved.k", s.k, n, d));
      VLK_RETURN_IF_ERROR(check_finite("saved.v", s.v, n, d));
      VLK_RETURN_IF_ERROR(check_finite("saved.o", s.o, n, d));
      VLK_RETURN_IF_ERROR(check_finite("saved.lse", s.lse, h, n));
      VLK_RETURN_IF_ERROR(check_finite("saved.xhat", s.xhat, n, d));
      VLK_RETURN_IF_ERROR(check_finite("saved.rstd", s.rstd, 1, n));
    }
    work.reset(4 * nd + static_cast<size_t>(h * n));  // dO, dQ, dK, dV, Delta
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "biased attention backward: out of memory for the work buffers");
  }
  float* d_o = work.data();
  float* dq = d_o + nd;
  float* dk = dq + nd;
  float* dv = dk + nd;
  float* delta = dv + nd;

  // LayerNorm: dZ = rstd (g - mean(g) - xhat mean(g xhat)), g = dY gamma; dZ goes to dx (residual).
  float* dz = g.dx;
  for_ranges(ctx, n, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const float* dyr = dy + i * d;
      const float* xh = s.xhat + i * d;
      double mg = 0, mgx = 0;
      for (int64_t c = 0; c < d; ++c) {
        const double gc = double(dyr[c]) * a.gamma[c];
        mg += gc;
        mgx += gc * xh[c];
      }
      mg /= static_cast<double>(d);
      mgx /= static_cast<double>(d);
      const double r = s.rstd[i];
      for (int64_t c = 0; c < d; ++c) {
        dz[i * d + c] = static_cast<float>(r * (double(dyr[c]) * a.gamma[c] - mg - double(xh[c]) * mgx));
      }
    }
  });
  // dgamma = colsum(dY xhat), dbeta = colsum(dY) in float64, rows in order; column chunks on the pool.
  for_ranges(ctx, d, kColChunk, [&](int64_t c0, int64_t c1) {
    double gs[kColChunk] = {}, bs[kColChunk] = {};
    for (int64_t i = 0; i < n; ++i) {
      const float* dyr = dy + i * d;
      const float* xh = s.xhat + i * d;
      for (int64_t c = c0; c < c1; ++c) {
        gs[c - c0] += double(dyr[c]) * xh[c];
        bs[c - c0] += dyr[c];
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      g.dgamma[c] = static_cast<float>(gs[c - c0]);
      g.dbeta[c] = static_cast<float>(bs[c - c0]);
    }
  });
  // Output projection: dWo = dZ^T O, dbo = colsum dZ, dO = dZ Wo.
  column_sums(dz, n, d, g.dbo, ctx);
  VLK_RETURN_IF_ERROR(mm(true, false, d, d, n, 1.0f, dz, d, s.o, d, 0.0f, g.dwo, d, ctx));
  VLK_RETURN_IF_ERROR(mm(false, false, n, d, d, 1.0f, dz, d, a.wo, d, 0.0f, d_o, d, ctx));
  // Delta = rowsum(dO o O) per head; rows on the pool.
  for_ranges(ctx, n, 32, [&](int64_t r0, int64_t r1) {
    for (int64_t head = 0; head < h; ++head) {
      for (int64_t i = r0; i < r1; ++i) {
        double acc = 0;
        const float* x1 = d_o + i * d + head * dh;
        const float* x2 = s.o + i * d + head * dh;
        for (int64_t c = 0; c < dh; ++c) acc += double(x1[c]) * x2[c];
        delta[head * n + i] = static_cast<float>(acc);
      }
    }
    std::fill(dq + r0 * d, dq + r1 * d, 0.0f);
    std::fill(dk + r0 * d, dk + r1 * d, 0.0f);
    std::fill(dv + r0 * d, dv + r1 * d, 0.0f);
  });
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");

  const Packing pk = make_packing(a, ctx.isa);
  const int64_t bq = std::min((a.block_q + pk.mr - 1) / pk.mr * pk.mr, pk.npa);
  const int64_t bk = std::min((a.block_k + pk.nr - 1) / pk.nr * pk.nr, pk.npb);
  const int64_t nqb = (n + bq - 1) / bq, nkb = (n + bk - 1) / bk;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
  const float wf = static_cast<float>(a.bias_weight);
  std::vector<double> dw_rows;
  CachedArray<float> qa, doa, kt, vt, kn, qn, don;
  try {
    dw_rows.assign(static_cast<size_t>(n), 0.0);
    qa.reset(static_cast<size_t>(h * pk.a_size()));
    doa.reset(static_cast<size_t>(h * pk.a_size()));
    kt.reset(static_cast<size_t>(h * pk.t_size()));
    vt.reset(static_cast<size_t>(h * pk.t_size()));
    kn.reset(static_cast<size_t>(h * pk.n_size()));
    qn.reset(static_cast<size_t>(h * pk.n_size()));
    don.reset(static_cast<size_t>(h * pk.n_size()));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "biased attention backward: out of memory for the packed heads");
  }
  pack_heads(ctx, h, [&](int64_t head) {
    pack_a(pk, s.q, head, scale, qa.data() + head * pk.a_size());
    pack_a(pk, d_o, head, 1.0f, doa.data() + head * pk.a_size());
    pack_t(pk, s.k, head, kt.data() + head * pk.t_size());
    pack_t(pk, s.v, head, vt.data() + head * pk.t_size());
    pack_n(pk, s.k, head, kn.data() + head * pk.n_size());
    pack_n(pk, s.q, head, qn.data() + head * pk.n_size());
    pack_n(pk, d_o, head, don.data() + head * pk.n_size());
  });
  const size_t tile_floats = static_cast<size_t>(bq * bk);
  const size_t pack_floats = static_cast<size_t>((bq + pk.mr) * (bk + pk.mr));
  // P and dS of tile (i0, j0) of one head, into sb (P) and pb (dS), row stride cols.
  auto tile_grads = [&](int64_t head, int64_t i0, int64_t rows, int64_t j0, int64_t cols, float* sb, float* pb) {
    tile_mm(pk, qa.data() + head * pk.a_size() + i0 * dh, pk.mr * dh, kt.data() + head * pk.t_size() + j0 * dh,
            pk.nr * dh, dh, sb, cols, rows, cols, false);
    tile_mm(pk, doa.data() + head * pk.a_size() + i0 * dh, pk.mr * dh, vt.data() + head * pk.t_size() + j0 * dh,
            pk.nr * dh, dh, pb, cols, rows, cols, false);
    const Tile t{i0, rows, j0, cols, cols, n, a.relevance, a.mask, wf, a.self_loops};
    bwd_tile(ctx.isa, t, sb, pb, s.lse + head * n, delta + head * n);
  };
  TaskFlags flags;
  // One pass over the tiles, by strips of query rows (block_q): per strip one task per head takes
  // the strip's tiles of its head in key order, computes P and dS once per tile and adds dQ (the
  // strip's rows), dK and dV (every key row; strips in order, so each head's sums run in query
  // order) to its own head's columns, and keeps its dS rows; then G = sum_h dS_h (heads in order)
  // gives the strip's dR rows and dw terms. Every sum runs in the same order whatever the threads.
  // The strip holds every head's dS rows of one block of queries: heads x blockQuery x n.
  VLK_RETURN_IF_ERROR(check_alloc("biased attention backward: the dS strip (heads x blockQuery x n)", {h, bq, n},
                                  sizeof(float)));
  VLK_RETURN_IF_ERROR(check_alloc("biased attention backward: the score tiles (threads x blockQuery x blockKey, 3)",
                                  {std::max(ctx.threads, 1), 3, bq + pk.mr, bk + pk.mr}, sizeof(float)));
  CachedArray<float> ds_strip;
  try {
    ds_strip.reset(static_cast<size_t>(h * bq * n));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "biased attention backward: out of memory for the dS strip");
  }
  for (int64_t qb = 0; qb < nqb; ++qb) {
    const int64_t i0 = qb * bq, rows = std::min(bq, n - i0);
    run_tasks(ctx, h, [&](int64_t head) {
      if (flags.oom || flags.aborted || flags.failed) return;
      if (ctx.cancelled()) {
        flags.aborted = true;
        return;
      }
      std::vector<float> sb, pb, pa;
      try {
        sb.resize(tile_floats);
        pb.resize(tile_floats);
        pa.resize(pack_floats);
      } catch (const std::bad_alloc&) {
        flags.oom = true;
        return;
      }
      const int64_t c0 = head * dh;
      float* dsh = ds_strip.data() + head * bq * n;  // rows x n
      for (int64_t kb = 0; kb < nkb; ++kb) {
        const int64_t j0 = kb * bk, cols = std::min(bk, n - j0);
        tile_grads(head, i0, rows, j0, cols, sb.data(), pb.data());
        for (int64_t rr = 0; rr < rows; ++rr) {
          std::memcpy(dsh + rr * n + j0, pb.data() + rr * cols, static_cast<size_t>(cols) * sizeof(float));
        }
        // dQ_i += scale dS K_j.
        pack_tile(pk, pb.data(), rows, cols, cols, scale, pa.data());
        tile_mm(pk, pa.data(), pk.mr * cols, kn.data() + head * pk.n_size() + j0 * pk.nr, n * pk.nr, cols,
                dq + i0 * d + c0, d, rows, dh, true);
        // dV_j += P^T dO_i, dK_j += scale dS^T Q_i.
        pack_tile_t(pk, sb.data(), rows, cols, cols, 1.0f, pa.data());
        tile_mm(pk, pa.data(), pk.mr * rows, don.data() + head * pk.n_size() + i0 * pk.nr, n * pk.nr, rows,
                dv + j0 * d + c0, d, cols, dh, true);
        pack_tile_t(pk, pb.data(), rows, cols, cols, scale, pa.data());
        tile_mm(pk, pa.data(), pk.mr * rows, qn.data() + head * pk.n_size() + i0 * pk.nr, n * pk.nr, rows,
                dk + j0 * d + c0, d, cols, dh, true);
      }
    });
    VLK_RETURN_IF_ERROR(flags.result());
    // The strip's G rows (heads in order), dw terms, and dR = w G.
    for_ranges(ctx, rows, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t rr = r0; rr < r1; ++rr) {
        const int64_t i = i0 + rr;
        float* gr = g.drelevance + i * n;
        std::fill(gr, gr + n, 0.0f);
        for (int64_t head = 0; head < h; ++head) {
          const float* ds = ds_strip.data() + head * bq * n + rr * n;
          for (int64_t j = 0; j < n; ++j) gr[j] += ds[j];
        }
        const float* rrow = a.relevance + i * n;
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) {
          acc += double(gr[j]) * rrow[j];  // G is 0 where not connected
          gr[j] *= wf;
        }
        dw_rows[i] = acc;
      }
    });
  }
  {
    double dw = 0;
    for (int64_t i = 0; i < n; ++i) dw += dw_rows[i];
    g.dbias_weight = dw;
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  // Input projections: dW = dP^T X, db = colsum dP, dX += dQ Wq + dK Wk + dV Wv.
  column_sums(dq, n, d, g.dbq, ctx);
  column_sums(dk, n, d, g.dbk, ctx);
  column_sums(dv, n, d, g.dbv, ctx);
  VLK_RETURN_IF_ERROR(mm(true, false, d, d, n, 1.0f, dq, d, a.x, d, 0.0f, g.dwq, d, ctx));
  VLK_RETURN_IF_ERROR(mm(true, false, d, d, n, 1.0f, dk, d, a.x, d, 0.0f, g.dwk, d, ctx));
  VLK_RETURN_IF_ERROR(mm(true, false, d, d, n, 1.0f, dv, d, a.x, d, 0.0f, g.dwv, d, ctx));
  VLK_RETURN_IF_ERROR(mm(false, false, n, d, d, 1.0f, dq, d, a.wq, d, 1.0f, g.dx, d, ctx));
  VLK_RETURN_IF_ERROR(mm(false, false, n, d, d, 1.0f, dk, d, a.wk, d, 1.0f, g.dx, d, ctx));
  VLK_RETURN_IF_ERROR(mm(false, false, n, d, d, 1.0f, dv, d, a.wv, d, 1.0f, g.dx, d, ctx));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
