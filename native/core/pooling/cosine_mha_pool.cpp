// Global-guided multi-head cosine attention pooling (core/pooling). See cosine_mha_pool.hpp.
#include "pooling/cosine_mha_pool.hpp"

#include <algorithm>
#include <cmath>
#include <new>
#include <string>
#include <vector>

#include "linalg/gemm.hpp"
#include "pooling/pooling_detail.hpp"

namespace vlk {
namespace core {

namespace {

Status validate(const CosineMhaPoolArgs& a) {
  if (a.b <= 0 || a.n <= 0 || a.d <= 0 || a.dg <= 0 || a.heads <= 0) {
    return Status(Code::kEmpty, "cosineMhaPool: B, n, D, Dg and heads must be >= 1 (got B = " + std::to_string(a.b) +
                                    ", n = " + std::to_string(a.n) + ", D = " + std::to_string(a.d) + ", Dg = " +
                                    std::to_string(a.dg) + ", heads = " + std::to_string(a.heads) + ")");
  }
  if (a.g == nullptr || a.x == nullptr || a.wq == nullptr || a.wk == nullptr || a.wv == nullptr) {
    return Status(Code::kInvalidArg, "cosineMhaPool: g, x, wq, wk and wv are required");
  }
  VLK_RETURN_IF_ERROR(gl_detail::check_lengths("lengths", a.lengths, a.b, a.n));
  const int64_t hd = a.heads * a.d;
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("g", a.g, a.b, a.dg));
  VLK_RETURN_IF_ERROR(gl_detail::check_tokens("x", a.x, a.lengths, a.b, a.n, a.d));
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("wq", a.wq, hd, a.dg));
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("wk", a.wk, hd, a.d));
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("wv", a.wv, hd, a.d));
  if (a.bq != nullptr) VLK_RETURN_IF_ERROR(gl_detail::check_finite("bq", a.bq, a.heads, a.d));
  if (a.bk != nullptr) VLK_RETURN_IF_ERROR(gl_detail::check_finite("bk", a.bk, a.heads, a.d));
  if (a.bv != nullptr) VLK_RETURN_IF_ERROR(gl_detail::check_finite("bv", a.bv, a.heads, a.d));
  return Status::Ok();
}

// Padding tokens are zeroed in a copy of X so that their K rows (and the GEMMs) stay finite.
struct Forward {
  std::vector<float> x;     // B n x D, padding zeroed
  std::vector<float> q;     // B x hD (no bias)
  std::vector<float> k;     // B n x hD (no bias)
  std::vector<double> att;  // B x h x n
  std::vector<float> xbar;  // B x hD: sum_t a_t x_t per head
};

Status gemm_nt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
               int64_t k, float alpha, float beta, const Context& ctx) {
  GemmArgs g;
  g.trans_b = true;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.lda = lda;
  g.b = b;
  g.ldb = ldb;
  g.c = c;
  g.ldc = ldc;
  g.alpha = alpha;
  g.beta = beta;
  return gemm(g, ctx);
}

// Item b, head h: normalised q, normalised k_t (t < len), their norms, and the raw vectors.
struct HeadState {
  std::vector<double> q, qn, k, kn, r;  // q: D; k, kn: len x D; r: len norms of k
  double rq = 0;
};

void head_state(const CosineMhaPoolArgs& a, const Forward& f, int64_t b, int64_t h, int64_t len, HeadState* s) {
  const int64_t D = a.d, hd = a.heads * D;
  s->q.resize(D);
  s->qn.resize(D);
  s->k.resize(len * D);
  s->kn.resize(len * D);
  s->r.resize(len);
  for (int64_t i = 0; i < D; ++i) s->q[i] = double(f.q[b * hd + h * D + i]) + (a.bq ? a.bq[h * D + i] : 0.0);
  s->rq = gl_detail::l2norm(s->q.data(), s->qn.data(), D);
  for (int64_t t = 0; t < len; ++t) {
    const float* kr = f.k.data() + (b * a.n + t) * hd + h * D;
    for (int64_t i = 0; i < D; ++i) s->k[t * D + i] = double(kr[i]) + (a.bk ? a.bk[h * D + i] : 0.0);
    s->r[t] = gl_detail::l2norm(s->k.data() + t * D, s->kn.data() + t * D, D);
  }
}

Status forward(const CosineMhaPoolArgs& a, Forward* f, const Context& ctx) {
  const int64_t B = a.b, n = a.n, D = a.d, H = a.heads, hd = H * D;
  try {
    f->x.assign(a.x, a.x + B * n * D);
    f->q.resize(B * hd);
    f->k.resize(B * n * hd);
    f->att.assign(B * H * n, 0.0);
    f->xbar.resize(B * hd);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "cosineMhaPool: out of memory for the B x n x heads*D keys");
  }
  if (a.lengths != nullptr) {
    for (int64_t b = 0; b < B; ++b) {
      std::fill(f->x.begin() + (b * n + a.lengths[b]) * D, f->x.begin() + (b + 1) * n * D, 0.0f);
    }
  }
  VLK_RETURN_IF_ERROR(gemm_nt(a.g, a.dg, a.wq, a.dg, f->q.data(), hd, B, hd, a.dg, 1.0f, 0.0f, ctx));
  VLK_RETURN_IF_ERROR(gemm_nt(f->x.data(), D, a.wk, D, f->k.data(), hd, B * n, hd, D, 1.0f, 0.0f, ctx));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  gl_detail::parallel(ctx, B, [&](int64_t b) {
    const int64_t len = a.lengths == nullptr ? n : a.lengths[b];
    HeadState s;
    std::vector<double> xb(D);
    for (int64_t h = 0; h < H; ++h) {
      head_state(a, *f, b, h, len, &s);
      double* at = f->att.data() + (b * H + h) * n;
      double mx = -INFINITY;
      for (int64_t t = 0; t < len; ++t) {
        double dot = 0;
        for (int64_t i = 0; i < D; ++i) dot += s.qn[i] * s.kn[t * D + i];
        at[t] = dot;
        mx = std::max(mx, dot);
      }
      double z = 0;
      for (int64_t t = 0; t < len; ++t) z += (at[t] = std::exp(at[t] - mx));
      std::fill(xb.begin(), xb.end(), 0.0);
      for (int64_t t = 0; t < len; ++t) {
        at[t] /= z;
        const float* xr = a.x + (b * n + t) * D;
        for (int64_t i = 0; i < D; ++i) xb[i] += at[t] * xr[i];
      }
      for (int64_t i = 0; i < D; ++i) f->xbar[b * hd + h * D + i] = static_cast<float>(xb[i]);
    }
  });
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace

Status cosine_mha_pool(const CosineMhaPoolArgs& a, float* out, float* attention, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (out == nullptr) return Status(Code::kInvalidArg, "cosineMhaPool: null output");
  Forward f;
  VLK_RETURN_IF_ERROR(forward(a, &f, ctx));
  const int64_t B = a.b, D = a.d, H = a.heads, hd = H * D;
  // out = (1/h) sum_h xbar_h Wv_h^T + mean_h bv_h.
  for (int64_t h = 0; h < H; ++h) {
    VLK_RETURN_IF_ERROR(gemm_nt(f.xbar.data() + h * D, hd, a.wv + h * D * D, D, out, D, B, D, D,
                                1.0f / static_cast<float>(H), h == 0 ? 0.0f : 1.0f, ctx));
  }
  if (a.bv != nullptr) {
    for (int64_t i = 0; i < D; ++i) {
      double s = 0;
      for (int64_t h = 0; h < H; ++h) s += a.bv[h * D + i];
      const float m = static_cast<float>(s / static_cast<double>(H));
      for (int64_t b = 0; b < B; ++b) out[b * D + i] += m;
    }
  }
  if (attention != nullptr) {
    for (size_t i = 0; i < f.att.size(); ++i) attention[i] = static_cast<float>(f.att[i]);
  }
  return Status::Ok();
}

Status cosine_mha_pool_backward(const CosineMhaPoolArgs& a, const float* dout, const CosineMhaPoolGrads& o,
                                const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (dout == nullptr || o.dg == nullptr || o.dx == nullptr || o.dwq == nullptr || o.dwk == nullptr ||
      o.dwv == nullptr || o.dbq == nullptr || o.dbk == nullptr || o.dbv == nullptr) {
    return Status(Code::kInvalidArg, "cosineMhaPool backward: null gradient");
  }
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("dout", dout, a.b, a.d));
  Forward f;
  VLK_RETURN_IF_ERROR(forward(a, &f, ctx));
  const int64_t B = a.b, n = a.n, D = a.d, H = a.heads, hd = H * D;
  const float inv_h = 1.0f / static_cast<float>(H);
  std::vector<float> dxbar, dq, dk;
  try {
    dxbar.resize(B * hd);
    dq.assign(B * hd, 0.0f);
    dk.assign(B * n * hd, 0.0f);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "cosineMhaPool backward: out of memory");
  }
  for (int64_t h = 0; h < H; ++h) {
    // dWv_h = (1/h) dm^T xbar_h (D x D); dxbar_h = (1/h) dm Wv_h (B x D).
    GemmArgs g1;
    g1.trans_a = true;
    g1.m = D;
    g1.n = D;
    g1.k = B;
    g1.alpha = inv_h;
    g1.a = dout;
    g1.lda = D;
    g1.b = f.xbar.data() + h * D;
    g1.ldb = hd;
    g1.c = o.dwv + h * D * D;
    g1.ldc = D;
    VLK_RETURN_IF_ERROR(gemm(g1, ctx));
    GemmArgs g2;
    g2.m = B;
    g2.n = D;
    g2.k = D;
    g2.alpha = inv_h;
    g2.a = dout;
    g2.lda = D;
    g2.b = a.wv + h * D * D;
    g2.ldb = D;
    g2.c = dxbar.data() + h * D;
    g2.ldc = hd;
    VLK_RETURN_IF_ERROR(gemm(g2, ctx));
    for (int64_t i = 0; i < D; ++i) {
      double s = 0;
      for (int64_t b = 0; b < B; ++b) s += dout[b * D + i];
      o.dbv[h * D + i] = static_cast<float>(s / static_cast<double>(H));
    }
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  gl_detail::parallel(ctx, B, [&](int64_t b) {
    const int64_t len = a.lengths == nullptr ? n : a.lengths[b];
    HeadState s;
    std::vector<double> dxacc(n * D, 0.0), da(len), dqn(D), dkn(D), tmp(D);
    for (int64_t h = 0; h < H; ++h) {
      head_state(a, f, b, h, len, &s);
      const double* at = f.att.data() + (b * H + h) * n;
      const float* dxb = dxbar.data() + b * hd + h * D;
      double ada = 0;
      for (int64_t t = 0; t < len; ++t) {
        const float* xr = a.x + (b * n + t) * D;
        double v = 0;
        for (int64_t i = 0; i < D; ++i) {
          v += double(xr[i]) * dxb[i];
          dxacc[t * D + i] += at[t] * dxb[i];
        }
        da[t] = v;
        ada += at[t] * v;
      }
      std::fill(dqn.begin(), dqn.end(), 0.0);
      for (int64_t t = 0; t < len; ++t) {
        const double ds = at[t] * (da[t] - ada);
        for (int64_t i = 0; i < D; ++i) {
          dqn[i] += ds * s.kn[t * D + i];
          dkn[i] = ds * s.qn[i];
        }
        gl_detail::l2norm_backward(s.k.data() + t * D, s.r[t], dkn.data(), tmp.data(), D, false);
        float* dkr = dk.data() + (b * n + t) * hd + h * D;
        for (int64_t i = 0; i < D; ++i) dkr[i] = static_cast<float>(tmp[i]);
      }
      gl_detail::l2norm_backward(s.q.data(), s.rq, dqn.data(), tmp.data(), D, false);
      for (int64_t i = 0; i < D; ++i) dq[b * hd + h * D + i] = static_cast<float>(tmp[i]);
    }
    for (int64_t i = 0; i < n * D; ++i) o.dx[b * n * D + i] = static_cast<float>(dxacc[i]);
  });
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  // Bias gradients: column sums of dQ and dK.
  for (int64_t j = 0; j < hd; ++j) {
    double sq = 0, sk = 0;
    for (int64_t b = 0; b < B; ++b) sq += dq[b * hd + j];
    for (int64_t r = 0; r < B * n; ++r) sk += dk[r * hd + j];
    o.dbq[j] = static_cast<float>(sq);
    o.dbk[j] = static_cast<float>(sk);
  }
  // dWq = dQ^T g (hD x Dg); dg = dQ Wq (B x Dg); dWk = dK^T X (hD x D); dX += dK Wk (Bn x D).
  GemmArgs g3;
  g3.trans_a = true;
  g3.m = hd;
  g3.n = a.dg;
  g3.k = B;
  g3.a = dq.data();
  g3.lda = hd;
  g3.b = a.g;
  g3.ldb = a.dg;
  g3.c = o.dwq;
  g3.ldc = a.dg;
  VLK_RETURN_IF_ERROR(gemm(g3, ctx));
  GemmArgs g4;
  g4.m = B;
  g4.n = a.dg;
  g4.k = hd;
  g4.a = dq.data();
  g4.lda = hd;
  g4.b = a.wq;
  g4.ldb = a.dg;
  g4.c = o.dg;
  g4.ldc = a.dg;
  VLK_RETURN_IF_ERROR(gemm(g4, ctx));
  GemmArgs g5;
  g5.trans_a = true;
  g5.m = hd;
  g5.n = D;
  g5.k = B * n;
  g5.a = dk.data();
  g5.lda = hd;
  g5.b = f.x.data();
  g5.ldb = D;
  g5.c = o.dwk;
  g5.ldc = D;
  VLK_RETURN_IF_ERROR(gemm(g5, ctx));
  GemmArgs g6;
  g6.m = B * n;
  g6.n = D;
  g6.k = hd;
  g6.beta = 1.0f;
  g6.a = dk.data();
  g6.lda = hd;
  g6.b = a.wk;
  g6.ldb = D;
  g6.c = o.dx;
  g6.ldc = D;
  VLK_RETURN_IF_ERROR(gemm(g6, ctx));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
