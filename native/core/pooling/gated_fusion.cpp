// Gated fusion (core/pooling). See gated_fusion.hpp.
#include "pooling/gated_fusion.hpp"

#include <cmath>
#include <new>
#include <string>
#include <vector>

#include "linalg/gemm.hpp"
#include "pooling/pooling_detail.hpp"

namespace vlk {
namespace core {

namespace {

Status validate(const GatedFusionArgs& a) {
  if (a.b <= 0 || a.d <= 0) {
    return Status(Code::kEmpty, "gatedFusion: B and D must be >= 1 (got B = " + std::to_string(a.b) + ", D = " +
                                    std::to_string(a.d) + ")");
  }
  if (a.e == nullptr || a.g == nullptr || a.w == nullptr) {
    return Status(Code::kInvalidArg, "gatedFusion: e, g and weight are required");
  }
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("e", a.e, a.b, a.d));
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("g", a.g, a.b, a.d));
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("weight", a.w, a.d, 2 * a.d));
  if (a.bias != nullptr) VLK_RETURN_IF_ERROR(gl_detail::check_finite("bias", a.bias, 1, a.d));
  return Status::Ok();
}

// [e | g] (B x 2D) and the gate z = sigmoid(W [e; g] + b) (B x D), in doubles for z.
Status gate(const GatedFusionArgs& a, std::vector<float>* eg, std::vector<double>* z, const Context& ctx) {
  const int64_t B = a.b, D = a.d;
  std::vector<float> pre;
  try {
    eg->resize(static_cast<size_t>(B * 2 * D));
    pre.resize(static_cast<size_t>(B * D));
    z->resize(static_cast<size_t>(B * D));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "gatedFusion: out of memory");
  }
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < D; ++j) {
      (*eg)[i * 2 * D + j] = a.e[i * D + j];
      (*eg)[i * 2 * D + D + j] = a.g[i * D + j];
    }
  }
  GemmArgs ga;
  ga.trans_b = true;
  ga.m = B;
  ga.n = D;
  ga.k = 2 * D;
  ga.a = eg->data();
  ga.lda = 2 * D;
  ga.b = a.w;
  ga.ldb = 2 * D;
  ga.c = pre.data();
  ga.ldc = D;
  VLK_RETURN_IF_ERROR(gemm(ga, ctx));
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < D; ++j) {
      const double p = double(pre[i * D + j]) + (a.bias == nullptr ? 0.0 : double(a.bias[j]));
      (*z)[i * D + j] = 1.0 / (1.0 + std::exp(-p));
    }
  }
  return Status::Ok();
}

}  // namespace

Status gated_fusion(const GatedFusionArgs& a, float* v, float* z, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (v == nullptr) return Status(Code::kInvalidArg, "gatedFusion: null output");
  std::vector<float> eg;
  std::vector<double> zz;
  VLK_RETURN_IF_ERROR(gate(a, &eg, &zz, ctx));
  const int64_t n = a.b * a.d;
  for (int64_t i = 0; i < n; ++i) {
    v[i] = static_cast<float>(zz[i] * a.e[i] + (1.0 - zz[i]) * a.g[i]);
    if (z != nullptr) z[i] = static_cast<float>(zz[i]);
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

Status gated_fusion_backward(const GatedFusionArgs& a, const float* dv, const GatedFusionGrads& o,
                             const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (dv == nullptr || o.de == nullptr || o.dg == nullptr || o.dw == nullptr || o.dbias == nullptr) {
    return Status(Code::kInvalidArg, "gatedFusion backward: null gradient");
  }
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("dv", dv, a.b, a.d));
  const int64_t B = a.b, D = a.d;
  std::vector<float> eg, dp, dx;
  std::vector<double> z;
  VLK_RETURN_IF_ERROR(gate(a, &eg, &z, ctx));
  try {
    dp.resize(static_cast<size_t>(B * D));
    dx.resize(static_cast<size_t>(B * 2 * D));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "gatedFusion: out of memory");
  }
  for (int64_t i = 0; i < B * D; ++i) {
    const double dz = double(dv[i]) * (double(a.e[i]) - double(a.g[i]));
    dp[i] = static_cast<float>(dz * z[i] * (1.0 - z[i]));
  }
  // dX = dp W (B x 2D); dW = dp^T [e | g] (D x 2D).
  GemmArgs g1;
  g1.m = B;
  g1.n = 2 * D;
  g1.k = D;
  g1.a = dp.data();
  g1.lda = D;
  g1.b = a.w;
  g1.ldb = 2 * D;
  g1.c = dx.data();
  g1.ldc = 2 * D;
  VLK_RETURN_IF_ERROR(gemm(g1, ctx));
  GemmArgs g2;
  g2.trans_a = true;
  g2.m = D;
  g2.n = 2 * D;
  g2.k = B;
  g2.a = dp.data();
  g2.lda = D;
  g2.b = eg.data();
  g2.ldb = 2 * D;
  g2.c = o.dw;
  g2.ldc = 2 * D;
  VLK_RETURN_IF_ERROR(gemm(g2, ctx));
  for (int64_t j = 0; j < D; ++j) {
    double s = 0;
    for (int64_t i = 0; i < B; ++i) s += dp[i * D + j];
    o.dbias[j] = static_cast<float>(s);
  }
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < D; ++j) {
      const double zz = z[i * D + j], d = dv[i * D + j];
      o.de[i * D + j] = static_cast<float>(d * zz + dx[i * 2 * D + j]);
      o.dg[i * D + j] = static_cast<float>(d * (1.0 - zz) + dx[i * 2 * D + D + j]);
    }
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
