// Query composition (core/compose). See compose.hpp.
#include "compose/compose.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace vlk {
namespace core {

namespace {

constexpr double kEps = 1e-12;

double norm_of(const float* v, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; ++j) s += double(v[j]) * v[j];
  return std::max(std::sqrt(s), kEps);
}

}  // namespace

Status parse_compose_mode(const char* name, ComposeMode* out) {
  const std::string s = name ? name : "";
  const struct {
    const char* n;
    ComposeMode m;
  } modes[] = {{"combiner", ComposeMode::kCombiner}, {"image", ComposeMode::kImage}, {"text", ComposeMode::kText},
               {"sum", ComposeMode::kSum}, {"sum_normalized", ComposeMode::kSumNormalized}, {"slerp", ComposeMode::kSlerp}};
  for (const auto& m : modes) {
    if (s == m.n) {
      *out = m.m;
      return Status::Ok();
    }
  }
  return Status(Code::kInvalidArg, "mode: unknown composition '" + s +
                                       "' (expected 'combiner', 'image', 'text', 'sum', 'sum_normalized' or 'slerp')");
}

Status compose(const ComposeArgs& a, float* out, const Context& ctx) {
  if (a.b < 1 || a.d < 1) {
    return Status(Code::kEmpty, "compose: " + std::to_string(a.b) + " x " + std::to_string(a.d) + " is empty");
  }
  if (a.image == nullptr || a.text == nullptr || out == nullptr) return Status(Code::kInvalidArg, "compose: null input");
  if (a.mode == ComposeMode::kCombiner) {
    if (a.weights == nullptr) return Status(Code::kInvalidArg, "compose: mode 'combiner' needs weights");
    if (a.weights->d != a.d) {
      return Status(Code::kDimMismatch, "weights: the combiner was built for dim " + std::to_string(a.weights->d) +
                                            " but the features have dim " + std::to_string(a.d));
    }
    return combiner_forward(*a.weights, a.text, a.image, a.b, out, CombinerOptions{}, nullptr, ctx);
  }
  if (!(a.alpha >= 0.0f && a.alpha <= 1.0f)) {
    return Status(Code::kInvalidArg, "alpha: " + std::to_string(a.alpha) + " is not in [0, 1]");
  }
  for (int64_t i = 0; i < a.b * a.d; ++i) {
    if (!std::isfinite(a.image[i]) || !std::isfinite(a.text[i])) {
      return Status(Code::kNonFinite, std::string(std::isfinite(a.image[i]) ? "text" : "image") + " features: row " +
                                          std::to_string(i / a.d) + ", column " + std::to_string(i % a.d) +
                                          " is not finite");
    }
  }
  const int64_t d = a.d;
  const double t = a.alpha;
  for (int64_t i = 0; i < a.b; ++i) {
    const float* xi = a.image + i * d;
    const float* xt = a.text + i * d;
    float* o = out + i * d;
    const double ni = norm_of(xi, d), nt = norm_of(xt, d);
    double wi = 0, wt = 0;  // o = wi xi + wt xt, then normalised
    switch (a.mode) {
      case ComposeMode::kImage: wi = 1; break;
      case ComposeMode::kText: wt = 1; break;
      case ComposeMode::kSum: wi = 1 - t; wt = t; break;
      case ComposeMode::kSumNormalized: wi = (1 - t) / ni; wt = t / nt; break;
      case ComposeMode::kSlerp: {
        double dot = 0;
        for (int64_t j = 0; j < d; ++j) dot += double(xi[j]) * xt[j];
        const double c = std::clamp(dot / (ni * nt), -1.0, 1.0);
        const double om = std::acos(c), so = std::sin(om);
        if (so < 1e-9) {  // (anti)parallel: linear interpolation of the unit vectors
          wi = (1 - t) / ni;
          wt = t / nt;
        } else {
          wi = std::sin((1 - t) * om) / so / ni;
          wt = std::sin(t * om) / so / nt;
        }
        break;
      }
      case ComposeMode::kCombiner: break;
    }
    double n2 = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double v = wi * xi[j] + wt * xt[j];
      n2 += v * v;
    }
    const double inv = 1.0 / std::max(std::sqrt(n2), kEps);
    for (int64_t j = 0; j < d; ++j) o[j] = static_cast<float>((wi * xi[j] + wt * xt[j]) * inv);
  }
  return ctx.cancelled() ? Status(Code::kAborted, "aborted") : Status::Ok();
}

}  // namespace core
}  // namespace vlk
