// Global-guided multi-head cosine attention pooling (core/pooling, AAHR encoders step 3, seed 004).
// Inputs: g (B x Dg) global vectors, X (B x n x D) local tokens with valid lengths, h heads each
// with its own full Linear layers (PyTorch layout, out x in):
//   Wq: h x D x Dg, Wk: h x D x D, Wv: h x D x D; biases bq, bk, bv: h x D (each optional, 0).
// Per item b and head h (tokens t < len_b only; padding never enters):
//   q = Wq_h g_b + bq_h,  k_t = Wk_h x_t + bk_h,  v_t = Wv_h x_t + bv_h
//   s_t = norm(q) . norm(k_t)          cosine, no temperature; norm(x) = x / (||x|| + 1e-8)
//   a = softmax_t(s)                   (max-subtracted, double)
//   o_h = sum_t a_t v_t = Wv_h (sum_t a_t x_t) + bv_h     (sum a = 1: V is never formed per token)
//   m_b = (1 / h) sum_h o_h            output B x D
// Dense products run on the fp32 GEMM (linalg/gemm): Q = g Wq^T (B x hD), K = X Wk^T (Bn x hD,
// padding rows included and ignored), o_h = xbar_h Wv_h^T; softmax, norms and weighted sums in
// double, per item on the pool.
// Backward, given dm (B x D): do_h = dm / h; dWv_h = do_h^T xbar_h, dbv_h = sum_b do_h,
// dxbar_h = do_h Wv_h; da_t = x_t . dxbar_h, dx_t += a_t dxbar_h; ds = a (da - a . da);
// dnorm(q) = sum_t ds_t norm(k_t), dnorm(k_t) = ds_t norm(q), through the norm's Jacobian to dq,
// dk_t; then dWq = dQ^T g, dg = dQ Wq, dbq = sum_b dQ, dWk = dK^T X, dX += dK Wk, dbk = sum dK.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct CosineMhaPoolArgs {
  const float* g = nullptr;          // B x Dg
  const float* x = nullptr;          // B x n x D
  const int32_t* lengths = nullptr;  // B, in 1..n; null: all n
  const float* wq = nullptr;         // h x D x Dg
  const float* wk = nullptr;         // h x D x D
  const float* wv = nullptr;         // h x D x D
  const float* bq = nullptr;         // h x D, optional
  const float* bk = nullptr;         // h x D, optional
  const float* bv = nullptr;         // h x D, optional
  int64_t b = 0, n = 0, d = 0, dg = 0, heads = 0;
};

/// out: B x D. attention: optional B x h x n (the softmax weights, 0 on padding). Errors: kEmpty
/// (a size 0), kInvalidArg (null input, a length outside 1..n), kNonFinite, kOutOfMemory, kAborted.
Status cosine_mha_pool(const CosineMhaPoolArgs& a, float* out, float* attention, const Context& ctx);

struct CosineMhaPoolGrads {
  float* dg = nullptr;   // B x Dg
  float* dx = nullptr;   // B x n x D (0 on padding)
  float* dwq = nullptr;  // h x D x Dg
  float* dwk = nullptr;  // h x D x D
  float* dwv = nullptr;  // h x D x D
  float* dbq = nullptr;  // h x D
  float* dbk = nullptr;  // h x D
  float* dbv = nullptr;  // h x D
};

/// Every gradient is written (all required). dout: B x D.
Status cosine_mha_pool_backward(const CosineMhaPoolArgs& a, const float* dout, const CosineMhaPoolGrads& out,
                                const Context& ctx);

}  // namespace core
}  // namespace vlk
