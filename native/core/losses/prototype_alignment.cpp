// PTHA hop 1 loss (core/losses). See prototype_alignment.hpp.
#include "losses/prototype_alignment.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "common/checked_size.hpp"

namespace vlk {
namespace core {

// Allocation failures inside become kOutOfMemory (no exception leaves core).
static Status prototype_alignment_unguarded(const PrototypeAlignmentArgs& a, double* loss, float* dp);

Status prototype_alignment(const PrototypeAlignmentArgs& a, double* loss, float* dp) {
  return run_guarded("prototypeAlignment", [&] { return prototype_alignment_unguarded(a, loss, dp); });
}

static Status prototype_alignment_unguarded(const PrototypeAlignmentArgs& a, double* loss, float* dp) {
  if (a.b <= 0 || a.k <= 0 || a.k_target <= 0 || a.d <= 0) {
    return Status(Code::kEmpty, "prototype alignment: B, K, K' and D must be >= 1");
  }
  if (a.p == nullptr || a.target == nullptr || loss == nullptr) {
    return Status(Code::kInvalidArg, "prototype alignment: null argument");
  }
  const int64_t d = a.d;
  std::vector<double> diff(static_cast<size_t>(a.b * d));
  for (int64_t i = 0; i < a.b; ++i) {
    for (int64_t c = 0; c < d; ++c) {
      double mp = 0, mt = 0;
      for (int64_t t = 0; t < a.k; ++t) mp += double(a.p[(i * a.k + t) * d + c]);
      for (int64_t t = 0; t < a.k_target; ++t) mt += double(a.target[(i * a.k_target + t) * d + c]);
      const double v = mp / double(a.k) - mt / double(a.k_target);
      if (!std::isfinite(v)) {
        return Status(Code::kNonFinite, "prototypes: sample " + std::to_string(i) + ", column " + std::to_string(c) +
                                            " is not finite");
      }
      diff[static_cast<size_t>(i * d + c)] = v;
    }
  }
  double sum = 0;
  for (double v : diff) sum += v * v;
  const double n = double(a.b) * double(d);
  *loss = sum / n;
  if (dp != nullptr) {
    const double scale = 2.0 / (n * double(a.k));
    for (int64_t i = 0; i < a.b; ++i) {
      for (int64_t t = 0; t < a.k; ++t) {
        for (int64_t c = 0; c < d; ++c) {
          dp[(i * a.k + t) * d + c] = static_cast<float>(scale * diff[static_cast<size_t>(i * d + c)]);
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
