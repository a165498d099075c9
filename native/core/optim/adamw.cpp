// AdamW (core/optim). See adamw.hpp.
#include "optim/adamw.hpp"

#include <cmath>

namespace vlk {
namespace core {

void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, int64_t t, const AdamWOptions& o) {
  const double c1 = 1.0 - std::pow(o.beta1, double(t)), c2 = 1.0 - std::pow(o.beta2, double(t));
  for (int64_t i = 0; i < n; ++i) {
    double p = param[i];
    p -= o.lr * o.weight_decay * p;
    const double g = grad[i];
    const double mi = o.beta1 * m[i] + (1.0 - o.beta1) * g;
    const double vi = o.beta2 * v[i] + (1.0 - o.beta2) * g * g;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    p -= o.lr * (mi / c1) / (std::sqrt(vi / c2) + o.eps);
    param[i] = static_cast<float>(p);
  }
}

}  // namespace core
}  // namespace vlk
