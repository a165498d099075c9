// AdamW (core/optim), PyTorch's torch.optim.AdamW update, for training heads in Node:
//   p <- p - lr * wd * p
//   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
//   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// t is the 1-based step count. fp32 arithmetic per element (as PyTorch), bias corrections in float64.
#pragma once

#include <cstdint>

namespace vlk {
namespace core {

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
};

/// One update of n parameters in place (param, m, v), given their gradient, at step t >= 1.
void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, int64_t t, const AdamWOptions& o);

}  // namespace core
}  // namespace vlk
