// Symmetric CLIP InfoNCE (core/losses). See clip_loss.hpp. Scratch: the unit rows (2 B x D fp32,
// when normalising) and three B x B fp32 matrices (S, S^T, one gradient), from the block cache.
// Every step is row-parallel with per-row work fixed, so results do not depend on ctx.threads.
#include "losses/clip_loss.hpp"

#include <cmath>
#include <new>
#include <stdexcept>
#include <string>

#include "common/block_cache.hpp"
#include "common/checked_size.hpp"
#include "common/finite.hpp"
#include "linalg/gemm.hpp"
#include "losses/info_nce.hpp"

namespace vlk {
namespace core {

namespace {

constexpr double kNormEps = 1e-12;

template <class Fn>
void rows(int64_t n, const Context& ctx, Fn&& fn) {
  if (ctx.pool != nullptr && ctx.threads > 1 && n > 1) {
    ctx.pool->parallel_for(n, ctx.threads, [&](int64_t i) { fn(i); });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

Status check_matrix(const char* name, const float* x, int64_t r, int64_t c) {
  if (all_finite(x, r * c)) return Status::Ok();
  for (int64_t i = 0; i < r * c; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i / c) + ", column " +
                                          std::to_string(i % c) + " is not finite (" + std::to_string(x[i]) + ")");
    }
  }
  return Status::Ok();
}

// u = x / max(||x||, eps) per row; den[i] keeps the divisor and whether the norm was clamped.
void normalize_rows(const float* x, int64_t b, int64_t d, float* u, double* den, const Context& ctx) {
  rows(b, ctx, [&](int64_t i) {
    const float* xi = x + i * d;
    double ss = 0;
    for (int64_t k = 0; k < d; ++k) ss += double(xi[k]) * double(xi[k]);
    const double n = std::sqrt(ss);
    const double dv = n > kNormEps ? n : kNormEps;
    den[i] = n > kNormEps ? n : -kNormEps;  // negative marks the clamped case
    for (int64_t k = 0; k < d; ++k) u[i * d + k] = static_cast<float>(double(xi[k]) / dv);
  });
}

// In place: g (dL/du on entry) becomes dL/dx = (g - u (u . g)) / ||x|| (or g / eps when clamped).
void normalize_backward(const float* u, const double* den, int64_t b, int64_t d, float* g, const Context& ctx) {
  rows(b, ctx, [&](int64_t i) {
    float* gi = g + i * d;
    const float* ui = u + i * d;
    if (den[i] < 0) {
      for (int64_t k = 0; k < d; ++k) gi[k] = static_cast<float>(double(gi[k]) / kNormEps);
      return;
    }
    double dot = 0;
    for (int64_t k = 0; k < d; ++k) dot += double(ui[k]) * double(gi[k]);
    const double inv = 1.0 / den[i];
    for (int64_t k = 0; k < d; ++k) gi[k] = static_cast<float>((double(gi[k]) - double(ui[k]) * dot) * inv);
  });
}

}  // namespace

Status clip_loss(const ClipLossArgs& a, ClipLossOut* out, const Context& ctx) {
  if (out == nullptr) return Status(Code::kInvalidArg, "clipLoss: null output");
  if (a.b <= 0 || a.d <= 0) {
    return Status(Code::kEmpty, "images: " + std::to_string(a.b) + " x " + std::to_string(a.d) + " is empty");
  }
  if (a.images == nullptr || a.texts == nullptr) return Status(Code::kInvalidArg, "clipLoss: null input");
  if (!std::isfinite(a.logit_scale)) {
    return Status(Code::kInvalidArg, "logitScale: " + std::to_string(a.logit_scale) + " is not finite");
  }
  if (!(a.max_scale > 0) || !std::isfinite(a.max_scale)) {
    return Status(Code::kInvalidArg, "maxScale: " + std::to_string(a.max_scale) + " is not a finite number > 0");
  }
  if (!(a.label_smoothing >= 0 && a.label_smoothing < 1)) {
    return Status(Code::kInvalidArg, "labelSmoothing: " + std::to_string(a.label_smoothing) + " is not in [0, 1)");
  }
  VLK_RETURN_IF_ERROR(check_matrix("images", a.images, a.b, a.d));
  VLK_RETURN_IF_ERROR(check_matrix("texts", a.texts, a.b, a.d));
  const int64_t b = a.b, d = a.d;
  const double e = std::exp(a.logit_scale);
  const bool clipped = e > a.max_scale;
  const double scale = clipped ? a.max_scale : e;
  // S, S^T and dS are B x B whatever D is: a long thin batch needs far more than its inputs.
  VLK_RETURN_IF_ERROR(check_alloc("clipLoss: the B x B similarity scratch (S, S^T, dS)", {3, b, b}, sizeof(float)));

  try {
    CachedArray<float> unit_i, unit_t, s, st, ds;
    CachedArray<double> den_i, den_t;
    const float* u = a.images;
    const float* v = a.texts;
    if (a.normalize) {
      unit_i.reset(static_cast<size_t>(b * d));
      unit_t.reset(static_cast<size_t>(b * d));
      den_i.reset(static_cast<size_t>(b));
      den_t.reset(static_cast<size_t>(b));
      normalize_rows(a.images, b, d, unit_i.data(), den_i.data(), ctx);
      normalize_rows(a.texts, b, d, unit_t.data(), den_t.data(), ctx);
      u = unit_i.data();
      v = unit_t.data();
    }
    const size_t bb = static_cast<size_t>(b * b);
    s.reset(bb);
    st.reset(bb);
    ds.reset(bb);

    GemmArgs g;
    g.trans_b = true;
    g.m = b, g.n = b, g.k = d;
    g.a = u, g.lda = d, g.b = v, g.ldb = d, g.c = s.data(), g.ldc = b;
    VLK_RETURN_IF_ERROR(gemm(g, ctx));
    if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
    float* sp = s.data();
    float* stp = st.data();
    rows(b, ctx, [&](int64_t j) {
      for (int64_t i = 0; i < b; ++i) stp[j * b + i] = sp[i * b + j];
    });

    InfoNceArgs ce;
    ce.rows = b, ce.cols = b, ce.scale = scale, ce.label_smoothing = a.label_smoothing;
    ce.scores = sp;
    InfoNceOut image_to_text;
    image_to_text.dscores = ds.data();
    VLK_RETURN_IF_ERROR(info_nce(ce, &image_to_text, ctx));
    // S is no longer read: the text-to-image gradient (rows = texts) goes into its buffer.
    ce.scores = stp;
    InfoNceOut text_to_image;
    text_to_image.dscores = sp;
    VLK_RETURN_IF_ERROR(info_nce(ce, &text_to_image, ctx));
    if (ctx.cancelled()) return Status(Code::kAborted, "aborted");

    out->loss = 0.5 * (image_to_text.loss + text_to_image.loss);
    out->scale = scale;
    out->clipped = clipped;
    out->dlogit_scale = clipped ? 0.0 : 0.5 * (image_to_text.dscale + text_to_image.dscale) * e;
    if (out->dimages == nullptr && out->dtexts == nullptr) return Status::Ok();

    // dL/dS' (S' = u v^T) = 1/2 [dS_i2t + dS_t2i^T]; info_nce's gradients already carry the scale.
    float* dsp = ds.data();
    rows(b, ctx, [&](int64_t i) {
      for (int64_t j = 0; j < b; ++j) dsp[i * b + j] = 0.5f * (dsp[i * b + j] + sp[j * b + i]);
    });
    if (out->dimages != nullptr) {
      GemmArgs gi;
      gi.m = b, gi.n = d, gi.k = b;
      gi.a = dsp, gi.lda = b, gi.b = v, gi.ldb = d, gi.c = out->dimages, gi.ldc = d;
      VLK_RETURN_IF_ERROR(gemm(gi, ctx));
      if (a.normalize) normalize_backward(u, den_i.data(), b, d, out->dimages, ctx);
    }
    if (out->dtexts != nullptr) {
      GemmArgs gt;
      gt.trans_a = true;
      gt.m = b, gt.n = d, gt.k = b;
      gt.a = dsp, gt.lda = b, gt.b = u, gt.ldb = d, gt.c = out->dtexts, gt.ldc = d;
      VLK_RETURN_IF_ERROR(gemm(gt, ctx));
      if (a.normalize) normalize_backward(v, den_t.data(), b, d, out->dtexts, ctx);
    }
    if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "clipLoss: could not allocate the " + std::to_string(b) + " x " +
                                          std::to_string(b) + " similarity scratch");
  } catch (const std::length_error&) {
    return Status(Code::kOutOfMemory, "clipLoss: the " + std::to_string(b) + " x " + std::to_string(b) +
                                          " similarity scratch exceeds the address space");
  }
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
