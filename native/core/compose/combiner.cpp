// Combiner head (core/compose). See combiner.hpp. Every linear layer is one gemm (x W^T, the
// nn.Linear layout) plus a bias; element-wise steps run over rows on the calling thread (they are
// O(B (P + H + D)) next to the GEMMs' O(B P D + B H P)).
#include "compose/combiner.hpp"

#include <algorithm>
#include <cmath>
#include <new>
#include <string>

#include "linalg/gemm.hpp"

namespace vlk {
namespace core {

namespace {

constexpr float kNormEps = 1e-12f;

// out[B x n_out] = x[B x n_in] W^T + b (W: n_out x n_in).
Status linear(const float* x, int64_t b, int64_t n_in, const float* w, const float* bias, int64_t n_out, float* out,
              const Context& ctx) {
  GemmArgs g;
  g.trans_b = true;
  g.m = b;
  g.n = n_out;
  g.k = n_in;
  g.a = x;
  g.lda = n_in;
  g.b = w;
  g.ldb = n_in;
  g.c = out;
  g.ldc = n_out;
  VLK_RETURN_IF_ERROR(gemm(g, ctx));
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < n_out; ++j) out[i * n_out + j] += bias[j];
  }
  return Status::Ok();
}

// dW[n_out x n_in] = dy[B x n_out]^T x[B x n_in]; db = column sums of dy.
Status linear_weight_grad(const float* dy, const float* x, int64_t b, int64_t n_in, int64_t n_out, float* dw,
                          float* db, const Context& ctx) {
  GemmArgs g;
  g.trans_a = true;
  g.m = n_out;
  g.n = n_in;
  g.k = b;
  g.a = dy;
  g.lda = n_out;
  g.b = x;
  g.ldb = n_in;
  g.c = dw;
  g.ldc = n_in;
  VLK_RETURN_IF_ERROR(gemm(g, ctx));
  for (int64_t j = 0; j < n_out; ++j) {
    double s = 0;
    for (int64_t i = 0; i < b; ++i) s += dy[i * n_out + j];
    db[j] = static_cast<float>(s);
  }
  return Status::Ok();
}

// dx[B x n_in] (+)= dy[B x n_out] W[n_out x n_in].
Status linear_input_grad(const float* dy, const float* w, int64_t b, int64_t n_in, int64_t n_out, float* dx,
                         bool accumulate, const Context& ctx) {
  GemmArgs g;
  g.m = b;
  g.n = n_in;
  g.k = n_out;
  g.a = dy;
  g.lda = n_out;
  g.b = w;
  g.ldb = n_in;
  g.c = dx;
  g.ldc = n_in;
  g.beta = accumulate ? 1.0f : 0.0f;
  return gemm(g, ctx);
}

// Counter-based uniform in [0, 1) (splitmix64 of the position), for reproducible dropout masks.
float unit(uint64_t seed, uint64_t layer, uint64_t row, uint64_t col) {
  uint64_t z = seed ^ (layer * 0x9E3779B97F4A7C15ull) ^ (row * 0xD1B54A32D192ED03ull) ^ (col * 0xABC98388FB8FAC03ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
}

// relu, then dropout with a fresh mask (if p > 0): x in place (pre kept in `pre`).
void relu_dropout(const std::vector<float>& pre, std::vector<float>* post, std::vector<float>* mask, int64_t b,
                  int64_t n, const CombinerOptions& opt, uint64_t layer) {
  post->resize(static_cast<size_t>(b * n));
  const bool drop = opt.dropout > 0.0f;
  if (drop) mask->resize(static_cast<size_t>(b * n));
  else mask->clear();
  const float keep = 1.0f / (1.0f - opt.dropout);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const size_t e = static_cast<size_t>(i * n + j);
      float v = pre[e] > 0.0f ? pre[e] : 0.0f;
      if (drop) {
        const float m = unit(opt.seed, layer, static_cast<uint64_t>(i), static_cast<uint64_t>(j)) < opt.dropout ? 0.0f : keep;
        (*mask)[e] = m;
        v *= m;
      }
      (*post)[e] = v;
    }
  }
}

// d pre = d post * mask * [pre > 0].
void relu_dropout_grad(const float* dpost, const std::vector<float>& pre, const std::vector<float>& mask, int64_t b,
                       int64_t n, int64_t dpost_stride, float* dpre) {
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const size_t e = static_cast<size_t>(i * n + j);
      float v = pre[e] > 0.0f ? dpost[i * dpost_stride + j] : 0.0f;
      if (!mask.empty()) v *= mask[e];
      dpre[e] = v;
    }
  }
}

Status check_finite(const float* v, int64_t n, const std::string& name) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return Status(Code::kNonFinite, name + ": entry " + std::to_string(i) + " is not finite");
  }
  return Status::Ok();
}

}  // namespace

Status validate_combiner(const CombinerWeights& w) {
  if (w.d < 1 || w.p < 1 || w.h < 1) {
    return Status(Code::kInvalidArg, "combiner: sizes D, P, H must be >= 1 (got " + std::to_string(w.d) + ", " +
                                         std::to_string(w.p) + ", " + std::to_string(w.h) + ")");
  }
  const struct {
    const float* p;
    const char* name;
    int64_t n;
  } parts[] = {{w.w_tp, "text_projection_layer.weight", w.p * w.d},
               {w.b_tp, "text_projection_layer.bias", w.p},
               {w.w_ip, "image_projection_layer.weight", w.p * w.d},
               {w.b_ip, "image_projection_layer.bias", w.p},
               {w.w_c, "combiner_layer.weight", w.h * 2 * w.p},
               {w.b_c, "combiner_layer.bias", w.h},
               {w.w_g1, "dynamic_scalar.0.weight", w.h * 2 * w.p},
               {w.b_g1, "dynamic_scalar.0.bias", w.h},
               {w.w_g2, "dynamic_scalar.3.weight", w.h},
               {w.b_g2, "dynamic_scalar.3.bias", 1},
               {w.w_o, "output_layer.weight", w.d * w.h},
               {w.b_o, "output_layer.bias", w.d}};
  for (const auto& part : parts) {
    if (part.p == nullptr) return Status(Code::kInvalidArg, std::string("combiner: ") + part.name + " is missing");
    VLK_RETURN_IF_ERROR(check_finite(part.p, part.n, part.name));
  }
  return Status::Ok();
}

Status combiner_forward(const CombinerWeights& w, const float* x_t, const float* x_i, int64_t b, float* out,
                        const CombinerOptions& opt, CombinerCache* cache, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate_combiner(w));
  if (b < 1) return Status(Code::kEmpty, "combiner: batch of " + std::to_string(b) + " rows");
  if (x_t == nullptr || x_i == nullptr || out == nullptr) return Status(Code::kInvalidArg, "combiner: null input");
  if (!(opt.dropout >= 0.0f && opt.dropout < 1.0f)) {
    return Status(Code::kInvalidArg, "dropout: " + std::to_string(opt.dropout) + " is not in [0, 1)");
  }
  VLK_RETURN_IF_ERROR(check_finite(x_t, b * w.d, "text features"));
  VLK_RETURN_IF_ERROR(check_finite(x_i, b * w.d, "image features"));
  try {
    CombinerCache local;
    CombinerCache& k = cache != nullptr ? *cache : local;
    const int64_t d = w.d, p = w.p, h = w.h, p2 = 2 * p;
    k.b = b;
    k.x_t = x_t;
    k.x_i = x_i;
    k.pt_pre.resize(static_cast<size_t>(b * p));
    k.pi_pre.resize(static_cast<size_t>(b * p));
    VLK_RETURN_IF_ERROR(linear(x_t, b, d, w.w_tp, w.b_tp, p, k.pt_pre.data(), ctx));
    VLK_RETURN_IF_ERROR(linear(x_i, b, d, w.w_ip, w.b_ip, p, k.pi_pre.data(), ctx));
    std::vector<float> pt, pi;
    relu_dropout(k.pt_pre, &pt, &k.mask_t, b, p, opt, 1);
    relu_dropout(k.pi_pre, &pi, &k.mask_i, b, p, opt, 2);
    k.c.resize(static_cast<size_t>(b * p2));
    for (int64_t i = 0; i < b; ++i) {
      std::copy(pt.begin() + i * p, pt.begin() + (i + 1) * p, k.c.begin() + i * p2);
      std::copy(pi.begin() + i * p, pi.begin() + (i + 1) * p, k.c.begin() + i * p2 + p);
    }
    k.h_pre.resize(static_cast<size_t>(b * h));
    k.g_pre.resize(static_cast<size_t>(b * h));
    VLK_RETURN_IF_ERROR(linear(k.c.data(), b, p2, w.w_c, w.b_c, h, k.h_pre.data(), ctx));
    VLK_RETURN_IF_ERROR(linear(k.c.data(), b, p2, w.w_g1, w.b_g1, h, k.g_pre.data(), ctx));
    relu_dropout(k.h_pre, &k.h, &k.mask_h, b, h, opt, 3);
    relu_dropout(k.g_pre, &k.g, &k.mask_g, b, h, opt, 4);
    k.lambda.resize(static_cast<size_t>(b));
    for (int64_t i = 0; i < b; ++i) {
      double z = w.b_g2[0];
      for (int64_t j = 0; j < h; ++j) z += double(k.g[static_cast<size_t>(i * h + j)]) * w.w_g2[j];
      k.lambda[static_cast<size_t>(i)] = static_cast<float>(1.0 / (1.0 + std::exp(-z)));
    }
    k.y.resize(static_cast<size_t>(b * d));
    VLK_RETURN_IF_ERROR(linear(k.h.data(), b, h, w.w_o, w.b_o, d, k.y.data(), ctx));
    k.norm.resize(static_cast<size_t>(b));
    for (int64_t i = 0; i < b; ++i) {
      const float lam = k.lambda[static_cast<size_t>(i)];
      double n2 = 0;
      for (int64_t j = 0; j < d; ++j) {
        float& y = k.y[static_cast<size_t>(i * d + j)];
        y += lam * x_t[i * d + j] + (1.0f - lam) * x_i[i * d + j];
        n2 += double(y) * y;
      }
      const float n = std::max(static_cast<float>(std::sqrt(n2)), kNormEps);
      k.norm[static_cast<size_t>(i)] = n;
      for (int64_t j = 0; j < d; ++j) out[i * d + j] = k.y[static_cast<size_t>(i * d + j)] / n;
    }
    return ctx.cancelled() ? Status(Code::kAborted, "aborted") : Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "combiner: out of memory for a batch of " + std::to_string(b));
  }
}

Status combiner_backward(const CombinerWeights& w, const CombinerCache& k, const float* dout, const CombinerGrads& g,
                         float* dx_t, float* dx_i, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate_combiner(w));
  const int64_t b = k.b, d = w.d, p = w.p, h = w.h, p2 = 2 * p;
  if (b < 1 || k.y.size() != static_cast<size_t>(b * d) || k.c.size() != static_cast<size_t>(b * p2) ||
      k.x_t == nullptr || k.x_i == nullptr) {
    return Status(Code::kInvalidArg, "combiner backward: the cache is not from a forward of these weights");
  }
  if (dout == nullptr) return Status(Code::kInvalidArg, "combiner backward: null gradient");
  VLK_RETURN_IF_ERROR(check_finite(dout, b * d, "output gradient"));
  try {
    // Through the normalisation: dy = (dout - out (out . dout)) / |y| (|y| above eps).
    std::vector<float> dy(static_cast<size_t>(b * d));
    std::vector<float> dz(static_cast<size_t>(b));
    for (int64_t i = 0; i < b; ++i) {
      const float n = k.norm[static_cast<size_t>(i)];
      const float* y = k.y.data() + i * d;
      double dot = 0;
      for (int64_t j = 0; j < d; ++j) dot += double(y[j] / n) * dout[i * d + j];
      double dl = 0;
      for (int64_t j = 0; j < d; ++j) {
        const float v = n > kNormEps ? static_cast<float>((dout[i * d + j] - (y[j] / n) * dot) / n) : dout[i * d + j] / n;
        dy[static_cast<size_t>(i * d + j)] = v;
        dl += double(v) * (k.x_t[i * d + j] - k.x_i[i * d + j]);
      }
      const float lam = k.lambda[static_cast<size_t>(i)];
      dz[static_cast<size_t>(i)] = static_cast<float>(dl * lam * (1.0f - lam));
      if (dx_t != nullptr) {
        for (int64_t j = 0; j < d; ++j) dx_t[i * d + j] = lam * dy[static_cast<size_t>(i * d + j)];
      }
      if (dx_i != nullptr) {
        for (int64_t j = 0; j < d; ++j) dx_i[i * d + j] = (1.0f - lam) * dy[static_cast<size_t>(i * d + j)];
      }
    }
    // Output layer.
    VLK_RETURN_IF_ERROR(linear_weight_grad(dy.data(), k.h.data(), b, h, d, g.w_o, g.b_o, ctx));
    std::vector<float> dh(static_cast<size_t>(b * h)), dh_pre(static_cast<size_t>(b * h));
    VLK_RETURN_IF_ERROR(linear_input_grad(dy.data(), w.w_o, b, h, d, dh.data(), false, ctx));
    relu_dropout_grad(dh.data(), k.h_pre, k.mask_h, b, h, h, dh_pre.data());
    // Gate: z = g W_g2^T + b_g2.
    std::vector<float> dg(static_cast<size_t>(b * h)), dg_pre(static_cast<size_t>(b * h));
    double db_g2 = 0;
    for (int64_t j = 0; j < h; ++j) {
      double s = 0;
      for (int64_t i = 0; i < b; ++i) s += double(dz[static_cast<size_t>(i)]) * k.g[static_cast<size_t>(i * h + j)];
      g.w_g2[j] = static_cast<float>(s);
    }
    for (int64_t i = 0; i < b; ++i) {
      db_g2 += dz[static_cast<size_t>(i)];
      for (int64_t j = 0; j < h; ++j) dg[static_cast<size_t>(i * h + j)] = dz[static_cast<size_t>(i)] * w.w_g2[j];
    }
    g.b_g2[0] = static_cast<float>(db_g2);
    relu_dropout_grad(dg.data(), k.g_pre, k.mask_g, b, h, h, dg_pre.data());
    // Combiner layer and gate's first layer, both fed by c.
    VLK_RETURN_IF_ERROR(linear_weight_grad(dh_pre.data(), k.c.data(), b, p2, h, g.w_c, g.b_c, ctx));
    VLK_RETURN_IF_ERROR(linear_weight_grad(dg_pre.data(), k.c.data(), b, p2, h, g.w_g1, g.b_g1, ctx));
    std::vector<float> dc(static_cast<size_t>(b * p2));
    VLK_RETURN_IF_ERROR(linear_input_grad(dh_pre.data(), w.w_c, b, p2, h, dc.data(), false, ctx));
    VLK_RETURN_IF_ERROR(linear_input_grad(dg_pre.data(), w.w_g1, b, p2, h, dc.data(), true, ctx));
    // Projections.
    std::vector<float> dpt(static_cast<size_t>(b * p)), dpi(static_cast<size_t>(b * p));
    relu_dropout_grad(dc.data(), k.pt_pre, k.mask_t, b, p, p2, dpt.data());
    relu_dropout_grad(dc.data() + p, k.pi_pre, k.mask_i, b, p, p2, dpi.data());
    VLK_RETURN_IF_ERROR(linear_weight_grad(dpt.data(), k.x_t, b, d, p, g.w_tp, g.b_tp, ctx));
    VLK_RETURN_IF_ERROR(linear_weight_grad(dpi.data(), k.x_i, b, d, p, g.w_ip, g.b_ip, ctx));
    if (dx_t != nullptr) VLK_RETURN_IF_ERROR(linear_input_grad(dpt.data(), w.w_tp, b, d, p, dx_t, true, ctx));
    if (dx_i != nullptr) VLK_RETURN_IF_ERROR(linear_input_grad(dpi.data(), w.w_ip, b, d, p, dx_i, true, ctx));
    return ctx.cancelled() ? Status(Code::kAborted, "aborted") : Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "combiner backward: out of memory for a batch of " + std::to_string(b));
  }
}

}  // namespace core
}  // namespace vlk
