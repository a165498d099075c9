// AdamW (core/optim). See adamw.hpp.
#include "optim/adamw.hpp"

#include <cmath>

namespace vlk {
namespace core {

void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, int64_t t, const AdamWOptions& o) {
  // fp32 per element, as torch.optim.AdamW (the bias corrections in float64 once per step).
  const float b1 = static_cast<float>(o.beta1), b2 = static_cast<float>(o.beta2);
  const float decay = static_cast<float>(1.0 - o.lr * o.weight_decay);
  const float step = static_cast<float>(o.lr / (1.0 - std::pow(o.beta1, double(t))));
  const float inv_c2 = static_cast<float>(1.0 / (1.0 - std::pow(o.beta2, double(t))));
  const float eps = static_cast<float>(o.eps);
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step * mi / (std::sqrt(vi * inv_c2) + eps);
  }
}

}  // namespace core
}  // namespace vlk
